"""Matching a request: what the matchers look at and how each kind of matcher decides.

Part of the route table's data (``routes``): immutable and free of I/O, so matching
is tested without sockets. Routes hold ``Matcher`` values; the proxy builds one
``RequestView`` per request and asks each route's matchers in turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from helpers.runtime.regex import Pattern

# ── requests as the matcher sees them ────────────────────────────────────────


@dataclass(slots=True)
class RequestView:
    """What routing looks at: method, host, path (no query), query and headers.

    ``headers`` maps lower-case names to values (repeated headers joined by ``,``,
    as Envoy does). Pseudo-headers ``:method``, ``:path`` and ``:authority`` are
    answered from the request line, so header matchers may name them.
    """

    method: str
    host: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]

    def header(self, name: str) -> str | None:
        if name.startswith(":"):
            return {":method": self.method, ":path": self.path, ":authority": self.host}.get(name)
        return self.headers.get(name)


# ── matchers ─────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class PathMatcher:
    """``prefix``, ``exact`` or ``regex`` (a regex must match the whole path), or
    ``path_prefix``: the Gateway API's PathPrefix, which matches whole path
    segments (``/abc`` matches ``/abc``, ``/abc/`` and ``/abc/def``, not ``/abcd``;
    a trailing ``/`` in the value is ignored)."""

    kind: str
    value: str
    case_sensitive: bool = True
    pattern: Pattern | None = None

    def matches(self, path: str) -> bool:
        if self.kind == "regex":
            assert self.pattern is not None
            return self.pattern.fullmatch(path) is not None
        value = self.value
        if not self.case_sensitive:
            path, value = path.lower(), value.lower()
        if self.kind == "exact":
            return path == value
        if self.kind == "path_prefix":
            value = value.rstrip("/")
            return path == value or path.startswith(value + "/") or not value
        return path.startswith(value)


@dataclass(frozen=True, slots=True)
class HeaderMatcher:
    """A header must be present (``value`` None), equal ``value``, or fully match
    ``pattern``; ``invert`` flips the outcome (so an absent header matches)."""

    name: str
    value: str | None = None
    pattern: Pattern | None = None
    invert: bool = False

    def matches(self, request: RequestView) -> bool:
        actual = request.header(self.name)
        if actual is None:
            found = False
        elif self.pattern is not None:
            found = self.pattern.fullmatch(actual) is not None
        elif self.value is not None:
            found = actual == self.value
        else:
            found = True
        return found != self.invert


@dataclass(frozen=True, slots=True)
class QueryMatcher:
    """A query parameter must be present, equal ``value``, or fully match ``pattern``."""

    name: str
    value: str | None = None
    pattern: Pattern | None = None

    def matches(self, request: RequestView) -> bool:
        actual = request.query.get(self.name)
        if actual is None:
            return False
        if self.pattern is not None:
            return self.pattern.fullmatch(actual) is not None
        return self.value is None or actual == self.value


@dataclass(frozen=True, slots=True)
class Matcher:
    """One Gloo matcher: path AND every header AND every query parameter AND method."""

    path: PathMatcher = PathMatcher("prefix", "/")
    headers: tuple[HeaderMatcher, ...] = ()
    query: tuple[QueryMatcher, ...] = ()
    methods: frozenset[str] = frozenset()

    def matches(self, request: RequestView) -> bool:
        if self.methods and request.method not in self.methods:
            return False
        if not self.path.matches(request.path):
            return False
        return all(h.matches(request) for h in self.headers) and all(q.matches(request) for q in self.query)
