"""The open-loop traffic generator against a small real HTTP server on 127.0.0.1.

The server answers like the petstore (v1 or v2 pets, by path) and can be slow, so the
tests can tell an open-loop generator from one that waits for each answer.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator

import psutil
import pytest
from aiohttp import web

from helpers.live.sampling import sample
from helpers.live.traffic import COLUMNS, Traffic, summarize

from .conftest import wait_for

V1 = [{"id": 1, "name": "Dog", "status": "available"}]
V2 = [{"id": 1, "name": "Dog", "status": "v2"}]


class Server:
    """An aiohttp server in its own thread: /v1 and /v2 answer pets, /slow waits
    ``delay`` seconds first, /error answers 503. It counts the canary headers it saw."""

    def __init__(self) -> None:
        self.delay = 0.2
        self.canary_seen = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self.url = f"http://127.0.0.1:{self.port}"

    async def _start(self) -> int:
        app = web.Application()
        app.router.add_get("/v1", self._v1)
        app.router.add_get("/v2", self._v2)
        app.router.add_get("/slow", self._slow)
        app.router.add_get("/error", self._error)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _pets(self, request: web.Request, pets: list[dict[str, object]]) -> web.Response:
        if request.headers.get("x-canary") == "true":
            self.canary_seen += 1
        return web.json_response(pets)

    async def _v1(self, request: web.Request) -> web.Response:
        return self._pets(request, V1)

    async def _v2(self, request: web.Request) -> web.Response:
        return self._pets(request, V2)

    async def _error(self, request: web.Request) -> web.Response:
        return web.json_response({"code": 503, "message": "down"}, status=503)

    async def _slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        return web.json_response(V1)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def _connections() -> int:
    return len(psutil.Process(os.getpid()).net_connections(kind="tcp"))


def test_records_every_request_with_the_version_that_answered(server: Server) -> None:
    frame = Traffic(server.url, rate=200, path="/v2").run(requests=50)
    assert list(frame.columns) == COLUMNS
    assert list(frame["request"]) == list(range(50))
    assert set(frame["version"]) == {"v2"} and set(frame["status"]) == {200}
    assert (frame["latency_ms"] > 0).all() and frame["error"].isna().all()
    assert frame["sent_s"].is_monotonic_increasing
    table = summarize(frame)
    assert list(table.index) == ["v1", "v2"]
    assert list(table["requests"]) == [0, 50]
    assert list(table.columns) == ["requests", "share", "p50_ms", "p95_ms", "p99_ms"]


def test_requests_are_due_on_schedule(server: Server) -> None:
    frame = Traffic(server.url, rate=100, path="/v1").run(requests=30)
    # Request i is due i/rate seconds after the start, whatever the answers did.
    gaps = frame["sent_s"].diff().dropna()
    assert gaps.round(6).eq(0.01).all(), gaps.describe()


def test_open_loop_sends_on_schedule_even_when_answers_are_slow(server: Server) -> None:
    server.delay = 0.3
    traffic = Traffic(server.url, rate=50, path="/slow")
    traffic.start()
    traffic.wait_for_answers(40)  # about 1.1 s: a loop waiting for answers would have sent about 4
    sent, elapsed = traffic.sent, traffic.elapsed
    frame = traffic.stop()
    assert sent >= 0.9 * 50 * (elapsed - 0.3), (sent, elapsed)
    # The time waited is latency, measured from when the request was due.
    assert frame["latency_ms"].min() >= 300


def test_header_share_spreads_the_headers_evenly(server: Server) -> None:
    frame = Traffic(server.url, rate=500, path="/v1", headers={"x-canary": "true"}, header_share=0.2).run(requests=100)
    assert int(frame["canary"].sum()) == 20
    assert list(frame.index[frame["canary"]]) == list(range(4, 100, 5))
    assert server.canary_seen == 20


def test_ring_buffer_keeps_only_the_latest(server: Server) -> None:
    traffic = Traffic(server.url, rate=1000, path="/v1", capacity=25)
    frame = traffic.run(requests=100)
    assert len(frame) == 25 and traffic.sent == 100
    assert frame["request"].min() >= 75 - 5  # answers may arrive a little out of order
    assert traffic.answered["v1"] == 100


def test_errors_are_recorded_not_raised(server: Server) -> None:
    frame = Traffic(server.url, rate=200, path="/error").run(requests=10)
    assert set(frame["status"]) == {503} and frame["version"].isna().all()
    assert list(summarize(frame).index) == ["v1", "v2", "errors"]

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    refused = Traffic(closed, rate=200).run(requests=5)
    assert set(refused["status"]) == {0} and refused["error"].str.len().gt(0).all()
    with pytest.raises(ConnectionError, match="no answer from"):
        sample(closed, n=3)


def test_rate_can_change_and_pause_while_running(server: Server) -> None:
    traffic = Traffic(server.url, rate=50, path="/v1")
    with traffic:
        traffic.wait_for_answers(10)
        traffic.rate = 0
        # A second generator is the clock: while it gets 50 answers, the paused one sends nothing.
        Traffic(server.url, rate=200, path="/v2").run(requests=20)
        paused_at = traffic.sent
        Traffic(server.url, rate=200, path="/v2").run(requests=50)
        assert traffic.sent == paused_at
        traffic.rate = 400
        traffic.wait_for_answers(100)
    frame = traffic.frame()
    fast = frame[frame["request"] > paused_at]["sent_s"].diff().dropna()
    assert fast.round(6).eq(0.0025).all()


def test_stop_leaves_no_thread_or_socket(server: Server) -> None:
    threads, sockets = threading.active_count(), _connections()
    for _ in range(3):
        traffic = Traffic(server.url, rate=300, path="/v1").start()
        traffic.wait_for_answers(30)
        traffic.stop()
        assert not traffic.running
    assert threading.active_count() == threads
    wait_for(lambda: _connections() <= sockets, timeout=10, what="client sockets to close")


def test_bad_arguments_say_what_is_wrong(server: Server) -> None:
    with pytest.raises(ValueError, match="rate must be"):
        Traffic(server.url, rate=-1)
    with pytest.raises(ValueError, match='path must start with "/"'):
        Traffic(server.url, path="findPets")
    with pytest.raises(ValueError, match="header_share must be between 0 and 1"):
        Traffic(server.url, header_share=1.5)
    with pytest.raises(ValueError, match="give either seconds or requests"):
        Traffic(server.url).run()
    with pytest.raises(TimeoutError, match="the traffic stopped"):
        Traffic(server.url, path="/v1").wait_for_answers(1, timeout=5)
