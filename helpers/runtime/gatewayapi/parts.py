"""HTTPRoute matches and filters as the route table's parts: matchers, header
operations and retry policies (as Envoy gets them from kgateway)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.runtime import regex
from helpers.runtime.gatewayapi.fields import parse_duration
from helpers.runtime.matching import HeaderMatcher, Matcher, PathMatcher, QueryMatcher
from helpers.runtime.routes import HeaderOps, RetryPolicy


def matcher(match: Mapping[str, Any]) -> Matcher:
    path = match.get("path") or {}
    kind, value = path.get("type", "PathPrefix"), path.get("value", "/")
    if kind == "Exact":
        pm = PathMatcher("exact", value)
    elif kind == "RegularExpression":
        pm = PathMatcher("regex", value, pattern=regex.user_pattern(value))
    else:
        pm = PathMatcher("path_prefix", value)
    headers, seen = [], set()
    for h in match.get("headers") or []:
        name = h["name"].lower()
        if name in seen:  # "only the first entry with an equivalent name MUST be considered"
            continue
        seen.add(name)
        if h.get("type") == "RegularExpression":
            headers.append(HeaderMatcher(name, pattern=regex.user_pattern(h["value"])))
        else:
            headers.append(HeaderMatcher(name, h["value"]))
    query, names = [], set()
    for q in match.get("queryParams") or []:
        if q["name"] in names:
            continue
        names.add(q["name"])
        is_regex = q.get("type") == "RegularExpression"
        query.append(
            QueryMatcher(
                q["name"], None if is_regex else q["value"], regex.user_pattern(q["value"]) if is_regex else None
            )
        )
    methods = frozenset({match["method"]}) if match.get("method") else frozenset()
    return Matcher(pm, tuple(headers), tuple(query), methods)


def header_ops(filters: Mapping[str, Mapping[str, Any]]) -> HeaderOps | None:
    def ops(spec: Mapping[str, Any] | None) -> tuple[tuple[tuple[str, str, bool], ...], frozenset[str]]:
        spec = spec or {}
        adds = tuple((h["name"].lower(), h["value"], False) for h in spec.get("set") or []) + tuple(
            (h["name"].lower(), h["value"], True) for h in spec.get("add") or []
        )
        return adds, frozenset(n.lower() for n in spec.get("remove") or [])

    request = ops((filters.get("RequestHeaderModifier") or {}).get("requestHeaderModifier"))
    response = ops((filters.get("ResponseHeaderModifier") or {}).get("responseHeaderModifier"))
    if not any((*request, *response)):
        return None
    return HeaderOps(request[0], request[1], response[0], response[1])


def retries(rule: Mapping[str, Any]) -> RetryPolicy | None:
    retry, timeouts = rule.get("retry"), rule.get("timeouts") or {}
    per_try = parse_duration(timeouts["backendRequest"]) if timeouts.get("backendRequest") else None
    if retry is None:
        return RetryPolicy(frozenset(), 0, per_try or None) if per_try else None
    codes = frozenset(retry.get("codes") or ())
    # HTTPRouteRetry: disconnects, resets and (per-try) timeouts, and the listed codes.
    on = frozenset({"connect-failure", "refused-stream", "reset"} | ({"retriable-status-codes"} if codes else set()))
    return RetryPolicy(on, retry.get("attempts", 1), per_try or None, codes)
