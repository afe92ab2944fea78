"""kgateway route delegation over real processes and HTTP, in the local lab.

A parent HTTPRoute hands ``/api`` to two children, one named and one picked by the
``delegation.kgateway.dev/label`` label; then a Gloo VirtualService delegating to
RouteTables is converted (``helpers.migrate``) and the converted HTTPRoutes, applied
beside it, answer as Gloo does.
"""

from __future__ import annotations

from typing import Any

import pytest

from helpers import Lab
from helpers.migrate.converting import convert_objects

from . import test_gatewayapi
from .conftest import Client, version_of

kgw_lab, listener = test_gatewayapi.kgw_lab, test_gatewayapi.listener  # the fixtures: a lab with kgateway

pytestmark = pytest.mark.integration
ROUTE = "gateway.networking.k8s.io/v1"
TO_API = [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/api"}}}]


def child(name: str, prefix: str, version: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", **({"labels": labels} if labels else {})}
    rule = {
        "matches": [{"path": {"type": "PathPrefix", "value": prefix}}],
        "filters": TO_API,
        "backendRefs": [{"name": f"petstore-{version}", "port": 8080}],
    }
    return {"apiVersion": ROUTE, "kind": "HTTPRoute", "metadata": meta, "spec": {"rules": [rule]}}


PARENT = {
    "apiVersion": ROUTE,
    "kind": "HTTPRoute",
    "metadata": {"name": "api", "namespace": "default"},
    "spec": {
        "parentRefs": [{"name": "http", "namespace": "kgateway-system"}],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                "backendRefs": [
                    {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "api-v1"},
                    {"group": "delegation.kgateway.dev", "kind": "label", "name": "canary", "namespace": "default"},
                ],
            }
        ],
    },
}


def test_a_parent_delegates_api_to_a_named_child_and_a_labelled_one(kgw_lab: Lab, listener: Client) -> None:
    kgw_lab.apply(
        [
            PARENT,
            child("api-v1", "/api/v1", "v1"),
            child("api-v2", "/api/v2", "v2", {"delegation.kgateway.dev/label": "canary"}),
        ]
    )
    status, body = listener.get("/api/v1/pets")
    assert status == 200 and version_of(body) == "v1"
    status, body = listener.get("/api/v2/pets")
    assert status == 200 and version_of(body) == "v2"
    assert listener.get("/api/v3/pets")[0] == 404  # no child matches it
    [api_v2] = kgw_lab.objects("httproute", "api-v2", namespace="default")
    child_status = api_v2["status"]["parents"]
    assert child_status[0]["parentRef"]["kind"] == "HTTPRoute" and child_status[0]["parentRef"]["name"] == "api"
    assert {c["type"]: c["status"] for c in child_status[0]["conditions"]} == {
        "Accepted": "True",
        "ResolvedRefs": "True",
    }

    kgw_lab.delete(kind="httproute", name="api-v1", namespace="default")
    assert listener.get("/api/v1/pets")[0] == 500  # an unresolved child: 500, as kgateway replaces it
    status, body = listener.get("/api/v2/pets")
    assert status == 200 and version_of(body) == "v2"


GLOO = [
    {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "coalmine", "namespace": "default"},
        "spec": {
            "virtualHost": {
                "domains": ["*"],
                "routes": [
                    {
                        "matchers": [{"prefix": "/api/pets/"}],
                        "delegateAction": {"ref": {"name": "pets", "namespace": "default"}},
                    },
                    {
                        "matchers": [{"prefix": "/api"}],
                        "delegateAction": {"selector": {"labels": {"team": "store"}, "namespaces": ["default"]}},
                    },
                ],
            }
        },
    },
    {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "RouteTable",
        "metadata": {"name": "pets", "namespace": "default"},
        "spec": {
            "routes": [
                {
                    "matchers": [{"prefix": "/api/pets/"}],
                    "routeAction": {
                        "single": {"upstream": {"name": "default-petstore-v2-8080", "namespace": "gloo-system"}}
                    },
                }
            ]
        },
    },
    {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "RouteTable",
        "metadata": {"name": "store", "namespace": "default", "labels": {"team": "store"}},
        "spec": {
            "routes": [
                {
                    "matchers": [{"exact": "/api/pets"}],
                    "routeAction": {
                        "single": {"upstream": {"name": "default-petstore-v1-8080", "namespace": "gloo-system"}}
                    },
                }
            ]
        },
    },
]


def test_converted_route_tables_answer_as_gloo_does(kgw_lab: Lab, listener: Client) -> None:
    kgw_lab.apply([*GLOO[1:], GLOO[0]])  # the RouteTables first, so the VirtualService finds them
    converted = convert_objects(GLOO)
    assert not [w for w in converted.warnings if "does not serve delegation" in w]
    kgw_lab.apply(converted.objects)
    gloo = Client(kgw_lab.proxy_url())
    try:
        for path in ("/api/pets", "/api/pets/2", "/api/other", "/elsewhere"):
            want, got = gloo.get(path), listener.get(path)
            assert got[0] == want[0], path
            if want[0] == 200:
                assert version_of(got[1]) == version_of(want[1]), path
        assert version_of(listener.get("/api/pets")[1]) == "v1"
        assert version_of(listener.get("/api/pets/2")[1]) == "v2"
    finally:
        gloo.close()
