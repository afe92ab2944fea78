"""Upstream HTTP/1.1 connections for the gateway proxy, pooled per endpoint.

``proxying`` sends one request at a time on an ``UpstreamConnection`` and reads the
answer through it: the response head resolves a future (``head``); body chunks are
kept until the proxy ``attach``es a sink (the client's transport, re-framed), then
passed straight on, so a large body streams instead of piling up. After a complete
keep-alive response the proxy ``release``s the connection to the ``UpstreamPool``,
which keeps idle connections per endpoint, as Envoy's HTTP/1 connection pool does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Protocol, cast

import httptools

from helpers.runtime.routes import Endpoint

MAX_IDLE_PER_ENDPOINT = 128

Sink = Callable[[bytes], object]


class UpstreamReset(Exception):
    """The upstream connection closed or broke before the response was complete.

    ``started`` says whether any response byte had arrived: a reused keep-alive
    connection that dies with ``started`` False lost the race against the upstream
    closing it while idle, so the request can be sent again on a fresh one.
    """

    def __init__(self, reason: str, started: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.started = started


class UpstreamConnection(asyncio.Protocol):
    """One HTTP/1.1 connection to an endpoint, carrying one exchange at a time."""

    __slots__ = (
        "busy",
        "closed",
        "closed_waiter",
        "complete",
        "done",
        "endpoint",
        "got_bytes",
        "head",
        "head_only",
        "headers",
        "keep_alive",
        "length",
        "parser",
        "paused",
        "pending",
        "pool",
        "sink",
        "status",
        "surplus",
        "transport",
        "until_close",
    )

    def __init__(self, pool: UpstreamPool, endpoint: Endpoint) -> None:
        self.pool = pool
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.paused = False
        self.closed_waiter: asyncio.Future[None] | None = None
        self._reset_exchange()

    def _reset_exchange(self) -> None:
        self.busy = False
        self.head_only = False
        self.head: asyncio.Future[None] | None = None
        self.done: asyncio.Future[None] | None = None
        self.got_bytes = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.length: int | None = None  # Content-Length of the response, if it has one
        self.until_close = False  # the body ends when the upstream closes
        self.keep_alive = False
        self.complete = False
        self.surplus = False  # bytes came after the complete response: out of step
        self.sink: Sink | None = None
        self.pending: list[bytes] = []

    # ── used by the proxy ────────────────────────────────────────────────────

    def send(self, head: bytes, body: bytes, head_only: bool) -> None:
        """Write one request; ``head`` resolves when the response head is here."""
        loop = asyncio.get_running_loop()
        self._reset_exchange()
        self.busy = True
        self.head_only = head_only
        self.head = loop.create_future()
        if self.closed:  # lost between being connected and used
            self.head.set_exception(UpstreamReset("connection termination", False))
            return
        transport = cast(asyncio.Transport, self.transport)
        if body and len(body) < 65536:
            transport.write(head + body)  # one send for the common small request
        else:
            transport.write(head)
            if body:
                transport.write(body)

    def attach(self, sink: Sink) -> bool:
        """Pass the body read so far, and all that follows, to ``sink``.

        True when the body is already complete; else ``done`` resolves when it is
        (or fails with ``UpstreamReset``)."""
        for chunk in self.pending:
            sink(chunk)
        self.pending = []
        if self.complete:
            return True
        if self.closed:
            raise UpstreamReset("connection termination", True)
        self.sink = sink
        self.done = asyncio.get_running_loop().create_future()
        return False

    def pause(self) -> bool:
        """Stop reading (the client reads slower than the upstream sends)."""
        if self.paused or self.closed:
            return False
        self.paused = True
        cast(asyncio.Transport, self.transport).pause_reading()
        return True

    def resume(self) -> None:
        if self.paused and not self.closed:
            self.paused = False
            cast(asyncio.Transport, self.transport).resume_reading()

    def release(self) -> None:
        """The exchange is over: keep the connection if it can carry another."""
        if not (self.complete and self.keep_alive) or self.surplus or self.closed:
            self.close()
            return
        self.resume()
        self._reset_exchange()
        self.pool.put(self)

    def close(self) -> None:
        """Drop the connection (mid-exchange too: nobody will wait on it)."""
        self.head = self.done = None
        self.sink = None
        self.busy = False
        if self.transport is not None and not self.closed:
            self.transport.close()

    # ── asyncio.Protocol ─────────────────────────────────────────────────────

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.pool.opened(self)

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # bytes nobody asked for: the connection is out of step
            cast(asyncio.Transport, self.transport).close()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail("protocol error")
            cast(asyncio.Transport, self.transport).close()

    def eof_received(self) -> None:
        return None  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.busy and not self.complete:
            if self.until_close and self.status:  # a close-delimited body ends here
                self.complete = True
                self.keep_alive = False
                if self.done is not None and not self.done.done():
                    self.done.set_result(None)
            else:
                self._fail("connection reset" if exc is not None else "connection termination")
        if self.closed_waiter is not None and not self.closed_waiter.done():
            self.closed_waiter.set_result(None)

    def _fail(self, reason: str) -> None:
        error = UpstreamReset(reason, self.got_bytes)
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        elif self.done is not None and not self.done.done():
            self.done.set_exception(error)

    # ── httptools.HttpResponseParser callbacks ───────────────────────────────

    def on_message_begin(self) -> None:
        # A second response in the same read as the first: nobody asked for it. It
        # must not leak into this exchange, and the connection cannot be reused.
        if self.complete:
            self.surplus = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.surplus:
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.surplus:
            return
        status = self.parser.get_status_code()
        if status < 200 and status != 101:  # interim (100 Continue): the real head follows
            self.headers = []
            return
        self.status = status
        chunked = False
        for name, value in self.headers:
            n = len(name)
            if n == 14 and name.lower() == b"content-length":
                self.length = int(value)
            elif n == 17 and name.lower() == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        if chunked:
            self.length = None
        self.keep_alive = self.parser.should_keep_alive()
        if self.head_only:
            # A HEAD answer has no body whatever its headers say; the parser does not
            # know that, so this connection is not reused.
            self.complete = True
            self.keep_alive = False
        elif not chunked and self.length is None and status not in (204, 304):
            self.until_close = True
        if self.head is not None and not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.head_only or self.surplus or not body:
            return
        if self.sink is not None:
            self.sink(body)
        else:
            self.pending.append(body)

    def on_message_complete(self) -> None:
        if self.status == 0 or self.surplus:  # end of an interim (or unasked-for) response
            return
        self.complete = True
        if self.done is not None and not self.done.done():
            self.done.set_result(None)


class UpstreamPool:
    """Idle keep-alive connections per endpoint, plus every open one (for ``close``)."""

    def __init__(self, max_idle: int = MAX_IDLE_PER_ENDPOINT) -> None:
        self.max_idle = max_idle
        self._idle: dict[Endpoint, list[UpstreamConnection]] = {}
        self._open: set[UpstreamConnection] = set()
        self._closing = False

    def take(self, endpoint: Endpoint) -> UpstreamConnection | None:
        """An idle connection to ``endpoint``, most recently used first, or None."""
        idle = self._idle.get(endpoint)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def connect(self, endpoint: Endpoint) -> UpstreamConnection:
        """A new connection (raises OSError when the endpoint refuses it)."""
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: UpstreamConnection(self, endpoint), endpoint.host, endpoint.port)
        return conn

    def put(self, conn: UpstreamConnection) -> None:
        idle = self._idle.setdefault(conn.endpoint, [])
        if self._closing or len(idle) >= self.max_idle:
            conn.close()
        else:
            idle.append(conn)

    def opened(self, conn: UpstreamConnection) -> None:
        self._open.add(conn)
        if self._closing:
            conn.close()

    def forget(self, conn: UpstreamConnection) -> None:
        """``conn`` closed: drop it (the upstream closes idle ones after a while)."""
        self._open.discard(conn)
        idle = self._idle.get(conn.endpoint)
        if idle is not None:
            if conn in idle:
                idle.remove(conn)
            if not idle:  # pods come and go on new ports: keep no empty entries
                del self._idle[conn.endpoint]

    @property
    def open_connections(self) -> int:
        return len(self._open)

    async def close(self) -> None:
        """Close every connection and wait until their sockets are closed."""
        self._closing = True
        waiters = close_all(self._open)
        self._idle.clear()
        if waiters:
            await asyncio.gather(*waiters)


class Closing(Protocol):
    """A pooled connection: closes, and resolves ``closed_waiter`` once its socket is."""

    closed_waiter: asyncio.Future[None] | None

    def close(self) -> None: ...


def close_all(conns: Iterable[Closing]) -> list[asyncio.Future[None]]:
    """Close each of ``conns``; the futures to await until their sockets are closed."""
    loop = asyncio.get_running_loop()
    waiters = []
    for conn in list(conns):
        conn.closed_waiter = loop.create_future()
        waiters.append(conn.closed_waiter)
        conn.close()
    return waiters
