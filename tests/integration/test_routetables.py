"""RouteTables in a real lab: petstore v1 and v2 as pods, a VirtualService that
delegates ``/`` to a RouteTable, and real requests through the gateway.

The RouteTable has the shape Flagger's Gloo router writes: one route with
``inheritablePathMatchers: true`` and a weighted ``multi`` over a "primary" and a
"canary" Upstream, each a kube Upstream with a pod ``selector``. Also: the gateway
has no listener until the first VirtualService (Gloo's ``translateEmptyGateways``
is false), on the port recorded at install.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from helpers import Lab
from helpers.errors import ApplyRefused

from .conftest import Client, version_of

pytestmark = pytest.mark.integration
NS = "default"


def upstream(name: str, service: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Upstream",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "kube": {
                "serviceName": service,
                "serviceNamespace": NS,
                "servicePort": 8080,
                "selector": {"version": version},
            }
        },
    }


def route_table(primary: int, canary: int) -> dict[str, Any]:
    def to(name: str, weight: int) -> dict[str, Any]:
        return {"destination": {"upstream": {"name": name, "namespace": NS}}, "weight": weight}

    return {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "RouteTable",
        "metadata": {"name": "petstore", "namespace": NS},
        "spec": {
            "routes": [
                {
                    "inheritablePathMatchers": True,
                    "routeAction": {"multi": {"destinations": [to("primary", primary), to("canary", canary)]}},
                    "options": {"prefixRewrite": "/api/pets"},
                }
            ]
        },
    }


VIRTUAL_SERVICE = {
    "apiVersion": "gateway.solo.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "petstore", "namespace": NS},
    "spec": {
        "virtualHost": {
            "domains": ["*"],
            "routes": [
                {"matchers": [{"prefix": "/"}], "delegateAction": {"ref": {"name": "petstore", "namespace": NS}}}
            ],
        }
    },
}


def versions(client: Client, n: int) -> list[str]:
    answers = [client.get("/") for _ in range(n)]
    assert {status for status, _ in answers} == {200}, answers
    return [version_of(body) for _, body in answers]


def refused(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_virtual_service_delegates_to_a_weighted_route_table(petstore_lab: Lab) -> None:
    lab = petstore_lab
    lab.apply(
        upstream("primary", "petstore-v1", "v1"),
        upstream("canary", "petstore-v2", "v2"),
        upstream("nobody", "petstore-v1", "v2"),  # v1's Service, v2's label: no pod is both
        route_table(100, 0),
        VIRTUAL_SERVICE,
    )
    assert lab.get("rt")["NAME"].tolist() == ["petstore"]
    (rt,) = lab.objects("routetable", "petstore")
    assert rt["status"]["statuses"]["gloo-system"] == {"state": "Accepted", "reportedBy": "gateway"}
    (nobody,) = lab.objects("upstream", "nobody", NS)
    assert nobody["status"]["statuses"]["gloo-system"]["state"] == "Accepted"

    client = Client(lab.proxy_url())
    try:
        assert set(versions(client, 10)) == {"v1"}  # weight 0: the canary gets nothing
        lab.apply(route_table(0, 100))
        assert set(versions(client, 10)) == {"v2"}
        lab.apply(route_table(50, 50))
        assert set(versions(client, 60)) == {"v1", "v2"}  # both answer (1 - 2 * 0.5**60: certain)

        # The selector really filters: an Upstream whose selector matches none of its
        # Service's pods has no endpoints, and the gateway says so.
        to_nobody = route_table(100, 0)
        to_nobody["spec"]["routes"][0]["routeAction"] = {"single": {"upstream": {"name": "nobody", "namespace": NS}}}
        lab.apply(to_nobody)
        assert client.get("/")[0] == 503
    finally:
        client.close()


def test_a_cycle_is_refused_and_the_gateway_keeps_serving(petstore_lab: Lab) -> None:
    lab = petstore_lab
    lab.apply(upstream("primary", "petstore-v1", "v1"), upstream("canary", "petstore-v2", "v2"), route_table(100, 0))
    lab.apply(VIRTUAL_SERVICE)
    loop = route_table(100, 0)
    loop["spec"]["routes"] = [{"delegateAction": {"ref": {"name": "petstore", "namespace": NS}}}]
    with pytest.raises(ApplyRefused, match=r"delegation cycle detected: \[default.petstore\] -> \[default.petstore\]"):
        lab.apply(loop)
    client = Client(lab.proxy_url())
    try:
        assert set(versions(client, 5)) == {"v1"}
    finally:
        client.close()


def test_the_gateway_listens_only_while_a_virtual_service_exists(petstore_lab: Lab) -> None:
    lab = petstore_lab
    url = lab.proxy_url()
    assert refused(url), "Gloo creates no listener without a VirtualService"
    lab.apply(upstream("primary", "petstore-v1", "v1"), upstream("canary", "petstore-v2", "v2"), route_table(100, 0))
    assert refused(url), "a RouteTable alone opens nothing"
    lab.apply(VIRTUAL_SERVICE)
    assert lab.proxy_url() == url
    client = Client(url)
    try:
        assert versions(client, 3) == ["v1"] * 3  # the very first request after apply is served
    finally:
        client.close()
    lab.delete(VIRTUAL_SERVICE)
    assert refused(url) and lab.proxy_url() == url
    assert lab.wait(30)["ready"], "`coalmine wait` does not need a listener"
    lab.apply(VIRTUAL_SERVICE)
    client = Client(url)
    try:
        assert versions(client, 1) == ["v1"]
    finally:
        client.close()
