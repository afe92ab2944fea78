"""The Gateway API's leaf types and the CRDs' CEL rules, as schema nodes.

Patterns (hostnames, section names, header names, paths), durations, sized strings
and lists, and the rules that look at several fields of one object (unique names,
a path match's value, a filter's fields). The tables that use them are in ``schema``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.runtime import regex
from helpers.runtime.schema import STR, Found, ListOf, Node, Scalar, at

NOT_LOCAL = "not supported by the local runtime"
_DNS_NAME = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_HOSTNAME = regex.compile(r"(\*\.)?" + _DNS_NAME)
_SECTION_NAME = regex.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_HEADER_NAME = regex.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+")
_PATH_CHARS = regex.compile(r"(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+")
_DURATION = regex.compile(r"([0-9]{1,5}(h|m|s|ms)){1,4}")
_DURATION_PART = regex.compile(r"([0-9]+)(ms|h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
REDIRECT_CODES = (301, 302, 303, 307, 308)


def parse_duration(text: str) -> float:
    """Seconds in a Gateway API Duration (GEP-2257): ``"10s"``, ``"1m30s"``, ``"500ms"``."""
    if not _DURATION.fullmatch(text):
        raise ValueError(f'"{text}" is not a Gateway API duration: write e.g. "10s", "1m30s" or "500ms"')
    return sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(text))


# ── leaf nodes ───────────────────────────────────────────────────────────────


class Pattern(Node):
    def __init__(self, pattern: regex.Pattern, what: str, max_length: int = 253) -> None:
        self.pattern, self.what, self.max_length = pattern, what, max_length

    def check(self, value: Any, path: str, found: Found) -> None:
        STR.check(value, path, found)
        if isinstance(value, str) and (len(value) > self.max_length or not self.pattern.fullmatch(value)):
            found.error(path, f'"{value}" is not {self.what}')


HOSTNAME = Pattern(_HOSTNAME, "a valid hostname (lower-case DNS name, optionally starting with `*.`; no IPs, no port)")
PRECISE_HOSTNAME = Pattern(regex.compile(_DNS_NAME), "a valid hostname without wildcard (no IPs, no port)")
SECTION_NAME = Pattern(_SECTION_NAME, "a valid name (lower-case letters, digits, '-' and '.')", 253)
HEADER_NAME = Pattern(_HEADER_NAME, "a valid HTTP header name (pseudo-headers such as :path are not allowed)", 256)


class Duration(Node):
    def check(self, value: Any, path: str, found: Found) -> None:
        STR.check(value, path, found)
        if isinstance(value, str):
            try:
                parse_duration(value)
            except ValueError as e:
                found.error(path, str(e))


def sized(item: Node, low: int = 0, high: int = 16) -> Node:
    class Sized(ListOf):
        def check(self, value: Any, path: str, found: Found) -> None:
            super().check(value, path, found)
            if isinstance(value, list) and not low <= len(value) <= high:
                found.error(
                    path,
                    f"has {len(value)} items: it must have {low} to {high}"
                    if low
                    else f"has {len(value)} items: at most {high} are allowed",
                )

    return Sized(item)


def string(low: int = 0, high: int = 253) -> Node:
    class Bounded(Scalar):
        def check(self, value: Any, path: str, found: Found) -> None:
            super().check(value, path, found)
            if isinstance(value, str) and not low <= len(value) <= high:
                found.error(path, "must not be empty" if not value else f"is longer than {high} characters")

    return Bounded("string")


def enum(*choices: str) -> Node:
    return Scalar("string", choices=choices)


class RedirectCode(Node):
    def check(self, value: Any, path: str, found: Found) -> None:
        if value not in REDIRECT_CODES or isinstance(value, bool):
            found.error(path, f"{value!r} is not one of {', '.join(map(str, REDIRECT_CODES))}")


# ── rules that look at several fields of one object (the CRDs' CEL rules) ────


def unique(field: str, key: str = "name", fold: bool = False) -> Any:
    def rule(value: Mapping[str, Any], path: str, found: Found) -> None:
        seen: set[str] = set()
        for item in value.get(field) or []:
            name = item.get(key) if isinstance(item, Mapping) else item
            if isinstance(name, str):
                k = name.lower() if fold else name
                if k in seen:
                    found.error(at(path, field), f'"{name}" appears twice: each {key} may be listed once')
                seen.add(k)

    return rule


def path_match(value: Mapping[str, Any], path: str, found: Found) -> None:
    kind, text = value.get("type", "PathPrefix"), value.get("value", "/")
    if not isinstance(text, str):
        return
    where = at(path, "value")
    if kind == "RegularExpression":
        try:
            regex.user_pattern(text)
        except regex.RegexError as e:
            found.error(where, f'invalid regular expression "{text}": {e}')
        return
    if not text.startswith("/"):
        found.error(where, f'"{text}" must be an absolute path and start with "/" (type {kind})')
    for bad in ("//", "/./", "/../", "%2f", "%2F", "#"):
        if bad in text:
            found.error(where, f'"{text}" must not contain "{bad}" (type {kind})')
    if text.endswith(("/..", "/.")):
        found.error(where, f'"{text}" must not end with "/.." or "/." (type {kind})')
    if text and not _PATH_CHARS.fullmatch(text):
        found.error(where, f'"{text}" has characters a path may not hold unencoded (type {kind})')


def regex_value(value: Mapping[str, Any], path: str, found: Found) -> None:
    if value.get("type") == "RegularExpression" and isinstance(value.get("value"), str):
        try:
            regex.user_pattern(value["value"])
        except regex.RegexError as e:
            found.error(at(path, "value"), f'invalid regular expression "{value["value"]}": {e}')


FILTER_FIELDS = {
    "RequestHeaderModifier": "requestHeaderModifier",
    "ResponseHeaderModifier": "responseHeaderModifier",
    "RequestMirror": "requestMirror",
    "RequestRedirect": "requestRedirect",
    "URLRewrite": "urlRewrite",
    "ExtensionRef": "extensionRef",
    "CORS": "cors",
}


def filter_fields(value: Mapping[str, Any], path: str, found: Found) -> None:
    kind = value.get("type")
    for other_type, name in FILTER_FIELDS.items():
        if value.get(name) is not None and kind != other_type:
            found.error(at(path, name), f"must not be set when type is {kind} (it belongs to type {other_type})")
        elif value.get(name) is None and kind == other_type:
            found.error(at(path, name), f"must be set for a filter of type {kind}")


def path_modifier(value: Mapping[str, Any], path: str, found: Found) -> None:
    kind = value.get("type")
    for other_type, name in (("ReplaceFullPath", "replaceFullPath"), ("ReplacePrefixMatch", "replacePrefixMatch")):
        if kind == other_type and value.get(name) is None:
            found.error(at(path, name), f"must be set when type is {kind}")
        if kind != other_type and value.get(name) is not None:
            found.error(at(path, "type"), f"must be {other_type} when {name} is set")


def header_filter(value: Mapping[str, Any], path: str, found: Found) -> None:
    # "Only one action for a given header name is permitted" (HTTPHeaderFilter).
    seen: dict[str, str] = {}
    for action in ("set", "add", "remove"):
        for item in value.get(action) or []:
            name = item.get("name") if isinstance(item, Mapping) else item
            if isinstance(name, str):
                if name.lower() in seen:
                    found.error(
                        at(path, action),
                        f'header "{name}" already has an action ({seen[name.lower()]}): '
                        "only one action per header name is allowed",
                    )
                seen[name.lower()] = action


def backend_port(value: Mapping[str, Any], path: str, found: Found) -> None:
    if value.get("group", "") == "" and value.get("kind", "Service") == "Service" and value.get("port") is None:
        found.error(at(path, "port"), "Must have port for Service reference")


def rule(value: Mapping[str, Any], path: str, found: Found) -> None:
    filters = [f for f in value.get("filters") or [] if isinstance(f, Mapping)]
    types = [f.get("type") for f in filters]
    backends = value.get("backendRefs") or []
    where = at(path, "filters")
    if "RequestRedirect" in types and "URLRewrite" in types:
        found.error(
            where, "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both"
        )
    for t in ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "CORS"):
        if types.count(t) > 1:
            found.error(where, f"{t} filter cannot be repeated")
    if "RequestRedirect" in types and backends:
        found.error(at(path, "backendRefs"), "RequestRedirect filter must not be used together with backendRefs")
    matches = value.get("matches") or [{}]
    for f in filters:
        spec = f.get("requestRedirect") or f.get("urlRewrite") or {}
        modifier = spec.get("path") if isinstance(spec, Mapping) else None
        if isinstance(modifier, Mapping) and modifier.get("type") == "ReplacePrefixMatch":
            one_prefix = (
                len(matches) == 1
                and isinstance(matches[0], Mapping)
                and ((matches[0].get("path") or {}).get("type", "PathPrefix") == "PathPrefix")
            )
            if not one_prefix:
                found.error(
                    where,
                    f"When using {f.get('type')} filter with path.replacePrefixMatch, "
                    "exactly one PathPrefix match must be specified",
                )
    timeouts = value.get("timeouts")
    if (
        isinstance(timeouts, Mapping)
        and isinstance(timeouts.get("request"), str)
        and isinstance(timeouts.get("backendRequest"), str)
    ):
        try:
            request, backend = parse_duration(timeouts["request"]), parse_duration(timeouts["backendRequest"])
        except ValueError:
            return
        if request and backend > request:
            found.error(at(path, "timeouts"), "backendRequest timeout cannot be longer than request timeout")


def rules(value: Mapping[str, Any], path: str, found: Found) -> None:
    rules = value.get("rules")
    if not isinstance(rules, list):
        return
    if sum(len(r.get("matches") or [None]) for r in rules if isinstance(r, Mapping)) > 128:
        found.error(
            at(path, "rules"),
            "While 16 rules and 64 matches per rule are allowed, the total number "
            "of matches across all rules in a route must be less than 128",
        )
    unique("rules")(value, path, found)


def listeners(value: Mapping[str, Any], path: str, found: Found) -> None:
    listeners = [li for li in value.get("listeners") or [] if isinstance(li, Mapping)]
    unique("listeners")(value, path, found)
    combos = [(li.get("port"), li.get("protocol"), li.get("hostname", "")) for li in listeners]
    if len(set(combos)) != len(combos):
        found.error(
            at(path, "listeners"), "Combination of port, protocol and hostname must be unique for each listener"
        )
    for i, li in enumerate(listeners):
        where = f"{at(path, 'listeners')}[{i}]"
        protocol = li.get("protocol")
        if protocol in ("HTTP", "TCP", "UDP") and li.get("tls") is not None:
            found.error(at(where, "tls"), f"tls must not be specified for protocol {protocol}")
        if protocol in ("TCP", "UDP") and li.get("hostname") is not None:
            found.error(at(where, "hostname"), f"hostname must not be specified for protocol {protocol}")
