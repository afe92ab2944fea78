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
from helpers.runtime.gatewayapi.delegating import REPLACED, Delegation, Report, Served
from helpers.runtime.gatewayapi.fields import parse_duration
from helpers.runtime.gatewayapi.parts import header_ops, matcher, retries
from helpers.runtime.gatewayapi.precedence import intersect, precedence
from helpers.runtime.gatewayapi.schema import CONTROLLER
from helpers.runtime.gatewayapi.status import Condition, delegated_status, gateway_status, parent_status, resolved
from helpers.runtime.regex import RegexError
from helpers.runtime.routes import (
    Action,
    Cluster,
    Destination,
    DirectResponse,
    Endpoint,
    Redirect,
    Route,
    RouteAction,
    RouteTable,
    VirtualHost,
    WeightedDestination,
)

__all__ = ["GatewayTranslation", "ListenerKey", "intersect", "precedence", "translate"]

ListenerKey = tuple[str, str, str]  # (namespace, gateway, listener name)
ResourceKey = tuple[str, str, str]  # (kind, namespace, name)
DEFAULT_TIMEOUT = 15.0  # Envoy's route timeout, kgateway's default when none is set
_GROUP = GATEWAY_NETWORKING_GROUP
_UNATTACHED = "spec.parentRefs is empty"


@dataclass
class GatewayTranslation:
    """What one translation gives: a table per served listener, and per resource its
    ``status`` and the warnings ``apply`` shows."""

    listeners: dict[ListenerKey, RouteTable] = field(default_factory=dict)
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
        self.endpoints, self.labels = endpoints, labels
        self.out = GatewayTranslation()
        self.clusters: dict[str, Cluster] = {}
        # (listener key) → hostname → [(precedence, Route)]
        self.hosts: dict[ListenerKey, dict[str, list[tuple[tuple[Any, ...], Route]]]] = {}
        self.listeners: dict[ListenerKey, Mapping[str, Any]] = {}
        self.attached: dict[ListenerKey, int] = {}
        self.delegation = Delegation(self.objects, self.backend_problem, self.warn)
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
                for li in gw["spec"]["listeners"]:
                    if li.get("protocol") == "HTTP":
                        self.listeners[(k[1], k[2], li["name"])] = li
                        self.hosts[(k[1], k[2], li["name"])] = {}
                    else:
                        self.warn(
                            k,
                            f"listener {li['name']}: protocol {li.get('protocol')} is not served by the "
                            "local runtime (HTTP only)",
                        )
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
            served = {n: self.attached.get((k[1], k[2], n), 0) for (ns, g, n) in self.listeners if (ns, g) == k[1:]}
            self.out.statuses[k] = gateway_status(gw, served)
        for lk in self.listeners:
            hosts = self.hosts[lk]
            vhosts = tuple(
                VirtualHost(
                    f"{lk[0]}/{lk[1]}/{lk[2]} {h}", (h,), tuple(r for _, r in sorted(entries, key=lambda e: e[0]))
                )
                for h, entries in sorted(hosts.items())
            )
            self.out.listeners[lk] = RouteTable(vhosts, dict(sorted(self.clusters.items())), version)
        return self.out

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
        for lk, hostnames in wanted:
            self.attached[lk] = self.attached.get(lk, 0) + 1
            for n, served in enumerate(flat.served):
                owner, i, j = served.owner, served.rule_index, served.match_index
                try:
                    ir = Route((matcher(served.match),), self.served_action(served), served.rule.get("name") or "")
                except RegexError as e:  # admission refuses it; an object stored before may hold one
                    self.warn(owner, f"rules[{i}].matches[{j}]: invalid regular expression: {e}; not served")
                    continue
                via = f" (delegated by {served.via[1]}/{served.via[2]})" if served.via else ""
                ir = Route(ir.matchers, ir.action, ir.name, f"{owner[1]}/{owner[2]} rules[{i}].matches[{j}]{via}")
                for h in hostnames:
                    self.hosts[lk].setdefault(h, []).append((precedence(served.match, route, n), ir))

    def served_action(self, served: Served) -> Action:
        if served.replaced is not None:
            return DirectResponse(500, REPLACED)
        return self.action(served.owner, served.rule)

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
            if lk not in self.listeners:
                reasons.append(
                    ("NoMatchingParent", f"listener {li['name']} is not served (protocol {li.get('protocol')})")
                )
                continue
            if not self.allowed(k, li, gk[1]):
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

    def allowed(self, k: ResourceKey, listener: Mapping[str, Any], gateway_ns: str) -> bool:
        allowed = listener.get("allowedRoutes") or {}
        kinds = allowed.get("kinds")
        if kinds and not any(x.get("kind") == "HTTPRoute" and x.get("group", _GROUP) == _GROUP for x in kinds):
            return False
        namespaces = allowed.get("namespaces") or {}
        source = namespaces.get("from", "Same")
        if source == "All":
            return True
        if source == "Same":
            return k[1] == gateway_ns
        want = (namespaces.get("selector") or {}).get("matchLabels") or {}
        have = self.labels.get(k[1]) or {}
        return all(have.get(n) == v for n, v in want.items())

    def backend_problem(self, ns: str, ref: Mapping[str, Any]) -> tuple[str, str] | None:
        group, kind = ref.get("group", ""), ref.get("kind", "Service")
        if group != "" or kind != "Service":
            return (
                "InvalidKind",
                f"{kind}.{group or 'core'} is not a kind of backend the gateway can route to (Service)",
            )
        target_ns = ref.get("namespace") or ns
        if target_ns != ns:
            return (
                "RefNotPermitted",
                f"Service {target_ns}/{ref['name']} is in another namespace; that needs a "
                "ReferenceGrant, which the local runtime does not implement: put the route in namespace "
                f"{target_ns}",
            )
        service = self.objects.get(("Service", target_ns, ref["name"]))
        if service is None:
            return "BackendNotFound", f"Service {target_ns}/{ref['name']} not found"
        ports = [p.get("port") for p in (service.get("spec") or {}).get("ports") or []]
        if ref.get("port") not in ports:
            return (
                "BackendNotFound",
                f"Service {target_ns}/{ref['name']} has no port {ref.get('port')} "
                f"(its ports: {', '.join(map(str, ports)) or 'none'})",
            )
        return None

    # ── one rule's action ────────────────────────────────────────────────────

    def action(self, k: ResourceKey, rule: Mapping[str, Any]) -> Action:
        filters = {f["type"]: f for f in rule.get("filters") or []}
        if "RequestRedirect" in filters:
            r = filters["RequestRedirect"]["requestRedirect"]
            path = r.get("path") or {}
            return Redirect(
                r.get("statusCode", 302),
                r.get("hostname"),
                path.get("replaceFullPath"),
                path.get("replacePrefixMatch"),
                r.get("scheme"),
                r.get("port"),
                gateway_api=True,
            )
        dests = []
        for ref in rule.get("backendRefs") or []:
            port = ref.get("port")
            name = f"kube-svc:{ref.get('namespace') or k[1]}-{ref['name']}-{port}"
            problem = self.backend_problem(k[1], ref)
            if problem is None:
                eps = tuple(self.endpoints.get((k[1], ref["name"], port), ()))
                self.clusters[name] = Cluster(name, eps)
                dests.append(WeightedDestination(Destination(name), ref.get("weight", 1)))
            else:
                dests.append(
                    WeightedDestination(Destination(name, invalid=f"{problem[0]}: {problem[1]}"), ref.get("weight", 1))
                )
        if not dests:
            return DirectResponse(500, "this rule has no backendRefs and no RequestRedirect filter\n")
        if sum(d.weight for d in dests) == 0:
            return DirectResponse(500, "every backendRef of this rule has weight 0\n")
        rewrite = (filters.get("URLRewrite") or {}).get("urlRewrite") or {}
        path = rewrite.get("path") or {}
        timeouts = rule.get("timeouts") or {}
        timeout = parse_duration(timeouts["request"]) if timeouts.get("request") else DEFAULT_TIMEOUT
        return RouteAction(
            tuple(dests),
            path.get("replacePrefixMatch"),
            timeout or None,
            retries(rule),
            None,
            header_ops(filters),
            path.get("replaceFullPath"),
            rewrite.get("hostname"),
        )
