"""The client side of the gateway proxy: one ``Downstream`` per client connection.

A ``Downstream`` parses requests with httptools (keep-alive, pipelining, bodies up
to ``MAX_BODY``, ``Expect: 100-continue``), queues the complete ones and answers
them strictly in order, handing each to the proxy (``Clients.handle``), which
writes the response through ``reply`` or straight to the transport. Malformed or
oversized input is answered (400, 413, 431) after what came before it, and the
connection closed. ``pause_writing`` / ``resume_writing`` pass a slow client's
backpressure on to the upstream whose body is being relayed (``streaming``).

``Clients`` is what the connections of one proxy share: the open set (for a clean
stop), the handler and the flow-control counter. The wire helpers at the end
(status lines, header names) are shared with the proxy's response path.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import cast

import httptools

from helpers.runtime.proxy.h2c import H2Stream
from helpers.runtime.proxy.h2wire import PREFACE
from helpers.runtime.proxy.request import METHODS, Request, origin_form
from helpers.runtime.proxy.tls import server_name
from helpers.runtime.proxy.upstreams import UpstreamConnection
from helpers.runtime.proxy.wire import NAMES, connection_header, lower_name, status_line

log = logging.getLogger("coalmine.gateway")

MAX_BODY = 8 * 1024 * 1024  # request bodies are buffered; larger ones get 413
MAX_HEAD = 64 * 1024  # request headers; larger ones get 431
MAX_PIPELINE = 16  # requests queued on one connection before we stop reading it
LINGER_S = 2.0  # how long a connection closing on an error may drain the client's input

_ERRORS = {
    400: "bad request: malformed HTTP/1.1 request",
    413: f"request body larger than {MAX_BODY // (1024 * 1024)} MiB",
    431: f"request headers larger than {MAX_HEAD // 1024} KiB",
}


Handler = Callable[["Downstream", Request], Awaitable[None]]
TakeOver = Callable[["Downstream", bytes], None]


class Clients:
    """The client connections of one proxy, and what they share."""

    def __init__(self, loop: asyncio.AbstractEventLoop, handle: Handler) -> None:
        self.loop = loop
        self.handle = handle
        self.open: set[Downstream] = set()
        self.stopped = False
        self.flow_control_pauses = 0
        self.http2: TakeOver | None = None  # serves a connection that opens with HTTP/2's preface

    def connection(self) -> Downstream:
        """The protocol factory for ``loop.create_server``."""
        return Downstream(self)

    async def close(self) -> None:
        """Abort every connection; wait until they are closed and their requests ended."""
        self.stopped = True
        downs = list(self.open)
        waiters = [w for w in (d.shut() for d in downs) if w is not None]
        if waiters:
            await asyncio.gather(*waiters)
        tasks = [d.task for d in downs if d.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class _Reject(Exception):
    """Raised from a parser callback to answer ``status`` and stop reading."""

    def __init__(self, status: int) -> None:
        self.status = status


class Downstream(asyncio.Protocol):
    """One client connection: parse requests, answer them one by one, in order."""

    __slots__ = (
        "_body",
        "_body_size",
        "_head_size",
        "_headers",
        "_url",
        "clients",
        "closed_waiter",
        "drain_waiter",
        "fresh",
        "input_closed",
        "lost",
        "must_close",
        "parser",
        "peer",
        "queue",
        "reading_paused",
        "sent_status",
        "sni",
        "streaming",
        "task",
        "tls",
        "transport",
        "tunnel",
        "upgrade_rest",
        "write_paused",
    )

    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self.transport: asyncio.Transport = cast(asyncio.Transport, None)
        self.parser = httptools.HttpRequestParser(self)
        self.peer = ""
        self.queue: deque[Request] = deque()
        self.task: asyncio.Task[None] | None = None
        self.lost = False
        self.closed_waiter: asyncio.Future[None] | None = None
        self.input_closed = False
        self.reading_paused = False
        self.write_paused = False
        self.streaming: UpstreamConnection | H2Stream | None = None  # whose body we are relaying
        self.must_close = False  # close once the current response is out
        self.sent_status = 0  # status of the response being sent, 0 before its head
        self.tls = False
        self.sni: str | None = None  # the server name a TLS client asked for
        self.tunnel: Callable[[bytes], object] | None = None  # an upgraded connection: bytes go here
        self.upgrade_rest = b""  # bytes that came after an upgrade request's head
        self.drain_waiter: asyncio.Future[None] | None = None
        self.fresh = True  # nothing read yet
        self._url = b""
        self._headers: dict[str, str] = {}
        self._head_size = 0
        self._body: list[bytes] | None = None
        self._body_size = 0

    # ── asyncio.Protocol ─────────────────────────────────────────────────────

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        if self.clients.stopped:  # accepted just as the proxy stopped
            self.transport.abort()
            return
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else ""
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:  # asyncio calls this once the handshake is done
            self.tls = True
            self.sni = server_name(ssl_object)
        self.clients.open.add(self)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel(data)
            return
        if self.input_closed:
            return
        if self.fresh:
            self.fresh = False
            # HTTP/2 with prior knowledge on a cleartext port, as Envoy's codec detects it
            if data.startswith(PREFACE[:16]) and not self.tls and self.clients.http2 is not None:
                self.clients.http2(self, data)
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            # What follows the handshake belongs to the tunnel, if the proxy opens one;
            # else the request is answered and the connection closed.
            self.upgrade_rest = data[e.args[0] :] if e.args and isinstance(e.args[0], int) else b""
            self._close_input(0)
        except httptools.HttpParserError as e:
            reject = e.__context__
            self._close_input(reject.status if isinstance(reject, _Reject) else 400)

    def eof_received(self) -> bool:
        # The client closed its side. Like Envoy, take it as gone: the transport
        # closes, connection_lost cancels what is in flight and frees its upstream.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.clients.open.discard(self)
        if self.streaming is not None:  # mid-body: that upstream connection is spoilt
            self.streaming.close()
            self.streaming = None
        if self.task is not None:
            self.task.cancel()
        if self.closed_waiter is not None and not self.closed_waiter.done():
            self.closed_waiter.set_result(None)
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.streaming is not None and self.streaming.pause():
            self.clients.flow_control_pauses += 1

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.streaming is not None:
            self.streaming.resume()
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    async def drained(self) -> None:
        """Return once the client's transport is below its high-water mark."""
        if self.write_paused and not self.lost:
            self.drain_waiter = self.clients.loop.create_future()
            await self.drain_waiter

    # ── httptools.HttpRequestParser callbacks ────────────────────────────────

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._head_size = 0
        self._body = None
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value)
        if self._head_size > MAX_HEAD:
            raise _Reject(431)
        key = NAMES.get(name) or lower_name(name)
        headers = self._headers
        old = headers.get(key)
        if old is None:
            headers[key] = value.decode("latin-1")
        else:  # repeated: joined, as Envoy does (cookies with "; ")
            headers[key] = f"{old}{'; ' if key == 'cookie' else ','}{value.decode('latin-1')}"

    def on_headers_complete(self) -> None:
        headers = self._headers
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            raise _Reject(413)  # at once, not after reading 8 MiB
        if "expect" in headers and headers["expect"].lower() == "100-continue" and self.task is None and not self.queue:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > MAX_BODY:
            raise _Reject(413)
        if self._body is None:
            self._body = [body]
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        p = self.parser
        method = p.get_method()
        headers = self._headers
        url = self._url.decode("latin-1")
        if url[:1] != "/":
            url = origin_form(url, headers)
        body = self._body
        self.queue.append(
            Request(
                METHODS.get(method) or method.decode("latin-1"),
                url,
                headers,
                b"".join(body) if body else b"",
                "content-length" in headers or "transfer-encoding" in headers,
                p.should_keep_alive() and not p.should_upgrade(),
                p.get_http_version() == "1.1",
                upgrade=p.should_upgrade() and "upgrade" in headers,
            )
        )
        if self.task is None:
            self.task = self.clients.loop.create_task(self._respond())
        elif len(self.queue) >= MAX_PIPELINE and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    # ── answering ────────────────────────────────────────────────────────────

    async def _respond(self) -> None:
        """Answer queued requests in order (HTTP/1.1 pipelining), then return."""
        handle = self.clients.handle
        try:
            while self.queue and not self.lost:
                req = self.queue.popleft()
                if self.reading_paused and len(self.queue) < MAX_PIPELINE // 2 and not self.input_closed:
                    self.reading_paused = False
                    self.transport.resume_reading()
                self.sent_status = 0
                if req.error:
                    self.reply(req, req.error, _ERRORS[req.error], close=True)
                    self._linger()
                    return
                try:
                    await handle(self, req)
                except Exception:  # a bug: answer 500 (or cut the response) and keep serving others
                    log.exception("gateway-proxy failed on %s %s", req.method, req.path)
                    if self.sent_status or self.lost:
                        self.must_close = True
                    else:
                        self.reply(req, 500, "gateway-proxy internal error", close=True)
                if self.lost:  # connection_lost may have set it during the await
                    return  # type: ignore[unreachable]  # (mypy keeps the narrowing across an await)
                if self.must_close or not req.keep_alive:
                    self.transport.close()
                    return
            if not self.lost and self.input_closed:
                self.transport.close()
        finally:
            self.task = None

    def reply(
        self,
        req: Request,
        status: int,
        text: str,
        *,
        close: bool = False,
        content_type: bytes = b"text/plain",
        extra: bytes = b"",
    ) -> int:
        """Answer from the gateway itself; returns ``status``."""
        body = text.encode()
        keep = req.keep_alive and not close and not self.must_close
        if not keep:
            self.must_close = True
        head = b"%scontent-type: %s\r\ncontent-length: %d\r\n%s%s" % (
            status_line(status),
            content_type,
            len(body),
            extra,
            connection_header(req.http11, keep),
        )
        if not self.lost:
            self.transport.write(head if req.method == "HEAD" else head + body)
        self.sent_status = status
        return status

    def write_chunk(self, data: bytes) -> None:
        """Relay one body chunk with chunked framing."""
        if data:
            self.transport.write(b"%x\r\n%b\r\n" % (len(data), data))

    def _close_input(self, status: int) -> None:
        self.input_closed = True
        self.transport.pause_reading()
        if status:
            self.queue.append(Request("", "/", {}, b"", False, False, True, error=status))
        if self.task is None:
            if self.queue:
                self.task = self.clients.loop.create_task(self._respond())
            else:
                self.transport.close()

    def _linger(self) -> None:
        # After an error answer the client may still be sending: closing at once
        # could reset the connection before it reads the answer. Say we are done
        # writing, drain its input a while, then close.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.transport.resume_reading()
            self.clients.loop.call_later(LINGER_S, self.transport.abort)
        else:
            self.transport.close()

    def shut(self) -> asyncio.Future[None] | None:
        """Abort the connection (the proxy is stopping); a future for its closing."""
        if self.lost:
            return None
        self.closed_waiter = self.clients.loop.create_future()
        self.transport.abort()
        return self.closed_waiter
