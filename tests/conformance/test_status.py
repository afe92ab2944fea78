"""HTTPRoute attachment and references, ported from the Gateway API conformance suite
(v1.6.1): route status conditions, ReferenceGrants, listener hostnames and ports,
several Gateways, and backends of every Service type (EndpointSlices included)."""

from __future__ import annotations

from typing import Any

import pytest

from .base import APP, INFRA, WEB, gateway, listener
from .conftest import Suite
from .harness import (
    Case,
    accepted,
    eventually,
    expect,
    get,
    has,
    no_accepted_parents,
    resolved_refs,
    route_condition,
    zero_routes,
)
from .test_matching import SAME, V1, V2, V3, route

pytestmark = pytest.mark.integration
TO_V1 = "  - backendRefs: [{name: infra-backend-v1, port: 8080}]"


def grant(name: str, ns: str, from_: str, to: str) -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {{name: {name}, namespace: {ns}}}
spec:
  from: [{from_}]
  to: [{to}]
"""


def prefixed(prefix: str, backend: str) -> str:
    """One rule: a path prefix to a backend's port 8080."""
    match = f"  - matches: [{{path: {{type: PathPrefix, value: {prefix}}}}}]"
    return f"{match}\n    backendRefs: [{{name: {backend}, port: 8080}}]"


def test_disallowed_kind(suite: Suite) -> None:
    tls_only = gateway(
        "tlsroutes-only",
        listener(
            "tls",
            443,
            "TLS",
            tls={"mode": "Passthrough"},
            allowedRoutes={"namespaces": {"from": "Same"}, "kinds": [{"kind": "TLSRoute"}]},
        ),
    )
    suite.apply([tls_only])
    suite.apply(route("disallowed-kind", TO_V1, parent=f"{{name: tlsroutes-only, namespace: {INFRA}}}"))
    gw, rt = (INFRA, "tlsroutes-only"), (INFRA, "disallowed-kind")
    resolved_refs(suite.lab, rt, gw)
    route_condition(suite.lab, rt, gw, "Accepted", "False", "NotAllowedByListeners")
    no_accepted_parents(suite.lab, rt)
    zero_routes(suite.lab, gw)


def test_invalid_backendref_unknown_kind(suite: Suite) -> None:
    rules = "  - backendRefs: [{group: unknownkind.example.com, kind: NonExistent, name: infra-backend-v1, port: 8080}]"
    suite.apply(route("invalid-backend-ref-unknown-kind", rules))
    rt = (INFRA, "invalid-backend-ref-unknown-kind")
    gw = accepted(suite.lab, SAME, rt)
    route_condition(suite.lab, rt, SAME, "ResolvedRefs", "False", "InvalidKind")
    expect(gw, [Case("/v2", status=(500,))])


def test_invalid_cross_namespace_backend_ref(suite: Suite) -> None:
    rules = f"  - backendRefs: [{{name: web-backend, namespace: {WEB}, port: 8080}}]"
    suite.apply(route("invalid-cross-namespace-backend-ref", rules))
    rt = (INFRA, "invalid-cross-namespace-backend-ref")
    gw = accepted(suite.lab, SAME, rt)
    route_condition(suite.lab, rt, SAME, "ResolvedRefs", "False", "RefNotPermitted")
    expect(gw, [Case("/", status=(500,))])


def test_invalid_cross_namespace_parent_ref(suite: Suite) -> None:
    parent = f"{{name: same-namespace, namespace: {INFRA}}}"
    suite.apply(
        route("invalid-cross-namespace-parent-ref", "  - backendRefs: [{name: web-backend, port: 8080}]", WEB, parent)
    )
    rt = (WEB, "invalid-cross-namespace-parent-ref")
    resolved_refs(suite.lab, rt, SAME)
    route_condition(suite.lab, rt, SAME, "Accepted", "False", "NotAllowedByListeners")
    no_accepted_parents(suite.lab, rt)
    zero_routes(suite.lab, SAME)


def test_invalid_nonexistent_backendref(suite: Suite) -> None:
    suite.apply(
        route(
            "invalid-nonexistent-backend-ref",
            f"  - backendRefs: [{{name: nonexistent, namespace: {INFRA}, port: 8080}}]",
        )
    )
    rt = (INFRA, "invalid-nonexistent-backend-ref")
    gw = accepted(suite.lab, SAME, rt)
    route_condition(suite.lab, rt, SAME, "ResolvedRefs", "False", "BackendNotFound")
    expect(gw, [Case("/", status=(500,))])


def test_invalid_parentref_not_matching_listener_port(suite: Suite) -> None:
    parent = f"{{name: same-namespace, namespace: {INFRA}, port: 81}}"
    suite.apply(route("httproute-listener-not-matching-route-port", TO_V1, parent=parent))
    rt = (INFRA, "httproute-listener-not-matching-route-port")
    resolved_refs(suite.lab, rt, SAME)
    route_condition(suite.lab, rt, SAME, "Accepted", "False", "NoMatchingParent")
    no_accepted_parents(suite.lab, rt)
    zero_routes(suite.lab, SAME)


def test_invalid_parentref_not_matching_section_name(suite: Suite) -> None:
    parent = f"{{name: same-namespace, namespace: {INFRA}, port: 80, sectionName: http1}}"
    suite.apply(route("httproute-listener-not-matching-section-name", TO_V1, parent=parent))
    rt = (INFRA, "httproute-listener-not-matching-section-name")
    route_condition(suite.lab, rt, SAME, "Accepted", "False", "NoMatchingParent")
    no_accepted_parents(suite.lab, rt)
    zero_routes(suite.lab, SAME)


def test_invalid_parentref_section_name_not_matching_port(suite: Suite) -> None:
    name = "gateway-with-one-not-matching-port-and-section-name-route"
    allowed = {"kinds": [{"kind": "HTTPRoute"}], "namespaces": {"from": "All"}}
    suite.apply([gateway(name, listener("http", 80, allowedRoutes=allowed))])
    parent = f"{{name: {name}, namespace: {INFRA}, sectionName: http, port: 81}}"
    suite.apply(route("httproute-listener-section-name-not-matching-port", TO_V1, parent=parent))
    rt, gw = (INFRA, "httproute-listener-section-name-not-matching-port"), (INFRA, name)
    route_condition(suite.lab, rt, gw, "Accepted", "False", "NoMatchingParent")
    no_accepted_parents(suite.lab, rt)
    zero_routes(suite.lab, gw)


ROUTE_TO_WEB = f"  - backendRefs: [{{name: web-backend, namespace: {WEB}, port: 8080}}]"
FROM_INFRA_ROUTES = f"{{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: {INFRA}}}"
TO_WEB_SERVICE = '{group: "", kind: Service, name: web-backend}'


def test_invalid_reference_grant(suite: Suite) -> None:
    other = "{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: not-the-namespace-youre-looking-for}"
    grants = [
        grant("reference-grant-wrong-namespace", INFRA, FROM_INFRA_ROUTES, TO_WEB_SERVICE),
        grant(
            "reference-grant-wrong-from-group",
            WEB,
            f"{{group: not-the-group-youre-looking-for, kind: HTTPRoute, namespace: {INFRA}}}",
            TO_WEB_SERVICE,
        ),
        grant(
            "reference-grant-wrong-from-kind",
            WEB,
            f"{{group: gateway.networking.k8s.io, kind: Gateway, namespace: {INFRA}}}",
            TO_WEB_SERVICE,
        ),
        grant("reference-grant-wrong-from-namespace", WEB, other, TO_WEB_SERVICE),
        grant(
            "reference-grant-wrong-to-group",
            WEB,
            FROM_INFRA_ROUTES,
            "{group: not-the-group-youre-looking-for, kind: Service, name: web-backend}",
        ),
        grant("reference-grant-wrong-to-kind", WEB, FROM_INFRA_ROUTES, '{group: "", kind: Secret, name: web-backend}'),
        grant(
            "reference-grant-wrong-to-name",
            WEB,
            FROM_INFRA_ROUTES,
            '{group: "", kind: Service, name: not-the-service-youre-looking-for}',
        ),
    ]
    suite.apply("---".join(grants) + "---" + route("reference-grant", ROUTE_TO_WEB))
    rt = (INFRA, "reference-grant")
    gw = accepted(suite.lab, SAME, rt)
    route_condition(suite.lab, rt, SAME, "ResolvedRefs", "False", "RefNotPermitted")
    expect(gw, [Case("/", status=(500,), backend="web-backend", namespace=WEB)])


def test_reference_grant(suite: Suite) -> None:
    suite.apply(
        grant("reference-grant", WEB, FROM_INFRA_ROUTES, TO_WEB_SERVICE)
        + "---"
        + route("reference-grant", ROUTE_TO_WEB)
    )
    rt = (INFRA, "reference-grant")
    gw = accepted(suite.lab, SAME, rt)
    resolved_refs(suite.lab, rt, SAME)
    expect(gw, [Case("/", backend="web-backend", namespace=WEB)])
    suite.lab.delete(kind="ReferenceGrant", name="reference-grant", namespace=WEB)
    suite.applied = [o for o in suite.applied if o["kind"] != "ReferenceGrant"]
    expect(gw, [Case("/", status=(500,))])


def test_partially_invalid_via_invalid_reference_grant(suite: Suite) -> None:
    rules = f"""  - matches: [{{path: {{type: PathPrefix, value: /v2}}}}]
    backendRefs: [{{name: app-backend-v2, namespace: {APP}, port: 8080}}]
  - backendRefs: [{{name: app-backend-v1, namespace: {APP}, port: 8080}}]"""
    to_v1 = '{group: "", kind: Service, name: app-backend-v1}'
    suite.apply(
        grant("invalid-reference-grant", APP, FROM_INFRA_ROUTES, to_v1)
        + "---"
        + route("invalid-reference-grant", rules)
    )
    rt = (INFRA, "invalid-reference-grant")
    gw = accepted(suite.lab, SAME, rt)
    route_condition(suite.lab, rt, SAME, "ResolvedRefs", "False", "RefNotPermitted")
    expect(gw, [Case("/v2", status=(500,)), Case("/", backend="app-backend-v1", namespace=APP)])


def test_observed_generation_bump(suite: Suite) -> None:
    suite.apply(route("observed-generation-bump", TO_V1))
    rt = (INFRA, "observed-generation-bump")

    def latest() -> str | None:
        obj = get(suite.lab, "HTTPRoute", *rt)
        generation = obj["metadata"].get("generation")
        stale = [
            c
            for p in (obj.get("status") or {}).get("parents") or []
            for c in p.get("conditions") or []
            if c.get("observedGeneration") != generation
        ]
        return f"conditions behind generation {generation}: {stale}" if stale or generation is None else None

    eventually(latest, "conditions at the latest generation")
    original = get(suite.lab, "HTTPRoute", *rt)
    changed: dict[str, Any] = {k: original[k] for k in ("apiVersion", "kind", "metadata", "spec")}
    changed["metadata"] = {"name": rt[1], "namespace": INFRA}
    changed["spec"]["rules"][0]["backendRefs"][0]["name"] = V2
    suite.lab.apply([changed])
    route_condition(suite.lab, rt, SAME, "Accepted", "True")
    resolved_refs(suite.lab, rt, SAME)
    eventually(latest, "conditions at the latest generation")
    assert get(suite.lab, "HTTPRoute", *rt)["metadata"]["generation"] != original["metadata"]["generation"]


def hostname_gateways() -> list[dict[str, Any]]:
    return [
        gateway(
            "httproute-hostname-intersection",
            listener("listener-1", 80, hostname="very.specific.com"),
            listener("listener-2", 80, hostname="*.wildcard.io"),
            listener("listener-3", 80, hostname="*.anotherwildcard.io"),
        ),
        gateway("httproute-hostname-intersection-all", listener("listener-1", 80)),
    ]


def test_hostname_intersection(suite: Suite) -> None:
    suite.apply(hostname_gateways())
    parent = f"{{name: httproute-hostname-intersection, namespace: {INFRA}}}"

    def hosted(name: str, hosts: str, prefix: str, backend: str, to_gw: str = parent) -> str:
        return route(name, prefixed(prefix, backend), parent=to_gw, extra=f"hostnames: {hosts}")

    all_parent = f"{{name: httproute-hostname-intersection-all, namespace: {INFRA}}}"
    suite.apply(
        "---".join(
            [
                hosted(
                    "specific-host-matches-listener-specific-host",
                    '[non.matching.com, "*.nonmatchingwildcard.io", very.specific.com]',
                    "/s1",
                    V1,
                ),
                hosted(
                    "specific-host-matches-listener-wildcard-host",
                    "[non.matching.com, wildcard.io, foo.wildcard.io, bar.wildcard.io, foo.bar.wildcard.io]",
                    "/s2",
                    V2,
                ),
                hosted(
                    "wildcard-host-matches-listener-specific-host", '[non.matching.com, "*.specific.com"]', "/s3", V3
                ),
                hosted("wildcard-host-matches-listener-wildcard-host", '["*.anotherwildcard.io"]', "/s4", V1),
                hosted("no-intersecting-hosts", "[specific.but.wrong.com, wildcard.io]", "/s5", V2),
                route(
                    "httproute-hostname-intersection-all",
                    "  - backendRefs: [{name: infra-backend-v2, port: 8080}]",
                    parent=all_parent,
                    extra="hostnames: [first.com, sub.first.com, second.com, sub.second.com]",
                ),
            ]
        )
    )
    gw_ref = (INFRA, "httproute-hostname-intersection")
    routes = [
        (INFRA, n)
        for n in (
            "specific-host-matches-listener-specific-host",
            "specific-host-matches-listener-wildcard-host",
            "wildcard-host-matches-listener-specific-host",
            "wildcard-host-matches-listener-wildcard-host",
        )
    ]
    gw = accepted(suite.lab, gw_ref, *routes)
    for rt in routes:
        resolved_refs(suite.lab, rt, gw_ref)

    def at(host: str, path: str, backend: str | None) -> Case:
        return (
            Case(path, host=host, backend=backend, namespace=INFRA) if backend else Case(path, host=host, status=(404,))
        )

    expect(
        gw,
        [
            at("very.specific.com", "/s1", V1),
            at("very.specific.com:1234", "/s1", V1),
            at("non.matching.com", "/s1", None),
            at("foo.nonmatchingwildcard.io", "/s1", None),
            at("foo.wildcard.io", "/s1", None),
            at("very.specific.com", "/non-matching-prefix", None),
            at("foo.wildcard.io", "/s2", V2),
            at("bar.wildcard.io", "/s2", V2),
            at("foo.bar.wildcard.io", "/s2", V2),
            at("non.matching.com", "/s2", None),
            at("wildcard.io", "/s2", None),
            at("very.specific.com", "/s2", None),
            at("foo.wildcard.io", "/non-matching-prefix", None),
            at("very.specific.com", "/s3", V3),
            at("non.matching.com", "/s3", None),
            at("foo.specific.com", "/s3", None),
            at("foo.wildcard.io", "/s3", None),
            at("foo.anotherwildcard.io", "/s4", V1),
            at("bar.anotherwildcard.io", "/s4", V1),
            at("foo.bar.anotherwildcard.io", "/s4", V1),
            at("anotherwildcard.io", "/s4", None),
            at("foo.wildcard.io", "/s4", None),
            at("very.specific.com", "/s4", None),
            at("foo.anotherwildcard.io", "/non-matching-prefix", None),
        ],
    )
    route_condition(
        suite.lab, (INFRA, "no-intersecting-hosts"), gw_ref, "Accepted", "False", "NoMatchingListenerHostname"
    )
    expect(gw, [at("specific.but.wrong.com", "/s5", None), at("wildcard.io", "/s5", None)])

    def attached() -> str | None:
        gw_obj = get(suite.lab, "Gateway", *gw_ref)
        listeners = {li["name"]: li for li in (gw_obj.get("status") or {}).get("listeners") or []}
        for name, count in (("listener-1", 2), ("listener-2", 1), ("listener-3", 1)):
            li = listeners.get(name) or {}
            kinds = [(k.get("group"), k.get("kind")) for k in li.get("supportedKinds") or []]
            conditions = li.get("conditions") or []
            if (
                li.get("attachedRoutes") != count
                or ("gateway.networking.k8s.io", "HTTPRoute") not in kinds
                or not has({}, conditions, "Accepted", "True")
                or not has({}, conditions, "ResolvedRefs", "True")
            ):
                return f"listener {name} is {li}"
        return None

    eventually(attached, "listener status with the accepted routes counted")
    all_ref = (INFRA, "httproute-hostname-intersection-all")
    gw_all = accepted(suite.lab, all_ref, (INFRA, "httproute-hostname-intersection-all"))
    resolved_refs(suite.lab, (INFRA, "httproute-hostname-intersection-all"), all_ref)
    expect(
        gw_all,
        [at(h, "/", V2) for h in ("first.com", "sub.first.com", "second.com", "sub.second.com")]
        + [at(h, "/", None) for h in ("third.com", "sub.third.com")],
    )


def test_listener_hostname_matching(suite: Suite) -> None:
    name = "httproute-listener-hostname-matching"
    suite.apply(
        [
            gateway(
                name,
                listener("listener-1", 80, hostname="bar.com"),
                listener("listener-2", 80, hostname="foo.bar.com"),
                listener("listener-3", 80, hostname="*.bar.com"),
                listener("listener-4", 80, hostname="*.foo.com"),
            )
        ]
    )
    ref = f"name: {name}, namespace: {INFRA}"
    suite.apply(
        route("backend-v1", TO_V1, parent=f"{{{ref}, sectionName: listener-1}}")
        + "---"
        + route(
            "backend-v2",
            "  - backendRefs: [{name: infra-backend-v2, port: 8080}]",
            parent=f"{{{ref}, sectionName: listener-2}}",
        )
        + "---"
        + route(
            "backend-v3",
            "  - backendRefs: [{name: infra-backend-v3, port: 8080}]",
            parent=f"{{{ref}, sectionName: listener-3}}, {{{ref}, sectionName: listener-4}}",
        )
    )
    gw_ref = (INFRA, name)
    for rt in ("backend-v1", "backend-v2", "backend-v3"):
        accepted(suite.lab, gw_ref, (INFRA, rt))
        resolved_refs(suite.lab, (INFRA, rt), gw_ref)
    gw = accepted(suite.lab, gw_ref, listener="listener-3")
    table = [
        ("bar.com", V1),
        ("foo.bar.com", V2),
        ("baz.bar.com", V3),
        ("boo.bar.com", V3),
        ("multiple.prefixes.bar.com", V3),
        ("multiple.prefixes.foo.com", V3),
    ]
    cases = [Case("/", host=h, backend=b, namespace=INFRA) for h, b in table]
    cases += [Case("/", host=h, status=(404,)) for h in ("foo.com", "no.matching.host")]
    expect(gw, cases)


def test_listener_port_matching(suite: Suite) -> None:
    name = "httproute-listener-port-matching"
    suite.apply(
        [
            gateway(
                name,
                listener("listener-1", 80, hostname="foo.com"),
                listener("listener-2", 8080, hostname="foo.com"),
                listener("listener-3", 8080, hostname="bar.com"),
                listener("listener-4", 8090, hostname="foo.com"),
                listener("listener-5", 8090, hostname="bar.com"),
            )
        ]
    )
    ref = f"name: {name}, namespace: {INFRA}"
    suite.apply(
        route("backend-v1", TO_V1, parent=f"{{{ref}, port: 80}}")
        + "---"
        + route(
            "backend-v2", "  - backendRefs: [{name: infra-backend-v2, port: 8080}]", parent=f"{{{ref}, port: 8080}}"
        )
        + "---"
        + route(
            "backend-v3",
            "  - backendRefs: [{name: infra-backend-v3, port: 8080}]",
            parent=f"{{{ref}, port: 8090, sectionName: listener-4}}",
        )
    )
    gw_ref = (INFRA, name)
    at80 = accepted(suite.lab, gw_ref, (INFRA, "backend-v1"), listener="listener-1")
    at8080 = accepted(suite.lab, gw_ref, (INFRA, "backend-v2"), listener="listener-2")
    at8090 = accepted(suite.lab, gw_ref, (INFRA, "backend-v3"), listener="listener-4")
    for rt in ("backend-v1", "backend-v2", "backend-v3"):
        resolved_refs(suite.lab, (INFRA, rt), gw_ref)
    expect(at80, [Case("/", host="foo.com", backend=V1, namespace=INFRA)])
    expect(
        at8080,
        [Case("/", host=h, backend=V2, namespace=INFRA) for h in ("foo.com:8080", "bar.com:8080")],
    )
    expect(
        at8090,
        [Case("/", host="foo.com:8090", backend=V3, namespace=INFRA), Case("/", host="bar.com:8090", status=(404,))],
    )


def test_multiple_gateways(suite: Suite) -> None:
    shared = route(
        "multiple-gateways-shared-route",
        prefixed("/shared", V1),
        parent="{name: same-namespace}, {name: all-namespaces}",
    )
    dedicated = [
        route(
            f"{gw}-dedicated-route",
            f"  - matches: [{{path: {{type: PathPrefix, value: /}}}}]\n    backendRefs: [{{name: {b}, port: 8080}}]",
            parent=f"{{name: {gw}}}",
        )
        for gw, b in (("same-namespace", V2), ("all-namespaces", V3))
    ]
    suite.apply("---".join([shared, *dedicated]))
    for gw_name, backend in (("same-namespace", V2), ("all-namespaces", V3)):
        gw = accepted(
            suite.lab,
            (INFRA, gw_name),
            (INFRA, "multiple-gateways-shared-route"),
            (INFRA, f"{gw_name}-dedicated-route"),
        )
        expect(gw, [Case("/shared", backend=V1, namespace=INFRA), Case("/", backend=backend, namespace=INFRA)])


def test_service_types(suite: Suite) -> None:
    rules = "\n".join(
        f"  - matches: [{{path: {{type: Exact, value: /{n}}}}}]\n    backendRefs: [{{name: {n}, port: 8080}}]"
        for n in ("manual-endpointslices", "headless", "headless-manual-endpointslices")
    )
    port = [{"name": "first-port", "protocol": "TCP", "port": 8080, "targetPort": 3000}]
    services: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "manual-endpointslices", "namespace": INFRA},
            "spec": {"ports": port},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "headless", "namespace": INFRA},
            "spec": {"clusterIP": "None", "selector": {"app": V1}, "ports": port},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "headless-manual-endpointslices", "namespace": INFRA},
            "spec": {"clusterIP": "None", "ports": port},
        },
    ]

    def endpoint_slice(service: str, family: str, endpoints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        found: dict[str, Any] = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{service}-{family}",
                "namespace": INFRA,
                "labels": {"kubernetes.io/service-name": service},
            },
            "addressType": "IPv4" if family == "ip4" else "IPv6",
            "ports": [{"name": "first-port", "port": 3000, "protocol": "TCP"}],
        }
        if endpoints:
            found["endpoints"] = endpoints
        return found

    manual = ("manual-endpointslices", "headless-manual-endpointslices")
    suite.apply(route("service-types", rules))
    suite.apply(services + [endpoint_slice(s, f) for s in manual for f in ("ip4", "ip6")])
    rt = (INFRA, "service-types")
    gw = accepted(suite.lab, SAME, rt)
    resolved_refs(suite.lab, rt, SAME)
    # As the suite does: each IPv4 slice lists infra-backend-v1's pods by their IPs
    # (there are no IPv6 pod IPs here, so the IPv6 slices stay empty and unpatched).
    pods = [p for p in suite.lab.objects("Pod", namespace=INFRA) if p["metadata"]["labels"].get("app") == V1]
    assert pods, "infra-backend-v1 has no pods"
    endpoints = [
        {
            "addresses": [ip["ip"]],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "nodeName": p["spec"]["nodeName"],
            "targetRef": {
                "kind": "Pod",
                "name": p["metadata"]["name"],
                "namespace": INFRA,
                "uid": p["metadata"]["uid"],
            },
        }
        for p in pods
        for ip in p["status"]["podIPs"]
        if ":" not in ip["ip"]
    ]
    suite.lab.apply([endpoint_slice(s, "ip4", endpoints) for s in manual])
    expect(gw, [Case(f"/{n}", backend=V1, namespace=INFRA) for n in (*manual, "headless")])
