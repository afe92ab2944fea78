"""Pooled upstream connections (``proxy.upstreams``) against real loopback servers.

Each test starts a small asyncio server on 127.0.0.1 whose handler answers each
request as the test needs (keep-alive, close-delimited, cut short, garbage), drives
``UpstreamConnection`` the way the proxy does (``send`` → ``head`` → ``attach`` →
``done`` → ``release``), and stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import pytest

from helpers.runtime.proxy.upstreams import MAX_IDLE_PER_ENDPOINT, UpstreamConnection, UpstreamPool, UpstreamReset
from helpers.runtime.routes import Endpoint
from tests.conftest import until as until_polled

T = TypeVar("T")
IO_TIMEOUT_S = 5.0
GET = b"GET /x HTTP/1.1\r\nhost: upstream\r\n\r\n"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 20))


wait_until = partial(until_polled, timeout=IO_TIMEOUT_S, interval=0.005)


def ok(body: bytes = b"ok", *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


Answer = Callable[["Server", bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


async def keep_alive(server: Server, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    writer.write(ok(b"answer %d" % len(server.requests)))
    return True


@dataclass
class Server:
    """Reads request heads; ``answer`` writes the response and says whether to go on."""

    answer: Answer = keep_alive
    port: int = 0
    connections: int = 0
    closed: int = 0
    requests: list[bytes] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # for answers that wait on the test
    _server: asyncio.AbstractServer | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.port)

    async def start(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    break
                self.requests.append(head)
                go_on = await self.answer(self, head, reader, writer)
                await writer.drain()
                if not go_on:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            self.closed += 1


@contextlib.asynccontextmanager
async def serving(answer: Answer = keep_alive) -> AsyncIterator[tuple[Server, UpstreamPool]]:
    server = await Server(answer).start()
    pool = UpstreamPool()
    try:
        yield server, pool
    finally:
        await pool.close()
        await server.stop()


async def exchange(
    pool: UpstreamPool, ep: Endpoint, head: bytes = GET, head_only: bool = False
) -> tuple[UpstreamConnection, bytes]:
    """One request as the proxy sends it: a pooled connection or a new one; the body read whole."""
    conn = pool.take(ep) or await pool.connect(ep)
    conn.send(head, b"", head_only)
    assert conn.head is not None
    await asyncio.wait_for(conn.head, IO_TIMEOUT_S)
    parts: list[bytes] = []
    if not conn.attach(parts.append):
        assert conn.done is not None
        await asyncio.wait_for(conn.done, IO_TIMEOUT_S)
    return conn, b"".join(parts)


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ── keep-alive and the idle pool ─────────────────────────────────────────────


def test_sequential_requests_reuse_one_connection() -> None:
    async def scenario() -> tuple[list[bytes], int, int]:
        async with serving() as (server, pool):
            bodies = []
            for _ in range(4):
                conn, body = await exchange(pool, server.endpoint)
                assert conn.status == 200 and conn.complete and conn.keep_alive
                bodies.append(body)
                conn.release()
            return bodies, server.connections, pool.open_connections

    bodies, connections, still_open = run(scenario())
    assert bodies == [b"answer 1", b"answer 2", b"answer 3", b"answer 4"]
    assert connections == 1  # the server saw one connection carry all four
    assert still_open == 1


def test_take_gives_the_most_recently_released_connection() -> None:
    async def scenario() -> None:
        async with serving() as (server, pool):
            ep = server.endpoint
            assert pool.take(ep) is None
            a, _ = await exchange(pool, ep)
            b, _ = await exchange(pool, ep)  # a is busy: a second connection
            assert a is not b and server.connections == 2
            a.release()
            b.release()
            assert pool.take(ep) is b and pool.take(ep) is a and pool.take(ep) is None
            a.close()
            b.close()

    run(scenario())


def test_at_most_max_idle_connections_are_kept_per_endpoint() -> None:
    n = MAX_IDLE_PER_ENDPOINT + 3

    async def scenario() -> tuple[int, int, int]:
        async with serving() as (server, pool):
            ep = server.endpoint
            conns = [await pool.connect(ep) for _ in range(n)]
            for conn in conns:
                conn.send(GET, b"", False)
            await asyncio.gather(*(asyncio.wait_for(c.head, IO_TIMEOUT_S) for c in conns))  # type: ignore[arg-type]
            for conn in conns:
                assert conn.complete
                conn.release()
            await wait_until(lambda: server.closed == n - MAX_IDLE_PER_ENDPOINT, "the surplus connections to close")
            kept = 0
            while pool.take(ep) is not None:
                kept += 1
            return kept, server.connections, server.closed

    kept, connections, closed = run(scenario())
    assert connections == n
    assert kept == MAX_IDLE_PER_ENDPOINT
    assert closed == 3


def test_max_idle_is_per_endpoint_and_configurable() -> None:
    async def scenario() -> tuple[int, int]:
        one, two = await Server().start(), await Server().start()
        pool = UpstreamPool(max_idle=1)
        try:
            conns = [await pool.connect(s.endpoint) for s in (one, one, two)]
            for conn in conns:
                conn.send(GET, b"", False)
                await asyncio.wait_for(conn.head, IO_TIMEOUT_S)  # type: ignore[arg-type]
                conn.release()
            await wait_until(lambda: one.closed == 1, "the second idle connection to one endpoint to close")
            return int(pool.take(one.endpoint) is not None) + int(pool.take(one.endpoint) is not None), int(
                pool.take(two.endpoint) is not None
            )
        finally:
            await pool.close()
            await one.stop()
            await two.stop()

    assert run(scenario()) == (1, 1)


def test_an_idle_connection_the_upstream_closes_leaves_the_pool() -> None:
    async def closes_after_answer(
        server: Server, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(ok())  # says keep-alive, then closes anyway (an idle timeout)
        return False

    async def scenario() -> None:
        async with serving(closes_after_answer) as (server, pool):
            conn, _ = await exchange(pool, server.endpoint)
            conn.release()
            await wait_until(lambda: conn.closed, "the connection to see the upstream close")
            assert pool.take(server.endpoint) is None
            assert pool.open_connections == 0

    run(scenario())


def test_a_connection_close_answer_is_not_pooled() -> None:
    async def says_close(
        server: Server, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(ok(b"bye", "Connection: close"))
        return False

    async def scenario() -> None:
        async with serving(says_close) as (server, pool):
            conn, body = await exchange(pool, server.endpoint)
            assert body == b"bye" and conn.complete and not conn.keep_alive
            conn.release()
            assert pool.take(server.endpoint) is None
            await wait_until(lambda: pool.open_connections == 0, "the connection to close")

    run(scenario())


def test_unrequested_bytes_on_an_idle_connection_close_it() -> None:
    async def then_garbage(
        server: Server, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(ok())
        await writer.drain()
        await server.gate.wait()  # the test has put the connection back in the pool
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")  # an answer to nothing
        return True

    async def scenario() -> None:
        async with serving(then_garbage) as (server, pool):
            conn, _ = await exchange(pool, server.endpoint)
            conn.release()
            server.gate.set()
            await wait_until(lambda: conn.closed, "the out-of-step connection to close")
            assert pool.take(server.endpoint) is None

    run(scenario())


def test_an_extra_response_in_the_same_read_is_not_taken_as_part_of_the_exchange() -> None:
    async def two_answers(
        server: Server, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(ok(b"ok") + ok(b"extra", "X-Extra: 1"))  # one write: one read on the other side
        return True

    async def scenario() -> tuple[bytes, int | None, bool]:
        async with serving(two_answers) as (server, pool):
            conn, body = await exchange(pool, server.endpoint)
            length = conn.length
            conn.release()
            pooled = pool.take(server.endpoint) is conn
            conn.close()
            return body, length, pooled

    body, length, pooled = run(scenario())
    assert body == b"ok"  # the body of the one response asked for
    assert length == 2
    assert not pooled  # a connection out of step is closed, not reused


# ── bodies ───────────────────────────────────────────────────────────────────


def test_chunked_body_is_streamed_to_the_sink_and_kept_alive() -> None:
    async def chunked(server: Server, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await server.gate.wait()
        writer.write(b"6\r\n world\r\n0\r\n\r\n")
        return True

    async def scenario() -> None:
        async with serving(chunked) as (server, pool):
            conn = await pool.connect(server.endpoint)
            conn.send(GET, b"", False)
            await asyncio.wait_for(conn.head, IO_TIMEOUT_S)  # type: ignore[arg-type]
            assert conn.status == 200 and conn.length is None and not conn.until_close
            got: list[bytes] = []
            await wait_until(lambda: conn.pending, "the first chunk")
            assert conn.attach(got.append) is False  # more to come
            assert got == [b"hello"]
            server.gate.set()
            await asyncio.wait_for(conn.done, IO_TIMEOUT_S)  # type: ignore[arg-type]
            assert b"".join(got) == b"hello world" and conn.keep_alive
            conn.release()
            assert pool.take(server.endpoint) is conn
            conn.close()

    run(scenario())


def test_close_delimited_body_ends_when_the_upstream_closes() -> None:
    async def until_close(
        server: Server, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        return False

    async def scenario() -> None:
        async with serving(until_close) as (server, pool):
            conn, body = await exchange(pool, server.endpoint)
            assert body == b"all of it" and conn.complete and not conn.keep_alive and conn.until_close
            conn.release()
            assert pool.take(server.endpoint) is None

    run(scenario())


def test_head_answer_is_complete_without_a_body_and_not_reused() -> None:
    async def head_answer(
        server: Server, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
        return True

    async def scenario() -> None:
        async with serving(head_answer) as (server, pool):
            conn, body = await exchange(pool, server.endpoint, b"HEAD /x HTTP/1.1\r\nhost: u\r\n\r\n", head_only=True)
            assert body == b"" and conn.complete and conn.length == 1234 and not conn.keep_alive
            conn.release()
            assert pool.take(server.endpoint) is None

    run(scenario())


def test_interim_100_continue_is_skipped() -> None:
    async def continue_first(
        server: Server, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"real", "X-Real: yes"))
        return True

    async def scenario() -> None:
        async with serving(continue_first) as (server, pool):
            conn, body = await exchange(pool, server.endpoint)
            assert (conn.status, body) == (200, b"real")
            assert (b"X-Real", b"yes") in conn.headers
            conn.release()
            assert pool.take(server.endpoint) is conn
            conn.close()

    run(scenario())


def test_request_body_reaches_the_upstream() -> None:
    async def echo_body(
        server: Server, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        writer.write(ok(await reader.readexactly(length)))
        return True

    async def scenario() -> tuple[bytes, bytes]:
        async with serving(echo_body) as (server, pool):
            out = []
            for body in (b"small", b"x" * 200_000):  # one write, and head then body
                conn = await pool.connect(server.endpoint)
                conn.send(b"POST / HTTP/1.1\r\nhost: u\r\ncontent-length: %d\r\n\r\n" % len(body), body, False)
                await asyncio.wait_for(conn.head, IO_TIMEOUT_S)  # type: ignore[arg-type]
                got: list[bytes] = []
                if not conn.attach(got.append):
                    await asyncio.wait_for(conn.done, IO_TIMEOUT_S)  # type: ignore[arg-type]
                out.append(b"".join(got))
                conn.close()
            return out[0], out[1]

    small, large = run(scenario())
    assert small == b"small" and large == b"x" * 200_000


# ── failures ─────────────────────────────────────────────────────────────────


def test_upstream_closing_mid_body_is_a_reset_after_the_start() -> None:
    async def cut_short(
        server: Server, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await writer.drain()
        await server.gate.wait()
        return False  # and close, 90 bytes short

    async def scenario() -> tuple[UpstreamReset, list[bytes]]:
        async with serving(cut_short) as (server, pool):
            conn = await pool.connect(server.endpoint)
            conn.send(GET, b"", False)
            await asyncio.wait_for(conn.head, IO_TIMEOUT_S)  # type: ignore[arg-type]
            await wait_until(lambda: conn.pending, "the first body bytes")
            got: list[bytes] = []
            assert conn.attach(got.append) is False
            server.gate.set()
            with pytest.raises(UpstreamReset) as caught:
                await asyncio.wait_for(conn.done, IO_TIMEOUT_S)  # type: ignore[arg-type]
            assert not conn.complete
            conn.release()  # not whole: closed, not pooled
            assert pool.take(server.endpoint) is None
            return caught.value, got

    error, got = run(scenario())
    assert error.started is True and error.reason == "connection termination"
    assert got == [b"0123456789"]


def test_upstream_closing_before_any_byte_is_a_reset_not_started() -> None:
    async def hang_up(server: Server, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        return False

    async def scenario() -> UpstreamReset:
        async with serving(hang_up) as (server, pool):
            conn = await pool.connect(server.endpoint)
            conn.send(GET, b"", False)
            with pytest.raises(UpstreamReset) as caught:
                await asyncio.wait_for(conn.head, IO_TIMEOUT_S)  # type: ignore[arg-type]
            assert conn.closed and pool.open_connections == 0
            return caught.value

    error = run(scenario())
    assert error.started is False  # the keep-alive race: safe to send again


def test_attach_after_a_cut_raises_reset() -> None:
    async def cut_short(
        server: Server, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        return False

    async def scenario() -> None:
        async with serving(cut_short) as (server, pool):
            conn = await pool.connect(server.endpoint)
            conn.send(GET, b"", False)
            await asyncio.wait_for(conn.head, IO_TIMEOUT_S)  # type: ignore[arg-type]
            await wait_until(lambda: conn.closed, "the upstream to close")
            got: list[bytes] = []
            with pytest.raises(UpstreamReset) as caught:
                conn.attach(got.append)
            assert caught.value.started and got == [b"partial"]

    run(scenario())


def test_malformed_response_is_a_protocol_error() -> None:
    async def garbage(server: Server, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        return True

    async def scenario() -> UpstreamReset:
        async with serving(garbage) as (server, pool):
            conn = await pool.connect(server.endpoint)
            conn.send(GET, b"", False)
            with pytest.raises(UpstreamReset) as caught:
                await asyncio.wait_for(conn.head, IO_TIMEOUT_S)  # type: ignore[arg-type]
            await wait_until(lambda: conn.closed, "the broken connection to close")
            return caught.value

    error = run(scenario())
    assert error.reason == "protocol error" and error.started


def test_refused_connection_raises_oserror() -> None:
    async def scenario() -> None:
        pool = UpstreamPool()
        try:
            with pytest.raises(OSError):
                await pool.connect(Endpoint("127.0.0.1", dead_port()))
            assert pool.open_connections == 0
        finally:
            await pool.close()

    run(scenario())


def test_sending_on_a_connection_lost_while_idle_fails_not_started() -> None:
    async def scenario() -> None:
        async with serving() as (server, pool):
            conn, _ = await exchange(pool, server.endpoint)
            conn.close()
            await wait_until(lambda: conn.closed, "the connection to close")
            conn.send(GET, b"", False)
            with pytest.raises(UpstreamReset) as caught:
                await asyncio.wait_for(conn.head, IO_TIMEOUT_S)  # type: ignore[arg-type]
            assert caught.value.started is False

    run(scenario())


# ── closing the pool ─────────────────────────────────────────────────────────


def test_close_closes_idle_and_busy_connections_and_refuses_new_idle_ones() -> None:
    async def slow(server: Server, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if b"/slow" in head:
            await asyncio.Event().wait()  # never answers; cancelled at stop
        writer.write(ok())
        return True

    async def scenario() -> None:
        server = await Server(slow).start()
        pool = UpstreamPool()
        try:
            idle, _ = await exchange(pool, server.endpoint)
            idle.release()
            busy = await pool.connect(server.endpoint)
            busy.send(b"GET /slow HTTP/1.1\r\nhost: u\r\n\r\n", b"", False)
            head = busy.head
            late = await pool.connect(server.endpoint)
            late.send(GET, b"", False)
            await asyncio.wait_for(late.head, IO_TIMEOUT_S)  # type: ignore[arg-type]
            assert pool.open_connections == 3
            await asyncio.wait_for(pool.close(), IO_TIMEOUT_S)
            assert idle.closed and busy.closed and late.closed and pool.open_connections == 0
            assert head is not None and not head.done()  # a closed exchange is nobody's to fail
            late.release()  # after close: dropped, not kept
            assert pool.take(server.endpoint) is None
            # The two idle-at-the-server connections see the close (the busy one's handler never reads again).
            await wait_until(lambda: server.closed == 2, "the server to see the connections close")
        finally:
            await server.stop()

    run(scenario())
