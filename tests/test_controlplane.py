"""The control plane in-process (``controlplane.ControlPlane``) on a lab home in
``tmp_path``: apply / delete / get / install as the admin API calls them, refusals
that change nothing, Gloo's discovery over real petstore pods, the shapes of
``ready`` and ``status``, and a restart on the same home.

The objects are the lab's own manifests (``petstore-v1.yaml`` and Gloo's step 1).
Every scenario closes its control plane (pods, proxies) in a ``finally``.
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest

from helpers import httproutes
from helpers.errors import InvalidArgument, UnknownKind
from helpers.loading import load_manifests, manifests_dir
from helpers.runtime.controlplane import ControlPlane
from helpers.runtime.home import LabHome
from tests.conftest import until as until_polled

from .test_proxying import fetch

T = TypeVar("T")
DEADLINE_S = 15.0
PETSTORE = load_manifests([manifests_dir() / "petstore-v1.yaml"])
ROUTE = load_manifests([manifests_dir() / "gloo" / "1-route-to-v1.yaml"])
GATEWAY = load_manifests([manifests_dir() / "gateway-api" / "0-gateway.yaml"])
UPSTREAM = "default-petstore-v1-8080"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 45))


until = partial(until_polled, timeout=DEADLINE_S)


@asynccontextmanager
async def control_plane(root: Path) -> AsyncIterator[ControlPlane]:
    cp = ControlPlane(LabHome(root))
    try:
        await cp.start()
        yield cp
    finally:
        await cp.close()


def snapshot(cp: ControlPlane) -> tuple[list[dict[str, Any]], str]:
    """The store's objects and its file on disk, to compare before and after."""
    file = cp.home.store_file.read_text() if cp.home.store_file.exists() else ""
    return copy.deepcopy(cp.store.list()), file


def actions(results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["ref"], r.get("action") or f"error: {r.get('error')}") for r in results]


def ready(cp: ControlPlane) -> bool:
    return bool(cp.ready()["ready"])


# ── apply ────────────────────────────────────────────────────────────────────


def test_apply_reports_created_then_unchanged_then_configured(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            assert actions(cp.apply(PETSTORE)) == [
                ("configmap/petstore-v1-app", "created"),
                ("service/petstore-v1", "created"),
                ("deployment.apps/petstore-v1", "created"),
            ]
            assert all(r["warnings"] == [] for r in cp.apply(PETSTORE))
            assert [a for _, a in actions(cp.apply(PETSTORE))] == ["unchanged"] * 3
            changed = copy.deepcopy(PETSTORE[1])
            changed["metadata"]["labels"]["tier"] = "web"
            assert actions(cp.apply([changed])) == [("service/petstore-v1", "configured")]
            stored = cp.store.get(("Service", "default", "petstore-v1"))
            assert stored is not None and stored["metadata"]["generation"] == 2
            without_ns = copy.deepcopy(PETSTORE[0])
            del without_ns["metadata"]["namespace"]
            assert actions(cp.apply([without_ns])) == [("configmap/petstore-v1-app", "unchanged")]  # default

    run(scenario())


def test_refused_objects_leave_the_store_unchanged(tmp_path: Path) -> None:
    gadget = {"apiVersion": "v1", "kind": "Gadget", "metadata": {"name": "g"}}
    elsewhere = copy.deepcopy(PETSTORE[0])
    elsewhere["metadata"]["namespace"] = "nowhere"
    nameless = copy.deepcopy(PETSTORE[0])
    del nameless["metadata"]["name"]
    httproute = httproutes.route_to_v1()

    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            cp.apply(PETSTORE[:1])
            before = snapshot(cp)
            cases = [
                (gadget, 'no matches for kind "Gadget"'),
                (ROUTE[0], "run `coalmine install gloo` first"),
                (httproute, "run `coalmine install kgateway` first"),
                (elsewhere, 'namespaces "nowhere" not found'),
                (nameless, "metadata.name is required"),
                ("not an object", "expected an object"),
            ]
            for obj, message in cases:
                (result,) = cp.apply([obj])  # type: ignore[list-item]
                assert "action" not in result and message in result["error"], result
                assert snapshot(cp) == before, f"refusing {result['ref']} changed the store"

            await cp.install("gloo")
            assert actions(cp.apply(ROUTE)) == [("virtualservice.gateway.solo.io/coalmine", "created")]
            before = snapshot(cp)
            rival = copy.deepcopy(ROUTE[0])
            rival["metadata"]["name"] = "rival"  # also claims the domain '*'
            bad_template = copy.deepcopy(ROUTE[0])
            rest = bad_template["spec"]["virtualHost"]["routes"][0]["routeAction"]["single"]["destinationSpec"]["rest"]
            rest["parameters"]["headers"][":path"] = "/findPetWithId/{id}/{id}"
            for obj, message in ((rival, "domain conflict"), (bad_template, "invalid parameter template")):
                (result,) = cp.apply([obj])
                assert "admission refused by Gloo validation (strict)" in result["error"], result
                assert message in result["error"] and "The running configuration is unchanged" in result["error"]
                assert snapshot(cp) == before

    run(scenario())


def test_a_refusal_in_a_batch_does_not_stop_the_others(tmp_path: Path) -> None:
    bad = {"apiVersion": "v1", "kind": "Gadget", "metadata": {"name": "g"}}

    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            results = cp.apply([PETSTORE[0], bad, PETSTORE[1]])
            assert [("action" in r, "error" in r) for r in results] == [(True, False), (False, True), (True, False)]
            assert cp.store.get(("Service", "default", "petstore-v1")) is not None

    run(scenario())


# ── delete ───────────────────────────────────────────────────────────────────


def test_delete_missing_objects_is_not_found(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            results = cp.delete(
                [
                    ("ConfigMap", "default", "nope"),
                    ("Pod", "default", "nope-123"),
                    ("VirtualService", "gloo-system", "nope"),
                ]
            )
            assert [r["reason"] for r in results] == ["NotFound"] * 3
            assert results[0] == {"ref": "configmap/nope", "error": 'configmaps "nope" not found', "reason": "NotFound"}
            assert results[1]["error"] == 'pods "nope-123" not found'
            assert results[2]["error"] == 'virtualservices.gateway.solo.io "nope" not found'

    run(scenario())


def test_the_labs_namespaces_cannot_be_deleted(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            names = ["default", "kube-system", "kube-public", "gloo-system", "kgateway-system"]
            results = cp.delete([("Namespace", "", n) for n in names])
            assert all("is part of the lab and cannot be deleted" in r["error"] for r in results), results
            assert all("reason" not in r for r in results)
            names_left = {o["metadata"]["name"] for o in cp.get("Namespace", None, None)}
            assert {"default", "kube-system", "kube-public"} <= names_left

    run(scenario())


def test_delete_removes_an_object_and_a_namespace_takes_its_objects(tmp_path: Path) -> None:
    team = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "team"}, "data": {"a": "1"}}

    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            assert [a for _, a in actions(cp.apply([team, cm, PETSTORE[0]]))] == ["created"] * 3
            assert "team" in cp.namespaces()
            assert cp.delete([("ConfigMap", "default", "petstore-v1-app")]) == [
                {"ref": "configmap/petstore-v1-app", "action": "deleted"}
            ]
            assert cp.get("ConfigMap", "default", None) == []
            assert actions(cp.delete([("Namespace", "", "team")])) == [("namespace/team", "deleted")]
            assert "team" not in cp.namespaces() and cp.store.list() == []

    run(scenario())


# ── install, discovery, serving ──────────────────────────────────────────────


def test_fresh_lab_ready_and_status_shapes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            assert cp.ready() == {
                "ready": True,
                "deployments": [],
                "discoveryPending": [],
                "gateway": {"installed": False, "serving": False, "port": None},
                "listenersPending": [],
            }
            status = cp.status()
            prometheus = status.pop("prometheus")
            assert (prometheus["installed"], prometheus["url"], prometheus["targets"]) == (False, None, {})
            assert status == {
                "home": str(tmp_path),
                "gateway": {"installed": False, "url": None},
                "objects": 0,
                "pods": {"total": 0, "ready": 0},
                "routeTableVersion": cp.gloo.table.version,
                "gatewayApi": {"installed": False, "channel": None, "gateways": {}},
                "flagger": {"installed": False},
                "stats_urls": {},
            }
            assert cp.route_summary() == []
            assert [o["metadata"]["name"] for o in cp.get("Namespace", None, None)] == [
                "default",
                "kube-public",
                "kube-system",
            ]

    run(scenario())


def test_install_gloo_discovers_upstreams_and_serves_the_route(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            cp.apply(PETSTORE)
            installed = await cp.install("gloo")
            port = installed["proxyPort"]
            assert installed == {"component": "gloo", "proxyPort": port} and isinstance(port, int)
            assert "gloo-system" in cp.namespaces()
            not_yet = cp.ready()
            assert not_yet["gateway"] == {"installed": True, "serving": True, "port": port}
            await until(lambda: ready(cp), "the lab to be ready (pods, discovery)")
            status = cp.ready()
            assert status["deployments"] == [{"name": "default/petstore-v1", "ready": 1, "desired": 1, "done": True}]
            assert status["discoveryPending"] == [] and status["listenersPending"] == []

            (upstream,) = cp.get("Upstream", "gloo-system", None)
            assert upstream["metadata"]["name"] == UPSTREAM
            assert upstream["spec"]["kube"]["serviceName"] == "petstore-v1"
            functions = upstream["spec"]["kube"]["serviceSpec"]["rest"]["transformations"]  # from /swagger.json
            assert {"findPets", "findPetById"} <= set(functions)
            assert upstream["status"]["statuses"]["gloo-system"]["state"] == "Accepted"

            with pytest.raises(ConnectionRefusedError):  # as Gloo: no VirtualService, no listener
                await fetch(port, "/findPets")
            (result,) = cp.apply(ROUTE)
            assert (result["action"], result["warnings"]) == ("created", [])
            await cp.settle()  # as the admin API does after each apply
            (vs,) = cp.get("VirtualService", "gloo-system", "coalmine")
            assert vs["status"]["statuses"]["gloo-system"]["state"] == "Accepted"
            rows = cp.route_summary()
            assert [(r["index"], r["action"]) for r in rows] == [
                (0, "RouteAction"),
                (1, "RouteAction"),
                (2, "RouteAction"),
            ]
            assert all(r["source"].startswith("gloo-system/coalmine") for r in rows)
            answer = await fetch(port, "/findPets")
            assert answer.status == 200 and {p["name"] for p in answer.json()} == {"Dog", "Cat"}

            st = cp.status()
            assert st["gateway"] == {"installed": True, "url": f"http://127.0.0.1:{port}"}
            assert st["pods"] == {"total": 1, "ready": 1} and st["objects"] == len(cp.store.list())
            assert st["routeTableVersion"] == cp.gloo.table.version > 0
            (pod,) = cp.get("Pod", "default", None)
            assert pod["status"]["containerStatuses"][0]["ready"] is True
            (svc,) = cp.get("Service", "default", "petstore-v1")
            assert svc["status"]["localEndpoints"] == {"8080": [f"127.0.0.1:{pod['status']['localPort']}"]}

    run(scenario())


def test_install_an_unknown_component_is_an_invalid_argument(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            before = snapshot(cp)
            with pytest.raises(InvalidArgument, match='unknown component "bogus"'):
                await cp.install("bogus")
            assert snapshot(cp) == before and not cp.gloo.installed and not cp.kgateway.installed

    run(scenario())


def test_install_kgateway_serves_the_gateways_listener(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            assert await cp.install("kgateway") == {
                "component": "kgateway",
                "channel": "standard",
                "pruned": [],
                "gateways": {},
            }
            assert "kgateway-system" in cp.namespaces()
            assert [g["metadata"]["name"] for g in cp.get("GatewayClass", None, None)] == ["kgateway"]
            assert actions(cp.apply(GATEWAY)) == [("gateway.gateway.networking.k8s.io/http", "created")]
            assert cp.ready()["listenersPending"] == ["kgateway-system/http/http"]
            await cp.settle()
            assert cp.ready()["listenersPending"] == []
            urls = cp.status()["gatewayApi"]
            assert urls["installed"] is True and set(urls["gateways"]) == {"kgateway-system/http"}
            (gw,) = cp.get("Gateway", "kgateway-system", "http")
            port = gw["status"]["listeners"][0]["localPort"]
            assert urls["gateways"]["kgateway-system/http"] == {"http": f"http://127.0.0.1:{port}"}
            assert (await fetch(port, "/nothing")).status == 404  # served, no route yet

    run(scenario())


def test_get_rejects_an_unknown_kind_and_filters(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            cp.apply(PETSTORE[:2])
            with pytest.raises(UnknownKind, match="gadgets"):
                cp.get("gadgets", None, None)
            assert [o["kind"] for o in cp.get("Service", None, None)] == ["Service"]
            assert cp.get("Service", "kube-system", None) == []
            assert cp.get("Service", None, "other") == []

    run(scenario())


def test_get_accepts_the_kind_names_it_validates(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            cp.apply(PETSTORE[:2])
            assert [o["metadata"]["name"] for o in cp.get("services", None, None)] == ["petstore-v1"]

    run(scenario())


# ── restart ──────────────────────────────────────────────────────────────────


def test_the_store_and_install_survive_a_restart_on_the_same_home(tmp_path: Path) -> None:
    async def first_run() -> tuple[dict[tuple[str, str], str], int, list[int]]:
        async with control_plane(tmp_path) as cp:
            cp.apply(PETSTORE)
            port = (await cp.install("gloo"))["proxyPort"]
            cp.apply(ROUTE)
            await until(lambda: ready(cp), "the first lab to be ready")
            uids = {(o["kind"], o["metadata"]["name"]): o["metadata"]["uid"] for o in cp.store.list()}
            pids = [p["status"]["localPid"] for p in cp.get("Pod", None, None)]
            return uids, port, pids

    async def second_run() -> tuple[dict[tuple[str, str], str], int | None, list[int], int]:
        async with control_plane(tmp_path) as cp:
            assert cp.gloo.installed
            await until(lambda: ready(cp), "the restarted lab to be ready")
            uids = {(o["kind"], o["metadata"]["name"]): o["metadata"]["uid"] for o in cp.store.list()}
            pids = [p["status"]["localPid"] for p in cp.get("Pod", None, None)]
            answer = await fetch(cp.proxy_port or 0, "/findPets")
            return uids, cp.proxy_port, pids, answer.status

    uids, port, pids = run(first_run())
    assert ("VirtualService", "coalmine") in uids and ("Upstream", UPSTREAM) in uids
    assert not any(_alive(pid) for pid in pids), "close() left pod processes running"
    again, port_again, pids_again, status = run(second_run())
    assert again == uids  # the same objects, not new ones
    assert port_again == port  # the gateway listens where it did
    assert status == 200 and pids_again and set(pids_again).isdisjoint(pids)
    assert not any(_alive(pid) for pid in pids_again)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
