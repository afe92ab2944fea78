"""Read an applied VirtualService the way the gateway does: which route a request
takes (the first that matches) and how its weights split it between the versions.

    split(vs, "/findPets")                          # {"v1": 0.9, "v2": 0.1}
    split(vs, "/findPets", {"x-canary": "true"})    # {"v2": 1.0}
    expected_v2(vs, "/findPets", header_share=0.2)  # 0.28: what the plot should show

The dashboard uses this to follow route changes made behind its back (a cell's
``lab.apply``, ``exercises.solve``) and to draw the share of v2 it expects.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from helpers.builders.routing import CANARY_HEADER, destination_weights, version_of_destination

# An UpstreamGroup's weighted destinations, looked up by (namespace, name).
GroupLookup = Callable[[str, str], list[tuple[dict[str, Any], int]]]


def _path_matches(matcher: Mapping[str, Any], path: str) -> bool:
    if "exact" in matcher:
        return path == str(matcher["exact"])
    if "regex" in matcher:
        try:
            return re.fullmatch(str(matcher["regex"]), path) is not None
        except re.error:
            return False
    return path.startswith(str(matcher.get("prefix", "/")))


def _header_matches(rule: Mapping[str, Any], headers: Mapping[str, str]) -> bool:
    sent = {k.lower(): v for k, v in headers.items()}
    value = sent.get(str(rule.get("name", "")).lower())
    wanted = rule.get("value")
    if value is None:
        found = False
    elif not wanted:
        found = True  # presence
    elif rule.get("regex"):
        try:
            found = re.fullmatch(str(wanted), value) is not None
        except re.error:
            found = False
    else:
        found = value == wanted
    return found != bool(rule.get("invertMatch"))


def matches(matcher: Mapping[str, Any], path: str, headers: Mapping[str, str] | None = None) -> bool:
    """Whether a GET of ``path`` with ``headers`` matches a Gloo matcher (path, headers,
    methods; a matcher that needs query parameters never matches a request without)."""
    methods = matcher.get("methods") or []
    if methods and "GET" not in methods:
        return False
    if matcher.get("queryParameters"):
        return False
    if not all(_header_matches(h, headers or {}) for h in matcher.get("headers") or []):
        return False
    return _path_matches(matcher, path)


def route_for(vs: Mapping[str, Any], path: str, headers: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The route a GET of ``path`` takes: the first whose matchers match; None for a 404."""
    routes = ((vs.get("spec") or {}).get("virtualHost") or {}).get("routes") or []
    for route in routes:
        if any(matches(m, path, headers) for m in route.get("matchers") or [{}]):
            return dict(route)
    return None


def split(
    vs: Mapping[str, Any],
    path: str,
    headers: Mapping[str, str] | None = None,
    groups: GroupLookup | None = None,
) -> dict[str | None, float]:
    """The share of such requests each version gets (``None``: an upstream that is not
    a petstore version); empty when no route matches (the gateway answers 404)."""
    route = route_for(vs, path, headers)
    if route is None:
        return {}
    weights: dict[str | None, int] = {}
    for destination, weight in destination_weights(route):
        inner = [(destination, weight)]
        if "upstreamGroup" in destination:
            ref = destination["upstreamGroup"]
            inner = groups(str(ref.get("namespace") or ""), str(ref.get("name") or "")) if groups else []
        for d, w in inner:
            version = version_of_destination(d)
            weights[version] = weights.get(version, 0) + w
    total = sum(weights.values())
    return {v: w / total for v, w in weights.items()} if total else {}


def v2_percent(vs: Mapping[str, Any], path: str = "/findPets", groups: GroupLookup | None = None) -> int:
    """The v2 weight (%) of requests to ``path`` without the canary header."""
    return round(100 * split(vs, path, groups=groups).get("v2", 0.0))


def header_canary_on(vs: Mapping[str, Any], path: str = "/findPets") -> bool:
    """Whether requests to ``path`` with ``x-canary: true`` take a route of their own
    (one that matches on that header)."""
    route = route_for(vs, path, {CANARY_HEADER: "true"})
    headers = [h for m in (route or {}).get("matchers") or [] for h in m.get("headers") or []]
    return any(str(h.get("name", "")).lower() == CANARY_HEADER for h in headers)


def expected_v2(
    vs: Mapping[str, Any] | None,
    path: str = "/findPets",
    header_share: float = 0.0,
    groups: GroupLookup | None = None,
) -> float:
    """The share (0..1) of requests to ``path`` v2 should answer when ``header_share``
    of them carry ``x-canary: true``: the weight alone is not it once testers pin v2."""
    if vs is None:
        return 0.0
    plain = split(vs, path, groups=groups).get("v2", 0.0)
    canary = split(vs, path, {CANARY_HEADER: "true"}, groups).get("v2", 0.0)
    return (1 - header_share) * plain + header_share * canary
