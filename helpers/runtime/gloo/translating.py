"""The translator: Gloo resources → one ``routes.RouteTable``, plus a report per resource.

    Upstream, Service (+ ready endpoints) ─► Cluster
    UpstreamGroup ─────────────────────────► weighted destinations (``groups``)
    VirtualService (+ RouteTables) ────────► VirtualHost ─► Route ─► action

A VirtualService's ``delegateAction`` routes are replaced by their RouteTables'
routes first (``delegating``, with Gloo's rules).

Like Gloo's own translator, it never fails as a whole: every problem becomes an
error or a warning on the resource that caused it, and the table is still built
from everything else. A VirtualService with an error is Rejected and serves no
routes; one with only warnings (a missing upstream, say) is installed, and the
proxy answers the broken destinations with a 503 that names what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from helpers.kinds import key
from helpers.runtime.apiserver import check_object
from helpers.runtime.gloo import schema as gloo_schema
from helpers.runtime.gloo.delegating import Delegation
from helpers.runtime.gloo.functions import function_from_transformation
from helpers.runtime.gloo.groups import Group, translate_group
from helpers.runtime.gloo.parts import header_ops, matcher, route_action
from helpers.runtime.gloo.routeschema import REDIRECT_CODES
from helpers.runtime.gloo.schema import validate
from helpers.runtime.gloo.status import Report, gloo_status
from helpers.runtime.regex import RegexError
from helpers.runtime.routes import (
    Action,
    Cluster,
    Destination,
    DirectResponse,
    Endpoint,
    HeaderOps,
    Redirect,
    RestCall,
    Route,
    RouteTable,
    VirtualHost,
    WeightedDestination,
)
from helpers.runtime.schema import Found, at
from helpers.runtime.templating import compile_parameter

__all__ = ["Report", "ResourceKey", "gloo_status", "translate", "validate"]

ResourceKey = tuple[str, str, str]  # (kind, namespace, name)
TRANSLATED_KINDS = ("VirtualService", "RouteTable", "Upstream", "UpstreamGroup", "Service")
T = TypeVar("T")


def translate(
    resources: Iterable[Mapping[str, Any]],
    endpoints: Mapping[tuple[str, str, int], Sequence[Endpoint]],
    version: int = 0,
) -> tuple[RouteTable, dict[ResourceKey, Report]]:
    """Build the route table from applied resources, and a report for each one.

    ``resources`` are plain dicts as applied (VirtualService, RouteTable, Upstream,
    UpstreamGroup and Service; other kinds are skipped). ``endpoints`` maps
    ``(namespace, service, port)`` to the ready endpoints of that Service port.
    Never raises on bad input.
    """
    return _Translation(resources, endpoints).run(version)


# A stored object's schema check, by its key, uid and resourceVersion: the store gives
# every change a new resourceVersion, so an entry never goes stale, and a big object is
# checked once, not on every translation after each apply of something else.
_CHECKED: dict[tuple[ResourceKey, str, str], Found] = {}
_CHECKED_MAX = 1024


def _checked(k: ResourceKey, obj: Mapping[str, Any]) -> Found:
    meta = obj.get("metadata")
    uid, version = (meta.get("uid"), meta.get("resourceVersion")) if isinstance(meta, Mapping) else (None, None)
    if not (isinstance(uid, str) and isinstance(version, str)):
        return gloo_schema.check(obj)  # not from the store: nothing says it is unchanged
    cache_key = (k, uid, version)
    found = _CHECKED.get(cache_key)
    if found is None:
        if len(_CHECKED) >= _CHECKED_MAX:
            _CHECKED.clear()
        found = _CHECKED[cache_key] = gloo_schema.check(obj)
    return Found(list(found.errors), list(found.warnings))


# ── the work of one translate() call ─────────────────────────────────────────


class _Translation:
    def __init__(self, resources: Iterable[Any], endpoints: Mapping[tuple[str, str, int], Sequence[Endpoint]]):
        self.endpoints = endpoints
        self.reports: dict[ResourceKey, Report] = {}
        self.objects: dict[ResourceKey, Mapping[str, Any]] = {}
        self.clusters: dict[str, Cluster] = {}
        self.upstreams: dict[tuple[str, str], str | None] = {}  # (ns, name) → cluster name, None if rejected
        self.groups: dict[tuple[str, str], Group | None] = {}
        for obj in resources:
            if isinstance(obj, Mapping) and obj.get("kind") in TRANSLATED_KINDS:
                k = key(obj) if isinstance(obj.get("metadata") or {}, Mapping) else (str(obj["kind"]), "", "?")
                self.objects[k], self.reports[k] = obj, Report()
                self.guarded(k, self.check, k, obj)

    def check(self, k: ResourceKey, obj: Mapping[str, Any]) -> None:
        if k[0] == "Service":  # not Gloo's: the API server's own checks
            ok_version = obj.get("apiVersion") == "v1"  # check_object cannot take an unhashable one
            self.reports[k].errors += check_object(obj) if ok_version else ['Service is apiVersion "v1"']
            return
        found = _checked(k, obj)
        self.reports[k].errors += found.errors
        self.reports[k].warnings += found.warnings

    def of_kind(self, kind: str) -> list[tuple[ResourceKey, Mapping[str, Any]]]:
        # Sorted by (namespace, name) so the output does not depend on input order.
        return sorted((k, o) for k, o in self.objects.items() if k[0] == kind)

    def run(self, version: int) -> tuple[RouteTable, dict[ResourceKey, Report]]:
        for k, us in self.of_kind("Upstream"):
            self.guarded(k, self.add_upstream, k, us)
        for k, ug in self.of_kind("UpstreamGroup"):
            self.guarded(k, self.add_group, k, ug)
        services = self.of_kind("VirtualService")
        valid = [(k, vs) for k, vs in services if not self.reports[k].errors]
        self.check_domains(valid)
        hosts = []
        for k, vs in valid:
            vh = self.guarded(k, self.virtual_host, k, vs)
            if vh is not None and not self.reports[k].errors:
                hosts.append(vh)
        table = RouteTable(tuple(hosts), dict(sorted(self.clusters.items())), version)
        return table, self.reports

    def guarded(self, k: ResourceKey, work: Callable[..., T], *args: Any) -> T | None:
        # A translator bug must reject one resource, not stop the gateway from
        # getting a table at all (Gloo: "translation always results in a snapshot").
        try:
            return work(*args)
        except Exception as e:
            self.reports[k].errors.append(
                f"internal translator error ({type(e).__name__}: {e}); please report it with this resource"
            )
            return None

    # ── upstreams and groups ─────────────────────────────────────────────────

    def add_upstream(self, k: ResourceKey, us: Mapping[str, Any]) -> None:
        ns, name = k[1], k[2]
        if self.reports[k].errors:
            self.upstreams[(ns, name)] = None
            return
        spec = us["spec"]
        if "kube" in spec:
            kube = spec["kube"]
            where = (kube.get("serviceNamespace") or ns, kube["serviceName"], kube["servicePort"])
            eps = tuple(self.endpoints.get(where, ()))
            if kube.get("selector"):  # only the Service's pods that also carry these labels
                eps = tuple(e for e in eps if set(kube["selector"].items()) <= set(e.labels))
            service_spec = kube.get("serviceSpec") or {}
        else:
            eps = tuple(Endpoint(h["addr"], h["port"]) for h in spec["static"]["hosts"])
            service_spec = spec["static"].get("serviceSpec") or {}
        transformations = (service_spec.get("rest") or {}).get("transformations") or {}
        functions = {fn: function_from_transformation(fn, t) for fn, t in sorted(transformations.items())}
        # Clusters are keyed by the plain upstream name, which is what stats and 503
        # bodies show. Two upstreams may share a name in different namespaces; the
        # first in (namespace, name) order keeps the plain name, later ones become
        # "<namespace>.<name>". Routes resolve (namespace, name), so both still work.
        cluster = name if name not in self.clusters else f"{ns}.{name}"
        self.clusters[cluster] = Cluster(cluster, eps, functions)
        self.upstreams[(ns, name)] = cluster

    def add_group(self, k: ResourceKey, ug: Mapping[str, Any]) -> None:
        if self.reports[k].errors:  # refused by its schema: not a group Gloo would have
            self.groups[(k[1], k[2])] = None
            return

        def resolve(spec: Mapping[str, Any], path: str, missing: Report, other: Report) -> Destination:
            return self.destination(spec, path, k[1], missing, self.clusters, other)

        self.groups[(k[1], k[2])] = translate_group(ug["spec"], k[1], resolve, self.reports[k])

    def destination(
        self,
        spec: Mapping[str, Any],
        path: str,
        ns: str,
        report: Report,
        new_clusters: dict[str, Cluster],
        rest_report: Report | None = None,
    ) -> Destination:
        """One ``Destination`` (``upstream`` or ``kube``); a missing target is a warning
        (on ``report``), and the destination then names a cluster the table lacks (→ 503)."""
        if spec.get("upstream") is not None:
            ref = spec["upstream"]
            target = (ref.get("namespace") or ns, ref.get("name") or "")
            cluster = self.upstreams.get(target)
            if cluster is None:
                state = "is Rejected (see its status)" if target in self.upstreams else "not found"
                report.warnings.append(
                    f"{path}.upstream: InvalidDestinationWarning: *v1.Upstream {{ {target[0]}.{target[1]} }} {state}"
                )
                cluster = self.missing_name(*target)
        else:
            cluster = self.kube_cluster(spec["kube"], f"{path}.kube", ns, report, new_clusters)
        rest = (spec.get("destinationSpec") or {}).get("rest")
        if rest is None:
            return Destination(cluster)
        rest_path, rest_report = f"{path}.destinationSpec.rest", rest_report or report
        return Destination(cluster, self.rest_call(rest, rest_path, cluster, rest_report, new_clusters))

    def missing_name(self, ns: str, name: str) -> str:
        # Never let a missing (ns, name) fall onto another namespace's upstream
        # that happens to own the plain name (nor a nameless ref be a blank one).
        return name if name and name not in self.clusters else f"{ns}.{name}"

    def kube_cluster(
        self, kube: Mapping[str, Any], path: str, ns: str, report: Report, new_clusters: dict[str, Cluster]
    ) -> str:
        ref = kube.get("ref") or {}  # both optional in an UpstreamGroup (its CRD requires neither)
        svc_ns, svc, port = ref.get("namespace") or ns, ref.get("name") or "", kube.get("port") or 0
        name = f"kube-svc:{svc_ns}-{svc}-{port}"  # Gloo's name for an in-memory kube upstream
        service = self.objects.get(("Service", svc_ns, svc))
        if service is None or self.reports[("Service", svc_ns, svc)].errors:
            state = "not found" if service is None else "is invalid"
            report.warnings.append(f"{path}: InvalidDestinationWarning: *v1.Service {{ {svc_ns}.{svc} }} {state}")
            return name
        ports = [p.get("port") for p in service["spec"]["ports"]]
        if port not in ports:
            report.warnings.append(
                f"{path}.port: Service {svc_ns}/{svc} has no port {port} "
                f"(its ports: {', '.join(map(str, ports)) or 'none'})"
            )
            return name
        new_clusters[name] = Cluster(name, tuple(self.endpoints.get((svc_ns, svc, port), ())))
        return name

    def rest_call(
        self, rest: Mapping[str, Any], path: str, cluster: str, report: Report, new_clusters: Mapping[str, Cluster]
    ) -> RestCall:
        fn = rest.get("functionName") or ""
        params = dict((rest.get("parameters") or {}).get("headers") or {})
        if (rest.get("parameters") or {}).get("path") is not None:
            params.setdefault(":path", rest["parameters"]["path"])
        compiled = []
        for header, template in params.items():
            try:
                compiled.append((str(header).lower(), compile_parameter(template)))
            except RegexError as e:  # validate() reports it too; kept so translate never raises
                report.errors.append(
                    f'{at(path + ".parameters.headers", str(header))}: invalid parameter template "{template}": {e}'
                )
        known = self.clusters.get(cluster) or new_clusters.get(cluster)
        if known is not None and fn not in known.functions:
            have = ", ".join(known.functions) or "none discovered"
            report.warnings.append(
                f"{path}.functionName: function {fn} not found on upstream {cluster} (its functions: {have})"
            )
        return RestCall(fn, tuple(compiled))

    # ── virtual services ─────────────────────────────────────────────────────

    def check_domains(self, services: list[tuple[ResourceKey, Mapping[str, Any]]]) -> None:
        # Gloo's DomainInOtherVirtualServicesErr: a domain ('*' included) may belong
        # to one VirtualService only; every VirtualService claiming it is in error.
        owners: dict[str, list[ResourceKey]] = {}
        for k, vs in services:
            for d in dict.fromkeys(d.lower() for d in _domains(vs)):
                owners.setdefault(d, []).append(k)
        for domain, keys in owners.items():
            for k in keys if len(keys) > 1 else []:
                others = ", ".join(f"{o[1]}/{o[2]}" for o in keys if o != k)
                self.reports[k].errors.append(
                    f"spec.virtualHost.domains: domain conflict: the [{domain}] domain is also claimed by "
                    f"VirtualService {others}; a domain may belong to only one VirtualService"
                )

    def virtual_host(self, k: ResourceKey, vs: Mapping[str, Any]) -> VirtualHost:
        report, pending = self.reports[k], dict[str, Cluster]()
        vh_spec = vs["spec"].get("virtualHost")
        if vh_spec is None:
            # Gloo 1.22.1 warns and translates it as an empty virtual host: no domains
            # (so "*") and no routes; Envoy answers its requests 404.
            report.warnings.append(
                f"spec.virtualHost: virtual service [{k[1]}.{k[2]}] does not specify a virtual host "
                "(it serves no routes)"
            )
            return VirtualHost(f"{k[1]}.{k[2]}", tuple(_domains(vs)), ())
        vh_ops = header_ops((vh_spec.get("options") or {}).get("headerManipulation"))
        routes = []
        delegation = Delegation(k, self.of_kind("RouteTable"), self.reports)
        for flat in delegation.routes(vs):
            r = flat.route
            matchers = tuple(matcher(m) for m in r.get("matchers") or [])
            found = report if flat.owner == k else Report()  # a RouteTable's: on it and on k
            action = self.action(r, flat.path, flat.owner[1], found, pending, vh_ops)
            if found is not report:
                for problem in found.errors:
                    delegation.report(flat.owner, problem, error=True)
                for problem in found.warnings:
                    delegation.report(flat.owner, problem, error=False)
            routes.append(Route(matchers, action, r.get("name") or "", flat.source))
        if not report.errors:
            self.clusters.update(pending)  # kube-svc clusters only for installed hosts
        return VirtualHost(f"{k[1]}.{k[2]}", tuple(_domains(vs)), tuple(routes))

    def action(
        self,
        r: Mapping[str, Any],
        path: str,
        ns: str,
        report: Report,
        pending: dict[str, Cluster],
        vh_ops: HeaderOps | None,
    ) -> Action:
        options = r.get("options") or {}
        if r.get("directResponseAction") is not None or r.get("redirectAction") is not None:
            for name in ("prefixRewrite", "timeout", "retries", "headerManipulation"):
                if options.get(name) is not None:
                    report.warnings.append(f"{path}.options.{name}: applies only to routeAction routes; ignored")
        if r.get("directResponseAction") is not None:
            d = r["directResponseAction"]
            return DirectResponse(d["status"], d.get("body") or "")
        if r.get("redirectAction") is not None:
            d = r["redirectAction"]
            return Redirect(
                REDIRECT_CODES[d.get("responseCode") or "MOVED_PERMANENTLY"],
                d.get("hostRedirect"),
                d.get("pathRedirect"),
                d.get("prefixRewrite"),
                "https" if d.get("httpsRedirect") else None,
            )
        ra, apath = r["routeAction"], f"{path}.routeAction"
        dests: tuple[WeightedDestination, ...]
        if ra.get("single") is not None:
            dests = (WeightedDestination(self.destination(ra["single"], f"{apath}.single", ns, report, pending), 1),)
        elif ra.get("multi") is not None:
            dests = tuple(
                WeightedDestination(
                    self.destination(
                        d["destination"], f"{apath}.multi.destinations[{i}].destination", ns, report, pending
                    ),
                    d.get("weight") or 0,
                )
                for i, d in enumerate(ra["multi"]["destinations"])
            )
        else:
            ref = ra["upstreamGroup"]
            target = (ref.get("namespace") or ns, ref.get("name") or "")
            group = self.groups.get(target)
            if group is None:
                state = "is Rejected (see its status)" if target in self.groups else "not found"
                report.warnings.append(
                    f"{apath}.upstreamGroup: InvalidDestinationWarning: "
                    f"*v1.UpstreamGroup {{ {target[0]}.{target[1]} }} {state}"
                )
                return DirectResponse(503, f"upstream group {target[0]}.{target[1]} {state}\n")
            where = f"{apath}.upstreamGroup: UpstreamGroup {target[0]}.{target[1]}"
            report.errors += [f"{where}: {e}" for e in group.errors]
            report.warnings += [f"{where}: {w}" for w in group.warnings]
            dests = group.destinations
        return route_action(dests, options, vh_ops)


def _domains(vs: Mapping[str, Any]) -> list[str]:
    return list(((vs.get("spec") or {}).get("virtualHost") or {}).get("domains") or ["*"])
