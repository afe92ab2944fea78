"""First match or best match: where a VirtualService and an HTTPRoute pick different routes.

A VirtualService tries its routes in list order and takes the first that matches.
The Gateway API ranks every match that fits the request and takes the best:
an Exact path, then the longest PathPrefix, then a method match, then the most
header matches, then the most query parameter matches; only then list order.
``order_warnings`` finds the pairs of routes of one VirtualService whose winner
changes when they become rules of one HTTPRoute: a later route that the Gateway
API ranks higher, for requests both routes match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from helpers.runtime.gatewayapi.precedence import precedence
from helpers.tables import describe_matcher

_CRITERIA = (
    "an Exact path before any other",
    "the longest path prefix",
    "a method match",
    "the most header matches",
    "the most query parameter matches",
)


@dataclass(frozen=True)
class Ranked:
    """One HTTPRoute match, with the VirtualService route and Gloo matcher it came from."""

    route: int
    match: Mapping[str, Any]
    gloo: Mapping[str, Any]


def rank(match: Mapping[str, Any]) -> tuple[Any, ...]:
    """The Gateway API's precedence of one match (smaller wins), without the tie-breaks."""
    return precedence(match, {}, 0)[:5]


def order_warnings(ranked: Sequence[Ranked]) -> list[str]:
    """One warning per pair of routes whose winner differs between the two APIs."""
    found, done = [], set()
    for a in ranked:
        for b in ranked:
            if b.route <= a.route or (a.route, b.route) in done:
                continue
            ra, rb = rank(a.match), rank(b.match)
            if rb < ra and may_overlap(a.gloo, b.gloo):
                done.add((a.route, b.route))
                why = _CRITERIA[next(i for i in range(5) if ra[i] != rb[i])]
                if why == _CRITERIA[0] and b.match["path"]["type"] == "RegularExpression":
                    why = "a regular expression path before a prefix (implementation-specific)"
                found.append(
                    f"spec.virtualHost.routes[{b.route}] ({describe_matcher(b.gloo)}) now wins over "
                    f"routes[{a.route}] ({describe_matcher(a.gloo)}) for requests both match: the VirtualService "
                    f"takes routes[{a.route}], the first in its list; the Gateway API takes {why}"
                )
    return found


def may_overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether some request could match both Gloo matchers (True when unsure)."""
    if not _paths_overlap(_path(a), _path(b)):
        return False
    ma, mb = set(a.get("methods") or ()), set(b.get("methods") or ())
    if ma and mb and not ma & mb:
        return False
    return _values_agree(a.get("headers") or [], b.get("headers") or [], fold=True) and _values_agree(
        a.get("queryParameters") or [], b.get("queryParameters") or [], fold=False
    )


def _path(m: Mapping[str, Any]) -> tuple[str, str]:
    for kind in ("exact", "regex", "prefix"):
        if m.get(kind) is not None:
            return kind, str(m[kind])
    return "prefix", "/"


def _paths_overlap(a: tuple[str, str], b: tuple[str, str]) -> bool:
    (ka, va), (kb, vb) = sorted([a, b])  # "exact" < "prefix" < "regex"
    if ka == "exact" and kb == "exact":
        return va == vb
    if ka == "exact" and kb == "prefix":
        return va.startswith(vb)
    if ka == "prefix" and kb == "prefix":
        return va.startswith(vb) or vb.startswith(va)
    if ka == "exact" and kb == "regex":
        try:
            return re.fullmatch(vb, va) is not None
        except re.error:
            return True
    return True


def _values_agree(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], fold: bool) -> bool:
    """False when one condition of ``a`` and one of ``b`` on the same name cannot both hold."""
    for x in a:
        for y in b:
            same = x["name"].lower() == y["name"].lower() if fold else x["name"] == y["name"]
            if not same or x.get("regex") or y.get("regex") or not x.get("value") or not y.get("value"):
                continue
            if bool(x.get("invertMatch")) == bool(y.get("invertMatch")):
                if not x.get("invertMatch") and x["value"] != y["value"]:
                    return False
            elif x["value"] == y["value"]:
                return False
    return True
