"""The admin API (``admin.make_app``) over a real loopback socket: the token, the
``{"error", "type"}`` answer of every error class with its status, a bug answered
500 while the server keeps serving, shutdown, and ``errors.from_wire`` turning each
answer back into the class that was raised.

The app serves a real ``ControlPlane`` on a lab home in ``tmp_path``, through
``aiohttp.test_utils.TestServer`` (127.0.0.1, a free port).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestClient, TestServer

from helpers import errors
from helpers.errors import CoalmineError, from_wire
from helpers.loading import load_manifests, manifests_dir
from helpers.runtime.admin import make_app
from helpers.runtime.controlplane import ControlPlane
from helpers.runtime.home import LabHome

T = TypeVar("T")
TOKEN = "s3cret-token-of-the-admin-api-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONFIGMAP = load_manifests([manifests_dir() / "petstore-v1.yaml"])[0]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 30))


@dataclass
class Admin:
    cp: ControlPlane
    client: TestClient  # type: ignore[type-arg]
    stop: asyncio.Event

    async def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        async with self.client.request(method, path, headers=AUTH if headers is None else headers, **kwargs) as resp:
            assert resp.content_type == "application/json", f"{method} {path}: {resp.content_type}"
            return resp.status, await resp.json()


@asynccontextmanager
async def admin(root: Path) -> AsyncIterator[Admin]:
    cp = ControlPlane(LabHome(root))
    stop = asyncio.Event()
    client = None
    try:
        await cp.start()
        server = TestServer(make_app(cp, TOKEN, stop), host="127.0.0.1", port=0)
        client = TestClient(server)
        await client.start_server()
        assert server.host == "127.0.0.1"
        yield Admin(cp, client, stop)
    finally:
        if client is not None:
            await client.close()  # and the server
        await cp.close()


def error_classes() -> list[type[CoalmineError]]:
    found, todo = [], [CoalmineError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return sorted(found, key=lambda c: c.__name__)


# ── the token ────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {TOKEN}"},
        {"X-Token": TOKEN},
    ],
)
def test_a_missing_or_wrong_token_is_401(tmp_path: Path, headers: dict[str, str]) -> None:
    async def scenario() -> None:
        async with admin(tmp_path) as a:
            for method, path in (("GET", "/v1/status"), ("POST", "/v1/shutdown"), ("GET", "/v1/objects/gadgets")):
                status, body = await a.call(method, path, headers=headers)
                assert status == 401 and "missing or wrong lab token" in body["error"], (method, path, body)
            assert not a.stop.is_set()  # an unauthenticated shutdown does nothing

    run(scenario())


def test_the_right_token_is_served(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with admin(tmp_path) as a:
            status, body = await a.call("GET", "/v1/status")
            assert status == 200 and body == a.cp.status()
            status, body = await a.call("GET", "/v1/ready")
            assert status == 200 and body == a.cp.ready()
            assert await a.call("GET", "/v1/routes") == (200, {"routes": []})
            assert await a.call("GET", "/v1/stats") == (200, {})

    run(scenario())


# ── requests that work ───────────────────────────────────────────────────────


def test_apply_get_and_delete_round_trip(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with admin(tmp_path) as a:
            status, body = await a.call("POST", "/v1/apply", json={"objects": [CONFIGMAP]})
            assert status == 200 and body == {
                "results": [{"ref": "configmap/petstore-v1-app", "action": "created", "warnings": []}]
            }
            status, body = await a.call("GET", "/v1/objects/cm", params={"namespace": "default"})
            assert status == 200 and [o["metadata"]["name"] for o in body["items"]] == ["petstore-v1-app"]
            status, body = await a.call("GET", "/v1/objects/configmaps", params={"namespace": "kube-system"})
            assert (status, body) == (200, {"items": []})
            refs = {"refs": [{"kind": "cm", "name": "petstore-v1-app"}, {"kind": "cm", "name": "petstore-v1-app"}]}
            status, body = await a.call("POST", "/v1/delete", json=refs)
            assert status == 200
            assert body["results"][0] == {"ref": "configmap/petstore-v1-app", "action": "deleted"}
            assert body["results"][1]["reason"] == "NotFound"  # already gone: in the results, not a 404

    run(scenario())


def test_a_refused_object_is_a_result_not_an_error_status(tmp_path: Path) -> None:
    vs = load_manifests([manifests_dir() / "gloo" / "1-route-to-v1.yaml"])[0]

    async def scenario() -> None:
        async with admin(tmp_path) as a:
            status, body = await a.call("POST", "/v1/apply", json={"objects": [vs]})
            assert status == 200
            (result,) = body["results"]
            assert "run `coalmine install gloo` first" in result["error"]

    run(scenario())


def test_shutdown_sets_the_stop_event(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with admin(tmp_path) as a:
            assert not a.stop.is_set()
            assert await a.call("POST", "/v1/shutdown") == (200, {"stopping": True})
            assert a.stop.is_set()

    run(scenario())


# ── errors: one status per class, the class named, and back again ────────────


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "cls", "status", "message"),
    [
        ("POST", "/v1/install/bogus", {}, errors.InvalidArgument, 400, 'unknown component "bogus"'),
        ("GET", "/v1/objects/gadgets", {}, errors.UnknownKind, 404, 'resource type "gadgets"'),
        (
            "POST",
            "/v1/apply",
            {"data": b"{not json", "headers": {**AUTH, "Content-Type": "application/json"}},
            errors.ManifestError,
            400,
            "the request body is not JSON",
        ),
        ("POST", "/v1/apply", {"json": [1, 2]}, errors.ManifestError, 400, "must be a JSON object"),
        (
            "POST",
            "/v1/delete",
            {"json": {"refs": [{"kind": "gadget", "name": "g"}]}},
            errors.UnknownKind,
            404,
            "gadget",
        ),
    ],
)
def test_errors_of_requests_answer_their_class_and_status(
    tmp_path: Path, method: str, path: str, kwargs: dict[str, Any], cls: type[CoalmineError], status: int, message: str
) -> None:
    async def scenario() -> tuple[int, Any]:
        async with admin(tmp_path) as a:
            return await a.call(method, path, **kwargs)

    got, body = run(scenario())
    assert got == status == cls.http_status
    assert set(body) == {"error", "type"} and body["type"] == cls.__name__ and message in body["error"]
    again = from_wire(body["type"], body["error"], got)
    assert type(again) is cls and str(again) == body["error"]


@pytest.mark.parametrize("cls", error_classes(), ids=lambda c: c.__name__)
def test_every_error_class_is_answered_with_its_status_and_comes_back_as_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cls: type[CoalmineError]
) -> None:
    def fail(self: ControlPlane) -> Any:
        raise cls(f"{cls.__name__} on purpose: do X next")

    monkeypatch.setattr(ControlPlane, "ready", fail)

    async def scenario() -> tuple[int, Any]:
        async with admin(tmp_path) as a:
            return await a.call("GET", "/v1/ready")

    status, body = run(scenario())
    assert status == cls.http_status
    assert body == {"error": f"{cls.__name__} on purpose: do X next", "type": cls.__name__}
    again = from_wire(body["type"], body["error"], status)
    assert type(again) is cls and str(again) == body["error"]


def test_from_wire_without_a_type_goes_by_the_status() -> None:
    assert type(from_wire(None, "m", 404)) is errors.NotFound
    assert type(from_wire(None, "m", 422)) is errors.ApplyRefused
    assert type(from_wire("NoSuchClass", "m", 504)) is errors.WaitTimeout
    assert type(from_wire(None, "m", 500)) is CoalmineError
    assert type(from_wire(None, "m", 418)) is CoalmineError


def test_an_unexpected_exception_is_a_500_and_the_server_keeps_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: ControlPlane) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(ControlPlane, "status", broken)

    async def scenario() -> list[tuple[int, Any]]:
        async with admin(tmp_path) as a:
            with caplog.at_level(logging.ERROR, logger="coalmine.admin"):
                answers = [await a.call("GET", "/v1/status") for _ in range(2)]
            answers.append(await a.call("GET", "/v1/ready"))
            return answers

    (s1, b1), (s2, b2), (s3, b3) = run(scenario())
    assert s1 == s2 == 500 and b1 == b2
    assert set(b1) == {"error"} and "internal error in the control plane (RuntimeError: boom)" in b1["error"]
    assert "controlplane.log" in b1["error"]
    assert s3 == 200 and "ready" in b3
    assert type(from_wire(b1.get("type"), b1["error"], s1)) is CoalmineError
    logged = [r for r in caplog.records if r.name == "coalmine.admin" and r.exc_info]
    assert len(logged) == 2 and "GET /v1/status failed" in logged[0].getMessage()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/install/gloo", {"port": "abc"}),
        ("/v1/install/gloo", {"port": 70000}),
        ("/v1/delete", {"refs": [{"kind": "cm"}]}),
        ("/v1/apply", {"objects": 5}),
    ],
)
def test_a_malformed_request_body_is_a_400_not_a_500(tmp_path: Path, path: str, body: dict[str, Any]) -> None:
    async def scenario() -> tuple[int, Any]:
        async with admin(tmp_path) as a:
            return await a.call("POST", path, json=body)

    status, answer = run(scenario())
    assert status == 400 and answer["type"] in ("InvalidArgument", "ManifestError"), answer
