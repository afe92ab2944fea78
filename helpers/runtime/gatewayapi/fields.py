"""The Gateway API's leaf types and the CRDs' CEL rules, as schema nodes.

Patterns (hostnames, section names, header names, paths), durations, sized strings
and lists, and the rules that look at several fields of one object (unique names,
a path match's value, a filter's fields). The tables that use them are in ``schema``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.runtime import regex
from helpers.runtime.schema import STR, Found, ListOf, Node, Scalar, at, shown

NOT_LOCAL = "not supported by the local runtime"
# The CRDs' patterns as written there: matched with ``search``, as the API server does,
# so an alternative without ``^`` or ``$`` is unanchored on that side, as in the CRD.
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_NAME = rf"{_LABEL}(\.{_LABEL})*"
_HOSTNAME = regex.compile(rf"^(\*\.)?{_DNS_NAME}$")
_SECTION_NAME = regex.compile(rf"^{_DNS_NAME}$")
_HEADER_NAME = regex.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
_GROUP = regex.compile(rf"^$|^{_DNS_NAME}$")
_KIND = regex.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
_NAMESPACE = regex.compile(rf"^{_LABEL}$")
_PROTOCOL = regex.compile(rf"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|{_DNS_NAME}\/[A-Za-z0-9]+$")
_CONTROLLER = regex.compile(rf"^{_DNS_NAME}\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$")
_ADDRESS_TYPE = regex.compile(rf"^Hostname|IPAddress|NamedAddress|{_DNS_NAME}\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$")
_ORIGIN = regex.compile(r"(^\*$)|(^(http(s)?):\/\/(((\*\.)?([a-zA-Z0-9\-]+\.)*[a-zA-Z0-9-]+|\*)(:([0-9]{1,5}))?)$)")
_LABEL_KEY = regex.compile(rf"^({_DNS_NAME}/)?([A-Za-z0-9][-A-Za-z0-9_.]{{0,61}})?[A-Za-z0-9]$")
_LABEL_VALUE = regex.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
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
    """A string with the CRD's pattern and length limits (a length error and a pattern
    error are different messages, as the API server's are)."""

    def __init__(self, pattern: regex.Pattern, what: str, max_length: int = 253, min_length: int = 1) -> None:
        self.pattern, self.what, self.max_length, self.min_length = pattern, what, max_length, min_length

    def check(self, value: Any, path: str, found: Found) -> None:
        STR.check(value, path, found)
        if not isinstance(value, str):
            return
        if len(value) < self.min_length:
            found.error(path, "must not be empty")
        elif len(value) > self.max_length:
            found.error(path, f"is {len(value)} characters long: at most {self.max_length} are allowed")
        elif not self.pattern.search(value):
            found.error(path, f'"{value}" is not {self.what}')


HOSTNAME = Pattern(_HOSTNAME, "a valid hostname (lower-case DNS name, optionally starting with `*.`; no IPs, no port)")
PRECISE_HOSTNAME = Pattern(_SECTION_NAME, "a valid hostname without wildcard (no IPs, no port)")
SECTION_NAME = Pattern(_SECTION_NAME, "a valid name (lower-case letters, digits, '-' and '.')", 253)
HEADER_NAME = Pattern(_HEADER_NAME, "a valid HTTP header name (pseudo-headers such as :path are not allowed)", 256)
GROUP = Pattern(_GROUP, 'an API group: empty ("" for the core group) or a DNS name', 253, 0)
KIND = Pattern(_KIND, "a kind: letters, digits and '-', starting with a letter (e.g. Service)", 63)
NAMESPACE = Pattern(_NAMESPACE, "a namespace: lower-case letters, digits and '-' (a DNS label)", 63)
PROTOCOL = Pattern(_PROTOCOL, "a protocol such as HTTP or HTTPS, or a domain-prefixed name (example.com/proto)", 255)
CONTROLLER_NAME = Pattern(_CONTROLLER, "a domain-prefixed path such as kgateway.dev/kgateway", 253)
ADDRESS_TYPE = Pattern(_ADDRESS_TYPE, "IPAddress, Hostname, NamedAddress or a domain-prefixed type", 253)
ORIGIN = Pattern(_ORIGIN, 'an origin such as "https://example.com", "https://*.example.com:8080" or "*"', 253)


class LabelMap(Node):
    """A map of label (or annotation) keys to values, as a Gateway's ``infrastructure`` holds."""

    def __init__(self, max_items: int, value_max: int, values_are_labels: bool) -> None:
        self.max_items, self.value_max, self.values_are_labels = max_items, value_max, values_are_labels

    def check(self, value: Any, path: str, found: Found) -> None:
        if not isinstance(value, Mapping):
            return found.error(path, f"expected an object (name: value pairs), got {shown(value)}")
        if len(value) > self.max_items:
            found.error(path, f"has {len(value)} entries: at most {self.max_items} are allowed")
        for k, v in value.items():
            where = at(path, str(k))
            if not _LABEL_KEY.search(str(k)) or len(str(k).split("/")[0]) >= 253:
                found.error(where, "keys are an optional DNS prefix and '/', then a name of up to 63 characters")
            STR.check(v, where, found)
            if isinstance(v, str) and len(v) > self.value_max:
                found.error(where, f"is {len(v)} characters long: at most {self.value_max} are allowed")
            elif isinstance(v, str) and self.values_are_labels and not _LABEL_VALUE.search(v):
                found.error(where, f'"{v}" is not a label value')
        return None


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


def filter_fields_of(types: Mapping[str, str]) -> Any:
    """The rule: a filter has the field of its type and no other (``types``: type to field)."""

    def rule(value: Mapping[str, Any], path: str, found: Found) -> None:
        kind = value.get("type")
        for other_type, name in types.items():
            if value.get(name) is not None and kind != other_type:
                found.error(at(path, name), f"must not be set when type is {kind} (it belongs to type {other_type})")
            elif value.get(name) is None and kind == other_type:
                found.error(at(path, name), f"must be set for a filter of type {kind}")

    return rule


filter_fields = filter_fields_of(FILTER_FIELDS)


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
                    # The CRD lets it through (its map keys are case-sensitive); the
                    # specification calls it invalid: a warning, not a refusal.
                    found.warn(
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
    filter_list(value, path, found)
    if "RequestRedirect" in types and backends:
        found.error(at(path, "backendRefs"), "RequestRedirect filter must not be used together with backendRefs")
    matches = value.get("matches")
    matches = [{}] if matches is None else matches  # the CRD's default: one PathPrefix "/" match
    one_prefix = (
        isinstance(matches, list)
        and len(matches) == 1
        and isinstance(matches[0], Mapping)
        and isinstance(matches[0].get("path") or {}, Mapping)
        and ((matches[0].get("path") or {}).get("type", "PathPrefix") == "PathPrefix")
    )
    for f in filters:
        if _replaces_prefix(f) and not one_prefix:
            found.error(
                where,
                f"When using {f.get('type')} filter with path.replacePrefixMatch, "
                "exactly one PathPrefix match must be specified",
            )
    for b in backends if isinstance(backends, list) else []:
        for f in b.get("filters") or [] if isinstance(b, Mapping) else []:
            if isinstance(f, Mapping) and _replaces_prefix(f) and not one_prefix:
                found.error(
                    at(path, "backendRefs"),
                    f"Within backendRefs, when using {f.get('type')} filter with path.replacePrefixMatch, "
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


def _replaces_prefix(f: Mapping[str, Any]) -> bool:
    spec = f.get("requestRedirect") or f.get("urlRewrite") or {}
    modifier = spec.get("path") if isinstance(spec, Mapping) else None
    return (
        isinstance(modifier, Mapping)
        and modifier.get("type") == "ReplacePrefixMatch"
        and modifier.get("replacePrefixMatch") is not None
    )


def filter_list(value: Mapping[str, Any], path: str, found: Found) -> None:
    """A rule's or a backendRef's ``filters``: each kind once, redirect or rewrite."""
    filters = [f for f in value.get("filters") or [] if isinstance(f, Mapping)]
    types = [f.get("type") for f in filters]
    where = at(path, "filters")
    if "RequestRedirect" in types and "URLRewrite" in types:
        found.error(
            where, "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both"
        )
    for t in ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "CORS"):
        if types.count(t) > 1:
            found.error(where, f"{t} filter cannot be repeated")


def rules(value: Mapping[str, Any], path: str, found: Found) -> None:
    rules = value.get("rules")
    if not isinstance(rules, list):
        return
    counts = [r.get("matches") for r in rules if isinstance(r, Mapping)]
    if sum(1 if m is None else len(m) if isinstance(m, list) else 0 for m in counts) > 128:
        found.error(
            at(path, "rules"),
            "While 16 rules and 64 matches per rule are allowed, the total number "
            "of matches across all rules in a route must be less than 128",
        )
    # Rule names are unique only in the experimental channel (``channels.unique_rule_names``).
