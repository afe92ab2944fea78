"""Delegation: a route's ``delegateAction`` replaced by the routes of its RouteTables.

Gloo's rules (``converter.go`` in Gloo 1.22's gateway translator), kept here:

- the delegating route has at most one matcher, and it is a ``prefix`` (none, or
  one without a path, means ``/``); otherwise an error on the resource that wrote it;
- every child matcher's path must start with that prefix, with the same
  ``caseSensitive``, and carry the parent's headers, query parameters and methods:
  a child route that does not is left out, with a warning (on the RouteTable and
  its VirtualService; Gloo keeps the rest of the virtual host serving);
- ``inheritablePathMatchers`` gives the child the parent's path, and
  ``inheritableMatchers`` prepends the parent's headers, query parameters and
  methods; unset, a child inherits its parent route's setting (a VirtualService's
  routes default to false). Route ``options`` set on the parent fill what the child
  leaves unset;
- a missing table, a selector that picks none, or a bad selector: a warning on the
  parent, and the route serves nothing; a table met again on the same branch is a
  delegation cycle: an error on that table and on the VirtualService (Rejected);
- the tables a route picks are visited by ascending ``spec.weight`` (default 0);
  the routes of several tables with the same weight are sorted by path (exact
  before regex before prefix, longer paths first), without a warning, as Gloo 1.22
  does. ``weight`` only ORDERS tables: it never splits traffic; a split is a
  ``routeAction.multi`` with weighted destinations.

Errors and warnings about a RouteTable are also reported on the VirtualService at
the top of the tree, as ``on sub route table <namespace>.<name>: ...``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from helpers.runtime.gloo.selectors import SelectorProblem, select, target_ref
from helpers.runtime.gloo.status import Report

ResourceKey = tuple[str, str, str]
Tables = Sequence[tuple[ResourceKey, Mapping[str, Any]]]
_PATHS = ("prefix", "exact", "regex", "connectMatcher")


@dataclass(frozen=True)
class Flat:
    """One served route: a Gloo route with a plain action and its final matchers."""

    route: dict[str, Any]
    path: str  # where its owner wrote it, e.g. ``spec.routes[0]``
    owner: ResourceKey  # the VirtualService or RouteTable that wrote it
    source: str


@dataclass(frozen=True)
class _Parent:
    matcher: Mapping[str, Any]  # the delegating route's one prefix matcher
    options: Mapping[str, Any] | None
    inheritable: bool
    inheritable_path: bool


class Delegation:
    """Flattens one VirtualService's routes, reporting on ``reports`` as Gloo does."""

    def __init__(self, top: ResourceKey, tables: Tables, reports: dict[ResourceKey, Report]) -> None:
        self.top, self.tables, self.reports = top, sorted(tables), reports

    def routes(self, vs: Mapping[str, Any]) -> list[Flat]:
        """Every route the VirtualService ``vs`` serves, delegation resolved, in order."""
        routes = (vs["spec"].get("virtualHost") or {}).get("routes") or []
        return self._visit(self.top, routes, "spec.virtualHost.routes", None, ())

    def report(self, k: ResourceKey, message: str, error: bool) -> None:
        """An error or warning on ``k``, and on the VirtualService too when ``k`` is a table."""
        for where, text in ((k, message), (self.top, f"on sub route table {k[1]}.{k[2]}: {message}")):
            bucket = self.reports[where].errors if error else self.reports[where].warnings
            if text not in bucket:
                bucket.append(text)
            if k == self.top:
                break

    def _visit(
        self, k: ResourceKey, routes: list[Any], at: str, parent: _Parent | None, visited: tuple[ResourceKey, ...]
    ) -> list[Flat]:
        out: list[Flat] = []
        for i, original in enumerate(routes):
            path, route = f"{at}[{i}]", copy.deepcopy(dict(original))
            if parent is not None:
                problem = _merge(route, parent)
                if problem:
                    self.report(k, f"{path}.matchers: invalid route: {problem}", error=False)
                    continue
            if route.get("delegateAction") is None:
                source = f"{k[1]}/{k[2]} routes[{i}]" if k == self.top else f"rt:{k[1]}/{k[2]} routes[{i}]"
                out.append(Flat(route, path, k, source))
                continue
            matcher, problem = _delegate_matcher(route.get("matchers") or [])
            if problem:
                self.report(k, f"{path}.matchers: invalid route: {problem}", error=True)
                continue
            try:
                picked = self._pick(route["delegateAction"], k[1])
            except SelectorProblem as e:
                self.report(k, f"{path}.delegateAction: {e}", error=False)
                continue
            here = _Parent(
                matcher,
                route.get("options"),
                bool(route.get("inheritableMatchers")),
                bool(route.get("inheritablePathMatchers")),
            )
            out += self._children(picked, here, visited)
        return out

    def _pick(self, delegate: Mapping[str, Any], namespace: str) -> Tables:
        ref = target_ref(delegate)
        if ref is not None:
            found = [(k, t) for k, t in self.tables if (k[1], k[2]) == ref]
            if not found:
                hint = (
                    " (the ref has no name: add the RouteTable's)"
                    if not ref[1]
                    else " (the ref has no namespace, and Gloo does not default it: add one)"
                    if not ref[0]
                    else ""
                )
                raise SelectorProblem(f"route table {ref[0]}.{ref[1]} missing{hint}")
            return found
        if delegate.get("selector") is None:
            raise SelectorProblem(
                "cannot determine delegation target: you must specify a route table either via a "
                "resource reference or a selector"
            )
        found = select(delegate["selector"], self.tables, namespace)
        if not found:
            raise SelectorProblem("no route table matches the given selector")
        return found

    def _children(self, picked: Tables, parent: _Parent, visited: tuple[ResourceKey, ...]) -> list[Flat]:
        by_weight: dict[int, list[tuple[ResourceKey, Mapping[str, Any]]]] = {}
        for k, table in picked:
            weight = (table.get("spec") or {}).get("weight")
            by_weight.setdefault(weight if isinstance(weight, int) else 0, []).append((k, table))
        out: list[Flat] = []
        for weight in sorted(by_weight):
            group: list[Flat] = []
            for k, table in by_weight[weight]:
                if k in visited:
                    chain = " -> ".join(f"[{v[1]}.{v[2]}]" for v in (*visited, k))
                    self.report(k, f"invalid route: delegation cycle detected: {chain}", error=True)
                    continue
                if self.reports[k].errors:  # refused by its schema: nothing in it can be trusted
                    self.report(k, "is Rejected (see its status); its routes are not served", error=True)
                    continue
                routes = (table.get("spec") or {}).get("routes") or []
                group += self._visit(k, routes, "spec.routes", parent, (*visited, k))
            if len(by_weight[weight]) > 1:
                group.sort(key=functools.cmp_to_key(_by_path))
            out += group
        return out


# ── one route against its parent ─────────────────────────────────────────────


def _delegate_matcher(matchers: list[Any]) -> tuple[Mapping[str, Any], str | None]:
    if not matchers:
        return {"prefix": "/"}, None
    if len(matchers) > 1:
        return {}, "routes with delegate actions must omit or specify a single matcher"
    m = matchers[0]
    if not any(m.get(p) is not None for p in _PATHS):
        return {"prefix": "/"}, None  # as Gloo: no path means "/", and the rest is dropped
    if not m.get("prefix"):
        return {}, "routes with delegate actions must use a prefix matcher"
    return m, None


def _merge(child: dict[str, Any], parent: _Parent) -> str | None:
    """Apply the parent's inheritance to ``child`` in place; the problem if it does not fit."""
    for name, inherited in (
        ("inheritablePathMatchers", parent.inheritable_path),
        ("inheritableMatchers", parent.inheritable),
    ):
        if child.get(name) is None:
            child[name] = inherited
    matchers = [dict(m) for m in child.get("matchers") or []]
    if child["inheritablePathMatchers"]:
        path = {"prefix": parent.matcher["prefix"]}
        if parent.matcher.get("caseSensitive") is not None:
            path["caseSensitive"] = parent.matcher["caseSensitive"]
        for m in matchers:
            for name in (*_PATHS, "caseSensitive"):
                m.pop(name, None)
            m.update(path)
        matchers = matchers or [dict(path)]
    matchers = matchers or [{"prefix": "/"}]
    if child["inheritableMatchers"]:
        for m in matchers:
            for name in ("headers", "queryParameters", "methods"):
                joined = list(parent.matcher.get(name) or []) + list(m.get(name) or [])
                if joined:
                    m[name] = joined
    child["matchers"] = matchers
    problem = next((p for p in (_fits(parent.matcher, m) for m in matchers) if p), None)
    if problem is None:
        child["options"] = _merge_options(child.get("options"), parent.options)
    return problem


def _path_of(m: Mapping[str, Any]) -> str:
    return str(next((m[p] for p in ("prefix", "exact", "regex") if m.get(p) is not None), ""))


def _fits(parent: Mapping[str, Any], child: Mapping[str, Any]) -> str | None:
    required, path = parent["prefix"], _path_of(child)
    if not path.startswith(required):
        return (
            "route table matchers must begin with the prefix of their parent route's matcher "
            f"(required prefix: {required}, prefix: {path or 'none'})"
        )
    if child.get("caseSensitive") != parent.get("caseSensitive"):
        return (
            "route table matchers must have the same case sensitivity of their parent route's matcher "
            f"(required caseSensitive: {parent.get('caseSensitive')}, caseSensitive: {child.get('caseSensitive')})"
        )
    for field, what in (("headers", "headers"), ("queryParameters", "query params")):
        mine = {h.get("name"): _plain(h) for h in child.get(field) or []}
        if any(mine.get(h.get("name")) != _plain(h) for h in parent.get(field) or []):
            return (
                f"route table matchers must have all {what} that were specified on their parent route's matcher "
                f"(add {field} {parent.get(field)} to the child, or set inheritableMatchers: true)"
            )
    missing = set(parent.get("methods") or []) - set(child.get("methods") or [])
    if missing:
        return (
            "route table matchers must have all methods that were specified on their parent route's matcher "
            f"(missing: {', '.join(sorted(missing))})"
        )
    return None


def _plain(h: Mapping[str, Any]) -> tuple[Any, ...]:
    # Compared as protobuf does: an unset field equals its default.
    return (h.get("name"), h.get("value") or "", bool(h.get("regex")), bool(h.get("invertMatch")))


def _merge_options(child: Any, parent: Any) -> Any:
    # Gloo's shallow merge: the child's set fields stay, the parent's fill the others.
    if not parent:
        return child
    merged = dict(child or {})
    for name, value in parent.items():
        if merged.get(name) in (None, "", [], {}, False, 0):
            merged[name] = value
    return merged


# ── Gloo's SortRoutesByPath, for the routes of same-weight tables ────────────


def _smallest(route: Mapping[str, Any]) -> Mapping[str, Any]:
    matchers: list[Mapping[str, Any]] = route.get("matchers") or [{"prefix": "/"}]
    smallest = matchers[0]
    for m in matchers:
        if _less(m, smallest):
            smallest = m
    return smallest


def _rank(m: Mapping[str, Any]) -> int:
    return next((i for i, p in enumerate(("exact", "regex", "prefix"), 1) if m.get(p) is not None), 0)


def _less(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    methods_a, methods_b = len(a.get("methods") or []), len(b.get("methods") or [])
    if methods_a != methods_b:
        return methods_a > methods_b
    if _rank(a) != _rank(b):
        return _rank(a) < _rank(b)
    return _path_of(a) > _path_of(b)


def _by_path(x: Flat, y: Flat) -> int:
    a, b = _smallest(x.route), _smallest(y.route)
    return -1 if _less(a, b) else 1 if _less(b, a) else 0
