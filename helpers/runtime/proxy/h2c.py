"""HTTP/2 over cleartext to h2c backends (a Service port with ``appProtocol: kubernetes.io/h2c``).

Envoy speaks HTTP/2 with prior knowledge to such a cluster: no upgrade, the
connection preface at once. So does this module: ``H2Pool`` keeps connections per
endpoint and opens a stream on one with room for it (the peer's
``MAX_CONCURRENT_STREAMS``), a new connection only when none has room; many
requests share one connection. An ``H2Stream`` is one exchange and answers to the
proxy as an HTTP/1.1 ``UpstreamConnection`` does (``head``, ``attach``, ``done``,
``release``), so ``forwarding`` runs its attempts, retries and timeouts the same way:

- the connection cannot be made: ``OSError`` (a connect failure, nothing sent);
- the stream is reset, or the connection goes away before the answer is complete:
  ``UpstreamReset`` ("remote reset", "connection termination", "protocol error");
- a stream the proxy gives up on (per-try or route timeout, client gone) is reset
  with ``CANCEL``; the connection carries on with the others.

Received data is acknowledged as the client takes it: a paused stream (a slow
client) stops acknowledging, so the backend's window closes, as Envoy's does.
"""

from __future__ import annotations

import asyncio
from typing import cast

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError, StreamClosedError

from helpers.runtime.proxy.h2wire import Outbox, request_fields
from helpers.runtime.proxy.upstreams import Sink, UpstreamReset, close_all
from helpers.runtime.routes import Endpoint

_CONFIG = H2Configuration(client_side=True, header_encoding=None)


class H2Stream:
    """One request and its answer on an h2c connection."""

    __slots__ = (
        "complete",
        "conn",
        "done",
        "got_bytes",
        "head",
        "headers",
        "length",
        "paused",
        "pending",
        "sink",
        "status",
        "stream_id",
        "unacked",
    )

    def __init__(self, conn: H2Upstream) -> None:
        self.conn = conn
        self.stream_id = 0
        self.head: asyncio.Future[None] | None = None
        self.done: asyncio.Future[None] | None = None
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.length: int | None = None
        self.complete = False
        self.got_bytes = False
        self.pending: list[bytes] = []
        self.sink: Sink | None = None
        self.paused = False
        self.unacked = 0  # bytes received and not yet acknowledged (while paused)

    def send(self, head: bytes, body: bytes, head_only: bool) -> None:
        """Open the stream and send the request; ``head`` resolves with the answer's head."""
        self.head = asyncio.get_running_loop().create_future()
        self.conn.open(self, request_fields(head), body)

    def attach(self, sink: Sink) -> bool:
        """Pass the body so far, and what follows, to ``sink``; True when it is complete."""
        for chunk in self.pending:
            sink(chunk)
        self.pending = []
        if self.complete:
            return True
        if self.stream_id not in self.conn.streams:
            raise UpstreamReset("connection termination", True)
        self.sink = sink
        self.done = asyncio.get_running_loop().create_future()
        return False

    def pause(self) -> bool:
        if self.paused or self.complete:
            return False
        self.paused = True
        return True

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self.conn.acknowledge(self, self.unacked)
            self.unacked = 0

    def release(self) -> None:
        """The exchange is over; a stream not complete is reset (the connection stays)."""
        if not self.complete:
            self.close()

    def close(self) -> None:
        """Give up on this exchange: reset the stream (``CANCEL``)."""
        self.head = self.done = None
        self.sink = None
        self.conn.cancel(self)

    # ── called by the connection ─────────────────────────────────────────────

    def received_head(self, fields: list[tuple[bytes, bytes]]) -> None:
        self.got_bytes = True
        for name, value in fields:
            if name == b":status":
                self.status = int(value)
            elif name[:1] != b":":
                self.headers.append((name, value))
                if name == b"content-length" and value.isdigit():
                    self.length = int(value)
        if self.head is not None and not self.head.done():
            self.head.set_result(None)

    def received_data(self, data: bytes) -> None:
        if self.sink is not None:
            self.sink(data)
        else:
            self.pending.append(data)

    def ended(self) -> None:
        self.complete = True
        if self.head is not None and not self.head.done():  # ended without an answer
            self.head.set_exception(UpstreamReset("protocol error", self.got_bytes))
        elif self.done is not None and not self.done.done():
            self.done.set_result(None)

    def fail(self, reason: str) -> None:
        error = UpstreamReset(reason, self.got_bytes)
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        elif self.done is not None and not self.done.done():
            self.done.set_exception(error)


class H2Upstream(asyncio.Protocol):
    """One h2c connection to an endpoint, carrying many streams."""

    def __init__(self, pool: H2Pool, endpoint: Endpoint) -> None:
        self.pool = pool
        self.endpoint = endpoint
        self.h2 = H2Connection(config=_CONFIG)
        self.outbox = Outbox(self.h2)
        self.streams: dict[int, H2Stream] = {}
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.going_away = False  # GOAWAY received: no new streams
        self.closed_waiter: asyncio.Future[None] | None = None

    @property
    def has_room(self) -> bool:
        if self.closed or self.going_away:
            return False
        return self.h2.open_outbound_streams < self.h2.remote_settings.max_concurrent_streams

    def open(self, stream: H2Stream, fields: list[tuple[bytes, bytes]], body: bytes) -> None:
        if self.closed:
            cast("asyncio.Future[None]", stream.head).set_exception(UpstreamReset("connection termination", False))
            return
        stream.stream_id = self.h2.get_next_available_stream_id()
        self.streams[stream.stream_id] = stream
        self.h2.send_headers(stream.stream_id, fields, end_stream=not body)
        if body:
            self.outbox.send(stream.stream_id, body, end=True)
        self._flush()

    def acknowledge(self, stream: H2Stream, size: int) -> None:
        if size and stream.stream_id in self.streams and not self.closed:
            try:
                self.h2.acknowledge_received_data(size, stream.stream_id)
            except StreamClosedError:
                return
            self._flush()

    def cancel(self, stream: H2Stream) -> None:
        if self.streams.pop(stream.stream_id, None) is None or self.closed:
            return
        self.outbox.drop(stream.stream_id)
        try:
            self.h2.reset_stream(stream.stream_id, ErrorCodes.CANCEL)
        except StreamClosedError:
            pass
        self._flush()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    # ── asyncio.Protocol ─────────────────────────────────────────────────────

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.h2.initiate_connection()  # prior knowledge: the preface and our SETTINGS at once
        self._flush()
        self.pool.opened(self)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except ProtocolError:
            self._fail_all("protocol error")
            self.close()
            return
        for event in events:
            stream = self.streams.get(getattr(event, "stream_id", 0) or 0)
            if isinstance(event, ResponseReceived) and stream is not None:
                stream.received_head(list(event.headers or []))
            elif isinstance(event, DataReceived):
                size = event.flow_controlled_length or 0
                if stream is None:
                    self._ack(size, event.stream_id)  # a stream we gave up on: keep the window open
                    continue
                stream.received_data(event.data or b"")
                if stream.paused:
                    stream.unacked += size
                else:
                    self._ack(size, stream.stream_id)
            elif isinstance(event, StreamEnded) and stream is not None:
                del self.streams[stream.stream_id]
                stream.ended()
            elif isinstance(event, StreamReset) and stream is not None:
                del self.streams[stream.stream_id]
                self.outbox.drop(stream.stream_id)
                stream.fail("remote reset")
            elif isinstance(event, ConnectionTerminated):
                self.going_away = True
                last = event.last_stream_id or 0
                for sid in [s for s in self.streams if s > last]:  # never processed: safe to retry
                    self.streams.pop(sid).fail("connection termination")
                self.pool.forget(self)
            elif isinstance(event, (WindowUpdated, RemoteSettingsChanged)):
                self.outbox.flush()
        self._flush()
        if self.going_away and not self.streams:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        self.pool.lost(self)
        self._fail_all("connection reset" if exc is not None else "connection termination")
        if self.closed_waiter is not None and not self.closed_waiter.done():
            self.closed_waiter.set_result(None)

    def _ack(self, size: int, stream_id: int) -> None:
        if size:
            try:
                self.h2.acknowledge_received_data(size, stream_id)
            except StreamClosedError:
                self.h2.increment_flow_control_window(size)  # the connection's share still counts

    def _fail_all(self, reason: str) -> None:
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            stream.fail(reason)

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)


class H2Pool:
    """h2c connections per endpoint, streams spread over those with room."""

    def __init__(self) -> None:
        self._by_endpoint: dict[Endpoint, list[H2Upstream]] = {}
        self._connecting: dict[Endpoint, asyncio.Future[H2Upstream]] = {}
        self._open: set[H2Upstream] = set()
        self._closing = False

    async def stream(self, endpoint: Endpoint) -> H2Stream:
        """A new stream to ``endpoint`` (raises OSError when no connection can be made).

        Requests that come while a connection is being made wait for it and share
        it, as Envoy's pending requests do, rather than each opening its own."""
        while True:
            for conn in self._by_endpoint.get(endpoint, ()):
                if conn.has_room:
                    return H2Stream(conn)
            connecting = self._connecting.get(endpoint)
            if connecting is None:
                return H2Stream(await self._connect(endpoint))
            conn = await asyncio.shield(connecting)
            if conn.has_room:
                return H2Stream(conn)

    async def _connect(self, endpoint: Endpoint) -> H2Upstream:
        loop = asyncio.get_running_loop()
        connecting: asyncio.Future[H2Upstream] = loop.create_future()
        self._connecting[endpoint] = connecting
        try:
            _, conn = await loop.create_connection(lambda: H2Upstream(self, endpoint), endpoint.host, endpoint.port)
        except BaseException as e:
            connecting.set_exception(e if isinstance(e, OSError) else ConnectionAbortedError("not connected"))
            connecting.exception()  # those waiting get it; nobody else needs to
            raise
        finally:
            if self._connecting.get(endpoint) is connecting:
                del self._connecting[endpoint]
        if not self._closing:
            self._by_endpoint.setdefault(endpoint, []).append(conn)
        connecting.set_result(conn)
        return conn

    def opened(self, conn: H2Upstream) -> None:
        self._open.add(conn)
        if self._closing:
            conn.close()

    def forget(self, conn: H2Upstream) -> None:
        """No new streams on ``conn`` (it closed, or the backend sent GOAWAY)."""
        conns = self._by_endpoint.get(conn.endpoint)
        if conns is not None and conn in conns:
            conns.remove(conn)
            if not conns:  # pods come and go on new ports: keep no empty entries
                del self._by_endpoint[conn.endpoint]

    def lost(self, conn: H2Upstream) -> None:
        self._open.discard(conn)

    @property
    def open_connections(self) -> int:
        return len(self._open)

    async def close(self) -> None:
        """Close every connection and wait until their sockets are closed."""
        self._closing = True
        waiters = close_all(self._open)
        self._by_endpoint.clear()
        if waiters:
            await asyncio.gather(*waiters)
