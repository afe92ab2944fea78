"""Gloo's route fields as the route table's parts: matchers, header operations and
the route action with its timeout, retries and faults (as Envoy gets them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.runtime import regex
from helpers.runtime.gloo.fields import parse_duration
from helpers.runtime.matching import HeaderMatcher, Matcher, PathMatcher, QueryMatcher
from helpers.runtime.routes import Faults, HeaderOps, RetryPolicy, RouteAction, WeightedDestination

DEFAULT_TIMEOUT = 15.0  # Gloo's route timeout when none is set


def matcher(m: Mapping[str, Any]) -> Matcher:
    case = m.get("caseSensitive") is not False  # Gloo's default is case-sensitive
    if m.get("exact") is not None:
        path = PathMatcher("exact", m["exact"], case)
    elif m.get("regex") is not None:
        path = PathMatcher("regex", m["regex"], case, regex.user_pattern(m["regex"], case))
    else:
        path = PathMatcher("prefix", m.get("prefix") or "/", case)
    # An absent or empty value means "present" (protobuf cannot tell the two apart).
    headers = tuple(
        HeaderMatcher(h["name"].lower(), *_value_or_pattern(h), invert=bool(h.get("invertMatch")))
        for h in m.get("headers") or []
    )
    query = tuple(QueryMatcher(q["name"], *_value_or_pattern(q)) for q in m.get("queryParameters") or [])
    return Matcher(path, headers, query, frozenset(m.get("methods") or ()))


def _value_or_pattern(spec: Mapping[str, Any]) -> tuple[str | None, regex.Pattern | None]:
    value = spec.get("value") or None
    if value is not None and spec.get("regex"):
        return None, regex.user_pattern(value)
    return value, None


def route_action(
    dests: tuple[WeightedDestination, ...], options: Mapping[str, Any], vh_ops: HeaderOps | None
) -> RouteAction:
    timeout = parse_duration(options["timeout"]) if options.get("timeout") is not None else DEFAULT_TIMEOUT
    retries = None
    if options.get("retries") is not None:
        r = options["retries"]
        retries = RetryPolicy(
            frozenset(c.strip() for c in (r.get("retryOn") or "").split(",") if c.strip()),
            r["numRetries"] if r.get("numRetries") is not None else 1,
            parse_duration(r["perTryTimeout"]) if r.get("perTryTimeout") is not None else None,
            frozenset(r.get("retriableStatusCodes") or ()),
        )
    faults = None
    if options.get("faults") is not None:
        abort, delay = options["faults"].get("abort") or {}, options["faults"].get("delay") or {}
        faults = Faults(
            float(abort.get("percentage") or 0),
            abort.get("httpStatus") or 503,
            float(delay.get("percentage") or 0),
            parse_duration(delay.get("fixedDelay") or "0s"),
        )
    ops = _merge_ops(header_ops(options.get("headerManipulation")), vh_ops)
    return RouteAction(dests, options.get("prefixRewrite"), timeout or None, retries, faults, ops)


def header_ops(spec: Mapping[str, Any] | None) -> HeaderOps | None:
    if not spec:
        return None

    def adds(items: list[Mapping[str, Any]] | None) -> tuple[tuple[str, str, bool], ...]:
        return tuple(
            (h["header"]["key"].lower(), h["header"].get("value") or "", h.get("append") is not False)
            for h in items or []
        )

    return HeaderOps(
        adds(spec.get("requestHeadersToAdd")),
        frozenset(h.lower() for h in spec.get("requestHeadersToRemove") or []),
        adds(spec.get("responseHeadersToAdd")),
        frozenset(h.lower() for h in spec.get("responseHeadersToRemove") or []),
    )


def _merge_ops(route: HeaderOps | None, vhost: HeaderOps | None) -> HeaderOps | None:
    # Envoy applies route-level header changes first, then the virtual host's.
    if route is None or vhost is None:
        return route or vhost
    return HeaderOps(
        route.request_add + vhost.request_add,
        route.request_remove | vhost.request_remove,
        route.response_add + vhost.response_add,
        route.response_remove | vhost.response_remove,
    )
