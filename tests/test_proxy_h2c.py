"""HTTP/2 over cleartext through the gateway proxy, over real loopback sockets.

Upstream: a cluster whose Service port says ``appProtocol: kubernetes.io/h2c`` is
spoken to in HTTP/2 with prior knowledge (as Envoy does), many requests multiplexed
on one connection, with the HTTP/1.1 path's attempts, retries, timeouts and stats.
Downstream: a client may open with the HTTP/2 preface (h2c prior knowledge) and is
served as an HTTP/1.1 client is. The backend here speaks nothing but HTTP/2."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import DataReceived, RequestReceived, ResponseReceived, StreamEnded, StreamReset, WindowUpdated

from helpers.runtime.routes import Cluster, Destination, Endpoint, RetryPolicy, WeightedDestination
from tests.test_proxying import (
    IO_TIMEOUT_S,
    Client,
    Upstream,
    dead_port,
    fetch,
    forward,
    gateway,
    response,
    route,
    running,
    table,
    wait_until,
)

BIG = 300_000  # larger than HTTP/2's default windows (65,535 bytes): flow control must work


def h2c(cluster: str) -> WeightedDestination:
    return WeightedDestination(Destination(cluster, protocol="h2c"), 1)


def http11(cluster: str) -> WeightedDestination:
    return WeightedDestination(Destination(cluster), 1)


def _push(conn: H2Connection, out: dict[int, bytearray]) -> None:
    """Send what the windows allow of each stream's queued answer; end it when sent."""
    for sid in list(out):
        buf = out[sid]
        while buf:
            size = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size, len(buf))
            if size <= 0:
                break
            conn.send_data(sid, bytes(buf[:size]))
            del buf[:size]
        if not buf:
            conn.end_stream(sid)
            del out[sid]


@dataclass
class H2Backend:
    """An HTTP/2-only server (prior knowledge): echoes what it saw as JSON.

    ``/reset-once`` resets the first stream it gets; ``/hang`` never answers;
    ``/big`` answers ``BIG`` bytes."""

    name: str
    connections: int = 0
    resets_received: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.AbstractServer | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def start(self) -> H2Backend:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def cluster(self) -> Cluster:
        return Cluster(self.name, (Endpoint("127.0.0.1", self.port),))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        requests: dict[int, tuple[dict[str, str], bytearray]] = {}
        out: dict[int, bytearray] = {}
        try:
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, RequestReceived):
                        requests[event.stream_id] = (dict(event.headers), bytearray())
                    elif isinstance(event, DataReceived):
                        requests[event.stream_id][1].extend(event.data)
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, StreamEnded):
                        self._answer(conn, event.stream_id, *requests.pop(event.stream_id), out)
                    elif isinstance(event, StreamReset):
                        self.resets_received += 1
                        out.pop(event.stream_id, None)
                _push(conn, out)
                writer.write(conn.data_to_send())
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    def _answer(
        self, conn: H2Connection, sid: int, headers: dict[str, str], body: bytearray, out: dict[int, bytearray]
    ) -> None:
        path = headers[":path"]
        self.seen.append({"headers": headers, "body": bytes(body)})
        if path == "/hang":
            return
        if path == "/reset-once" and sum(s["headers"][":path"] == path for s in self.seen) == 1:
            conn.reset_stream(sid, ErrorCodes.INTERNAL_ERROR)
            return
        if path == "/big":
            answer = b"x" * BIG
        else:
            answer = json.dumps({"name": self.name, "headers": headers, "body": len(body)}).encode()
        conn.send_headers(sid, [(":status", "200"), ("content-type", "application/json"), ("x-backend", self.name)])
        out[sid] = bytearray(answer)


async def h2_exchange(port: int, requests: list[tuple[str, str, bytes]]) -> list[dict[str, Any]]:
    """Send ``requests`` (method, path, body) as concurrent streams on one HTTP/2
    connection with prior knowledge; each answer as status, headers and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    answers: dict[int, dict[str, Any]] = {}
    for method, path, body in requests:
        sid = conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", "http"), (":authority", "example.com"), (":path", path)]
        conn.send_headers(sid, fields, end_stream=not body)
        if body:
            conn.send_data(sid, body, end_stream=True)
        answers[sid] = {"status": 0, "headers": {}, "body": bytearray(), "ended": False}
    writer.write(conn.data_to_send())
    try:
        while not all(a["ended"] for a in answers.values()):
            data = await asyncio.wait_for(reader.read(65536), IO_TIMEOUT_S)
            assert data, "the gateway closed the connection"
            for event in conn.receive_data(data):
                answer = answers.get(getattr(event, "stream_id", 0))
                if isinstance(event, ResponseReceived) and answer is not None:
                    answer["headers"] = dict(event.headers)
                    answer["status"] = int(answer["headers"][":status"])
                elif isinstance(event, DataReceived) and answer is not None:
                    answer["body"].extend(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, (StreamEnded, StreamReset)) and answer is not None:
                    answer["ended"] = True
                elif isinstance(event, WindowUpdated):
                    pass
            writer.write(conn.data_to_send())
    finally:
        writer.close()
    return [answers[sid] for sid in sorted(answers)]


def test_h2c_backends_get_http2_with_requests_multiplexed(run: Callable[..., Any]) -> None:
    async def scenario() -> dict[str, Any]:
        backend = await H2Backend("grpc-ish").start()
        try:
            t = table([route(forward(h2c("grpc-ish")))], [backend.cluster()])
            async with gateway(t) as gw:
                gets = [fetch(gw.port, f"/item/{i}", host="shop.example", headers={"X-N": str(i)}) for i in range(6)]
                post = fetch(gw.port, "/upload", method="POST", body=b"y" * BIG)
                big = fetch(gw.port, "/big")
                answers = await asyncio.gather(*gets, post, big)
                return {
                    "answers": answers,
                    "connections": backend.connections,
                    "open": gw._forwarder.h2.open_connections,
                    "stats": gw.stats.snapshot()["grpc-ish"],
                }
        finally:
            await backend.stop()

    got = run(scenario())
    *gets, post, big = got["answers"]
    for i, answer in enumerate(gets):
        seen = answer.json()["headers"]
        assert answer.status == 200 and answer.headers["x-backend"] == "grpc-ish"
        assert (seen[":method"], seen[":path"], seen[":authority"], seen["x-n"]) == (
            "GET",
            f"/item/{i}",
            "shop.example",
            str(i),
        )
        assert "connection" not in seen and "host" not in seen and seen["x-forwarded-proto"] == "http"
        assert "x-envoy-upstream-service-time" in answer.headers
    assert post.status == 200 and post.json()["body"] == BIG  # a body larger than the backend's window
    assert big.status == 200 and big.body == b"x" * BIG
    assert got["connections"] == 1 and got["open"] == 1  # eight requests, one multiplexed connection
    assert got["stats"]["requests"] == 8 and got["stats"]["by_status"] == {"200": 8}


def test_h2c_failures_map_as_over_http11(run: Callable[..., Any]) -> None:
    """A stream reset is a 503 (retried under ``reset``), a refused connection a
    connect failure, a per-try timeout a 504 that cancels only its own stream."""

    async def scenario() -> dict[str, Any]:
        backend = await H2Backend("h2").start()
        try:
            t = table(
                [
                    route(forward(h2c("h2"), retries=RetryPolicy(frozenset(), 0, 0.2)), exact="/hang"),
                    route(forward(h2c("gone")), prefix="/gone"),
                    route(forward(h2c("h2"))),
                ],
                [backend.cluster(), Cluster("gone", (Endpoint("127.0.0.1", dead_port()),))],
            )
            async with gateway(t) as gw:
                reset = await fetch(gw.port, "/reset-once")
                again = await fetch(gw.port, "/reset-once")
                hung = await fetch(gw.port, "/hang")
                await wait_until(lambda: backend.resets_received == 1, "the timed-out stream to be reset")
                after = await fetch(gw.port, "/after")
                gone = await fetch(gw.port, "/gone")
                return {
                    "reset": reset,
                    "again": again,
                    "hung": hung,
                    "after": after,
                    "gone": gone,
                    "connections": backend.connections,
                    "stats": gw.stats.snapshot(),
                }
        finally:
            await backend.stop()

    got = run(scenario())
    assert got["reset"].status == 503 and "reset reason: remote reset" in got["reset"].text
    assert got["again"].status == 200  # no policy: the reset request was not sent again
    assert got["hung"].status == 504 and got["hung"].text == "upstream request timeout"
    assert got["after"].status == 200 and got["connections"] == 1  # the timeout cost one stream only
    assert got["gone"].status == 503 and "reset reason: connection failure" in got["gone"].text
    assert got["stats"]["h2"]["by_status"] == {"200": 2, "503": 1, "504": 1}
    assert got["stats"]["gone"]["by_status"] == {"503": 1}


def test_h2c_reset_is_retried_under_a_reset_policy(run: Callable[..., Any]) -> None:
    async def scenario() -> tuple[int, int]:
        backend = await H2Backend("h2").start()
        try:
            t = table(
                [route(forward(h2c("h2"), retries=RetryPolicy(frozenset({"reset"}), 1, None)))], [backend.cluster()]
            )
            async with gateway(t) as gw:
                answer = await fetch(gw.port, "/reset-once")
                return answer.status, len(backend.seen)
        finally:
            await backend.stop()

    assert run(scenario()) == (200, 2)


def test_clients_may_speak_http2_with_prior_knowledge(run: Callable[..., Any]) -> None:
    async def big(up: Upstream, req: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(200, b"z" * BIG, (("Content-Type", "text/plain"), ("Connection", "keep-alive"))))
        return True

    async def scenario() -> dict[str, Any]:
        async with running(Upstream("v1"), Upstream("large", big)) as (v1, large):
            t = table(
                [route(forward(http11("large")), prefix="/large"), route(forward(http11("v1")), prefix="/app")],
                [v1.cluster(), large.cluster()],
            )
            async with gateway(t) as gw:
                answers = await h2_exchange(
                    gw.port,
                    [
                        ("GET", "/app/a?x=1", b""),
                        ("HEAD", "/app/b", b""),
                        ("POST", "/app/c", b"hello"),
                        ("GET", "/nowhere", b""),
                        ("GET", "/large", b""),
                    ],
                )
                async with Client(gw.port) as c:  # HTTP/1.1 still works on the same port
                    plain = await c.request("GET", "/app/plain")
                return {"answers": answers, "plain": plain, "seen": [(s.method, s.target, s.headers) for s in v1.seen]}

    got = run(scenario())
    get, head, post, missing, large = got["answers"]
    assert get["status"] == 200 and json.loads(get["body"])["path"] == "/app/a?x=1"
    assert "connection" not in get["headers"] and get["headers"]["x-upstream"] == "v1"
    assert head["status"] == 200 and head["body"] == b""
    assert post["status"] == 200 and json.loads(post["body"])["body"] == "hello"
    assert missing["status"] == 404 and b"no route matched" in missing["body"]
    assert large["status"] == 200 and large["body"] == b"z" * BIG  # beyond the client's window
    assert got["plain"].status == 200
    seen = {t: (m, h["host"]) for m, t, h in got["seen"]}  # the streams ran concurrently: any order
    assert seen == {
        "/app/a?x=1": ("GET", "example.com"),  # Host from :authority
        "/app/b": ("HEAD", "example.com"),
        "/app/c": ("POST", "example.com"),
        "/app/plain": ("GET", "gw.test"),
    }
