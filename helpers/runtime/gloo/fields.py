"""Gloo's leaf types and the rules that look at several fields of one object.

Durations as protobuf writes them, REST parameter templates, and the checks Gloo's
validation makes beyond the CRD schema (weights adding up to 0, a regex that does
not compile, a method in lower case...). The tables that use them are in ``schema``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.runtime import regex
from helpers.runtime.regex import RegexError
from helpers.runtime.schema import STR, Found, Node, at, compile_regex, shown
from helpers.runtime.templating import compile_parameter

# ── durations ────────────────────────────────────────────────────────────────

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_DURATION_PART = regex.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")


def parse_duration(value: Any) -> float:
    """Seconds in a protobuf Duration as YAML holds it: ``"15s"``, ``"0.5s"``,
    ``"100ms"``, ``"1m30s"`` or ``{seconds: 1, nanos: 500000000}``.

    Raises ``ValueError`` with a message a learner can act on.
    """
    if isinstance(value, Mapping):
        unknown = set(value) - {"seconds", "nanos"}
        if unknown:
            raise ValueError(f"a duration object has only seconds and nanos, not {', '.join(sorted(unknown))}")
        seconds, nanos = value.get("seconds", 0) or 0, value.get("nanos", 0) or 0
        if isinstance(seconds, str) and seconds.isdigit():
            seconds = int(seconds)  # protobuf JSON writes int64 seconds as a string
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (seconds, nanos)):
            raise ValueError("seconds and nanos must be whole numbers")
        total = seconds + nanos / 1e9
    elif isinstance(value, str) and value.strip():
        text, total, pos = value.strip(), 0.0, 0
        for m in _DURATION_PART.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or pos == 0:
            raise ValueError(f'"{value}" is not a duration: write e.g. "15s", "0.5s" or "100ms"')
    else:
        hint = f' (write "{value}s")' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
        raise ValueError(f'expected a duration such as "15s" or "100ms", got {shown(value)}{hint}')
    if total < 0:
        raise ValueError("a duration cannot be negative")
    return total


class Duration(Node):
    def check(self, value: Any, path: str, found: Found) -> None:
        try:
            parse_duration(value)
        except ValueError as e:
            found.error(path, str(e))


class ParamTemplate(Node):
    """A REST parameter template such as ``/findPetWithId/{id}``."""

    def check(self, value: Any, path: str, found: Found) -> None:
        STR.check(value, path, found)
        if isinstance(value, str):
            try:
                compile_parameter(value)
            except RegexError as e:
                found.error(path, f'invalid parameter template "{value}": {e}')


# ── rules that look at several fields of one object ──────────────────────────


def total_weight(value: Mapping[str, Any], path: str, found: Found) -> None:
    # Gloo: "Weighted Destinations require a total weight that is greater than or
    # equal to 1" (a listener with such a route would be invalid in Envoy).
    dests = value.get("destinations")
    if not isinstance(dests, list):
        return
    if not dests:
        found.error(at(path, "destinations"), "at least one weighted destination is required")
        return
    weights = [d.get("weight") or 0 for d in dests if isinstance(d, Mapping)]
    if all(isinstance(w, int) and not isinstance(w, bool) for w in weights) and sum(weights) < 1:
        found.error(
            at(path, "destinations"), "Weighted Destinations require a total weight that is greater than or equal to 1"
        )


def regex_value(value: Mapping[str, Any], path: str, found: Found) -> None:
    # With `regex: true` the value is a regex that must match the whole value.
    if value.get("regex") is True and isinstance(value.get("value"), str):
        compile_regex(value["value"], at(path, "value"), found)


def methods(value: Mapping[str, Any], path: str, found: Found) -> None:
    methods = value.get("methods")
    for i, m in enumerate(methods if isinstance(methods, list) else []):
        if isinstance(m, str) and m != m.upper():
            found.warn(
                f"{at(path, 'methods')}[{i}]",
                f'HTTP methods are case-sensitive: "{m}" never matches; write "{m.upper()}"',
            )


def delay(value: Mapping[str, Any], path: str, found: Found) -> None:
    try:
        seconds = parse_duration(value.get("fixedDelay") or "0s")
    except ValueError:
        return  # already reported by the Duration node
    if seconds < 1:
        found.error(
            at(path, "fixedDelay"), f"a fault delay must be at least 1s, got {seconds:g}s (Gloo rejects shorter delays)"
        )


def header_key(value: Mapping[str, Any], path: str, found: Found) -> None:
    key = value.get("key")
    if isinstance(key, str) and (key.startswith(":") or key.lower() == "host"):
        found.error(at(path, "key"), f'"{key}" cannot be added: pseudo-headers and host are set by the proxy')


_RETRY_ON = {
    "5xx",
    "gateway-error",
    "reset",
    "connect-failure",
    "retriable-status-codes",
    "retriable-4xx",
    "refused-stream",
    "retriable-headers",
    "envoy-ratelimited",
    "http3-post-connect-failure",
    "reset-before-request",
}


def retry_on(value: Mapping[str, Any], path: str, found: Found) -> None:
    text = value.get("retryOn")
    if not isinstance(text, str) or not text.strip():
        found.warn(at(path, "retryOn"), 'no retry conditions: nothing is retried (e.g. "5xx,connect-failure")')
        return
    for cond in (c.strip() for c in text.split(",")):
        if cond and cond not in _RETRY_ON:
            found.warn(at(path, "retryOn"), f'"{cond}" is not a retry condition Envoy knows; ignored')


def unique_domains(value: Mapping[str, Any], path: str, found: Found) -> None:
    domains = value.get("domains")
    seen: set[str] = set()
    for d in domains if isinstance(domains, list) else []:
        if isinstance(d, str):
            if d.lower() in seen:
                found.error(at(path, "domains"), f'domain "{d}" is listed twice')
            seen.add(d.lower())
