"""Gateway API route precedence, and where it differs from first-match-wins.

The Gateway API does not try rules in list order: among the rules whose matches fit a
request, the most specific wins (an exact path, then the longest prefix, then a method
match, then the most header matches, then the most query matches). A VirtualService
tries its routes in order and the first match wins. ``ordering_changes`` finds the
pairs of rules whose winner differs between the two.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any


def precedence(match: Mapping[str, Any]) -> tuple[int, int, int, int, int]:
    """How an HTTPRouteMatch ranks (higher wins): exact path, prefix length, method,
    header matches, query matches. Ties go to the older route, then the name, then
    the rule order."""
    path = match.get("path") or {}
    exact = path.get("type") == "Exact"
    prefix = len(str(path.get("value", ""))) if path.get("type") == "PathPrefix" else 0
    return (int(exact), prefix, int("method" in match), len(match.get("headers") or []),
            len(match.get("queryParams") or []))


CRITERIA = ("an exact path beats a prefix", "a longer prefix wins", "a match on the method wins",
             "more header matches win", "more query parameter matches win")


def ordering_changes(rules: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Mapping[str, Any], str]]:
    """``(later, earlier, why)`` for each pair of HTTPRoute rules, in list order, where
    the later rule would win requests the earlier one wins when the first match wins
    (as in a VirtualService); ``why`` names the Gateway API precedence rule."""
    changes = []
    for i, first in enumerate(rules):
        for later in rules[i + 1:]:
            for a in first.get("matches") or [{}]:
                b = next((b for b in later.get("matches") or [{}] if overlap(a, b) and precedence(b) > precedence(a)),
                         None)
                if b is not None:
                    pa, pb = precedence(a), precedence(b)
                    changes.append((later, first, CRITERIA[next(k for k in range(5) if pb[k] != pa[k])]))
                    break
    return changes


def overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether some request could match both (erring towards yes)."""
    if "method" in a and "method" in b and a["method"] != b["method"]:
        return False
    for one, other in ((a, b), (b, a)):
        exact = {h["name"].lower(): h["value"] for h in one.get("headers") or [] if h.get("type") != "RegularExpression"}
        for h in other.get("headers") or []:
            name = h["name"].lower()
            if name in exact and h.get("type") != "RegularExpression" and h["value"] != exact[name]:
                return False
    pa, pb = a.get("path") or {}, b.get("path") or {}
    return _pathsoverlap(pa, pb)


def _pathsoverlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    ta, tb, va, vb = a.get("type"), b.get("type"), str(a.get("value", "/")), str(b.get("value", "/"))
    if "RegularExpression" in (ta, tb):
        other, regex = (b, va) if ta == "RegularExpression" else (a, vb)
        if other.get("type") == "Exact":
            try:
                return re.fullmatch(regex, str(other.get("value"))) is not None
            except re.error:
                return True
        return True
    if ta == tb == "Exact":
        return va == vb
    if ta == "Exact":
        return _under(vb, va)
    if tb == "Exact":
        return _under(va, vb)
    return _under(va, vb) or _under(vb, va)


def _under(prefix: str, path: str) -> bool:
    """Whether PathPrefix ``prefix`` matches ``path`` (whole segments)."""
    prefix = prefix.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")
