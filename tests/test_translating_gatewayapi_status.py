"""Route and listener statuses as the Gateway API v1.6.1 conformance suite checks them.

Each test translates the objects of one conformance case (``conformance/tests/*.yaml``
at v1.6.1, rewritten small: the base Gateways ``same-namespace``, ``all-namespaces``,
``backend-namespaces`` and the ``infra-backend-v1..v3`` Services) and asserts what
``conformance/utils/kubernetes/helpers.go`` waits for: a condition of a given type,
status and reason on the parent entry of the Gateway, ``attachedRoutes`` per
listener, ``supportedKinds``, and which backend a request reaches.
"""

from __future__ import annotations

from typing import Any

from helpers.runtime.gatewayapi.translating import GatewayTranslation, translate
from helpers.runtime.matching import RequestView
from helpers.runtime.routes import DirectResponse, Endpoint, RouteAction, RouteTable

INFRA, WEB = "gateway-conformance-infra", "gateway-conformance-web-backend"
V1 = "gateway.networking.k8s.io/v1"
CLASS = {
    "apiVersion": V1,
    "kind": "GatewayClass",
    "metadata": {"name": "kgateway"},
    "spec": {"controllerName": "kgateway.dev/kgateway"},
}


def gateway(name: str, *listeners: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": V1,
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": INFRA, "generation": generation},
        "spec": {"gatewayClassName": "kgateway", "listeners": list(listeners)},
    }


def listener(name: str = "http", port: int = 80, protocol: str = "HTTP", **extra: Any) -> dict[str, Any]:
    return {"name": name, "port": port, "protocol": protocol, **extra}


def same(name: str = "http", **extra: Any) -> dict[str, Any]:
    return listener(name, allowedRoutes={"namespaces": {"from": "Same"}}, **extra)


def service(name: str, ns: str = INFRA, **port: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": name}, "ports": [{"port": 8080, **port}]},
    }


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def http_route(
    name: str, parents: list[dict[str, Any]], rules: list[dict[str, Any]], ns: str = INFRA, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": V1,
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns, "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"parentRefs": parents, "rules": rules, **spec},
    }


def to(name: str, **ref: Any) -> dict[str, Any]:
    return {"backendRefs": [{"name": name, "port": 8080, **ref}]}


BASE = [
    CLASS,
    namespace(INFRA, **{"gateway-conformance": "infra"}),
    namespace(WEB, **{"gateway-conformance": "web-backend"}),
    gateway("same-namespace", same()),
    gateway("all-namespaces", listener(allowedRoutes={"namespaces": {"from": "All"}})),
    *(service(f"infra-backend-v{i}") for i in (1, 2, 3)),
    service("web-backend", WEB),
]
ENDPOINTS = {(INFRA, f"infra-backend-v{i}", 8080): [Endpoint("127.0.0.1", 3000 + i)] for i in (1, 2, 3)}


def run(*objects: dict[str, Any]) -> GatewayTranslation:
    found = [*BASE, *objects]
    labels = {o["metadata"]["name"]: o["metadata"].get("labels") or {} for o in found if o["kind"] == "Namespace"}
    return translate(found, ENDPOINTS, labels)


def condition(
    result: GatewayTranslation, route: str, kind: str, gw: str = "same-namespace", ns: str = INFRA
) -> tuple[str, str]:
    """HTTPRouteMustHaveCondition: the condition on the route's entry for Gateway ``gw``."""
    for parent in result.statuses[("HTTPRoute", ns, route)]["parents"]:
        if parent["parentRef"]["name"] == gw:
            found = {c["type"]: (c["status"], c["reason"]) for c in parent["conditions"]}
            return found[kind]
    raise AssertionError(f"no parent entry for {gw}")


def attached(result: GatewayTranslation, gw: str = "same-namespace") -> list[int]:
    return [li["attachedRoutes"] for li in result.statuses[("Gateway", INFRA, gw)]["listeners"]]


def answer(table: RouteTable, path: str = "/", host: str = "example.com") -> str:
    """Which backend a request reaches, or the status the gateway answers."""
    found = table.select(RequestView("GET", host, path, {}, {}))
    if found is None:
        return "404"
    action = found[0].action
    if isinstance(action, DirectResponse):
        return str(action.status)
    assert isinstance(action, RouteAction)
    dest = action.destinations[0].destination
    return "500" if dest.invalid else dest.cluster.split(":", 1)[1].rsplit("-", 1)[0].split("-", 3)[-1]


def port_table(result: GatewayTranslation, gw: str = "same-namespace", port: int = 80) -> RouteTable:
    return result.ports[(INFRA, gw, port)].table


# ── Accepted ─────────────────────────────────────────────────────────────────


def test_disallowed_kind_is_not_allowed_by_listeners_with_refs_resolved() -> None:
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
    r = run(
        tls_only,
        http_route("disallowed-kind", [{"name": "tlsroutes-only", "namespace": INFRA}], [to("infra-backend-v1")]),
    )
    assert condition(r, "disallowed-kind", "Accepted", "tlsroutes-only") == ("False", "NotAllowedByListeners")
    assert condition(r, "disallowed-kind", "ResolvedRefs", "tlsroutes-only") == ("True", "ResolvedRefs")
    assert attached(r, "tlsroutes-only") == [0]


def test_a_parent_ref_from_another_namespace_is_not_allowed_by_a_same_namespace_listener() -> None:
    route = http_route(
        "invalid-cross-namespace-parent-ref",
        [{"name": "same-namespace", "namespace": INFRA}],
        [to("web-backend")],
        ns=WEB,
    )
    r = run(route)
    assert condition(r, route["metadata"]["name"], "Accepted", ns=WEB) == ("False", "NotAllowedByListeners")
    assert condition(r, route["metadata"]["name"], "ResolvedRefs", ns=WEB) == ("True", "ResolvedRefs")
    assert attached(r) == [0]


def test_parent_refs_matching_no_listener_are_no_matching_parent() -> None:
    port_gw = gateway(
        "gateway-with-one-not-matching-port-and-section-name-route",
        listener(allowedRoutes={"kinds": [{"kind": "HTTPRoute"}], "namespaces": {"from": "All"}}),
    )
    cases = {
        "port": {"name": "same-namespace", "port": 81},
        "section": {"name": "same-namespace", "port": 80, "sectionName": "http1"},
        "both": {"name": port_gw["metadata"]["name"], "sectionName": "http", "port": 81},
    }
    r = run(port_gw, *(http_route(n, [ref], [to("infra-backend-v1", kind="Service")]) for n, ref in cases.items()))
    for name, ref in cases.items():
        assert condition(r, name, "Accepted", ref["name"]) == ("False", "NoMatchingParent"), name
        assert condition(r, name, "ResolvedRefs", ref["name"]) == ("True", "ResolvedRefs"), name
    assert attached(r) == [0] and attached(r, port_gw["metadata"]["name"]) == [0]


def test_listener_port_matching_and_isolation_on_a_shared_port() -> None:
    gw = gateway(
        "httproute-listener-port-matching",
        *(
            same(f"listener-{i}", hostname=host) | {"port": port}
            for i, (port, host) in enumerate(
                [(80, "foo.com"), (8080, "foo.com"), (8080, "bar.com"), (8090, "foo.com"), (8090, "bar.com")], 1
            )
        ),
    )
    parent = {"name": gw["metadata"]["name"], "namespace": INFRA}
    r = run(
        gw,
        http_route("backend-v1", [parent | {"port": 80}], [to("infra-backend-v1")]),
        http_route("backend-v2", [parent | {"port": 8080}], [to("infra-backend-v2")]),
        http_route("backend-v3", [parent | {"port": 8090, "sectionName": "listener-4"}], [to("infra-backend-v3")]),
    )
    assert attached(r, gw["metadata"]["name"]) == [1, 1, 1, 1, 0]
    assert {k for k in r.ports if k[1] == gw["metadata"]["name"]} == {
        (INFRA, gw["metadata"]["name"], p) for p in (80, 8080, 8090)
    }
    assert r.ports[(INFRA, gw["metadata"]["name"], 8080)].listeners == ("listener-2", "listener-3")
    p80, p8080, p8090 = (port_table(r, gw["metadata"]["name"], p) for p in (80, 8080, 8090))
    assert answer(p80, host="foo.com") == "infra-backend-v1"
    assert answer(p8080, host="foo.com:8080") == answer(p8080, host="bar.com:8080") == "infra-backend-v2"
    assert answer(p8090, host="foo.com:8090") == "infra-backend-v3"
    assert answer(p8090, host="bar.com:8090") == "404"  # listener-5's: nothing attached, no fall-through


def test_a_more_specific_listener_owns_its_hosts_even_without_routes() -> None:
    gw = gateway("isolation", same("empty", hostname="*.wildcard.org"), same("catch-all"))  # both on port 80
    catch_all = http_route(
        "catch",
        [{"name": "isolation", "sectionName": "catch-all"}],
        [to("infra-backend-v1")],
        hostnames=["a.wildcard.org", "example.org"],
    )
    table = port_table(run(gw, catch_all), "isolation")
    assert answer(table, host="example.org") == "infra-backend-v1"
    assert answer(table, host="a.wildcard.org") == "404"  # the *.wildcard.org listener's host, not the catch-all's


def test_observed_generation_is_the_objects_generation() -> None:
    route = http_route("observed-generation-bump", [{"name": "same-namespace"}], [to("infra-backend-v1")])
    route["metadata"]["generation"] = 2
    r = run(route)
    for c in r.statuses[("HTTPRoute", INFRA, "observed-generation-bump")]["parents"][0]["conditions"]:
        assert c["observedGeneration"] == 2
    status = r.statuses[("Gateway", INFRA, "same-namespace")]
    assert {c["observedGeneration"] for c in status["conditions"] + status["listeners"][0]["conditions"]} == {1}


# ── ResolvedRefs and the 500s ────────────────────────────────────────────────


def test_unknown_backend_kind_is_invalid_kind_and_answers_500() -> None:
    ref = {"group": "unknownkind.example.com", "kind": "NonExistent"}
    r = run(
        http_route("invalid-backend-ref-unknown-kind", [{"name": "same-namespace"}], [to("infra-backend-v1", **ref)])
    )
    assert condition(r, "invalid-backend-ref-unknown-kind", "Accepted") == ("True", "Accepted")
    assert condition(r, "invalid-backend-ref-unknown-kind", "ResolvedRefs") == ("False", "InvalidKind")
    assert answer(port_table(r), "/v2") == "500"


def test_a_nonexistent_backend_is_backend_not_found_and_answers_500() -> None:
    r = run(
        http_route(
            "invalid-nonexistent-backend-ref", [{"name": "same-namespace"}], [to("nonexistent", namespace=INFRA)]
        )
    )
    assert condition(r, "invalid-nonexistent-backend-ref", "ResolvedRefs") == ("False", "BackendNotFound")
    assert answer(port_table(r)) == "500"


def test_omitted_and_empty_backend_refs_answer_500() -> None:
    rules = [
        {"matches": [{"path": {"type": "Exact", "value": "/omitted-no-forward"}}]},
        {"matches": [{"path": {"type": "Exact", "value": "/empty-no-forward"}}], "backendRefs": []},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], **to("infra-backend-v1")},
    ]
    r = run(http_route("omitted-backendrefs", [{"name": "same-namespace"}], rules))
    assert condition(r, "omitted-backendrefs", "ResolvedRefs") == ("True", "ResolvedRefs")
    table = port_table(r)
    assert [answer(table, p) for p in ("/forward", "/omitted-no-forward", "/empty-no-forward")] == [
        "infra-backend-v1",
        "500",
        "500",
    ]


def test_named_rules_name_their_routes() -> None:
    rules = [
        {"name": "named-rule", **to("infra-backend-v1")},
        {"matches": [{"path": {"value": "/unnamed"}}], **to("infra-backend-v2")},
    ]
    table = port_table(run(http_route("named-rule", [{"name": "same-namespace"}], rules)))
    found = table.select(RequestView("GET", "x", "/", {}, {}))
    assert found is not None and found[0].name == "named-rule"
    found = table.select(RequestView("GET", "x", "/unnamed", {}, {}))
    assert found is not None and found[0].name == ""


def test_one_route_on_two_gateways_gets_an_entry_for_each() -> None:
    parents = [{"name": "same-namespace"}, {"name": "all-namespaces"}]
    r = run(http_route("multiple-gateways", parents, [to("infra-backend-v1")]))
    assert condition(r, "multiple-gateways", "Accepted") == condition(
        r, "multiple-gateways", "Accepted", "all-namespaces"
    )
    assert attached(r) == attached(r, "all-namespaces") == [1]


# ── listeners ────────────────────────────────────────────────────────────────


def test_invalid_route_kinds_are_left_out_of_supported_kinds() -> None:
    only = gateway("gateway-only-invalid-route-kind", listener(allowedRoutes={"kinds": [{"kind": "InvalidRoute"}]}))
    mixed = gateway(
        "gateway-supported-and-invalid-route-kind",
        listener(allowedRoutes={"kinds": [{"kind": "InvalidRoute"}, {"kind": "HTTPRoute"}]}),
    )
    r = run(only, mixed)
    for gw, kinds in ((only, []), (mixed, [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}])):
        (status,) = r.statuses[("Gateway", INFRA, gw["metadata"]["name"])]["listeners"]
        conds = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
        assert conds["ResolvedRefs"] == ("False", "InvalidRouteKinds")
        assert status["supportedKinds"] == kinds and status["attachedRoutes"] == 0


def test_listeners_on_one_port_with_the_same_hostname_conflict() -> None:
    gw = gateway("twice", same("a"), same("b"))
    (first, second) = run(gw).statuses[("Gateway", INFRA, "twice")]["listeners"]
    assert {c["type"]: c["status"] for c in first["conditions"]}["Conflicted"] == "False"
    conds = {c["type"]: (c["status"], c["reason"]) for c in second["conditions"]}
    assert conds["Conflicted"] == ("True", "HostnameConflict") and conds["Programmed"][0] == "False"
