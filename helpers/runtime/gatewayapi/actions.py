"""One HTTPRoute rule as the route table's action, and its Service backends.

- ``backendRefs`` become weighted destinations on ``kube-svc:<namespace>-<name>-<port>``
  clusters. A ref that does not resolve stays in the rule with its weight and is
  answered 500 (``Destination.invalid``): a missing Service or port
  (BackendNotFound), a kind other than Service (InvalidKind), or a Service in another
  namespace without a ReferenceGrant there (RefNotPermitted). No backendRefs at all:
  500 too.
- The Service port's ``appProtocol`` says how to speak to it: ``kubernetes.io/h2c``
  (HTTP/2 without TLS) or ``kubernetes.io/ws`` (WebSocket), else HTTP/1.1.
- Filters: RequestRedirect answers itself; URLRewrite, the header modifiers, CORS
  and every RequestMirror (``percent``, or ``fraction`` as numerator/denominator)
  shape the forwarded request. A backendRef's own RequestHeaderModifier,
  ResponseHeaderModifier and RequestMirror apply only when that backend is picked.
  A mirror whose backend does not resolve is dropped (the route's ResolvedRefs is
  False), as the specification says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from helpers.kinds import GATEWAY_NETWORKING_GROUP
from helpers.runtime.gatewayapi.fields import parse_duration
from helpers.runtime.gatewayapi.grants import Grants, Reference
from helpers.runtime.gatewayapi.parts import header_ops, retries
from helpers.runtime.routes import (
    Action,
    Cluster,
    Cors,
    Destination,
    DirectResponse,
    Endpoint,
    Mirror,
    Redirect,
    RouteAction,
    WeightedDestination,
)

DEFAULT_TIMEOUT = 15.0  # Envoy's route timeout, kgateway's default when none is set
CORS_MAX_AGE = 5  # the CRD's default for cors.maxAge
APP_PROTOCOLS = {"kubernetes.io/h2c": "h2c", "kubernetes.io/ws": "ws"}
_PER_BACKEND = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror")
ResourceKey = tuple[str, str, str]
Problem = tuple[str, str]


class Backends:
    """The Services routes may send to: whether a ref resolves, and its cluster."""

    def __init__(
        self,
        objects: Mapping[ResourceKey, Mapping[str, Any]],
        endpoints: Mapping[tuple[str, str, int], Sequence[Endpoint]],
        grants: Grants,
    ) -> None:
        self.objects, self.endpoints, self.grants = objects, endpoints, grants
        self.clusters: dict[str, Cluster] = {}

    def problem(self, ns: str, ref: Mapping[str, Any]) -> Problem | None:
        """What is wrong with a backendRef of a route in ``ns`` (None: it resolves)."""
        group, kind = ref.get("group", ""), ref.get("kind", "Service")
        if group != "" or kind != "Service":
            return (
                "InvalidKind",
                f"{kind}.{group or 'core'} is not a kind of backend the gateway can route to (Service)",
            )
        target_ns = ref.get("namespace") or ns
        source = (GATEWAY_NETWORKING_GROUP, "HTTPRoute", ns)
        if not self.grants.permits(Reference(source, ("", "Service", target_ns, ref["name"]))):
            return (
                "RefNotPermitted",
                f"Service {target_ns}/{ref['name']} is in another namespace and no ReferenceGrant there allows "
                f"HTTPRoutes from namespace {ns} to use it",
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

    def destination(self, ns: str, ref: Mapping[str, Any]) -> Destination:
        """The destination of a backendRef; one that does not resolve answers 500."""
        target_ns, port = ref.get("namespace") or ns, ref.get("port")
        name = f"kube-svc:{target_ns}-{ref['name']}-{port}"
        problem = self.problem(ns, ref)
        if problem is not None:
            return Destination(name, invalid=f"{problem[0]}: {problem[1]}")
        self.clusters[name] = Cluster(name, tuple(self.endpoints.get((target_ns, ref["name"], int(port or 0)), ())))
        return Destination(name, protocol=self.protocol(target_ns, ref))

    def protocol(self, ns: str, ref: Mapping[str, Any]) -> str:
        service = self.objects.get(("Service", ns, ref["name"])) or {}
        for p in (service.get("spec") or {}).get("ports") or []:
            if p.get("port") == ref.get("port"):
                return APP_PROTOCOLS.get(str(p.get("appProtocol")), "http")
        return "http"

    def mirrors(self, ns: str, filters: Sequence[Mapping[str, Any]]) -> tuple[Mirror, ...]:
        """The RequestMirror filters among ``filters`` whose backend resolves."""
        found = []
        for f in filters:
            if f.get("type") != "RequestMirror":
                continue
            spec = f.get("requestMirror") or {}
            ref = spec.get("backendRef") or {}
            if not ref.get("name") or self.problem(ns, ref) is not None:
                continue
            found.append(Mirror(self.destination(ns, ref), mirror_percent(spec)))
        return tuple(found)


def mirror_percent(spec: Mapping[str, Any]) -> float:
    """The share of requests a RequestMirror copies, 0-100 (all when unset)."""
    if spec.get("percent") is not None:
        return float(spec["percent"])
    fraction = spec.get("fraction")
    if fraction:
        denominator = fraction.get("denominator", 100) or 100
        return 100.0 * float(fraction.get("numerator", 0)) / float(denominator)
    return 100.0


def mirror_refs(rule: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every RequestMirror backendRef of a rule (its own filters and its backendRefs'),
    with where it is written, so that ResolvedRefs can report it."""
    for i, f in enumerate(rule.get("filters") or []):
        if f.get("type") == "RequestMirror":
            yield f"filters[{i}].requestMirror.backendRef", (f.get("requestMirror") or {}).get("backendRef") or {}
    for j, ref in enumerate(rule.get("backendRefs") or []):
        for i, f in enumerate(ref.get("filters") or []):
            if f.get("type") == "RequestMirror":
                yield (
                    f"backendRefs[{j}].filters[{i}].requestMirror.backendRef",
                    (f.get("requestMirror") or {}).get("backendRef") or {},
                )


def cors(spec: Mapping[str, Any]) -> Cors:
    """The CORS filter's settings, with the API server's default ``maxAge``."""
    return Cors(
        tuple(spec.get("allowOrigins") or ()),
        tuple(spec.get("allowMethods") or ()),
        tuple(spec.get("allowHeaders") or ()),
        tuple(spec.get("exposeHeaders") or ()),
        bool(spec.get("allowCredentials", False)),
        int(spec.get("maxAge", CORS_MAX_AGE)),
    )


def rule_action(k: ResourceKey, rule: Mapping[str, Any], backends: Backends, warn: Callable[[str], None]) -> Action:
    """The action of one rule of the HTTPRoute ``k``; ``warn`` notes what is not applied."""
    listed = rule.get("filters") or []
    filters = {f["type"]: f for f in listed}
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
        own = ref.get("filters") or []
        for f in own:
            if f.get("type") not in _PER_BACKEND:
                warn(f"backendRef {ref.get('name')}: filter {f.get('type')} is not applied per backend here")
        dests.append(
            WeightedDestination(
                backends.destination(k[1], ref),
                ref.get("weight", 1),
                header_ops({f["type"]: f for f in own}),
                backends.mirrors(k[1], own),
            )
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
        backends.mirrors(k[1], listed),
        cors(filters["CORS"]["cors"]) if "CORS" in filters else None,
    )
