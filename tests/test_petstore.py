"""The petstore app (helpers/apps/petstore.py), run as a real process and spoken to over
real loopback HTTP, the way the local runtime and a cluster run it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest

APP = Path(__file__).resolve().parents[1] / "helpers" / "apps" / "petstore.py"
V1_PETS = b'[{"id":1,"name":"Dog","status":"available"},{"id":2,"name":"Cat","status":"pending"}]'
V2_PETS = (
    b'[{"id":1,"name":"Dog","status":"v2"},{"id":2,"name":"Cat","status":"v2"},{"id":3,"name":"Parrot","status":"v2"}]'
)
START_TIMEOUT_S = 10.0
IO_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_env(**settings: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VERSION", "HOST", "PORT", "ERROR_RATE", "LATENCY_MS", "KEEPALIVE_TIMEOUT")
    }
    env.update(PYTHONDONTWRITEBYTECODE="1", **settings)
    return env


@dataclass
class Petstore:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=IO_TIMEOUT_S)

    def socket(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=IO_TIMEOUT_S)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = self.connect()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


def wait_until_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"petstore exited with {proc.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)  # polling interval, not synchronisation
    pytest.fail(f"petstore did not listen on {port} within {START_TIMEOUT_S}s: {log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Petstore]]:
    """Start a petstore with the given settings; every one is stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def _start(**settings: str) -> Petstore:
        port = free_port()
        log = tmp_path / f"petstore-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, str(APP)],
                env=app_env(HOST="127.0.0.1", PORT=str(port), **settings),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(proc)
        wait_until_listening(proc, port, log)
        return Petstore(proc, port, log)

    try:
        yield _start
    finally:
        for proc in started:
            stop(proc)


@pytest.fixture
def v1(start: Callable[..., Petstore]) -> Petstore:
    return start(VERSION="v1")


def read_response(f: BinaryIO) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length (or none, for 204) from a socket file."""
    status_line = f.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = f.read(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


# --- the API --------------------------------------------------------------------------


def test_v1_lists_two_pets_exactly(v1: Petstore) -> None:
    status, headers, body = v1.request("GET", "/api/pets")
    assert (status, body) == (200, V1_PETS)
    assert headers["content-type"] == "application/json"
    assert headers["x-petstore-version"] == "v1"


def test_v2_lists_three_pets_exactly(start: Callable[..., Petstore]) -> None:
    status, headers, body = start(VERSION="v2").request("GET", "/api/pets")
    assert (status, body, headers["x-petstore-version"]) == (200, V2_PETS, "v2")


def test_empty_query_parameters_are_ignored(v1: Petstore) -> None:
    # What Gloo's discovered findPets transformation sends.
    assert v1.request("GET", "/api/pets?tags=&limit=")[2] == V1_PETS
    assert json.loads(v1.request("GET", "/api/pets?limit=1")[2]) == json.loads(V1_PETS)[:1]
    assert v1.request("GET", "/api/pets?tags=nope")[2] == b"[]"
    assert v1.request("GET", "/api/pets?limit=x")[0] == 400


def test_find_pet_by_id(v1: Petstore) -> None:
    assert v1.request("GET", "/api/pets/1")[::2] == (200, b'{"id":1,"name":"Dog","status":"available"}')
    assert v1.request("GET", "/api/pets/3")[::2] == (404, b'{"code":404,"message":"not found: pet 3"}')
    status, headers, body = v1.request("GET", "/api/pets/abc")
    assert status == 400 and json.loads(body)["code"] == 400
    assert headers["x-petstore-version"] == "v1"


def test_add_and_delete_pets(v1: Petstore) -> None:
    status, headers, body = v1.request(
        "POST", "/api/pets", b'{"name":"Fish","tag":"wet"}', {"Content-Type": "application/json"}
    )
    assert status == 201
    pet = json.loads(body)
    assert pet == {"id": 3, "name": "Fish", "status": "available", "tag": "wet"}
    assert headers["location"] == "/api/pets/3"
    assert json.loads(v1.request("GET", "/api/pets/3")[2]) == pet
    assert json.loads(v1.request("GET", "/api/pets?tags=wet")[2]) == [pet]
    assert v1.request("DELETE", "/api/pets/3")[0] == 204
    assert v1.request("DELETE", "/api/pets/3")[0] == 404
    assert v1.request("GET", "/api/pets")[2] == V1_PETS
    assert v1.request("POST", "/api/pets", b'{"tag":"no name"}')[0] == 400
    assert v1.request("POST", "/api/pets", b"not json")[0] == 400


def test_chunked_request_body(v1: Petstore) -> None:
    with v1.socket() as s, s.makefile("rb") as f:
        s.sendall(
            b"POST /api/pets HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'5\r\n{"nam\r\n9;ext=1\r\ne":"Eel"}\r\n0\r\n\r\n'
        )
        status, _, body = read_response(f)
    assert (status, json.loads(body)["name"]) == (201, "Eel")


def test_swagger_describes_the_rest_functions(start: Callable[..., Petstore]) -> None:
    status, _, body = start(VERSION="v2").request("GET", "/swagger.json")
    doc = json.loads(body)
    assert status == 200 and doc["swagger"] == "2.0"
    assert doc["basePath"] == "/api" and doc["info"]["version"] == "v2"
    operations = {path: {m: op["operationId"] for m, op in ops.items()} for path, ops in doc["paths"].items()}
    assert operations == {
        "/pets": {"get": "findPets", "post": "addPet"},
        "/pets/{id}": {"get": "findPetById", "delete": "deletePet"},
    }
    find_pets = {p["name"]: p for p in doc["paths"]["/pets"]["get"]["parameters"]}
    assert find_pets["tags"]["in"] == "query" and find_pets["tags"]["type"] == "array"
    assert find_pets["tags"]["items"] == {"type": "string"}
    assert find_pets["limit"]["in"] == "query" and find_pets["limit"]["type"] == "integer"
    assert [p["in"] for p in doc["paths"]["/pets"]["post"]["parameters"]] == ["body"]
    for method in ("get", "delete"):
        params = doc["paths"]["/pets/{id}"][method]["parameters"]
        assert [(p["name"], p["in"]) for p in params] == [("id", "path")]


def test_health_unknown_path_and_wrong_method(v1: Petstore) -> None:
    assert v1.request("GET", "/healthz")[::2] == (200, b"ok")
    status, headers, body = v1.request("HEAD", "/api/pets")
    assert (status, headers["content-length"], body) == (200, str(len(V1_PETS)), b"")
    assert headers["date"].endswith(" GMT")
    status, headers, body = v1.request("GET", "/nope")
    assert status == 404 and json.loads(body)["code"] == 404
    assert headers["x-petstore-version"] == "v1"
    status, headers, _ = v1.request("PUT", "/api/pets/1")
    assert status == 405 and headers["allow"] == "GET, HEAD, DELETE"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /api/pets HTTP/2.0\r\n\r\n", 505),
        (b"GET /api/pets\r\n\r\n", 400),
        (b"POST /api/pets HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST /api/pets HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST /api/pets HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
        (b"GET /api/pets HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
    ],
)
def test_malformed_requests_are_refused_and_closed(v1: Petstore, request_bytes: bytes, status: int) -> None:
    with v1.socket() as s, s.makefile("rb") as f:
        s.sendall(request_bytes)
        got, headers, body = read_response(f)
        assert (got, headers["connection"]) == (status, "close")
        assert json.loads(body)["code"] == status
        assert f.read() == b""  # the server closed the connection


# --- connection handling ---------------------------------------------------------------


def test_keep_alive_reuses_one_connection(v1: Petstore) -> None:
    conn = v1.connect()
    try:
        sockets = set()
        for path in ("/api/pets", "/api/pets/1", "/healthz", "/api/pets", "/swagger.json"):
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200 and not resp.will_close
            sockets.add(id(conn.sock))
        assert len(sockets) == 1
    finally:
        conn.close()


def test_http10_keep_alive_and_close(v1: Petstore) -> None:
    with v1.socket() as s, s.makefile("rb") as f:
        for _ in range(2):
            s.sendall(b"GET /api/pets HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, body = read_response(f)
            assert (status, headers["connection"], body) == (200, "keep-alive", V1_PETS)
        s.sendall(b"GET /api/pets HTTP/1.0\r\n\r\n")
        assert read_response(f)[1]["connection"] == "close"
        assert f.read() == b""


def test_connection_close_is_honoured(v1: Petstore) -> None:
    with v1.socket() as s, s.makefile("rb") as f:
        s.sendall(b"GET /api/pets/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, headers, _ = read_response(f)
        assert (status, headers["connection"]) == (200, "close")
        assert f.read() == b""


@pytest.mark.parametrize("latency_ms", ["0", "50"])
def test_pipelined_requests_are_answered_in_order(start: Callable[..., Petstore], latency_ms: str) -> None:
    # With latency, the delayed API request must still be answered before /healthz.
    store = start(LATENCY_MS=latency_ms)
    with store.socket() as s, s.makefile("rb") as f:
        s.sendall(
            b"GET /api/pets/1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /api/pets/2 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        bodies = [read_response(f)[2] for _ in range(3)]
    assert bodies == [b'{"id":1,"name":"Dog","status":"available"}', b"ok", b'{"id":2,"name":"Cat","status":"pending"}']


def test_idle_keep_alive_connections_are_closed(start: Callable[..., Petstore]) -> None:
    store = start(KEEPALIVE_TIMEOUT="0.3")
    with store.socket() as s, s.makefile("rb") as f:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(f)[0] == 200
        begun = time.monotonic()
        assert f.read() == b""  # blocks until the server closes (socket timeout 10 s)
        assert time.monotonic() - begun >= 0.2


# --- settings ----------------------------------------------------------------------------


def test_error_rate_one_fails_every_api_request(start: Callable[..., Petstore]) -> None:
    store = start(ERROR_RATE="1")
    for _ in range(3):
        status, headers, body = store.request("GET", "/api/pets")
        assert status == 500 and json.loads(body)["code"] == 500
        assert headers["x-petstore-version"] == "v1"
    assert store.request("GET", "/healthz")[0] == 200
    assert store.request("GET", "/swagger.json")[0] == 200


def test_latency_is_added_to_api_requests(start: Callable[..., Petstore]) -> None:
    store = start(LATENCY_MS="200")
    begun = time.monotonic()
    assert store.request("GET", "/api/pets")[2] == V1_PETS
    assert time.monotonic() - begun >= 0.2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VERSION", "v4"),
        ("PORT", "http"),
        ("PORT", "70000"),
        ("ERROR_RATE", "1.5"),
        ("ERROR_RATE", "often"),
        ("LATENCY_MS", "-5"),
        ("KEEPALIVE_TIMEOUT", "nan"),
    ],
)
def test_bad_settings_exit_with_a_message(name: str, value: str) -> None:
    result = subprocess.run(
        [sys.executable, str(APP)], env=app_env(HOST="127.0.0.1", **{name: value}), capture_output=True, timeout=30
    )
    assert result.returncode != 0
    assert name in result.stderr.decode() and "invalid setting" in result.stderr.decode()


def test_sigterm_finishes_in_flight_requests_and_exits_zero(start: Callable[..., Petstore]) -> None:
    store = start(LATENCY_MS="300")
    idle = store.socket()
    busy = store.socket()
    try:
        with idle.makefile("rb") as idle_f, busy.makefile("rb") as busy_f:
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(idle_f)[0] == 200  # now an idle keep-alive connection
            # /healthz is not delayed; its answer proves both requests were read.
            busy.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /api/pets HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(busy_f)[0] == 200
            store.proc.send_signal(signal.SIGTERM)
            status, headers, body = read_response(busy_f)  # the in-flight one still answers
            assert (status, body, headers["connection"]) == (200, V1_PETS, "close")
            assert busy_f.read() == b""
            assert idle_f.read() == b""  # the idle connection was closed
        assert store.proc.wait(timeout=10) == 0
    finally:
        idle.close()
        busy.close()
