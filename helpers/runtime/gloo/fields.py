"""Gloo's leaf types and the rules that look at several fields of one object.

``GlooObj`` (an object node that knows Gloo 0.x's renamed fields), durations as
Gloo's JSON reader takes them, REST parameter templates, and the checks Gloo's
validation makes beyond the CRD schema (weights adding up to 0, a regex that does
not compile, a method in lower case...). The tables that use them are in ``schema``
and ``routeschema``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.durations import parse_duration as go_duration
from helpers.runtime.regex import RegexError
from helpers.runtime.schema import STR, Found, Ignored, MapOf, Node, Obj, Rule, at, compile_regex, shown
from helpers.runtime.templating import compile_parameter

# ── objects ──────────────────────────────────────────────────────────────────

# Field names from Gloo 0.x (the 2019 blog post era) that moved in Gloo 1.0.
_RENAMED = {
    "matcher": "use `matchers: [...]` (Gloo 1.x): a list of matchers",
    "routePlugins": "use `options` (Gloo 1.x renamed routePlugins to options)",
    "virtualHostPlugins": "use `options` (Gloo 1.x renamed virtualHostPlugins to options)",
    "upstreamSpec": "fields moved under `spec` in Gloo 1.x (e.g. `spec.kube`, not `spec.upstreamSpec.kube`)",
}


def GlooObj(
    fields: dict[str, Node],
    required: tuple[str, ...] = (),
    rules: tuple[Rule, ...] = (),
    hints: Mapping[str, str] | None = None,
    open: bool = False,
) -> Obj:
    """An ``Obj`` of Gloo's schema: an unknown field with a Gloo 0.x name says what it became."""
    return Obj(fields, required, rules, {**_RENAMED, **(hints or {})}, open)


# ── durations ────────────────────────────────────────────────────────────────


def parse_duration(value: Any) -> float:
    """Seconds in a protobuf Duration as Gloo reads it from YAML: Go's duration
    syntax (``"15s"``, ``"0.5s"``, ``"100ms"``, ``"1m30s"``, ``"0"``); the object
    ``{seconds, nanos}`` is read too, for callers converting older configurations.

    Gloo reads its resources with golang/protobuf's ``jsonpb`` (v1.5.4), whose
    Duration is ``time.ParseDuration``: not protojson's seconds-only ``"0.100s"`` rule.
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
    elif isinstance(value, str):
        total = go_duration(value)
    else:
        hint = f' (write "{value}s")' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
        raise ValueError(f'expected a duration such as "15s" or "100ms", got {shown(value)}{hint}')
    if total < 0:
        raise ValueError("a duration cannot be negative (Envoy refuses it)")
    return total


class Duration(Node):
    """A protobuf Duration as the CRD types it: a string (an object is refused by the API server)."""

    def check(self, value: Any, path: str, found: Found) -> None:
        if isinstance(value, Mapping):
            found.error(path, f'expected a duration string such as "15s", got {shown(value)} (the CRD types it string)')
            return
        try:
            parse_duration(value)
        except ValueError as e:
            found.error(path, str(e))


class Enum(Node):
    """A protobuf enum in YAML (``x-kubernetes-int-or-string`` in the CRD): a name, or its
    number, as Gloo's JSON reader accepts; an undefined number is refused by Envoy."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def check(self, value: Any, path: str, found: Found) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value < len(self.names):
                found.error(
                    path, f"{value} is not a defined value (0 to {len(self.names) - 1}: {', '.join(self.names)})"
                )
        elif value not in self.names:
            found.error(path, f"expected one of {', '.join(self.names)} (or its number), got {shown(value)}")


class ParamTemplate(Node):
    """A REST parameter template such as ``/findPetWithId/{id}``."""

    def check(self, value: Any, path: str, found: Found) -> None:
        STR.check(value, path, found)
        if isinstance(value, str):
            try:
                compile_parameter(value)
            except RegexError as e:
                found.error(path, f'invalid parameter template "{value}": {e}')


_TEMPLATE = Obj({"text": STR})
# A REST function's TransformationTemplate, with the fields Gloo 1.22.1's CRD lists (no others).
TRANSFORMATION = Obj(
    {
        "headers": MapOf(_TEMPLATE),
        "body": _TEMPLATE,
        **{
            name: Ignored()
            for name in (
                "advancedTemplates dynamicMetadataValues escapeCharacters extractors headersToAppend "
                "headersToRemove ignoreErrorOnParse mergeExtractorsToBody mergeJsonKeys parseBodyBehavior "
                "passthrough spanTransformer"
            ).split()
        },
    }
)


# ── rules that look at several fields of one object ──────────────────────────


NO_DESTINATIONS = "at least one weighted destination is required"
# Gloo's route error (route_config.go), which Envoy's WeightedCluster validation would also give.
LOW_TOTAL_WEIGHT = "Weighted Destinations require a total weight that is greater than or equal to 1"


def total_weight(value: Mapping[str, Any], path: str, found: Found) -> None:
    # A route's multi destination: Gloo reports an error on the route, so its
    # VirtualService or RouteTable is Rejected (an UpstreamGroup's weights are
    # checked on the routes that use the group: ``translating``).
    dests = value.get("destinations")
    if not isinstance(dests, list):
        return
    if not dests:
        found.error(at(path, "destinations"), NO_DESTINATIONS)
        return
    weights = [d.get("weight") or 0 for d in dests if isinstance(d, Mapping)]
    if all(isinstance(w, int) and not isinstance(w, bool) for w in weights) and sum(weights) < 1:
        found.error(at(path, "destinations"), LOW_TOTAL_WEIGHT)


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
