"""ReferenceGrant (``gatewayapi.grants``): cross-namespace backendRefs and certificateRefs.

The cases are the Gateway API v1.6.1 conformance suite's (httproute-reference-grant,
httproute-invalid-reference-grant, httproute-partially-invalid-via-invalid-reference-grant,
httproute-invalid-cross-namespace-backend-ref, gateway-secret-*-reference-grant), with the
objects of ``test_translating_gatewayapi_status``.
"""

from __future__ import annotations

from typing import Any

import pytest

from helpers.runtime.gatewayapi.grants import Grants, Reference
from helpers.runtime.gatewayapi.translating import GatewayTranslation, translate
from helpers.runtime.matching import RequestView
from helpers.runtime.routes import Endpoint, RouteAction

from .test_translating_gatewayapi_status import (
    BASE,
    INFRA,
    WEB,
    answer,
    condition,
    http_route,
    port_table,
    run,
    service,
    to,
)

APP = "gateway-conformance-app-backend"
ROUTES = "gateway.networking.k8s.io"


def grant(name: str, ns: str, source: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{ROUTES}/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"from": [source], "to": [target]},
    }


FROM_ROUTES = {"group": ROUTES, "kind": "HTTPRoute", "namespace": INFRA}
TO_WEB = {"group": "", "kind": "Service", "name": "web-backend"}
GOOD = grant("reference-grant", WEB, FROM_ROUTES, TO_WEB)
ROUTE = http_route("reference-grant", [{"name": "same-namespace"}], [to("web-backend", namespace=WEB)])


def test_a_grant_in_the_target_namespace_lets_the_route_reach_the_service() -> None:
    r = run(GOOD, ROUTE)
    assert condition(r, "reference-grant", "ResolvedRefs") == ("True", "ResolvedRefs")
    found = port_table(r).select(_request())
    assert found is not None and isinstance(found[0].action, RouteAction)
    assert found[0].action.destinations[0].destination.cluster == f"kube-svc:{WEB}-web-backend-8080"


def test_without_the_grant_the_ref_is_not_permitted_and_answers_500() -> None:
    r = run(ROUTE)  # also: the grant deleted, the next translation revokes the access
    assert condition(r, "reference-grant", "Accepted") == ("True", "Accepted")
    assert condition(r, "reference-grant", "ResolvedRefs") == ("False", "RefNotPermitted")
    assert answer(port_table(r)) == "500"
    assert any("ReferenceGrant" in w for w in r.warnings[("HTTPRoute", INFRA, "reference-grant")])


@pytest.mark.parametrize(
    "wrong",
    [
        grant("wrong-namespace", INFRA, FROM_ROUTES, TO_WEB),
        grant("wrong-from-group", WEB, FROM_ROUTES | {"group": "not-the-group-youre-looking-for"}, TO_WEB),
        grant("wrong-from-kind", WEB, FROM_ROUTES | {"kind": "Gateway"}, TO_WEB),
        grant("wrong-from-namespace", WEB, FROM_ROUTES | {"namespace": "not-the-namespace"}, TO_WEB),
        grant("wrong-to-group", WEB, FROM_ROUTES, TO_WEB | {"group": "not-the-group-youre-looking-for"}),
        grant("wrong-to-kind", WEB, FROM_ROUTES, TO_WEB | {"kind": "Secret"}),
        grant("wrong-to-name", WEB, FROM_ROUTES, TO_WEB | {"name": "not-the-service-youre-looking-for"}),
    ],
    ids=lambda g: g["metadata"]["name"],
)
def test_a_grant_must_name_both_sides_exactly(wrong: dict[str, Any]) -> None:
    r = run(wrong, ROUTE)
    assert condition(r, "reference-grant", "ResolvedRefs") == ("False", "RefNotPermitted")
    assert answer(port_table(r)) == "500"


def test_a_grant_without_a_name_covers_every_service_of_its_namespace() -> None:
    everyone = grant("all", WEB, FROM_ROUTES, {"group": "", "kind": "Service"})
    assert condition(run(everyone, ROUTE), "reference-grant", "ResolvedRefs") == ("True", "ResolvedRefs")


def test_only_the_refs_without_a_grant_answer_500() -> None:
    app = [service(f"app-backend-v{i}", APP) for i in (1, 2)]
    partial = grant(
        "invalid-reference-grant", APP, FROM_ROUTES, {"group": "", "kind": "Service", "name": "app-backend-v1"}
    )
    route = http_route(
        "invalid-reference-grant",
        [{"name": "same-namespace"}],
        [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}], **to("app-backend-v2", namespace=APP)},
            to("app-backend-v1", namespace=APP),
        ],
    )
    r = run(*app, partial, route)
    assert condition(r, "invalid-reference-grant", "ResolvedRefs") == ("False", "RefNotPermitted")
    table = port_table(r)
    assert answer(table, "/v2") == "500"
    found = table.select(_request("/"))
    assert found is not None and isinstance(found[0].action, RouteAction)
    assert found[0].action.destinations[0].destination.cluster == f"kube-svc:{APP}-app-backend-v1-8080"


def test_a_granted_service_is_served_with_its_own_namespaces_endpoints() -> None:
    endpoints = {(WEB, "web-backend", 8080): [Endpoint("127.0.0.1", 4242)]}
    r = translate([*BASE, GOOD, ROUTE], endpoints)
    assert r.ports[(INFRA, "same-namespace", 80)].table.clusters[f"kube-svc:{WEB}-web-backend-8080"].endpoints == (
        Endpoint("127.0.0.1", 4242),
    )


def test_a_route_in_the_services_own_namespace_needs_no_grant() -> None:
    grants = Grants([])
    same = Reference((ROUTES, "HTTPRoute", WEB), ("", "Service", WEB, "web-backend"))
    other = Reference((ROUTES, "HTTPRoute", INFRA), ("", "Service", WEB, "web-backend"))
    assert grants.permits(same) and not grants.permits(other)


def test_a_mirror_into_another_namespace_needs_a_grant_too() -> None:
    mirror = {
        "type": "RequestMirror",
        "requestMirror": {"backendRef": {"name": "web-backend", "namespace": WEB, "port": 8080}},
    }
    route = http_route("mirror", [{"name": "same-namespace"}], [{**to("infra-backend-v1"), "filters": [mirror]}])
    denied, allowed = run(route), run(route, grant("m", WEB, FROM_ROUTES, TO_WEB))
    assert condition(denied, "mirror", "ResolvedRefs") == ("False", "RefNotPermitted")
    assert condition(allowed, "mirror", "ResolvedRefs") == ("True", "ResolvedRefs")
    mirrors = [_action(r).mirrors for r in (denied, allowed)]
    assert mirrors[0] == () and [m.destination.cluster for m in mirrors[1]] == [f"kube-svc:{WEB}-web-backend-8080"]


def _request(path: str = "/") -> RequestView:
    return RequestView("GET", "example.com", path, {}, {})


def _action(result: GatewayTranslation) -> RouteAction:
    found = port_table(result).select(_request())
    assert found is not None and isinstance(found[0].action, RouteAction)
    return found[0].action
