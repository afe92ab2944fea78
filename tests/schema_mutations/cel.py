"""The CEL rules of the vendored Gateway API v1.6.1 standard CRDs, as a table.

Each row: (kind, path where the rule sits, the CRD's message, a predicate that is
True when the rule is broken), each predicate a transcription of the rule's CEL
expression (run on the defaulted object). ``self == oldSelf`` (immutability) rules
need an old object and are left out: a mutation test applies each object once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_DUR = re.compile(r"([0-9]+)(ms|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PATH = re.compile(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$")


def _seconds(text: str) -> float:
    return sum(float(n) * _UNIT[u] for n, u in _DUR.findall(text))


def _has(o: Any, k: str) -> bool:
    return isinstance(o, Mapping) and k in o and o[k] is not None


def _list(o: Any) -> list[Any]:
    return [x for x in o if isinstance(x, Mapping)] if isinstance(o, list) else []


def _same_parent(p1: Mapping[str, Any], p2: Mapping[str, Any]) -> bool:
    ns1, ns2 = p1.get("namespace") or "", p2.get("namespace") or ""
    return all(p1.get(k) == p2.get(k) for k in ("group", "kind", "name")) and ns1 == ns2


def _section_missing(refs: Any) -> bool:
    r = _list(refs)
    return any(_same_parent(a, b) and (not a.get("sectionName")) != (not b.get("sectionName")) for a in r for b in r)


def _section_twice(refs: Any) -> bool:
    r = _list(refs)
    return any(
        sum(1 for b in r if _same_parent(a, b) and (a.get("sectionName") or "") == (b.get("sectionName") or "")) != 1
        for a in r
    )


def _prefix_filter(f: Any, field: str) -> bool:
    p = (f.get(field) or {}).get("path") if isinstance(f, Mapping) else None
    return _has(p, "replacePrefixMatch") and p.get("type") == "ReplacePrefixMatch"


def _not_one_prefix(rule: Mapping[str, Any]) -> bool:
    m = rule.get("matches") or []
    return len(m) != 1 or not _has(m[0], "path") or m[0]["path"].get("type") != "PathPrefix"


def _rewrite_rule(field: str, in_backends: bool) -> Any:
    def broken(rule: Mapping[str, Any]) -> bool:
        if in_backends:
            hits = [
                b
                for b in _list(rule.get("backendRefs"))
                if sum(_prefix_filter(f, field) for f in _list(b.get("filters"))) == 1
            ]
            return len(hits) == 1 and _not_one_prefix(rule)
        return sum(_prefix_filter(f, field) for f in _list(rule.get("filters"))) == 1 and _not_one_prefix(rule)

    return broken


def _filters_rules(base: str) -> list[tuple[str, str, str, Any]]:
    rows: list[tuple[str, str, str, Any]] = [
        (
            "HTTPRoute",
            base,
            "either RequestRedirect or URLRewrite",
            lambda fs: {"RequestRedirect", "URLRewrite"} <= {f.get("type") for f in _list(fs)},
        ),
    ]
    for t in ("CORS", "RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite"):
        rows.append(
            (
                "HTTPRoute",
                base,
                f"{t} filter cannot be repeated",
                lambda fs, t=t: sum(1 for f in _list(fs) if f.get("type") == t) > 1,
            )
        )
    pairs = {
        "CORS": "cors",
        "RequestHeaderModifier": "requestHeaderModifier",
        "ResponseHeaderModifier": "responseHeaderModifier",
        "RequestMirror": "requestMirror",
        "RequestRedirect": "requestRedirect",
        "URLRewrite": "urlRewrite",
        "ExtensionRef": "extensionRef",
    }
    for t, field in pairs.items():
        rows.append(
            (
                "HTTPRoute",
                base + "[]",
                f"filter.{field} must be nil / specified for type {t}",
                lambda f, t=t, field=field: _has(f, field) != (f.get("type") == t),
            )
        )
    for field in ("requestRedirect", "urlRewrite"):
        rows.append(
            (
                "HTTPRoute",
                f"{base}[].{field}.path",
                "path type and its field agree",
                lambda p: any(
                    (p.get("type") == t) != _has(p, k)
                    for t, k in (("ReplaceFullPath", "replaceFullPath"), ("ReplacePrefixMatch", "replacePrefixMatch"))
                ),
            )
        )
    rows += [
        (
            "HTTPRoute",
            f"{base}[].requestMirror",
            "Only one of percent or fraction",
            lambda m: _has(m, "percent") and _has(m, "fraction"),
        ),
        (
            "HTTPRoute",
            f"{base}[].requestMirror.fraction",
            "numerator <= denominator",
            lambda f: (
                isinstance(f.get("numerator"), int)
                and isinstance(f.get("denominator"), int)
                and f["numerator"] > f["denominator"]
            ),
        ),
        (
            "HTTPRoute",
            f"{base}[].requestMirror.backendRef",
            "Must have port for Service reference",
            lambda b: _no_port(b),
        ),
    ]
    for field, others in (("allowHeaders", "methods"), ("allowMethods", "methods"), ("allowOrigins", "origins")):
        rows.append(
            (
                "HTTPRoute",
                f"{base}[].cors.{field}",
                f"cannot contain '*' alongside other {others}",
                lambda xs: isinstance(xs, list) and "*" in xs and len(xs) > 1,
            )
        )
    return rows


def _no_port(b: Mapping[str, Any]) -> bool:
    return len(str(b.get("group", ""))) == 0 and b.get("kind") == "Service" and not _has(b, "port")


def _path_broken(p: Mapping[str, Any]) -> bool:
    t, v = p.get("type"), p.get("value")
    if t not in ("Exact", "PathPrefix"):
        return t != "RegularExpression"
    if not isinstance(v, str):
        return False
    return (
        not v.startswith("/")
        or any(x in v for x in ("//", "/./", "/../", "%2f", "%2F", "#"))
        or v.endswith(("/..", "/."))
        or not _PATH.match(v)
    )


def _timeouts(t: Mapping[str, Any]) -> bool:
    r, b = t.get("request"), t.get("backendRequest")
    return isinstance(r, str) and isinstance(b, str) and _seconds(r) != 0 and _seconds(b) > _seconds(r)


def _combos(ls: Any) -> bool:
    items = _list(ls)
    return any(
        sum(
            1
            for b in items
            if a.get("port") == b.get("port")
            and a.get("protocol") == b.get("protocol")
            and (
                a.get("hostname") == b.get("hostname")
                if _has(a, "hostname") and _has(b, "hostname")
                else not _has(a, "hostname") and not _has(b, "hostname")
            )
        )
        != 1
        for a in items
    )


def _unique_values(kind: str) -> Any:
    def broken(addrs: Any) -> bool:
        vals = [a.get("value") for a in _list(addrs) if a.get("type") == kind and _has(a, "value")]
        return len(vals) != len(set(vals))

    return broken


CEL: list[tuple[str, str, str, Any]] = [
    ("HTTPRoute", "spec.parentRefs", "sectionName must be specified ... same parent", _section_missing),
    ("HTTPRoute", "spec.parentRefs", "sectionName must be unique ... same parent", _section_twice),
    (
        "HTTPRoute",
        "spec.rules",
        "total number of matches <= 128",
        lambda rs: sum(len(r.get("matches") or []) for r in _list(rs)) > 128,
    ),
    (
        "HTTPRoute",
        "spec.rules[]",
        "RequestRedirect filter must not be used together with backendRefs",
        lambda r: (
            bool(_list(r.get("backendRefs"))) and any(_has(f, "requestRedirect") for f in _list(r.get("filters")))
        ),
    ),
    (
        "HTTPRoute",
        "spec.rules[]",
        "RequestRedirect replacePrefixMatch: one PathPrefix match",
        _rewrite_rule("requestRedirect", False),
    ),
    (
        "HTTPRoute",
        "spec.rules[]",
        "URLRewrite replacePrefixMatch: one PathPrefix match",
        _rewrite_rule("urlRewrite", False),
    ),
    (
        "HTTPRoute",
        "spec.rules[]",
        "backendRefs RequestRedirect replacePrefixMatch",
        _rewrite_rule("requestRedirect", True),
    ),
    ("HTTPRoute", "spec.rules[]", "backendRefs URLRewrite replacePrefixMatch", _rewrite_rule("urlRewrite", True)),
    ("HTTPRoute", "spec.rules[].backendRefs[]", "Must have port for Service reference", _no_port),
    ("HTTPRoute", "spec.rules[].matches[].path", "path value rules", _path_broken),
    ("HTTPRoute", "spec.rules[].timeouts", "backendRequest timeout cannot be longer than request timeout", _timeouts),
    *_filters_rules("spec.rules[].filters"),
    *_filters_rules("spec.rules[].backendRefs[].filters"),
    (
        "Gateway",
        "spec.listeners",
        "tls must not be specified for protocols HTTP, TCP, UDP",
        lambda ls: any(li.get("protocol") in ("HTTP", "TCP", "UDP") and _has(li, "tls") for li in _list(ls)),
    ),
    (
        "Gateway",
        "spec.listeners",
        "tls mode must be Terminate for protocol HTTPS",
        lambda ls: any(
            li.get("protocol") == "HTTPS" and _has(li, "tls") and li["tls"].get("mode") not in ("", "Terminate")
            for li in _list(ls)
        ),
    ),
    (
        "Gateway",
        "spec.listeners",
        "tls mode must be set for protocol TLS",
        lambda ls: any(
            li.get("protocol") == "TLS" and not (_has(li, "tls") and li["tls"].get("mode")) for li in _list(ls)
        ),
    ),
    (
        "Gateway",
        "spec.listeners",
        "hostname must not be specified for protocols TCP, UDP",
        lambda ls: any(li.get("protocol") in ("TCP", "UDP") and li.get("hostname") for li in _list(ls)),
    ),
    (
        "Gateway",
        "spec.listeners",
        "Listener name must be unique within the Gateway",
        lambda ls: len({li.get("name") for li in _list(ls)}) != len(_list(ls)),
    ),
    ("Gateway", "spec.listeners", "Combination of port, protocol and hostname must be unique", _combos),
    (
        "Gateway",
        "spec.listeners[].tls",
        "certificateRefs or options must be specified when mode is Terminate",
        lambda t: t.get("mode") == "Terminate" and not t.get("certificateRefs") and not t.get("options"),
    ),
    ("Gateway", "spec.addresses", "IPAddress values must be unique", _unique_values("IPAddress")),
    ("Gateway", "spec.addresses", "Hostname values must be unique", _unique_values("Hostname")),
    (
        "Gateway",
        "spec.addresses[]",
        "Hostname value must be empty or a hostname",
        lambda a: a.get("type") == "Hostname" and _has(a, "value") and not _HOST.match(str(a["value"])),
    ),
]
