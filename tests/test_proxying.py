"""The gateway proxy over real loopback sockets: routing, forwarding, streaming,
failures and table swaps, against tiny upstreams each test starts and stops.

Every scenario runs on the default asyncio loop and, when installed, on uvloop
(the control plane runs the proxy on uvloop when it can).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import math
import re
import socket
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import httptools
import psutil
import pytest

from helpers.apps.petstore import swagger
from helpers.runtime.gloo.functions import function_from_transformation, transformations_from_swagger
from helpers.runtime.matching import HeaderMatcher, Matcher, PathMatcher
from helpers.runtime.proxy import downstreams, proxying
from helpers.runtime.proxy.proxying import GatewayProxy
from helpers.runtime.routes import (
    Cluster,
    Destination,
    DirectResponse,
    Endpoint,
    Faults,
    HeaderOps,
    Redirect,
    RestCall,
    RetryPolicy,
    Route,
    RouteAction,
    RouteTable,
    VirtualHost,
    WeightedDestination,
)
from helpers.runtime.templating import compile_parameter
from tests.conftest import until as until_polled

T = TypeVar("T")
IO_TIMEOUT_S = 10.0
SCENARIO_TIMEOUT_S = 60.0

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
    uvloop = None  # type: ignore[assignment]


wait_until = partial(until_polled, timeout=IO_TIMEOUT_S, interval=0.005)


# ── tiny upstreams ───────────────────────────────────────────────────────────


@dataclass
class Seen:
    """A request as an upstream received it."""

    method: str
    target: str
    headers: dict[str, str]  # lower-case names; a repeated name keeps its last value
    lines: list[str]  # the header lines as sent
    body: bytes
    index: int = 0  # how many requests this connection had carried before


Handler = Callable[["Upstream", Seen, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


def response(
    status: int = 200, body: bytes = b"", headers: tuple[tuple[str, str], ...] = (), length: bool = True
) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def echo(up: Upstream, req: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Answer with the upstream's name and what it saw, as JSON."""
    body = json.dumps(
        {
            "name": up.name,
            "method": req.method,
            "path": req.target,
            "headers": req.headers,
            "lines": req.lines,
            "body": req.body.decode("latin-1"),
        }
    ).encode()
    out = response(200, body, (("Content-Type", "application/json"), ("X-Upstream", up.name)))
    writer.write(out[: out.index(b"\r\n\r\n") + 4] if req.method == "HEAD" else out)
    return True


@dataclass
class Upstream:
    """A small HTTP/1.1 server (keep-alive) that counts connections and requests."""

    name: str
    handler: Handler = echo
    connections: int = 0
    closed_connections: int = 0
    seen: list[Seen] = field(default_factory=list)
    port: int = 0
    state: dict[str, Any] = field(default_factory=dict)  # for handlers
    _server: asyncio.AbstractServer | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def start(self) -> Upstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks)
        await self._server.wait_closed()

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.port)

    def cluster(self, name: str | None = None, functions: dict[str, Any] | None = None) -> Cluster:
        return Cluster(name or self.name, (self.endpoint,), functions or {})

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        index = 0
        try:
            while True:
                req = await read_request(reader)
                if req is None:
                    break
                req.index = index
                index += 1
                self.seen.append(req)
                if not await self.handler(self, req, reader, writer):
                    break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the gateway went away, or the test is over (stop)
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            self.closed_connections += 1


async def read_request(reader: asyncio.StreamReader) -> Seen | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")[:-2]
    method, target, _ = lines[0].split(" ")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    body = await reader.readexactly(n) if n else b""
    return Seen(method, target, headers, lines[1:], body)


@contextlib.asynccontextmanager
async def running(*ups: Upstream) -> AsyncIterator[tuple[Upstream, ...]]:
    for up in ups:
        await up.start()
    try:
        yield ups
    finally:
        for up in ups:
            await up.stop()


@contextlib.asynccontextmanager
async def gateway(table: RouteTable) -> AsyncIterator[GatewayProxy]:
    proxy = GatewayProxy(table)
    await proxy.start("127.0.0.1", 0)
    try:
        yield proxy
    finally:
        await proxy.stop()


def dead_port() -> int:
    """A port nothing listens on (just freed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ── route tables by hand ─────────────────────────────────────────────────────


def to(cluster: str, weight: int = 1, rest: RestCall | None = None) -> WeightedDestination:
    return WeightedDestination(Destination(cluster, rest), weight)


def route(
    action: Any,
    prefix: str | None = None,
    exact: str | None = None,
    regex: str | None = None,
    headers: tuple[HeaderMatcher, ...] = (),
    methods: tuple[str, ...] = (),
) -> Route:
    if exact is not None:
        path = PathMatcher("exact", exact)
    elif regex is not None:
        path = PathMatcher("regex", regex, pattern=re.compile(regex))
    else:
        path = PathMatcher("prefix", prefix or "/")
    return Route((Matcher(path, headers, (), frozenset(methods)),), action)


def forward(*dests: WeightedDestination, **options: Any) -> RouteAction:
    return RouteAction(tuple(dests), **options)


def table(
    routes: list[Route],
    clusters: list[Cluster] | tuple[Cluster, ...] = (),
    domains: tuple[str, ...] = ("*",),
    version: int = 1,
) -> RouteTable:
    return RouteTable((VirtualHost("vh", domains, tuple(routes)),), {c.name: c for c in clusters}, version)


# ── a strict client (never retries: a failure is a failure) ──────────────────


@dataclass
class Response:
    status: int = 0
    lines: list[tuple[str, str]] = field(default_factory=list)
    parts: list[bytes] = field(default_factory=list)  # the body as it arrived

    @property
    def body(self) -> bytes:
        return b"".join(self.parts)

    @property
    def headers(self) -> dict[str, str]:
        return {k: v for k, v in self.lines}

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class _Parsed:
    """httptools callbacks collecting complete responses in order."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done: deque[Response] = deque()
        self.current: Response | None = None
        self.headers_complete = False

    def on_message_begin(self) -> None:
        self.current = Response()
        self.headers_complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.current.lines.append((name.decode().lower(), value.decode()))

    def on_headers_complete(self) -> None:
        assert self.current is not None
        self.current.status = self.parser.get_status_code()
        self.headers_complete = True

    def on_body(self, body: bytes) -> None:
        assert self.current is not None
        self.current.parts.append(body)

    def on_message_complete(self) -> None:
        assert self.current is not None
        self.done.append(self.current)
        self.current = None


class Client:
    """One HTTP/1.1 connection to the gateway, requests sent one after another."""

    def __init__(self, port: int, rcvbuf: int | None = None) -> None:
        self.port = port
        self.rcvbuf = rcvbuf
        self.parsed = _Parsed()
        self.eof = False

    async def __aenter__(self) -> Client:
        if self.rcvbuf is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        else:  # a small receive buffer set before connecting, so the kernel keeps it small
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
            self.reader, self.writer = await asyncio.open_connection(sock=sock)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    def send(
        self,
        method: str = "GET",
        path: str = "/",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        host: str | None = "gw.test",
        version: str = "1.1",
    ) -> None:
        lines = [f"{method} {path} HTTP/{version}"]
        if host is not None:
            lines.append(f"Host: {host}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    async def request(
        self,
        method: str = "GET",
        path: str = "/",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        host: str | None = "gw.test",
        version: str = "1.1",
    ) -> Response:
        self.send(method, path, headers, body, host, version)
        return await self.response()

    async def read_some(self) -> bytes:
        data = await asyncio.wait_for(self.reader.read(65536), IO_TIMEOUT_S)
        if data:
            self.parsed.parser.feed_data(data)
        else:
            self.eof = True
            p = self.parsed
            if p.current is not None and p.headers_complete:  # a body delimited by the close
                p.done.append(p.current)
                p.current = None
        return data

    async def response(self) -> Response:
        while not self.parsed.done:
            if not await self.read_some():
                if not self.parsed.done:
                    raise ConnectionError("the gateway closed the connection before a complete response")
        return self.parsed.done.popleft()

    async def closed(self) -> bool:
        """True when the gateway closes the connection with nothing more sent."""
        try:
            return await asyncio.wait_for(self.reader.read(1), IO_TIMEOUT_S) == b""
        except ConnectionResetError:
            return True


async def fetch(port: int, path: str = "/", **kwargs: Any) -> Response:
    async with Client(port) as c:
        return await c.request(path=path, **kwargs)


# ── routing ──────────────────────────────────────────────────────────────────


def test_routes_by_exact_regex_and_prefix_first_match_wins(run: Callable[..., Any]) -> None:
    async def scenario() -> None:
        async with running(Upstream("exact"), Upstream("regex"), Upstream("prefix")) as (e, r, p):
            t = table(
                [
                    route(forward(to("exact")), exact="/pets"),
                    route(forward(to("regex")), regex="/pets/[0-9]+"),
                    route(forward(to("prefix")), prefix="/pets"),
                ],
                [e.cluster(), r.cluster(), p.cluster()],
            )
            async with gateway(t) as gw:
                got = {
                    path: (await fetch(gw.port, path)).json()["name"]
                    for path in ("/pets", "/pets/12", "/pets/x", "/pets/12/toys", "/petsitter")
                }
        assert got == {
            "/pets": "exact",
            "/pets/12": "regex",
            "/pets/x": "prefix",
            "/pets/12/toys": "prefix",
            "/petsitter": "prefix",
        }

    run(scenario())


def test_header_canary_route_comes_first(run: Callable[..., Any]) -> None:
    async def scenario() -> list[str]:
        async with running(Upstream("v1"), Upstream("v2")) as (v1, v2):
            canary = route(
                forward(to("v2")), prefix="/findPets", headers=(HeaderMatcher("x-canary", pattern=re.compile("true")),)
            )
            t = table([canary, route(forward(to("v1")), prefix="/")], [v1.cluster(), v2.cluster()])
            async with gateway(t) as gw:
                return [
                    (await fetch(gw.port, "/findPets", headers=h)).json()["name"]
                    for h in ({}, {"x-canary": "true"}, {"X-Canary": "true"}, {"x-canary": "false"})
                ]

    assert run(scenario()) == ["v1", "v2", "v2", "v1"]


def test_no_matching_route_or_host_is_404(run: Callable[..., Any]) -> None:
    async def scenario() -> tuple[Response, Response, Response]:
        async with running(Upstream("v1")) as (v1,):
            t = table([route(forward(to("v1")), prefix="/api")], [v1.cluster()], domains=("pets.example",))
            async with gateway(t) as gw:
                return (
                    await fetch(gw.port, "/x?q=1", host="pets.example"),
                    await fetch(gw.port, "/api", host="other.example:8080"),
                    await fetch(gw.port, "/api", host="pets.example"),
                )

    no_route, no_host, ok = run(scenario())
    assert (no_route.status, no_route.text) == (404, "no route matched GET /x (host pets.example)")
    assert (no_host.status, no_host.text) == (404, "no route matched GET /api (host other.example:8080)")
    assert ok.status == 200 and ok.json()["name"] == "v1"


def test_direct_response_and_redirects(run: Callable[..., Any]) -> None:
    async def scenario() -> tuple[Response, Response, Response]:
        t = table(
            [
                route(DirectResponse(418, "short and stout"), prefix="/teapot"),
                route(Redirect(301, host="new.example", path="/moved"), exact="/old"),
                route(Redirect(302, prefix_rewrite="/v2/"), prefix="/v1/"),
            ]
        )
        async with gateway(t) as gw:
            return (
                await fetch(gw.port, "/teapot"),
                await fetch(gw.port, "/old?a=1"),
                await fetch(gw.port, "/v1/pets", host="pets.example"),
            )

    teapot, moved, rewritten = run(scenario())
    assert (teapot.status, teapot.text, teapot.headers["content-type"]) == (418, "short and stout", "text/plain")
    assert (moved.status, moved.headers["location"]) == (301, "http://new.example/moved?a=1")
    assert (rewritten.status, rewritten.headers["location"]) == (302, "http://pets.example/v2/pets")


def test_upstream_errors_are_503_with_named_bodies(run: Callable[..., Any]) -> None:
    port = dead_port()

    async def scenario() -> tuple[list[Response], dict[str, Any]]:
        t = table(
            [
                route(forward(to("ghost")), prefix="/missing"),
                route(forward(to("empty")), prefix="/empty"),
                route(forward(to("down")), prefix="/down"),
            ],
            [Cluster("empty"), Cluster("down", (Endpoint("127.0.0.1", port),))],
        )
        async with gateway(t) as gw:
            return [await fetch(gw.port, p) for p in ("/missing", "/empty", "/down")], gw.stats.snapshot()

    (missing, empty, down), stats = run(scenario())
    assert (missing.status, missing.text) == (503, 'upstream "ghost" not found: no such upstream in the route table')
    assert (empty.status, empty.text) == (503, 'no healthy endpoints for upstream "empty"')
    assert down.status == 503
    assert down.text == (
        "upstream connect error or disconnect/reset before headers. reset reason: connection "
        f'failure (upstream "down", endpoint 127.0.0.1:{port})'
    )
    assert {name: s["by_status"] for name, s in stats.items()} == {
        "ghost": {"503": 1},
        "empty": {"503": 1},
        "down": {"503": 1},
    }


def test_weighted_split_follows_weights(run: Callable[..., Any]) -> None:
    n = 2000

    async def scenario() -> Counter[str]:
        async with running(Upstream("v1"), Upstream("v2"), Upstream("off")) as ups:
            t = table([route(forward(to("v1", 90), to("off", 0), to("v2", 10)))], [u.cluster() for u in ups])
            async with gateway(t) as gw:
                seen: Counter[str] = Counter()

                async def client(count: int) -> None:
                    async with Client(gw.port) as c:
                        for _ in range(count):
                            seen[(await c.request(path="/")).json()["name"]] += 1

                await asyncio.gather(*(client(n // 8) for _ in range(8)))
                return seen

    seen = run(scenario())
    sigma = math.sqrt(n * 0.1 * 0.9)
    assert sum(seen.values()) == n and seen["off"] == 0
    assert abs(seen["v2"] - n * 0.1) <= 5 * sigma, seen


def test_round_robin_over_endpoints_and_keepalive_reuse(run: Callable[..., Any]) -> None:
    async def scenario() -> tuple[Upstream, Upstream, list[Response]]:
        async with running(Upstream("a"), Upstream("b")) as (a, b):
            t = table([route(forward(to("pets")))], [Cluster("pets", (a.endpoint, b.endpoint))])
            async with gateway(t) as gw, Client(gw.port) as c:
                answers = [await c.request(path="/") for _ in range(20)]
            return a, b, answers

    a, b, answers = run(scenario())
    assert [r.json()["name"] for r in answers] == ["a", "b"] * 10
    assert {r.headers["x-coalmine-upstream"] for r in answers} == {"pets"}  # the cluster, not the pod
    assert (len(a.seen), len(b.seen)) == (10, 10)
    assert (a.connections, b.connections) == (1, 1)  # kept alive and reused, one per endpoint


# ── rewriting the request ────────────────────────────────────────────────────


def test_prefix_rewrite_keeps_the_rest_and_the_query(run: Callable[..., Any]) -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with running(Upstream("v1")) as (v1,):
            t = table(
                [
                    route(forward(to("v1"), prefix_rewrite="/api/pets"), prefix="/petstore"),
                    route(forward(to("v1"), prefix_rewrite="/new/place"), exact="/legacy"),
                    route(forward(to("v1"), prefix_rewrite="/by-number"), regex="/n/[0-9]+"),
                ],
                [v1.cluster()],
            )
            async with gateway(t) as gw:
                return [
                    (await fetch(gw.port, p)).json()
                    for p in ("/petstore/7?x=1&y=2", "/petstore", "/legacy?a=b", "/n/42")
                ]

    seen = run(scenario())
    assert [s["path"] for s in seen] == ["/api/pets/7?x=1&y=2", "/api/pets", "/new/place?a=b", "/by-number"]
    assert seen[0]["headers"]["x-envoy-original-path"] == "/petstore/7?x=1&y=2"


# The petstore's own swagger, as discovery reads it from a pod.
SWAGGER = swagger("v1")


def test_rest_function_destinations_render_method_path_and_body(run: Callable[..., Any]) -> None:
    functions = {n: function_from_transformation(n, t) for n, t in transformations_from_swagger(SWAGGER).items()}

    def rest(fn: str, **params: str) -> WeightedDestination:
        return to("petstore", rest=RestCall(fn, tuple((h, compile_parameter(p)) for h, p in params.items())))

    async def scenario() -> list[Response]:
        async with running(Upstream("petstore")) as (up,):
            by_id = rest("findPetById", **{":path": "/findPetWithId/{id}"})
            t = table(
                [
                    route(forward(by_id), prefix="/findPetWithId/"),
                    route(forward(rest("findPets")), exact="/findPets"),
                    route(forward(rest("findPets", **{"x-tags": "{tags}"})), exact="/findPetsByHeader"),
                    route(forward(rest("addPet")), exact="/addPet"),
                    route(forward(rest("noSuchFunction")), exact="/nope"),
                ],
                [up.cluster(functions=functions)],
            )
            async with gateway(t) as gw:
                return [
                    await fetch(
                        gw.port,
                        "/findPetWithId/7",
                        method="POST",
                        body=b"ignored",
                        headers={"Content-Type": "text/plain"},
                    ),
                    await fetch(gw.port, "/findPets"),
                    await fetch(gw.port, "/findPets", method="POST", body=b'{"tags": "dog", "limit": 2}'),
                    await fetch(gw.port, "/findPetsByHeader", headers={"x-tags": "cat"}),
                    await fetch(gw.port, "/addPet", method="POST", body=b'{"name": "Rex"}'),
                    await fetch(gw.port, "/findPetWithId/"),
                    await fetch(gw.port, "/nope"),
                ]

    by_id, find_all, find_body, find_header, add, no_id, nope = run(scenario())
    seen = by_id.json()
    assert (seen["method"], seen["path"], seen["body"]) == ("GET", "/api/pets/7", "")
    assert "content-type" not in seen["headers"] and "content-length" not in seen["headers"]
    assert find_all.json()["path"] == "/api/pets?tags=&limit="
    assert (find_body.json()["method"], find_body.json()["path"]) == ("GET", "/api/pets?tags=dog&limit=2")
    assert find_header.json()["path"] == "/api/pets?tags=cat&limit="
    added = add.json()
    assert (added["method"], added["path"], added["body"]) == ("POST", "/api/pets", '{"name": "Rex"}')
    assert added["headers"]["content-type"] == "application/json"
    assert no_id.json()["path"] == "/api/pets/"  # the parameter did not match: left unset
    assert (nope.status, nope.text) == (503, 'function "noSuchFunction" not found on upstream "petstore"')


def test_header_manipulation_and_hop_by_hop_headers(run: Callable[..., Any]) -> None:
    async def answer(up: Upstream, req: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            response(
                200,
                json.dumps(req.lines).encode(),
                (
                    ("X-Internal", "secret"),
                    ("Keep-Alive", "timeout=5"),
                    ("X-Kept", "1"),
                    ("Set-Cookie", "a=1"),
                    ("Set-Cookie", "b=2"),
                ),
            )
        )
        return True

    async def scenario() -> tuple[Response, Response]:
        ops = HeaderOps(
            request_add=(("x-added", "1", False), ("x-multi", "b", True), ("x-replaced", "new", False)),
            request_remove=frozenset({"x-secret"}),
            response_add=(("x-resp", "yes", False), ("x-kept", "2", True)),
            response_remove=frozenset({"x-internal"}),
        )
        async with running(Upstream("v1", answer)) as (v1,):
            t = table(
                [route(forward(to("v1"), header_ops=ops), prefix="/ops"), route(forward(to("v1")))], [v1.cluster()]
            )
            async with gateway(t) as gw:
                headers = {
                    "x-multi": "a",
                    "x-replaced": "old",
                    "x-secret": "s",
                    "Connection": "keep-alive, x-hop",
                    "x-hop": "1",
                    "TE": "trailers",
                    "Keep-Alive": "timeout=5",
                    "x-request-id": "given-id",
                }
                return await fetch(gw.port, "/ops", headers=headers), await fetch(gw.port, "/plain")

    with_ops, plain = run(scenario())
    sent = dict(line.lower().split(": ", 1) for line in with_ops.json())
    assert sent["x-added"] == "1" and sent["x-multi"] == "a,b" and sent["x-replaced"] == "new"
    assert not {"x-secret", "connection", "x-hop", "te", "keep-alive"} & set(sent)
    assert (sent["host"], sent["x-forwarded-for"], sent["x-forwarded-proto"], sent["x-request-id"]) == (
        "gw.test",
        "127.0.0.1",
        "http",
        "given-id",
    )
    assert with_ops.headers["x-resp"] == "yes" and "x-internal" not in with_ops.headers
    assert [v for k, v in with_ops.lines if k == "x-kept"] == ["1", "2"]
    assert [v for k, v in with_ops.lines if k == "set-cookie"] == ["a=1", "b=2"]  # never joined
    assert "keep-alive" not in with_ops.headers
    plain_sent = dict(line.lower().split(": ", 1) for line in plain.json())
    assert re.fullmatch(r"[0-9a-f-]{36}", plain_sent["x-request-id"])
    assert plain.headers["x-internal"] == "secret" and plain.headers["x-coalmine-upstream"] == "v1"
    assert plain.headers["x-envoy-upstream-service-time"].isdigit()


# ── failures: timeouts, retries, faults, stale connections ───────────────────


async def hang(up: Upstream, req: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Never answer; return when the gateway closes the connection."""
    await reader.read()
    return False


def test_route_timeout_is_504_before_headers_and_a_cut_after(run: Callable[..., Any]) -> None:
    async def stall_body(up: Upstream, req: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await reader.read()
        return False

    async def scenario() -> tuple[Response, bytes, Upstream, dict[str, Any]]:
        async with running(Upstream("hang", hang), Upstream("stall", stall_body)) as (h, s):
            t = table(
                [
                    route(forward(to("hang"), timeout=0.2), prefix="/hang"),
                    route(forward(to("stall"), timeout=0.2), prefix="/stall"),
                ],
                [h.cluster(), s.cluster()],
            )
            async with gateway(t) as gw:
                timed_out = await fetch(gw.port, "/hang")
                await wait_until(lambda: h.closed_connections == 1, "the gateway to drop the hung connection")
                reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
                writer.write(b"GET /stall HTTP/1.1\r\nHost: x\r\n\r\n")
                cut = await asyncio.wait_for(reader.read(-1), IO_TIMEOUT_S)
                writer.close()
                return timed_out, cut, h, gw.stats.snapshot()

    timed_out, cut, _h, stats = run(scenario())
    assert (timed_out.status, timed_out.text) == (504, "upstream request timeout")
    assert stats["hang"]["by_status"] == {"504": 1}
    assert cut.startswith(b"HTTP/1.1 200 ") and cut.endswith(b"\r\n\r\nabc")  # head and 3 of 10 bytes, then closed


def test_retries_on_5xx_connect_failure_and_per_try_timeout(run: Callable[..., Any]) -> None:
    async def flaky(up: Upstream, req: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if len(up.seen) <= up.state["failures"]:
            writer.write(response(503, b"busy"))
            return True
        return await echo(up, req, reader, writer)

    async def slow_first(up: Upstream, req: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if len(up.seen) == 1:
            return await hang(up, req, reader, writer)
        return await echo(up, req, reader, writer)

    async def scenario() -> dict[str, Any]:
        flaky_up, plain_up = Upstream("flaky", flaky), Upstream("nopolicy", flaky)
        slow_up = Upstream("slow", slow_first)
        flaky_up.state["failures"] = 2
        plain_up.state["failures"] = 1
        async with running(flaky_up, plain_up, slow_up, Upstream("live")) as (_, _, _, live):
            t = table(
                [
                    route(forward(to("flaky"), retries=RetryPolicy(frozenset({"5xx"}), 2)), prefix="/flaky"),
                    route(forward(to("nopolicy")), prefix="/nopolicy"),
                    route(
                        forward(to("slow"), retries=RetryPolicy(frozenset({"5xx"}), 1, per_try_timeout=0.2)),
                        prefix="/slow",
                    ),
                    route(forward(to("half"), retries=RetryPolicy(frozenset({"connect-failure"}), 1)), prefix="/half"),
                ],
                [
                    flaky_up.cluster(),
                    plain_up.cluster(),
                    slow_up.cluster(),
                    Cluster("half", (Endpoint("127.0.0.1", dead_port()), live.endpoint)),
                ],
            )
            async with gateway(t) as gw:
                return {
                    "flaky": await fetch(gw.port, "/flaky"),
                    "flaky_seen": len(flaky_up.seen),
                    "nopolicy": await fetch(gw.port, "/nopolicy"),
                    "slow": await fetch(gw.port, "/slow"),
                    "slow_seen": len(slow_up.seen),
                    "half": [(await fetch(gw.port, "/half")).status for _ in range(4)],
                    "stats": gw.stats.snapshot(),
                }

    got = run(scenario())
    assert (got["flaky"].status, got["flaky"].json()["name"], got["flaky_seen"]) == (200, "flaky", 3)
    assert (got["nopolicy"].status, got["nopolicy"].text) == (503, "busy")  # passed through, not retried
    assert (got["slow"].status, got["slow_seen"]) == (200, 2)
    assert got["half"] == [200, 200, 200, 200]
    assert got["stats"]["flaky"]["by_status"] == {"200": 1}  # the final status only


def test_faults_abort_and_delay(run: Callable[..., Any]) -> None:
    async def scenario() -> tuple[Response, Response, float, Upstream, dict[str, Any]]:
        async with running(Upstream("v1")) as (v1,):
            t = table(
                [
                    route(forward(to("v1"), faults=Faults(abort_percent=100, abort_status=418)), prefix="/abort"),
                    route(forward(to("v1"), faults=Faults(delay_percent=100, delay_seconds=0.1)), prefix="/delay"),
                ],
                [v1.cluster()],
            )
            async with gateway(t) as gw:
                aborted = await fetch(gw.port, "/abort")
                started = time.perf_counter()
                delayed = await fetch(gw.port, "/delay")
                return aborted, delayed, time.perf_counter() - started, v1, gw.stats.snapshot()

    aborted, delayed, elapsed, v1, stats = run(scenario())
    assert (aborted.status, aborted.text) == (418, "fault filter abort")
    assert delayed.status == 200 and [s.target for s in v1.seen] == ["/delay"]  # the abort never reached it
    assert elapsed >= 0.09  # the delay was applied (a lower bound, not a speed check)
    assert stats["v1"]["by_status"] == {"200": 1, "418": 1}


def test_a_reset_after_the_request_was_sent_is_retried_only_under_a_policy(run: Callable[..., Any]) -> None:
    async def one_per_connection(
        up: Upstream, req: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if req.index > 0:  # a reused connection: read the request, close without an answer
            return False
        return await echo(up, req, reader, writer)

    async def close_after_answer(
        up: Upstream, req: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        await echo(up, req, reader, writer)
        return False  # answered as keep-alive, then closed while idle

    async def scenario() -> dict[str, Any]:
        racy, retried, idle = (
            Upstream("racy", one_per_connection),
            Upstream("retried", one_per_connection),
            Upstream("idle", close_after_answer),
        )
        async with running(racy, retried, idle):
            t = table(
                [
                    route(forward(to("racy")), prefix="/racy"),
                    route(forward(to("retried"), retries=RetryPolicy(frozenset({"reset"}), 1)), prefix="/retried"),
                    route(forward(to("idle")), prefix="/idle"),
                ],
                [racy.cluster(), retried.cluster(), idle.cluster()],
            )
            async with gateway(t) as gw, Client(gw.port) as c:
                racy_answers = [await c.request("POST", "/racy", body=b"pay once") for _ in range(2)]
                retried_answers = [await c.request("POST", "/retried", body=b"pay") for _ in range(2)]
                idle_statuses = [(await c.request(path="/idle")).status for _ in range(5)]
                await wait_until(lambda: idle.closed_connections == 5, "the idle connections to close")
                return {
                    "racy": racy_answers,
                    "racy_seen": [s.body for s in racy.seen],
                    "retried": [a.status for a in retried_answers],
                    "retried_seen": len(retried.seen),
                    "idle": idle_statuses,
                    "idle_connections": idle.connections,
                    "stats": gw.stats.snapshot(),
                }

    got = run(scenario())
    # Without a retry policy the POST the upstream read is never sent again (Envoy's 503).
    assert [a.status for a in got["racy"]] == [200, 503]
    assert "reset reason: connection termination" in got["racy"][1].text
    assert got["racy_seen"] == [b"pay once", b"pay once"]  # one per client request, none resent
    assert got["stats"]["racy"]["by_status"] == {"200": 1, "503": 1}
    # With retryOn reset: the second attempt (a new connection) answers; both attempts were seen.
    assert got["retried"] == [200, 200] and got["retried_seen"] == 3
    # A connection the upstream closed while idle leaves the pool: nothing is lost.
    assert got["idle"] == [200] * 5 and got["idle_connections"] == 5


def test_a_departing_pod_is_retried_on_another_endpoint_under_a_policy(run: Callable[..., Any]) -> None:
    async def departing(up: Upstream, req: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if req.index > 0:  # shutting down: stop listening, drop the kept-alive connection unanswered
            assert up._server is not None
            up._server.close()
            return False
        return await echo(up, req, reader, writer)

    async def scenario(policy: RetryPolicy | None) -> list[Response]:
        async with running(Upstream("leaving", departing), Upstream("staying")) as (leaving, staying):
            t = table(
                [route(forward(to("pets"), retries=policy))], [Cluster("pets", (leaving.endpoint, staying.endpoint))]
            )
            async with gateway(t) as gw, Client(gw.port) as c:
                return [await c.request(path="/") for _ in range(3)]

    answers = run(scenario(RetryPolicy(frozenset({"reset"}), 1)))
    assert [a.status for a in answers] == [200, 200, 200]
    assert [a.json()["name"] for a in answers] == ["leaving", "staying", "staying"]
    plain = run(scenario(None))
    # No policy: round robin comes back to the departing pod's kept connection, and its reset reaches the client.
    assert [a.status for a in plain] == [200, 200, 503] and "connection termination" in plain[2].text


# ── streaming ────────────────────────────────────────────────────────────────


def test_chunked_upstream_is_streamed_and_reframed(run: Callable[..., Any]) -> None:
    async def chunky(up: Upstream, req: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n"
        )
        await writer.drain()
        await up.state["gate"].wait()  # the rest only once the client has the first part
        writer.write(b"1\r\n!\r\n0\r\n\r\n")
        return True

    async def scenario() -> tuple[Response, Response, bool]:
        async with running(Upstream("chunky", chunky)) as (up,):
            async with gateway(table([route(forward(to("chunky")))], [up.cluster()])) as gw:
                results = []
                for version in ("1.1", "1.0"):
                    up.state["gate"] = asyncio.Event()
                    async with Client(gw.port) as c:
                        c.send(path="/stream", version=version)
                        while c.parsed.current is None or c.parsed.current.body != b"hello world":
                            assert await c.read_some(), "closed before the first chunks arrived"
                        up.state["gate"].set()
                        results.append(await c.response())
                        if version == "1.0":
                            results.append(c.eof)
                return results[0], results[1], results[2]

    http11, http10, closed = run(scenario())
    assert http11.status == 200 and http11.body == b"hello world!"
    assert http11.headers["transfer-encoding"] == "chunked" and "content-length" not in http11.headers
    assert http10.body == b"hello world!" and closed  # HTTP/1.0: delimited by the close
    assert "transfer-encoding" not in http10.headers and "content-length" not in http10.headers


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_large_body_streams_with_backpressure(run: Callable[..., Any], framing: str) -> None:
    size, block = 20 * 1024 * 1024, 64 * 1024

    async def big(up: Upstream, req: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        digest = hashlib.sha256()
        head = (f"Content-Length: {size}" if framing == "length" else "Transfer-Encoding: chunked").encode()
        writer.write(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n\r\n")
        for i in range(size // block):
            data = hashlib.sha256(i.to_bytes(4, "big")).digest() * (block // 32)
            digest.update(data)
            writer.write(data if framing == "length" else b"%x\r\n%b\r\n" % (len(data), data))
            await writer.drain()
        if framing == "chunked":
            writer.write(b"0\r\n\r\n")
        up.state["sha256"] = digest.hexdigest()
        return True

    async def scenario() -> tuple[Response, str, int]:
        async with running(Upstream("big", big)) as (up,):
            async with gateway(table([route(forward(to("big")))], [up.cluster()])) as gw:
                async with Client(gw.port, rcvbuf=64 * 1024) as c:
                    c.send(path="/big")
                    # Read nothing until the gateway had to pause the upstream for us.
                    await wait_until(lambda: gw.flow_control_pauses > 0, "the gateway to pause the upstream")
                    got = await c.response()
                    pauses = gw.flow_control_pauses
                return got, up.state["sha256"], pauses

    got, sha, pauses = run(scenario())
    assert got.status == 200 and len(got.body) == size
    assert hashlib.sha256(got.body).hexdigest() == sha
    assert pauses >= 1


# ── the client side: HTTP/1.1 details ────────────────────────────────────────


def test_pipelined_requests_are_answered_in_order(run: Callable[..., Any]) -> None:
    async def slow(up: Upstream, req: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)  # latency, so that answering out of order would show
        return await echo(up, req, reader, writer)

    async def scenario() -> list[Response]:
        async with running(Upstream("slow", slow), Upstream("b"), Upstream("c")) as ups:
            t = table([route(forward(to(u.name)), prefix=f"/{u.name}") for u in ups], [u.cluster() for u in ups])
            async with gateway(t) as gw, Client(gw.port) as c:
                c.writer.write(
                    b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                    b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                    b"GET /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                    b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
                )
                return [await c.response() for _ in range(4)]

    answers = run(scenario())
    assert [a.status for a in answers] == [200, 200, 200, 404]
    assert [a.json()["name"] for a in answers[:3]] == ["slow", "b", "c"]
    assert [a.json()["body"] for a in answers[:3]] == ["", "hello", "abc"]


def test_http10_clients_and_connection_close(run: Callable[..., Any]) -> None:
    async def scenario() -> dict[str, Any]:
        async with running(Upstream("v1")) as (v1,):
            async with gateway(table([route(forward(to("v1")))], [v1.cluster()])) as gw:
                out: dict[str, Any] = {}
                async with Client(gw.port) as c:  # HTTP/1.0 without Host: answered, then closed
                    out["plain"] = await c.request(path="/a", host=None, version="1.0")
                    out["plain_closed"] = await c.closed()
                async with Client(gw.port) as c:  # HTTP/1.0 asking for keep-alive gets it
                    out["ka"] = [
                        await c.request(path="/b", version="1.0", headers={"Connection": "keep-alive"})
                        for _ in range(2)
                    ]
                async with Client(gw.port) as c:  # HTTP/1.1 with Connection: close
                    out["close"] = await c.request(path="/c", headers={"Connection": "close"})
                    out["close_closed"] = await c.closed()
                out["connections"] = v1.connections
                return out

    out = run(scenario())
    assert out["plain"].status == 200 and out["plain"].headers["connection"] == "close" and out["plain_closed"]
    assert out["plain"].json()["headers"]["host"] == "v1"  # the upstream still gets a Host
    assert [r.headers["connection"] for r in out["ka"]] == ["keep-alive", "keep-alive"]
    assert out["close"].headers["connection"] == "close" and out["close_closed"]
    assert out["connections"] == 1  # the gateway's upstream connection outlived every client's


def test_head_and_expect_continue(run: Callable[..., Any]) -> None:
    async def scenario() -> tuple[bytes, Response, bytes, Response]:
        async with running(Upstream("v1")) as (v1,):
            async with gateway(table([route(forward(to("v1")))], [v1.cluster()])) as gw, Client(gw.port) as c:
                c.send("HEAD", "/h")
                head = await asyncio.wait_for(c.reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT_S)
                after_head = await c.request(path="/after")  # no stray body bytes in between
                c.writer.write(b"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
                interim = await asyncio.wait_for(c.reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT_S)
                c.writer.write(b"hello")
                return head, after_head, interim, await c.response()

    head, after_head, interim, posted = run(scenario())
    length = re.search(rb"content-length: (\d+)", head, re.I)
    assert head.startswith(b"HTTP/1.1 200 ") and length and int(length.group(1)) > 0
    assert after_head.json()["path"] == "/after"
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert posted.json()["body"] == "hello" and "expect" not in posted.json()["headers"]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9437184\r\n\r\n", 413),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
    ],
)
def test_bad_requests_are_answered_then_closed(run: Callable[..., Any], raw: bytes, status: int) -> None:
    async def scenario() -> bytes:
        async with running(Upstream("v1")) as (v1,):
            async with gateway(table([route(forward(to("v1")))], [v1.cluster()])) as gw:
                reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
                writer.write(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n" + raw)
                answer = await asyncio.wait_for(reader.read(-1), IO_TIMEOUT_S)  # up to the close
                writer.close()
                return answer

    answer = run(scenario())
    first, _, rest = answer.partition(b"HTTP/1.1 " + str(status).encode())
    assert first.startswith(b"HTTP/1.1 200 ")  # the good request before it was answered first
    assert rest and b"connection: close" in rest


# ── table swaps ──────────────────────────────────────────────────────────────


def test_swap_under_load_drops_nothing_and_applies_at_once(run: Callable[..., Any]) -> None:
    async def scenario() -> tuple[list[str], list[tuple[str, str]], Counter[str]]:
        async with running(Upstream("v1"), Upstream("v2")) as (v1, v2):
            clusters = [v1.cluster(), v2.cluster()]
            tables = {
                "v1": table([route(forward(to("v1", 100), to("v2", 0)))], clusters, version=1),
                "v2": table([route(forward(to("v1", 0), to("v2", 100)))], clusters, version=2),
            }
            async with gateway(tables["v1"]) as gw:
                stop = asyncio.Event()
                failures: list[str] = []
                served: Counter[str] = Counter()

                async def client() -> None:
                    async with Client(gw.port) as c:
                        while not stop.is_set():
                            try:
                                r = await c.request(path="/api/pets")
                            except Exception as e:
                                failures.append(repr(e))
                                return
                            if r.status != 200:
                                failures.append(f"{r.status} {r.text}")
                            else:
                                served[r.json()["name"]] += 1

                clients = [asyncio.create_task(client()) for _ in range(16)]
                followed: list[tuple[str, str]] = []
                async with Client(gw.port) as probe:
                    for i in range(20):  # a flip every 100 ms for 2 s
                        await asyncio.sleep(0.1)
                        want = "v2" if i % 2 == 0 else "v1"
                        gw.swap(tables[want])
                        followed.append((want, (await probe.request(path="/api/pets")).json()["name"]))
                stop.set()
                await asyncio.gather(*clients)
                return failures, followed, served

    failures, followed, served = run(scenario())
    assert failures == []
    assert [want for want, _ in followed] == [got for _, got in followed]
    assert served["v1"] > 0 and served["v2"] > 0


def test_swap_keeps_in_flight_requests_on_their_table(run: Callable[..., Any]) -> None:
    async def gated(up: Upstream, req: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        await up.state["gate"].wait()
        return await echo(up, req, reader, writer)

    async def scenario() -> tuple[Response, Response, RouteTable, RouteTable]:
        slow = Upstream("old", gated)
        slow.state["gate"] = asyncio.Event()
        async with running(slow, Upstream("new")) as (old, new):
            first = table([route(forward(to("old")))], [old.cluster(), new.cluster()], version=1)
            second = table([route(forward(to("new")))], [old.cluster(), new.cluster()], version=2)
            async with gateway(first) as gw, Client(gw.port) as c1, Client(gw.port) as c2:
                c1.send(path="/x")
                await wait_until(lambda: len(old.seen) == 1, "the first request to reach its upstream")
                gw.swap(second)
                after = await c2.request(path="/x")
                old.state["gate"].set()
                return await c1.response(), after, gw.table, second

    before, after, current, second = run(scenario())
    assert before.json()["name"] == "old" and after.json()["name"] == "new"
    assert current is second


# ── lifecycle ────────────────────────────────────────────────────────────────


def test_port_in_use_is_a_clear_error(run: Callable[..., Any]) -> None:
    async def scenario() -> tuple[int, OSError, int]:
        first, second = GatewayProxy(RouteTable()), GatewayProxy(RouteTable())
        port = await first.start("127.0.0.1", 0)
        try:
            with pytest.raises(OSError) as caught:
                await second.start("127.0.0.1", port)
            fallback = await second.start("127.0.0.1", 0)  # as the control plane does when not strict
            answer = await fetch(fallback, "/")
        finally:
            await first.stop()
            await second.stop()
        return port, caught.value, answer.status

    port, error, fallback_status = run(scenario())
    assert error.errno == errno.EADDRINUSE and error.strerror == "address already in use"
    assert f"127.0.0.1:{port}" in str(error) and "in use" in str(error)
    assert fallback_status == 404  # the same proxy then served on another port


GATEWAY_FILES = {proxying.__file__, downstreams.__file__}


def _proxy_tasks() -> list[asyncio.Task[Any]]:
    """Tasks running the gateway's code."""
    return [
        t
        for t in asyncio.all_tasks()
        if getattr(getattr(t.get_coro(), "cr_code", None), "co_filename", "") in GATEWAY_FILES
    ]


def test_client_disconnect_mid_request_cleans_up(run: Callable[..., Any]) -> None:
    async def scenario() -> tuple[Upstream, dict[str, Any], GatewayProxy]:
        async with running(Upstream("hang", hang)) as (h,):
            async with gateway(table([route(forward(to("hang")))], [h.cluster()])) as gw:
                async with Client(gw.port) as c:
                    c.send(path="/wait")
                    await wait_until(lambda: len(h.seen) == 1, "the request to reach the upstream")
                await wait_until(lambda: h.closed_connections == 1, "the gateway to close the upstream connection")
                await wait_until(
                    lambda: not _proxy_tasks() and not (gw._clients and gw._clients.open),
                    "the gateway to forget the connection",
                )
                return h, gw.stats.snapshot(), gw

    h, stats, gw = run(scenario())
    assert h.connections == 1 and gw._pool.open_connections == 0
    assert stats == {}  # the client gave up: no status was given, none is counted


def test_stop_closes_everything_and_is_idempotent(run: Callable[..., Any]) -> None:
    async def scenario() -> dict[str, Any]:
        async with running(Upstream("v1"), Upstream("hang", hang)) as (v1, h):
            t = table(
                [route(forward(to("hang")), prefix="/hang"), route(forward(to("v1")))], [v1.cluster(), h.cluster()]
            )
            gw = GatewayProxy(t)
            port = await gw.start()
            async with Client(port) as idle, Client(port) as waiting:
                ok = await idle.request(path="/")  # leaves a pooled upstream connection and a kept-alive client
                waiting.send(path="/hang")
                await wait_until(lambda: len(h.seen) == 1, "the request to reach the hung upstream")
                await gw.stop()
                await gw.stop()
                ours = [
                    c
                    for c in psutil.Process().net_connections("tcp")
                    if c.laddr.port == port or (c.raddr and c.raddr.port in (v1.port, h.port))
                ]
                return {
                    "ok": ok.status,
                    "ours": ours,
                    "tasks": _proxy_tasks(),
                    "idle_closed": await idle.closed(),
                    "waiting_closed": await waiting.closed(),
                    "refused": await _refused(port),
                }

    out = run(scenario())
    assert out["ok"] == 200
    assert out["ours"] == [] and out["tasks"] == []
    assert out["idle_closed"] and out["waiting_closed"] and out["refused"]


async def _refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False
