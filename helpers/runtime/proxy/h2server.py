"""HTTP/2 from clients with prior knowledge (h2c), as Envoy's listeners accept it.

Envoy's HTTP codec on a cleartext listener looks at a connection's first bytes: the
HTTP/2 connection preface makes it an HTTP/2 connection, anything else HTTP/1.1.
``downstreams.Downstream`` does the same and hands such a connection to
``serve_http2``. Each request stream is then served by the proxy exactly as an
HTTP/1.1 request is: it gets its own ``StreamDownstream`` (a ``Downstream`` whose
transport is the stream), and the HTTP/1.1 answer the proxy writes there is turned
into HEADERS and DATA frames (``h2wire``), sent as the client's windows allow.
Streams run concurrently, each its own task; a stream the client resets ends its
request (and its upstream exchange), as a closed connection does over HTTP/1.1.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import httptools
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError, StreamClosedError

from helpers.runtime.proxy.downstreams import MAX_BODY, Downstream
from helpers.runtime.proxy.h2wire import Fields, Outbox, response_fields
from helpers.runtime.proxy.request import Request

log = logging.getLogger("coalmine.gateway")

_CONFIG = H2Configuration(client_side=False, header_encoding=None)


def serve_http2(down: Downstream, data: bytes) -> None:
    """Serve ``down`` (whose first bytes, ``data``, open with the preface) as HTTP/2."""
    H2Server(down).data_received(data)


class H2Server:
    """One client's HTTP/2 connection: its streams, each a request served by the proxy."""

    def __init__(self, down: Downstream) -> None:
        self.down = down
        self.h2 = H2Connection(config=_CONFIG)
        self.outbox = Outbox(self.h2)
        self.incoming: dict[int, tuple[Fields, list[bytes]]] = {}  # requests still arriving
        self.streams: dict[int, StreamDownstream] = {}  # requests being answered
        self.going_away = False
        loop = down.clients.loop
        self._forever: asyncio.Future[None] = loop.create_future()
        down.tunnel = self.data_received  # from now on every byte read is HTTP/2
        # The connection's task lives as long as the connection: cancelled when it is
        # lost (or the proxy stops), it ends the streams in flight.
        down.task = loop.create_task(self._live())
        self.h2.initiate_connection()
        self.flush()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.down.lost:
            self.down.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except ProtocolError:  # h2 queued a GOAWAY saying why
            self.flush()
            self.down.transport.close()
            return
        for event in events:
            sid = getattr(event, "stream_id", 0) or 0
            if isinstance(event, RequestReceived):
                self.incoming[sid] = (list(event.headers or []), [])
            elif isinstance(event, DataReceived):
                self._ack(event.flow_controlled_length or 0, sid)
                self._body(sid, event.data or b"")
            elif isinstance(event, StreamEnded) and sid in self.incoming:
                self._start(sid, *self.incoming.pop(sid))
            elif isinstance(event, StreamReset):
                self.incoming.pop(sid, None)
                self.outbox.drop(sid)
                stream = self.streams.get(sid)
                if stream is not None:
                    stream.abandon()
            elif isinstance(event, (WindowUpdated, RemoteSettingsChanged)):
                self.outbox.flush()
            elif isinstance(event, ConnectionTerminated):
                self.going_away = True
        self.flush()
        if self.going_away and not self.streams:
            self.down.transport.close()

    def _ack(self, size: int, sid: int) -> None:
        if size:
            try:
                self.h2.acknowledge_received_data(size, sid)
            except StreamClosedError:
                self.h2.increment_flow_control_window(size)

    def _body(self, sid: int, data: bytes) -> None:
        found = self.incoming.get(sid)
        if found is None:
            return  # a stream already answered (413): its rest is dropped
        found[1].append(data)
        if sum(map(len, found[1])) > MAX_BODY:
            del self.incoming[sid]
            stream = StreamDownstream(self, sid, head_only=False)
            req = Request("POST", "/", {}, b"", True, True, True)
            stream.reply(req, 413, f"request body larger than {MAX_BODY // (1024 * 1024)} MiB")

    def _start(self, sid: int, fields: Fields, body: list[bytes]) -> None:
        method = target = authority = ""
        headers: dict[str, str] = {}
        for raw_name, raw_value in fields:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            if name == ":method":
                method = value
            elif name == ":path":
                target = value
            elif name == ":authority":
                authority = value
            elif name[:1] != ":":
                old = headers.get(name)  # repeats joined, as over HTTP/1.1 (cookies with "; ")
                headers[name] = value if old is None else f"{old}{'; ' if name == 'cookie' else ','}{value}"
        if authority and "host" not in headers:
            headers["host"] = authority
        data = b"".join(body)
        req = Request(method, target or "/", headers, data, bool(data) or "content-length" in headers, True, True)
        stream = StreamDownstream(self, sid, head_only=method == "HEAD")
        self.streams[sid] = stream
        stream.task = self.down.clients.loop.create_task(self._respond(stream, req))

    async def _respond(self, stream: StreamDownstream, req: Request) -> None:
        try:
            await self.down.clients.handle(stream, req)
        except Exception:  # a bug: answer 500 (or cut the stream) and keep serving the others
            log.exception("gateway-proxy failed on %s %s (HTTP/2)", req.method, req.path)
            if not stream.sent_status and not stream.lost:
                stream.reply(req, 500, "gateway-proxy internal error")
        finally:
            self.streams.pop(stream.writer.stream_id, None)
            stream.writer.finish()
            self.flush()
            if self.going_away and not self.streams and not self.down.lost:
                self.down.transport.close()

    async def _live(self) -> None:
        try:
            await self._forever
        finally:
            streams = list(self.streams.values())
            for stream in streams:
                stream.abandon()
            tasks = [s.task for s in streams if s.task is not None]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)


class StreamDownstream(Downstream):
    """One HTTP/2 request stream, standing in for a client connection: what the
    proxy writes to its ``transport`` goes out as this stream's frames."""

    __slots__ = ("writer",)

    def __init__(self, server: H2Server, stream_id: int, head_only: bool) -> None:
        super().__init__(server.down.clients)
        self.writer = ResponseFrames(server, stream_id, head_only)
        self.transport = cast(asyncio.Transport, self.writer)
        self.peer, self.tls, self.sni = server.down.peer, server.down.tls, server.down.sni

    def abandon(self) -> None:
        """The client reset the stream or went away: end the request."""
        self.lost = True
        self.writer.finished = True
        if self.streaming is not None:
            self.streaming.close()
            self.streaming = None
        if self.task is not None:
            self.task.cancel()


class ResponseFrames:
    """An HTTP/1.1 response, written by the proxy, parsed and sent as HTTP/2 frames."""

    __slots__ = ("finished", "head_only", "headers", "parser", "server", "stream_id")

    def __init__(self, server: H2Server, stream_id: int, head_only: bool) -> None:
        self.server = server
        self.stream_id = stream_id
        self.head_only = head_only  # a HEAD answer ends with its head, whatever it says
        self.parser = httptools.HttpResponseParser(self)
        self.headers: Fields = []
        self.finished = False

    def write(self, data: bytes) -> None:
        if self.finished:
            return
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, StreamClosedError):
            self.finish()
        self.server.flush()

    def finish(self) -> None:
        """The proxy is done: a response not sent in full is cut short (RST_STREAM)."""
        if self.finished:
            return
        self.finished = True
        self.server.outbox.drop(self.stream_id)
        try:
            self.server.h2.reset_stream(self.stream_id, ErrorCodes.INTERNAL_ERROR)
        except StreamClosedError:
            pass

    def close(self) -> None:
        self.finish()

    def is_closing(self) -> bool:
        return self.finished

    # ── httptools.HttpResponseParser callbacks ───────────────────────────────

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # interim answers are not relayed
            self.headers = []
            return
        end = self.head_only or status in (204, 304)
        self.server.h2.send_headers(self.stream_id, response_fields(status, self.headers), end_stream=end)
        if end:
            self.finished = True

    def on_body(self, body: bytes) -> None:
        if not self.finished and body:
            self.server.outbox.send(self.stream_id, body, False)

    def on_message_complete(self) -> None:
        if not self.finished:
            self.finished = True
            self.server.outbox.send(self.stream_id, b"", True)
