"""RouteTables through the control plane in-process: strict admission, statuses as
``get`` shows them, and the gateway's listener, which (as Gloo's) exists only while
a VirtualService does."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from .test_controlplane import actions, control_plane, run
from .test_proxying import fetch
from .test_routetables import by_ref, direct, rt

NS = "default"


def front(*routes: dict[str, Any], name: str = "front", domain: str = "*") -> dict[str, Any]:
    return {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"virtualHost": {"domains": [domain], "routes": list(routes)}},
    }


def table(name: str, *routes: dict[str, Any]) -> dict[str, Any]:
    return rt(name, *routes, ns=NS)


def status(cp: Any, kind: str, name: str) -> dict[str, Any]:
    (obj,) = cp.get(kind, NS, name)
    return dict(obj["status"]["statuses"]["gloo-system"])


async def refused(port: int) -> bool:
    try:
        await fetch(port, "/")
    except ConnectionRefusedError:
        return True
    return False


def test_statuses_follow_the_delegation_and_a_cycle_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            await cp.install("gloo")
            (result,) = cp.apply([front(by_ref("a", ns=NS))])
            assert result["action"] == "created"
            assert result["warnings"] == ["spec.virtualHost.routes[0].delegateAction: route table default.a missing"]
            assert status(cp, "VirtualService", "front")["state"] == "Warning"

            assert actions(cp.apply([table("a", by_ref("b", ns=NS, prefix="/b"), direct(200, "/"))])) == [
                ("routetable.gateway.solo.io/a", "created")
            ]
            assert status(cp, "RouteTable", "a") == {
                "state": "Warning",
                "reportedBy": "gateway",
                "reason": "spec.routes[0].delegateAction: route table default.b missing",
            }
            before = cp.store.list()
            (closing,) = cp.apply([table("b", by_ref("a", ns=NS, prefix="/b"))])
            assert closing["error"] == (
                "admission refused by Gloo validation (strict): routetable.gateway.solo.io/b would make "
                "routetable.gateway.solo.io/a Rejected: invalid route: delegation cycle detected: "
                "[default.a] -> [default.b] -> [default.a]. The running configuration is unchanged."
            )
            assert cp.store.list() == before

            assert actions(cp.apply([table("b", direct(204, "/b"))])) == [("routetable.gateway.solo.io/b", "created")]
            assert (
                status(cp, "RouteTable", "a")
                == status(cp, "RouteTable", "b")
                == {
                    "state": "Accepted",
                    "reportedBy": "gateway",
                }
            )
            assert status(cp, "VirtualService", "front")["state"] == "Accepted"
            await cp.settle()
            port = cp.proxy_port
            assert port is not None
            assert [(await fetch(port, p)).status for p in ("/b/1", "/x")] == [204, 200]
            assert [r["source"] for r in cp.route_summary()] == ["rt:default/b routes[0]", "rt:default/a routes[1]"]

    run(scenario())


def test_a_route_table_with_a_schema_error_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            await cp.install("gloo")
            bad = table("a", direct(200))
            bad["spec"]["weight"] = "first"
            (result,) = cp.apply([bad])
            assert result["error"].startswith(
                "admission refused by Gloo validation (strict): routetable.gateway.solo.io/a would be Rejected: "
                'spec.weight: expected a whole number, got string "first"'
            )
            assert cp.get("RouteTable", None, None) == []

    run(scenario())


def test_no_listener_until_the_first_virtual_service_and_none_after_the_last(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            port = (await cp.install("gloo"))["proxyPort"]
            assert await refused(port), "installed, no VirtualService: Gloo has no listener"
            assert cp.ready()["ready"] and cp.ready()["gateway"]["installed"]  # `coalmine wait` is satisfied
            with socket.socket() as other, pytest.raises(OSError):
                other.bind(("127.0.0.1", port))  # ...and the port stays reserved for the gateway

            cp.apply([front(direct(200, "/"))])
            await cp.settle()
            assert (await fetch(port, "/")).status == 200 and cp.proxy_port == port
            assert actions(cp.apply([front(direct(201, "/"), name="second", domain="pets.example")])) == [
                ("virtualservice.gateway.solo.io/second", "created")
            ]
            await cp.settle()

            cp.delete([("VirtualService", NS, "front")])
            await cp.settle()
            assert (await fetch(port, "/")).status == 404, "one VirtualService left: still listening"
            cp.delete([("VirtualService", NS, "second")])
            await cp.settle()
            assert await refused(port) and cp.proxy_port == port
            assert cp.status()["gateway"]["url"] == f"http://127.0.0.1:{port}"

            cp.apply([front(direct(202, "/"))])
            await cp.settle()
            assert (await fetch(port, "/")).status == 202, "listening again on the same port"

    run(scenario())


def test_a_restart_listens_again_only_if_a_virtual_service_exists(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            port = (await cp.install("gloo"))["proxyPort"]
        async with control_plane(tmp_path) as cp:
            assert cp.proxy_port == port and await refused(port)
            cp.apply([front(direct(200, "/"))])
        async with control_plane(tmp_path) as cp:
            assert cp.proxy_port == port and (await fetch(port, "/")).status == 200

    run(scenario())


def group(*weights: int) -> dict[str, Any]:
    dests = [{"destination": {"upstream": {"name": f"petstore-{i}"}}, "weight": w} for i, w in enumerate(weights)]
    return {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "UpstreamGroup",
        "metadata": {"name": "petstore", "namespace": NS},
        "spec": {"destinations": dests},
    }


def static(name: str) -> dict[str, Any]:
    hosts = [{"addr": "127.0.0.1", "port": 9}]
    return {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Upstream",
        "metadata": {"name": name},
        "spec": {"static": {"hosts": hosts}},
    }


TO_GROUP = {"matchers": [{"prefix": "/"}], "routeAction": {"upstreamGroup": {"name": "petstore"}}}
NO_WEIGHT = "Weighted Destinations require a total weight that is greater than or equal to 1"


def test_a_group_without_weight_is_stored_and_the_routes_using_it_are_refused(tmp_path: Path) -> None:
    # Gloo's webhook is not registered for UpstreamGroups: the group is stored and
    # Accepted, the VirtualService using it turns Rejected; a new one is refused.
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            await cp.install("gloo")
            assert actions(cp.apply([static("petstore-0"), static("petstore-1"), group(1), front(TO_GROUP)]))[2:] == [
                ("upstreamgroup.gloo.solo.io/petstore", "created"),
                ("virtualservice.gateway.solo.io/front", "created"),
            ]
            (result,) = cp.apply([group(0, 0)])
            problem = f"spec.virtualHost.routes[0].routeAction.upstreamGroup: UpstreamGroup {NS}.petstore: {NO_WEIGHT}"
            assert result["action"] == "configured"
            assert f"virtualservice.gateway.solo.io/front is now Rejected: {problem}" in result["warnings"]
            assert status(cp, "UpstreamGroup", "petstore") == {"state": "Accepted", "reportedBy": "gloo"}
            assert status(cp, "VirtualService", "front") == {
                "state": "Rejected",
                "reportedBy": "gateway",
                "reason": problem,
            }
            await cp.settle()
            port = cp.proxy_port
            assert port is not None and (await fetch(port, "/")).status == 404  # Rejected: serves nothing

            before = cp.store.list()
            (refusal,) = cp.apply([front(TO_GROUP, name="second", domain="pets.example")])
            assert refusal["error"] == (
                "admission refused by Gloo validation (strict): virtualservice.gateway.solo.io/second would be "
                f"Rejected: {problem}. The running configuration is unchanged."
            )
            assert cp.store.list() == before
            (delegating,) = cp.apply([front(by_ref("a", ns=NS), name="third", domain="rt.example")])
            assert delegating["action"] == "created"
            before = cp.store.list()
            (refusal,) = cp.apply([table("a", TO_GROUP)])
            assert refusal["error"].startswith(
                "admission refused by Gloo validation (strict): routetable.gateway.solo.io/a would be Rejected: "
                f"spec.routes[0].routeAction.upstreamGroup: UpstreamGroup {NS}.petstore: {NO_WEIGHT}"
            )
            assert cp.store.list() == before

    run(scenario())


def test_a_virtual_service_without_a_virtual_host_is_stored_with_a_warning(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            port = (await cp.install("gloo"))["proxyPort"]
            empty = {"apiVersion": "gateway.solo.io/v1", "kind": "VirtualService", "metadata": {"name": "empty"}}
            (result,) = cp.apply([{**empty, "spec": {"displayName": "later"}}])
            warning = f"spec.virtualHost: virtual service [{NS}.empty] does not specify a virtual host"
            assert result["action"] == "created" and result["warnings"][0].startswith(warning)
            assert status(cp, "VirtualService", "empty")["state"] == "Warning"
            await cp.settle()
            assert (await fetch(port, "/")).status == 404, "Gloo listens, and the empty virtual host has no route"

    run(scenario())
