"""The Gateway API translator: Gateways + HTTPRoutes → one ``routes.RouteTable`` per listener.

    GatewayClass (controllerName kgateway.dev/kgateway) ─► which Gateways are ours
    Gateway ─► listeners (one gateway proxy each, on its own loopback port)
    HTTPRoute ─► attached to listeners by parentRefs, allowedRoutes and hostnames
              ─► VirtualHost per hostname ─► Route per (rule, match), SORTED by the
                 Gateway API's precedence, so that "first match wins" in the table
                 picks what the specification says
    Service (+ ready endpoints) ─► Cluster ``kube-svc:<namespace>-<name>-<port>``

Precedence (``precedence`` module), from ``HTTPRouteRule.Matches`` in the specification:
Exact path, then the longest PathPrefix, then a method match, then the most header
matches, then the most query matches, then the oldest route, then
``namespace/name``, then rule order. RegularExpression paths are
implementation-specific: here they rank after Exact and before PathPrefix (longer
patterns first), as in Envoy-based gateways such as kgateway.

A rule whose backendRef names HTTPRoutes delegates to them (``delegating``): the
children's matches under the parent's prefix join the parent's table.

Like the Gloo translator, it never fails as a whole: problems become status
conditions on ``status.parents[]`` (Accepted, ResolvedRefs with reasons such as
BackendNotFound), and a backendRef that does not resolve is answered with 500.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from helpers.kinds import GATEWAY_NETWORKING_GROUP, key
from helpers.runtime.gatewayapi.actions import Backends, rule_action
from helpers.runtime.gatewayapi.certificates import resolve
from helpers.runtime.gatewayapi.delegating import REPLACED, Delegation, Report, Served
from helpers.runtime.gatewayapi.grants import Grants
from helpers.runtime.gatewayapi.listeners import (
    ListenerState,
    PortKey,
    PortTable,
    listener_state,
    mark_conflicts,
    merge,
    namespace_allowed,
)
from helpers.runtime.gatewayapi.parts import matcher
from helpers.runtime.gatewayapi.precedence import intersect, precedence
from helpers.runtime.gatewayapi.schema import CONTROLLER
from helpers.runtime.gatewayapi.status import Condition, delegated_status, gateway_status, parent_status, resolved
from helpers.runtime.regex import RegexError
from helpers.runtime.routes import Action, DirectResponse, Endpoint, Route, RouteTable, VirtualHost

__all__ = ["GatewayTranslation", "ListenerKey", "PortKey", "PortTable", "intersect", "precedence", "translate"]

ListenerKey = tuple[str, str, str]  # (namespace, gateway, listener name)
ResourceKey = tuple[str, str, str]  # (kind, namespace, name)
_GROUP = GATEWAY_NETWORKING_GROUP
_UNATTACHED = "spec.parentRefs is empty"


@dataclass
class GatewayTranslation:
    """What one translation gives: a table per served listener, what each served port
    of a Gateway serves (its listeners' tables merged), and per resource its
    ``status`` and the warnings ``apply`` shows."""

    listeners: dict[ListenerKey, RouteTable] = field(default_factory=dict)
    ports: dict[PortKey, PortTable] = field(default_factory=dict)
    statuses: dict[ResourceKey, dict[str, Any]] = field(default_factory=dict)
    warnings: dict[ResourceKey, list[str]] = field(default_factory=dict)


def translate(
    resources: Iterable[Mapping[str, Any]],
    endpoints: Mapping[tuple[str, str, int], Sequence[Endpoint]],
    namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
    version: int = 0,
) -> GatewayTranslation:
    """Translate the applied Gateway API objects (and the Services they reference).

    ``endpoints`` maps ``(namespace, service, port)`` to ready endpoints;
    ``namespace_labels`` gives each namespace's labels (for ``from: Selector``).
    """
    return _Translation(list(resources), endpoints, namespace_labels or {}).run(version)


class _Translation:
    def __init__(
        self,
        objects: list[Mapping[str, Any]],
        endpoints: Mapping[tuple[str, str, int], Sequence[Endpoint]],
        labels: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.objects = {key(o): o for o in objects if isinstance(o, Mapping)}
        self.labels = labels
        self.grants = Grants(self.objects.values())
        self.backends = Backends(self.objects, endpoints, self.grants)
        self.out = GatewayTranslation()
        # (listener key) → hostname → [(precedence, Route)], for served listeners only
        self.hosts: dict[ListenerKey, dict[str, list[tuple[tuple[Any, ...], Route]]]] = {}
        self.states: dict[ListenerKey, ListenerState] = {}
        self.delegation = Delegation(self.objects, self.backends.problem, self.warn)
        self.reports: dict[tuple[ResourceKey, ResourceKey], Report] = {}

    def of_kind(self, kind: str) -> list[tuple[ResourceKey, Mapping[str, Any]]]:
        return sorted((k, o) for k, o in self.objects.items() if k[0] == kind)

    def warn(self, k: ResourceKey, message: str) -> None:
        self.out.warnings.setdefault(k, []).append(message)

    def run(self, version: int) -> GatewayTranslation:
        ours = {
            k[2] for k, gc in self.of_kind("GatewayClass") if (gc.get("spec") or {}).get("controllerName") == CONTROLLER
        }
        for k, gc in self.of_kind("GatewayClass"):
            if k[2] in ours:
                self.out.statuses[k] = {
                    "conditions": [
                        Condition("Accepted", "True", "Accepted", "handled by the local runtime").to_dict(gc)
                    ]
                }
        gateways = {}
        for k, gw in self.of_kind("Gateway"):
            if gw["spec"].get("gatewayClassName") in ours:
                gateways[k] = gw
                self.add_listeners(k, gw)
            else:
                self.out.statuses[k] = {
                    "conditions": [Condition("Accepted", "Unknown", "Pending", "Waiting for controller").to_dict(gw)]
                }
                self.warn(
                    k,
                    f'spec.gatewayClassName: no GatewayClass "{gw["spec"].get("gatewayClassName")}" is '
                    f"handled by {CONTROLLER} here; the local runtime serves class "
                    f"{', '.join(sorted(ours)) or 'kgateway (run `coalmine install kgateway`)'}",
                )
        for k, route in self.of_kind("HTTPRoute"):
            self.add_route(k, route, gateways)
        self.child_statuses()
        for k, gw in gateways.items():
            states = {lk[2]: st for lk, st in self.states.items() if lk[:2] == k[1:]}
            self.out.statuses[k] = gateway_status(gw, states)
        clusters = dict(sorted(self.backends.clusters.items()))
        for lk, hosts in self.hosts.items():
            vhosts = tuple(
                VirtualHost(
                    f"{lk[0]}/{lk[1]}/{lk[2]} {h}", (h,), tuple(r for _, r in sorted(entries, key=lambda e: e[0]))
                )
                for h, entries in sorted(hosts.items())
            )
            self.out.listeners[lk] = RouteTable(vhosts, clusters, version)
        self.group_ports(clusters, version)
        return self.out

    def add_listeners(self, k: ResourceKey, gateway: Mapping[str, Any]) -> None:
        """Each listener's state; the served ones get a table."""
        states = [listener_state(li) for li in gateway["spec"]["listeners"]]
        mark_conflicts(states)
        for li, state in zip(gateway["spec"]["listeners"], states, strict=True):
            lk = (k[1], k[2], state.name)
            self.states[lk] = state
            if state.protocol == "HTTPS" and not state.conflict:
                state.tls = resolve(li, k[1], self.objects, self.grants)
                for _, message in state.tls.problems:
                    self.warn(k, f"listener {state.name}: {message}")
            if state.served:
                self.hosts[lk] = {}
            elif state.conflict:
                self.warn(k, f"listener {state.name}: {state.conflict} with an earlier listener on port {state.port}")
            elif state.protocol not in ("HTTP", "HTTPS"):
                self.warn(
                    k,
                    f"listener {state.name}: protocol {state.protocol} is not served by the local runtime "
                    "(HTTP and HTTPS only)",
                )
            elif state.tls is not None and state.tls.pair is None:
                self.warn(k, f"listener {state.name}: no usable certificate; the listener is not served")

    def group_ports(self, clusters: Mapping[str, Any], version: int) -> None:
        """One ``PortTable`` per port of a Gateway that has served listeners."""
        groups: dict[PortKey, list[ListenerKey]] = {}
        for lk in self.hosts:
            groups.setdefault((lk[0], lk[1], self.states[lk].port), []).append(lk)
        for pk, lks in groups.items():
            listeners = [(self.states[lk], self.out.listeners[lk].virtual_hosts) for lk in lks]
            table = merge(listeners, clusters, version, f"{pk[0]}/{pk[1]}")
            https = self.states[lks[0]].protocol == "HTTPS"
            certificates = tuple(
                (st.hostname, st.tls.pair) for st, _ in listeners if st.tls is not None and st.tls.pair is not None
            )
            self.out.ports[pk] = PortTable(
                tuple(lk[2] for lk in lks), table, "https" if https else "http", certificates
            )

    # ── one route ────────────────────────────────────────────────────────────

    def add_route(self, k: ResourceKey, route: Mapping[str, Any], gateways: Mapping[ResourceKey, Any]) -> None:
        spec = route["spec"]
        attached, wanted = [], []
        for ref in spec.get("parentRefs") or []:
            ref = {"group": _GROUP, "kind": "Gateway", "namespace": k[1], **ref}
            gk = ("Gateway", ref["namespace"], ref["name"])
            if ref["group"] == _GROUP and ref["kind"] == "HTTPRoute":
                continue  # a delegation child's parent: see ``delegating``
            if ref["group"] != _GROUP or ref["kind"] != "Gateway":
                accepted = Condition(
                    "Accepted", "False", "NoMatchingParent", f"parentRef kind {ref['kind']} is not a Gateway"
                )
            elif gk not in self.objects:
                accepted = Condition(
                    "Accepted", "False", "NoMatchingParent", f"Gateway {ref['namespace']}/{ref['name']} not found"
                )
            elif gk not in gateways:
                self.warn(
                    k,
                    f"parentRef {ref['namespace']}/{ref['name']}: that Gateway's class is not handled "
                    "here; the route is not served",
                )
                continue
            else:
                listeners, accepted = self.attach(k, route, ref, gateways[gk])
                wanted += listeners
            attached.append((ref, accepted))
        flat = self.delegation.flatten(k, route)
        if wanted:
            self.reports.update(flat.reports)
        refs_condition = resolved(flat.problems)
        parents = []
        for ref, accepted in attached:
            parents.append(parent_status(ref, [accepted, refs_condition], route))
            for c in (accepted, refs_condition):
                if c.status != "True":
                    self.warn(
                        k, f"parent {ref['namespace']}/{ref['name']}: {c.type} {c.status} {c.reason}: {c.message}"
                    )
        if not spec.get("parentRefs"):
            self.warn(k, f"{_UNATTACHED}: the route is attached to no Gateway and serves nothing")
        self.out.statuses[k] = {"parents": parents}
        entries = [entry for n, served in enumerate(flat.served) if wanted for entry in self.entry(n, served, route)]
        for lk, hostnames in wanted:
            self.states[lk].attached += 1
            if lk not in self.hosts:
                continue  # attached, but the listener is not served (see the Gateway's status)
            for h in hostnames:
                self.hosts[lk].setdefault(h, []).extend(entries)

    def entry(self, n: int, served: Served, route: Mapping[str, Any]) -> list[tuple[tuple[Any, ...], Route]]:
        """One served match as a route of the table, with its precedence (none if it cannot be served)."""
        owner, i, j = served.owner, served.rule_index, served.match_index
        try:
            m = matcher(served.match)
        except RegexError as e:  # admission refuses it; an object stored before may hold one
            self.warn(owner, f"rules[{i}].matches[{j}]: invalid regular expression: {e}; not served")
            return []
        via = f" (delegated by {served.via[1]}/{served.via[2]})" if served.via else ""
        source = f"{owner[1]}/{owner[2]} rules[{i}].matches[{j}]{via}"
        return [
            (
                precedence(served.match, route, n),
                Route((m,), self.served_action(served), served.rule.get("name") or "", source),
            )
        ]

    def served_action(self, served: Served) -> Action:
        if served.replaced is not None:
            return DirectResponse(500, REPLACED)
        return rule_action(
            served.owner,
            served.rule,
            self.backends,
            lambda m: self.warn(served.owner, f"rules[{served.rule_index}]: {m}"),
        )

    def child_statuses(self) -> None:
        """Each delegation child's ``status.parents`` entry per parent HTTPRoute."""
        for (child, parent), report in sorted(self.reports.items()):
            entry = delegated_status(parent, report, self.objects[child])
            self.out.statuses.setdefault(child, {"parents": []})["parents"].append(entry)
            for c in entry["conditions"]:
                if c["status"] != "True":
                    self.warn(
                        child,
                        f"parent HTTPRoute {parent[1]}/{parent[2]}: {c['type']} False {c['reason']}: {c['message']}",
                    )
            self.out.warnings[child] = [w for w in self.out.warnings.get(child, []) if not w.startswith(_UNATTACHED)]
        picked = {child for child, _ in self.reports}
        for k, route in self.of_kind("HTTPRoute"):
            named = [r for r in route["spec"].get("parentRefs") or [] if r.get("kind") == "HTTPRoute"]
            if named and k not in picked:
                self.warn(
                    k,
                    "no parent HTTPRoute delegates to this route (none selects it, or none of its matches lies "
                    "under the prefix a parent delegates); not served through a parent",
                )

    def attach(
        self, k: ResourceKey, route: Mapping[str, Any], ref: Mapping[str, Any], gateway: Mapping[str, Any]
    ) -> tuple[list[tuple[ListenerKey, list[str]]], Condition]:
        """The listeners ``route`` attaches to through ``ref``, with its hostnames on each."""
        gk = key(gateway)
        found, reasons = [], []
        names = [li["name"] for li in gateway["spec"]["listeners"]]
        if ref.get("sectionName") is not None and ref["sectionName"] not in names:
            return [], Condition(
                "Accepted",
                "False",
                "NoMatchingParent",
                f'Gateway {gk[1]}/{gk[2]} has no listener "{ref["sectionName"]}"',
            )
        for li in gateway["spec"]["listeners"]:
            lk = (gk[1], gk[2], li["name"])
            if ref.get("sectionName") not in (None, li["name"]) or ref.get("port") not in (None, li["port"]):
                continue
            state = self.states[lk]
            if "HTTPRoute" not in state.kinds:
                reasons.append(
                    (
                        "NotAllowedByListeners",
                        f"listener {li['name']} does not accept HTTPRoutes (its route kinds: "
                        f"{', '.join(state.kinds) or 'none'})",
                    )
                )
                continue
            if not namespace_allowed(li, k[1], gk[1], self.labels):
                reasons.append(
                    (
                        "NotAllowedByListeners",
                        f"listener {li['name']} does not allow routes from namespace {k[1]} (see its allowedRoutes)",
                    )
                )
                continue
            hostnames = intersect(li.get("hostname"), route["spec"].get("hostnames") or [])
            if not hostnames:
                reasons.append(
                    (
                        "NoMatchingListenerHostname",
                        f"none of the route's hostnames matches listener {li['name']} (hostname {li.get('hostname')})",
                    )
                )
                continue
            found.append((lk, hostnames))
        if found:
            return found, Condition(
                "Accepted", "True", "Accepted", "attached to " + ", ".join(lk[2] for lk, _ in found)
            )
        reason, message = reasons[0] if reasons else ("NoMatchingParent", "no listener matches the parentRef")
        return [], Condition("Accepted", "False", reason, message)
