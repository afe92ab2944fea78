"""The gateway proxy as a Gateway listener: HTTPS with SNI and misdirected requests
(421), redirects keeping the listener's port, and WebSocket upgrades tunnelled to
the backend, over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import trustme

from helpers.runtime.matching import Matcher, PathMatcher
from helpers.runtime.proxy.proxying import GatewayProxy
from helpers.runtime.routes import Cluster, Endpoint, Redirect, Route, RouteTable, VirtualHost
from tests.test_proxying import IO_TIMEOUT_S, Client, Upstream, fetch, forward, route, running, table, to

# ── HTTPS listeners sharing a port: SNI picks the listener, Host must agree ──

LISTENERS = ("", "second-example.org", "*.wildcard.org", "fourth-example.wildcard.org")


def listener_table(v1: Upstream, v2: Upstream, v3: Upstream) -> RouteTable:
    def vhost(listener: str, domains: tuple[str, ...], cluster: str) -> VirtualHost:
        return VirtualHost(listener or "https", domains, (route(forward(to(cluster))),), listener=listener)

    return RouteTable(
        (
            vhost("", ("example.org",), "v1"),
            vhost("second-example.org", ("second-example.org",), "v2"),
            vhost("*.wildcard.org", ("*.wildcard.org",), "v3"),
            vhost("fourth-example.wildcard.org", ("fourth-example.wildcard.org",), "v1"),
        ),
        {c.name: c for c in (v1.cluster(), v2.cluster(), v3.cluster())},
        1,
        listener_hostnames=LISTENERS,
    )


async def tls_get(port: int, ca: trustme.CA, server_name: str, host: str) -> tuple[int, dict[str, Any] | None]:
    client = ssl.create_default_context()
    ca.configure_trust(client)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname=server_name)
    try:
        writer.write(f"GET /detect-misdirected-requests HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(-1), IO_TIMEOUT_S)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if status == 200 else None


def test_https_listeners_route_by_sni_and_answer_421_for_another_listeners_host(run: Callable[..., Any]) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("example.org", "second-example.org", "*.wildcard.org", "unknown-example.org")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    cases = [  # (server name, host, status, backend): the conformance suite's cases
        ("example.org", "example.org", 200, "v1"),
        ("example.org", "second-example.org", 421, None),
        ("example.org", "unknown-example.org", 404, None),
        ("second-example.org", "second-example.org", 200, "v2"),
        ("second-example.org", "example.org", 421, None),
        ("second-example.org", "unknown-example.org", 421, None),
        ("third-example.wildcard.org", "third-example.wildcard.org", 200, "v3"),
        ("third-example.wildcard.org", "fith-example.wildcard.org", 200, "v3"),
        ("third-example.wildcard.org", "fourth-example.wildcard.org", 421, None),
        ("third-example.wildcard.org", "unknown-example.org", 421, None),
        ("fourth-example.wildcard.org", "fourth-example.wildcard.org", 200, "v1"),
        ("fourth-example.wildcard.org", "fith-example.wildcard.org", 421, None),
        ("unknown-example.org", "example.org", 200, "v1"),
        ("unknown-example.org", "unknown-example.org", 404, None),
    ]

    async def scenario() -> list[tuple[int, str | None, str | None]]:
        async with running(Upstream("v1"), Upstream("v2"), Upstream("v3")) as (v1, v2, v3):
            gw = GatewayProxy(listener_table(v1, v2, v3))
            port = await gw.start("127.0.0.1", 0, ssl=server, listener_port=443)
            try:
                got = []
                for name, host, _, _ in cases:
                    status, body = await tls_get(port, ca, name, host)
                    seen = body["headers"]["x-forwarded-proto"] if body else None
                    got.append((status, body["name"] if body else None, seen))
                return got
            finally:
                await gw.stop()

    got = run(scenario())
    assert [(s, b) for s, b, _ in got] == [(s, b) for _, _, s, b in cases]
    assert {proto for status, _, proto in got if status == 200} == {"https"}


def test_plain_listeners_sharing_a_port_route_by_host_among_their_own_hosts(run: Callable[..., Any]) -> None:
    async def scenario() -> list[int]:
        async with running(Upstream("v1"), Upstream("v2"), Upstream("v3")) as (v1, v2, v3):
            gw = GatewayProxy(listener_table(v1, v2, v3))
            port = await gw.start()
            try:
                hosts = ("example.org", "second-example.org", "a.b.wildcard.org", "unknown-example.org")
                return [(await fetch(port, "/", host=h)).status for h in hosts]
            finally:
                await gw.stop()

    assert run(scenario()) == [200, 200, 200, 404]


# ── redirects keep the listener's port ───────────────────────────────────────


@contextlib.asynccontextmanager
async def listening(t: RouteTable, listener_port: int | None = None) -> AsyncIterator[GatewayProxy]:
    gw = GatewayProxy(t)
    await gw.start("127.0.0.1", 0, listener_port=listener_port)
    try:
        yield gw
    finally:
        await gw.stop()


def test_a_redirect_without_port_keeps_the_listeners_port_not_the_hosts(run: Callable[..., Any]) -> None:
    redirects = RouteTable(
        (
            VirtualHost(
                "vh",
                ("*",),
                (
                    Route(
                        (Matcher(PathMatcher("prefix", "/host")),), Redirect(302, host="example.org", gateway_api=True)
                    ),
                    Route(
                        (Matcher(PathMatcher("prefix", "/scheme")),), Redirect(302, scheme="https", gateway_api=True)
                    ),
                    Route((Matcher(PathMatcher("prefix", "/port")),), Redirect(302, port=8083, gateway_api=True)),
                ),
            ),
        )
    )

    async def scenario() -> tuple[list[str], list[str], int]:
        async with listening(redirects, listener_port=80) as gw80, listening(redirects) as gw:
            declared = [
                (await fetch(gw80.port, p, host="gw.test:9999")).headers["location"]
                for p in ("/host", "/scheme", "/port")
            ]
            bound = [(await fetch(gw.port, p, host="gw.test:9999")).headers["location"] for p in ("/host", "/scheme")]
            assert gw.port is not None
            return declared, bound, gw.port

    declared, bound, port = run(scenario())
    assert declared == ["http://example.org/host", "https://gw.test/scheme", "http://gw.test:8083/port"]
    assert bound == [f"http://example.org:{port}/host", "https://gw.test/scheme"]


# ── WebSocket: the handshake, then a byte tunnel ─────────────────────────────


class WebSocketUpstream:
    """Answers an upgrade with 101, then echoes bytes back until the peer closes;
    answers anything else 426. Records the handshake it saw."""

    def __init__(self) -> None:
        self.handshakes: list[bytes] = []
        self.closed = asyncio.Event()
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> WebSocketUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.handshakes.append(head)
            if b"upgrade: websocket" not in head.lower():
                writer.write(b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 7\r\n\r\nupgrade")
                await writer.drain()
                return
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nhi")
            while data := await reader.read(65536):
                if data == b"bye":
                    break  # the backend ends the tunnel
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.closed.set()


def test_websocket_upgrade_is_tunnelled_both_ways_until_a_side_closes(run: Callable[..., Any]) -> None:
    async def scenario() -> dict[str, Any]:
        async with WebSocketUpstream() as ws:
            t = table([route(forward(to("ws")))], [Cluster("ws", (Endpoint("127.0.0.1", ws.port),))])
            async with listening(t) as gw:
                reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
                writer.write(
                    b"GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                    b"Sec-WebSocket-Version: 13\r\n\r\nearly"
                )
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT_S)
                first = await asyncio.wait_for(reader.readexactly(7), IO_TIMEOUT_S)  # "hi" + the echoed "early"
                writer.write(b"\x81\x05hello")
                echoed = await asyncio.wait_for(reader.readexactly(7), IO_TIMEOUT_S)
                writer.write(b"bye")
                rest = await asyncio.wait_for(reader.read(-1), IO_TIMEOUT_S)  # the backend closed: so does the gateway
                writer.close()
                await asyncio.wait_for(ws.closed.wait(), IO_TIMEOUT_S)
                plain = await fetch(gw.port, "/plain")
                return {
                    "head": head,
                    "first": first,
                    "echoed": echoed,
                    "rest": rest,
                    "handshake": ws.handshakes[0].lower(),
                    "plain": plain,
                    "stats": gw.stats.snapshot(),
                }

    got = run(scenario())
    assert got["head"].startswith(b"HTTP/1.1 101 ") and b"upgrade: websocket" in got["head"].lower()
    assert got["first"] == b"hiearly" and got["echoed"] == b"\x81\x05hello" and got["rest"] == b""
    assert b"connection: upgrade\r\n" in got["handshake"] and b"sec-websocket-version: 13" in got["handshake"]
    assert (got["plain"].status, got["plain"].text) == (426, "upgrade")  # not an upgrade: forwarded as usual
    assert got["stats"]["ws"]["by_status"] == {"101": 1, "426": 1}


def test_a_websocket_handshake_the_backend_refuses_is_relayed(run: Callable[..., Any]) -> None:
    async def refuse(up: Upstream, req: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
        return True

    async def scenario() -> tuple[Any, list[str]]:
        async with running(Upstream("v1", refuse)) as (v1,):
            async with listening(table([route(forward(to("v1")))], [v1.cluster()])) as gw:
                assert gw.port is not None
                async with Client(gw.port) as c:
                    answer = await c.request(headers={"Connection": "Upgrade", "Upgrade": "websocket"})
                return answer, v1.seen[0].lines

    answer, lines = run(scenario())
    assert (answer.status, answer.text) == (403, "no")
    assert "upgrade: websocket" in [line.lower() for line in lines]
