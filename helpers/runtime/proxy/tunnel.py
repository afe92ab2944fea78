"""WebSocket through the gateway: the upgrade handshake, then a byte tunnel.

Envoy (as Gloo and kgateway configure it) upgrades WebSocket requests on every
route: the handshake (``Connection: upgrade``, ``Upgrade: websocket``) goes to the
picked endpoint on a connection of its own; a ``101 Switching Protocols`` is
relayed and from then on the bytes flow both ways, unparsed, until either side
closes, which closes the other. Any other answer is relayed as it came and the
client connection closed (an upgrade request never keeps it).

Differences from Envoy, kept small on purpose: the route timeout bounds only the
wait for the handshake's answer (Envoy's starts once the request stream ends,
which an upgraded stream does not), and the client's bytes are not paused when
the upstream reads slowly.
"""

from __future__ import annotations

import asyncio
import contextlib
from time import perf_counter

import httptools

from helpers.runtime.proxy.downstreams import Downstream
from helpers.runtime.proxy.request import Request
from helpers.runtime.routes import Endpoint

_CHUNK = 65536


def wants_websocket(req: Request) -> bool:
    """An upgrade request asking for WebSocket (other upgrades are forwarded as plain requests)."""
    return req.upgrade and req.headers.get("upgrade", "").strip().lower() == "websocket"


async def tunnel(down: Downstream, req: Request, name: str, ep: Endpoint, head: bytes, timeout: float | None) -> int:
    """Send the handshake ``head`` to ``ep``, relay the answer and, on 101, the
    tunnel until it closes. The status the client got."""
    sent = perf_counter()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(ep.host, ep.port)
    except TimeoutError:
        return down.reply(req, 504, "upstream request timeout")
    except OSError:
        return down.reply(
            req,
            503,
            "upstream connect error or disconnect/reset before headers. "
            f'reset reason: connection failure (upstream "{name}", endpoint {ep.host}:{ep.port})',
        )
    try:
        writer.write(head + req.body)
        try:
            async with asyncio.timeout(timeout):
                answer = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            return down.reply(req, 504, "upstream request timeout")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return down.reply(
                req,
                503,
                "upstream connect error or disconnect/reset before headers. "
                f'reset reason: connection termination (upstream "{name}", endpoint {ep.host}:{ep.port})',
            )
        status = _status(answer)
        down.must_close = True
        down.sent_status = status
        if status != 101:
            await _relay_answer(down, reader, answer)
            return status
        service_ms = int((perf_counter() - sent) * 1000)
        end = answer.rindex(b"\r\n\r\n")
        down.transport.write(answer[:end] + b"\r\nx-envoy-upstream-service-time: %d\r\n\r\n" % service_ms)
        await _pump(down, reader, writer)
        return status
    finally:
        down.tunnel = None
        writer.close()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await asyncio.shield(writer.wait_closed())


async def _pump(down: Downstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # The client's bytes go straight to the upstream from data_received; the
    # upstream's are read here, paused while the client reads slowly.
    down.tunnel = writer.write
    if down.upgrade_rest:
        writer.write(down.upgrade_rest)
        down.upgrade_rest = b""
    down.transport.resume_reading()
    while True:  # what the upstream sent right after its 101 is read first
        data = await reader.read(_CHUNK)
        if not data:
            return  # the upstream closed: the client connection closes after this
        down.transport.write(data)
        await down.drained()


async def _relay_answer(down: Downstream, reader: asyncio.StreamReader, answer: bytes) -> None:
    """Pass a non-101 answer through as it came, until it is complete or the upstream closes."""
    done = _Complete()
    parser = httptools.HttpResponseParser(done)
    down.transport.write(answer)
    with contextlib.suppress(httptools.HttpParserError, httptools.HttpParserUpgrade):
        parser.feed_data(answer)
    while not done.complete:
        data = await reader.read(_CHUNK)
        if not data:
            return
        down.transport.write(data)
        try:
            parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            return
        await down.drained()


class _Complete:
    def __init__(self) -> None:
        self.complete = False

    def on_message_complete(self) -> None:
        self.complete = True


def _status(head: bytes) -> int:
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 502
