"""Which route serves a request, the Gateway API way: the order of matches, and the
hostnames a route serves on a listener.

Matches are not tried in list order: every match that fits a request is ranked and
the best wins. ``precedence`` is that ranking as a sort key (smaller wins): an Exact
path, then the longest PathPrefix (a RegularExpression path sits between the two, an
implementation's choice), then a method match, the most header matches, the most
query parameter matches, then the oldest route, then namespace/name, then rule order.
``coalmine convert`` uses the same function, so it cannot disagree with the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_PATH_RANK = {"Exact": 0, "RegularExpression": 1, "PathPrefix": 2}


def precedence(match: Mapping[str, Any], route: Mapping[str, Any], rule: int, index: int = 0) -> tuple[Any, ...]:
    """The sort key of one match: smaller wins. See the module doc for the order."""
    path = match.get("path") or {}
    kind, value = path.get("type", "PathPrefix"), path.get("value", "/")
    length = len(value.rstrip("/")) if kind == "PathPrefix" else len(value)
    meta = route.get("metadata") or {}
    return (
        _PATH_RANK.get(kind, 3),
        -length,
        0 if match.get("method") else 1,
        -len({h["name"].lower() for h in match.get("headers") or []}),
        -len({q["name"] for q in match.get("queryParams") or []}),
        str(meta.get("creationTimestamp") or ""),
        f"{meta.get('namespace', 'default')}/{meta.get('name')}",
        rule,
        index,
    )


def intersect(listener: str | None, route: list[str]) -> list[str]:
    """The hostnames a route serves on a listener: each route hostname that matches
    the listener's (the more specific of the two), or the listener's own ("*" if none)."""
    if not route:
        return [listener or "*"]
    if not listener:
        return list(dict.fromkeys(route))
    found = []
    for h in route:
        if hostname_covers(listener, h):
            found.append(h)
        elif hostname_covers(h, listener):
            found.append(listener)
    return list(dict.fromkeys(found))


def hostname_covers(pattern: str | None, host: str) -> bool:
    """Whether a listener or route hostname ``pattern`` covers ``host``: no pattern
    covers everything, "*.example.com" covers "a.example.com", "a.b.example.com" and
    "*.a.example.com", but not "example.com"."""
    if pattern is None:
        return True
    return pattern == host or (pattern.startswith("*.") and host.endswith(pattern[1:]))


def hostname_rank(hostname: str | None) -> tuple[int, int]:
    """How specific a listener hostname is (smaller is more specific): an exact name,
    then wildcards, the longest first, then no hostname at all."""
    if hostname is None:
        return (2, 0)
    if hostname.startswith("*"):
        return (1, -len(hostname))
    return (0, 0)
