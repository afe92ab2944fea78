"""kgateway in a box (``gatewayapi.kgateway``): install, one proxy per listener on
127.0.0.1 started and stopped by ``sync``, ports kept across a restart on the same
store, the Gateway's status with ``localPort``, and admission / preview at apply.

The objects are the ones ``test_translating_gatewayapi`` translates (a Gateway,
three petstore Services, HTTPRoutes); the upstreams and the client are the ones
``test_proxying`` serves and sends with, imported here.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from helpers import httproutes
from helpers.kinds import key
from helpers.runtime.gatewayapi.kgateway import CLASS_NAME, NAMESPACE, Kgateway, admission, gateway_class, preview
from helpers.runtime.gatewayapi.schema import CONTROLLER, check
from helpers.runtime.proxy.stats import UpstreamStats
from helpers.runtime.routes import Endpoint
from helpers.runtime.store import Store

from .test_proxying import Upstream, fetch, running
from .test_translating_gatewayapi import LISTENER, SERVICES, match, route, rule

T = TypeVar("T")
LISTENER_NAME = "/".join(LISTENER)
GATEWAY_KEY = ("Gateway", LISTENER[0], LISTENER[1])
PORT = (LISTENER[0], LISTENER[1], 8080)  # one proxy per Gateway port, shared by its listeners


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 20))


def installed(path: Path, *objects: dict[str, Any]) -> tuple[Store, Kgateway]:
    """A store at ``path`` with kgateway installed and ``objects`` applied."""
    store = Store(path)
    kg = Kgateway(store, UpstreamStats())
    kg.install()
    for obj in objects:
        store.put(obj)
    return store, kg


def refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def port_of(kg: Kgateway) -> int:
    url = kg.urls()[f"{LISTENER[0]}/{LISTENER[1]}"][LISTENER[2]]
    return int(url.rsplit(":", 1)[1])


# ── install ──────────────────────────────────────────────────────────────────


def test_install_records_itself_and_makes_the_gateway_class(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.json")
    kg = Kgateway(store, UpstreamStats())
    assert not kg.installed
    kg.install()
    assert kg.installed and store.extra["kgateway"] == {"ports": {}, "channel": "standard"}
    gc = store.get(("GatewayClass", "", CLASS_NAME))
    assert gc is not None and gc["spec"]["controllerName"] == CONTROLLER == gateway_class()["spec"]["controllerName"]
    version = gc["metadata"]["resourceVersion"]
    kg.install()  # idempotent: nothing changes
    assert store.get(("GatewayClass", "", CLASS_NAME))["metadata"]["resourceVersion"] == version  # type: ignore[index]
    again = Kgateway(Store(tmp_path / "store.json"), UpstreamStats())
    assert again.installed  # the install is kept in the store, on disk


def test_before_install_rebuild_and_sync_serve_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.json")
    kg = Kgateway(store, UpstreamStats())
    store.put(gateway_class())
    store.put(httproutes.gateway())

    async def scenario() -> None:
        kg.rebuild(list(store), {}, 1)
        await kg.sync()
        try:
            assert kg.result.listeners == {} and kg.proxies == {} and kg.urls() == {} and kg.pending() == []
        finally:
            await kg.close()

    run(scenario())


# ── listeners: started, served, stopped ──────────────────────────────────────


def test_sync_serves_each_listener_on_loopback_and_stops_a_removed_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(Upstream("v1")) as (v1,):
            endpoints = {("default", "petstore-v1", 8080): (Endpoint("127.0.0.1", v1.port),)}
            store, kg = installed(
                tmp_path / "store.json", httproutes.gateway(), *SERVICES, route(rule(match("/pets"), "v1"))
            )
            try:
                kg.rebuild(list(store), endpoints, 1)
                assert kg.pending() == [LISTENER_NAME] and kg.proxies == {}
                await kg.sync()
                assert kg.pending() == [] and set(kg.proxies) == {PORT}
                port = port_of(kg)
                assert kg.urls() == {f"{LISTENER[0]}/{LISTENER[1]}": {LISTENER[2]: f"http://127.0.0.1:{port}"}}
                assert store.extra["kgateway"]["ports"] == {LISTENER_NAME: port}
                served = await fetch(port, "/pets/1")
                assert served.status == 200 and served.json()["name"] == "v1"
                assert (await fetch(port, "/other")).status == 404

                store.delete(GATEWAY_KEY)
                kg.rebuild(list(store), endpoints, 2)
                await kg.sync()
                assert kg.proxies == {} and kg.urls() == {} and kg.pending() == []
                assert store.extra["kgateway"]["ports"] == {}
                assert refused(port), f"the listener's proxy still accepts connections on {port}"
                assert Store(tmp_path / "store.json").extra["kgateway"]["ports"] == {}  # saved
            finally:
                await kg.close()

    run(scenario())


def test_rebuild_swaps_the_running_listeners_table(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(Upstream("v1"), Upstream("v2")) as (v1, v2):
            endpoints = {("default", f"petstore-{u.name}", 8080): (u.endpoint,) for u in (v1, v2)}
            store, kg = installed(
                tmp_path / "store.json", httproutes.gateway(), *SERVICES, route(rule(match("/"), "v1"))
            )
            try:
                kg.rebuild(list(store), endpoints, 1)
                await kg.sync()
                port = port_of(kg)
                proxy = kg.proxies[PORT]
                assert (await fetch(port, "/pets")).json()["name"] == "v1"
                store.put(route(rule(match("/"), "v2")))
                kg.rebuild(list(store), endpoints, 2)
                assert kg.proxies[PORT] is proxy and proxy.table.version == 2  # swapped, not restarted
                assert (await fetch(port, "/pets")).json()["name"] == "v2"
                rows = kg.route_rows()
                assert [(r["index"], r["source"], r["action"]) for r in rows] == [
                    (0, "default/r rules[0].matches[0]", "RouteAction")
                ]
            finally:
                await kg.close()
            assert kg.proxies == {} and refused(port)

    run(scenario())


def test_a_listener_keeps_its_port_across_a_restart_on_the_same_store(tmp_path: Path) -> None:
    path = tmp_path / "store.json"

    async def serve_once() -> int:
        store = Store(path)
        kg = Kgateway(store, UpstreamStats())
        if not kg.installed:
            kg.install()
            store.put(httproutes.gateway())
        kg.rebuild(list(store), {}, 1)
        await kg.sync()
        try:
            return port_of(kg)
        finally:
            await kg.close()

    first = run(serve_once())
    assert Store(path).extra["kgateway"]["ports"] == {LISTENER_NAME: first}
    assert refused(first)
    assert run(serve_once()) == first


def test_a_remembered_port_that_is_taken_gives_way_to_another(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "store.json"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        store, kg = installed(path, httproutes.gateway())
        store.extra["kgateway"]["ports"][LISTENER_NAME] = taken
        store.save()

        async def scenario() -> int:
            kg.rebuild(list(store), {}, 1)
            await kg.sync()
            try:
                return port_of(kg)
            finally:
                await kg.close()

        with caplog.at_level(logging.WARNING, logger="coalmine.kgateway"):
            port = run(scenario())
    assert port != taken
    assert Store(path).extra["kgateway"]["ports"] == {LISTENER_NAME: port}
    assert any(str(taken) in r.getMessage() and "taken" in r.getMessage() for r in caplog.records)


# ── status ───────────────────────────────────────────────────────────────────


def test_gateway_status_adds_the_local_port_of_each_served_listener(tmp_path: Path) -> None:
    async def scenario() -> None:
        store, kg = installed(
            tmp_path / "store.json", httproutes.gateway(), *SERVICES, route(rule(match("/pets"), "v1"))
        )
        try:
            kg.rebuild(list(store), {}, 1)
            before = kg.status_of(GATEWAY_KEY)
            assert before is not None and all("localPort" not in li for li in before["listeners"])
            await kg.sync()
            status = kg.status_of(GATEWAY_KEY)
            assert status is not None
            (listener,) = status["listeners"]
            assert listener["name"] == "http" and listener["localPort"] == port_of(kg)
            assert listener["attachedRoutes"] == 1
            route_status = kg.status_of(("HTTPRoute", "default", "r"))
            assert route_status is not None and "parents" in route_status and "localPort" not in str(route_status)
            assert kg.status_of(("HTTPRoute", "default", "missing")) is None
        finally:
            await kg.close()

    run(scenario())


# ── admission and preview (at apply) ─────────────────────────────────────────


def test_admission_accepts_a_valid_route_and_lists_the_problems_of_an_invalid_one() -> None:
    good = route(rule(match("/pets"), "v1"))
    assert admission(good) == []
    bad = route(rule(match("/pets"), "v1"))
    bad["spec"]["rules"][0]["backendRefs"] = [{"name": "petstore-v1"}]  # no port
    bad["spec"]["rules"][0]["matches"][0]["path"]["value"] = "pets"  # not an absolute path
    problems = admission(bad)
    assert any("port" in p for p in problems), problems
    assert any("path" in p for p in problems), problems
    assert len(problems) >= 2


def test_preview_warns_about_a_backend_ref_to_a_missing_service(tmp_path: Path) -> None:
    store, kg = installed(tmp_path / "store.json", httproutes.gateway(), *SERVICES)
    missing = route(rule(match("/pets"), "v9"))
    warnings = preview(kg, list(store), {}, missing)
    assert any("Service default/petstore-v9 not found" in w for w in warnings), warnings
    assert preview(kg, list(store), {}, route(rule(match("/pets"), "v1"))) == []
    assert store.get(key(missing)) is None  # a preview applies nothing


def test_preview_shows_the_fields_the_schema_accepts_but_the_runtime_ignores(tmp_path: Path) -> None:
    store, kg = installed(tmp_path / "store.json", *SERVICES)
    gw = httproutes.gateway()
    gw["spec"]["infrastructure"] = {"labels": {"team": "pets"}}
    ignored = check(gw).warnings
    assert ignored and check(gw).errors == []  # accepted, with a warning naming the field
    warnings = preview(kg, list(store), {}, gw)
    assert warnings[: len(ignored)] == ignored and any("infrastructure" in w for w in warnings)
    assert not any("infrastructure" in w for w in preview(kg, list(store), {}, httproutes.gateway()))


def test_preview_replaces_the_stored_version_of_the_object(tmp_path: Path) -> None:
    broken = route(rule(match("/pets"), "v9"))
    store, kg = installed(tmp_path / "store.json", httproutes.gateway(), *SERVICES, broken)
    assert preview(kg, list(store), {}, broken) != []
    assert preview(kg, list(store), {}, route(rule(match("/pets"), "v1"))) == []  # the fix, not both


def test_preview_warns_about_a_route_without_a_parent(tmp_path: Path) -> None:
    store, kg = installed(tmp_path / "store.json", httproutes.gateway(), *SERVICES)
    orphan = route(rule(match("/pets"), "v1"))
    orphan["spec"]["parentRefs"] = []
    assert any("parentRefs is empty" in w for w in preview(kg, list(store), {}, orphan))


def test_gateway_of_another_class_is_not_served_and_warned_about(tmp_path: Path) -> None:
    other = httproutes.gateway(name="other", class_name="istio")

    async def scenario() -> None:
        store, kg = installed(tmp_path / "store.json", other)
        try:
            assert any("gatewayClassName" in w for w in preview(kg, list(store), {}, other))
            kg.rebuild(list(store), {}, 1)
            await kg.sync()
            assert kg.proxies == {} and kg.urls() == {}
            status = kg.status_of(("Gateway", NAMESPACE, "other"))
            assert status is not None and status["conditions"][0]["reason"] == "Pending"
        finally:
            await kg.close()

    run(scenario())
