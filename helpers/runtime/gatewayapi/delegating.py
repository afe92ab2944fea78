"""kgateway route delegation: a parent HTTPRoute hands a path prefix to child HTTPRoutes.

A parent rule delegates when a backendRef names HTTPRoutes instead of a Service:

- ``group: gateway.networking.k8s.io, kind: HTTPRoute``: by ``name`` (``"*"`` or empty:
  every HTTPRoute) in ``namespace`` (the parent's when unset);
- ``group: delegation.kgateway.dev, kind: label``: every HTTPRoute labelled
  ``delegation.kgateway.dev/label: <name>`` in ``namespace`` (``all``: any namespace).

``Delegation.flatten`` turns a route attached to a Gateway into the list of matches it
serves, children's included, as kgateway 2.x does (``internal/kgateway/query/httproute.go``
and ``translator/httproute/delegation*.go``):

- a child that sets ``parentRefs`` is picked only by the HTTPRoute they name
  (``kind: HTTPRoute`` written out); a child with none, by every parent that selects it;
- a child match is kept only under the parent's match: the parent's path is a
  ``PathPrefix`` that starts the child's path (as text), and the child repeats the
  parent's headers, query parameters and method (more are allowed). Other matches and
  rules are dropped without a condition; a child with the annotation
  ``delegation.kgateway.dev/inherit-parent-matcher: "true"`` instead gets the parent's
  match joined to its own;
- a child may delegate again (grandchildren); a route met twice on one chain is a
  cycle: the delegating match answers 500 and ResolvedRefs is False (RefNotPermitted);
- no child found answers 500 too (ResolvedRefs False, BackendNotFound); children found
  but no match under the prefix leaves it unrouted (404);
- a child that sets ``hostnames`` is refused (Accepted False, UnsupportedValue): it
  serves the parent's hostnames;
- a child rule without timeouts, retry or a filter type takes the delegating rule's
  (child wins), as Gateway API policies are inherited along the chain;
- a backendRef's ``weight`` means nothing on a delegating ref, and Service refs beside
  one are not served: kgateway serves only the children there.

Each child gets a ``status.parents`` entry for each parent HTTPRoute that delegated to it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.kinds import GATEWAY_NETWORKING_GROUP
from helpers.runtime.gatewayapi.actions import mirror_refs

ResourceKey = tuple[str, str, str]  # (kind, namespace, name)
Problem = tuple[str, str]  # (condition reason, message)

LABEL_GROUP = "delegation.kgateway.dev"
DELEGATION_LABEL = "delegation.kgateway.dev/label"
WILDCARD_NAMESPACE = "all"
INHERIT_MATCHER = "delegation.kgateway.dev/inherit-parent-matcher"
REPLACED = "invalid route configuration detected and replaced with a direct response.\n"
_INHERITED = ("timeouts", "retry")


def is_delegation(ref: Mapping[str, Any]) -> bool:
    """Whether a backendRef delegates to HTTPRoutes (by name or by label)."""
    group, kind = ref.get("group", ""), ref.get("kind", "Service")
    return (group, kind) in ((GATEWAY_NETWORKING_GROUP, "HTTPRoute"), (LABEL_GROUP, "label"))


@dataclass(frozen=True)
class Served:
    """One match the flattened tree serves: ``owner``'s rule, with the match and the
    policies in force; ``replaced`` (a reason) when kgateway answers it with 500."""

    owner: ResourceKey
    rule_index: int
    match_index: int
    match: Mapping[str, Any]
    rule: Mapping[str, Any]
    via: ResourceKey | None = None
    replaced: str | None = None


@dataclass
class Report:
    """What kgateway reports for one (route, parent) pair."""

    refused: str | None = None  # Accepted False, UnsupportedValue
    problems: list[Problem] = field(default_factory=list)  # ResolvedRefs False


@dataclass
class Flattened:
    served: list[Served] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # (child, parent HTTPRoute) → report; only children some parent rule picked
    reports: dict[tuple[ResourceKey, ResourceKey], Report] = field(default_factory=dict)


class Delegation:
    """Route delegation over the applied HTTPRoutes; ``problem`` says what is wrong
    with a Service backendRef of a route in a namespace (None: nothing)."""

    def __init__(
        self,
        routes: Mapping[ResourceKey, Mapping[str, Any]],
        problem: Callable[[str, Mapping[str, Any]], Problem | None],
        warn: Callable[[ResourceKey, str], None],
    ) -> None:
        self.routes = {k: r for k, r in routes.items() if k[0] == "HTTPRoute"}
        self.problem, self.warn = problem, warn

    def flatten(self, k: ResourceKey, route: Mapping[str, Any]) -> Flattened:
        """The matches ``route`` serves (in kgateway's order) and the problems of its refs."""
        out = Flattened()
        rules = [
            (i, rule, list(enumerate(rule.get("matches") or [{}])))
            for i, rule in enumerate(route["spec"].get("rules") or [{}])
        ]
        out.problems = self._walk(k, rules, {}, (k,), None, out)
        return out

    def _walk(
        self,
        k: ResourceKey,
        rules: list[tuple[int, Mapping[str, Any], list[tuple[int, Mapping[str, Any]]]]],
        inherited: Mapping[str, Any],
        chain: tuple[ResourceKey, ...],
        via: ResourceKey | None,
        out: Flattened,
    ) -> list[Problem]:
        problems: list[Problem] = []
        for i, raw, matches in rules:
            rule = inherit(inherited, raw)
            refs = raw.get("backendRefs") or []
            delegating = [ref for ref in refs if is_delegation(ref)]
            for j, ref in enumerate(refs):
                found = None if is_delegation(ref) else self.problem(k[1], ref)
                if found is not None:
                    problems.append((found[0], f"rules[{i}].backendRefs[{j}]: {found[1]}"))
                elif delegating and not is_delegation(ref):
                    self.warn(k, f"rules[{i}].backendRefs[{j}]: beside a delegation, a Service is not served")
            for where, mirror in mirror_refs(raw):
                found = self.problem(k[1], mirror)
                if found is not None:
                    problems.append((found[0], f"rules[{i}].{where}: {found[1]}; no copies are sent"))
            if not delegating:
                out.served.extend(Served(k, i, j, with_defaults(m), rule, via) for j, m in matches)
                continue
            for j, match in matches:
                match = with_defaults(match)
                if match["path"]["type"] != "PathPrefix":
                    self.warn(k, f"rules[{i}].matches[{j}]: a delegating match must be a PathPrefix; nothing served")
                errors = [self._delegate(k, i, match, rule, ref, chain, out) for ref in delegating]
                failed = [e for e in errors if e is not None]
                problems += [(reason, f"rules[{i}]: {message}") for reason, message in failed]
                if failed:
                    out.served.append(Served(k, i, j, match, rule, via, failed[0][1]))
        return problems

    def _delegate(
        self,
        k: ResourceKey,
        i: int,
        match: Mapping[str, Any],
        rule: Mapping[str, Any],
        ref: Mapping[str, Any],
        chain: tuple[ResourceKey, ...],
        out: Flattened,
    ) -> Problem | None:
        """Serve one delegating ref of ``k`` for one match; the problem, if it fails."""
        children = self.select(k, ref)
        for child in children:
            if child in chain:
                return (
                    "RefNotPermitted",
                    f"ignoring child route {child[1]}/{child[2]} for parent {k[1]}/{k[2]}: cyclic reference "
                    "detected while evaluating delegated routes",
                )
        if not children:
            return "BackendNotFound", f"unresolved reference {describe(ref, k[1])}"
        kept = 0
        for child in children:
            route = self.routes[child]
            rules = under(match, route)
            if not rules:
                continue
            kept += 1
            report = out.reports.setdefault((child, k), Report())
            if route["spec"].get("hostnames"):
                report.refused = (
                    "spec.hostnames must be unset on a delegatee route as they are inherited from the parent route"
                )
                self.warn(child, f"delegated by {k[1]}/{k[2]}: {report.refused}; not served")
                continue
            report.problems += self._walk(child, rules, rule, (*chain, child), k, out)
        if not kept:
            self.warn(
                k,
                f"rules[{i}]: no match of the HTTPRoutes {describe(ref, k[1])} lies under "
                f"{match['path']['value']} (with the parent's headers, query parameters and method); "
                "requests there get 404",
            )
        return None

    def select(self, k: ResourceKey, ref: Mapping[str, Any]) -> list[ResourceKey]:
        """The HTTPRoutes ``ref`` (a delegating backendRef of ``k``) picks, by namespace/name."""
        ns, name = ref.get("namespace") or k[1], ref.get("name") or ""
        if ref.get("kind") == "label":
            found = [
                c
                for c, r in self.routes.items()
                if (ns == WILDCARD_NAMESPACE or c[1] == ns)
                and ((r.get("metadata") or {}).get("labels") or {}).get(DELEGATION_LABEL) == name
            ]
        elif name in ("", "*"):
            found = [c for c in self.routes if c[1] == ns]
        else:
            found = [c for c in (("HTTPRoute", ns, name),) if c in self.routes]
        return sorted(c for c in found if attaches(self.routes[c], c[1], k))


def describe(ref: Mapping[str, Any], ns: str) -> str:
    where = ref.get("namespace") or ns
    if ref.get("kind") == "label":
        scope = "any namespace" if where == WILDCARD_NAMESPACE else f"namespace {where}"
        return f'labelled {DELEGATION_LABEL}: "{ref.get("name")}" in {scope}'
    return f"{where}/{ref.get('name') or '*'}"


def attaches(child: Mapping[str, Any], ns: str, parent: ResourceKey) -> bool:
    """A child with parentRefs may be picked only by an HTTPRoute they name."""
    refs = child["spec"].get("parentRefs") or []
    return not refs or any(
        r.get("group", GATEWAY_NETWORKING_GROUP) == GATEWAY_NETWORKING_GROUP
        and r.get("kind") == "HTTPRoute"
        and r.get("name") == parent[2]
        and (r.get("namespace") or ns) == parent[1]
        for r in refs
    )


def with_defaults(match: Mapping[str, Any]) -> dict[str, Any]:
    """A match as the API server stores it: path PathPrefix "/", header/query type Exact."""
    path = match.get("path") or {}
    done: dict[str, Any] = {
        **match,
        "path": {"type": path.get("type", "PathPrefix"), "value": path.get("value", "/")},
    }
    for name in ("headers", "queryParams"):
        if match.get(name):
            done[name] = [{"type": "Exact", **h} for h in match[name]]
    return done


def under(parent: Mapping[str, Any], child: Mapping[str, Any]) -> list[tuple[int, Mapping[str, Any], list[Any]]]:
    """The child's rules and matches kept under one parent match (see the module doc)."""
    annotations = (child.get("metadata") or {}).get("annotations") or {}
    merge = str(annotations.get(INHERIT_MATCHER, "")).lower() in ("true", "yes", "enabled")
    kept = []
    for i, rule in enumerate(child["spec"].get("rules") or [{}]):
        matches = [(j, with_defaults(m)) for j, m in enumerate(rule.get("matches") or [{}])]
        valid = (
            [(j, joined(parent, m)) for j, m in matches] if merge else [(j, m) for j, m in matches if fits(parent, m)]
        )
        if valid:
            kept.append((i, rule, valid))
    return kept


def fits(parent: Mapping[str, Any], child: Mapping[str, Any]) -> bool:
    if parent["path"]["type"] != "PathPrefix" or not child["path"]["value"].startswith(parent["path"]["value"]):
        return False
    for name in ("headers", "queryParams"):
        if any(p not in (child.get(name) or []) for p in parent.get(name) or []):
            return False
    return not parent.get("method") or parent["method"] == child.get("method")


def joined(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """The child match with the parent's joined in (inherit-parent-matcher): the paths
    joined and cleaned, the parent's headers and query parameters winning on a name."""
    parts = [p for p in (parent["path"]["value"], child["path"]["value"]) if p]
    path = posixpath.normpath("/".join(parts)) if parts else "/"
    path = "/" + path.lstrip("/")
    done = {**child, "path": {"type": child["path"]["type"], "value": path}}
    for name in ("headers", "queryParams"):
        both = {h["name"]: h for h in child.get(name) or []} | {h["name"]: h for h in parent.get(name) or []}
        if both:
            done[name] = [both[n] for n in sorted(both)]
    if parent.get("method"):
        done["method"] = parent["method"]
    return done


def inherit(parent: Mapping[str, Any], rule: Mapping[str, Any]) -> Mapping[str, Any]:
    """``rule`` with the delegating rule's timeouts, retry and filter types it lacks."""
    if not parent:
        return rule
    done = dict(rule)
    for name in _INHERITED:
        if name not in done and name in parent:
            done[name] = parent[name]
    own = {f.get("type") for f in rule.get("filters") or []}
    extra = [f for f in parent.get("filters") or [] if f.get("type") not in own]
    if extra:
        done["filters"] = [*(rule.get("filters") or []), *extra]
    return done
