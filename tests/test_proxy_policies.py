"""The gateway proxy's Gateway API policies over real loopback sockets: retries with
per-try timeouts, RequestMirror, CORS and per-backendRef filters, as Envoy (kgateway)
answers them. Upstreams, client and helpers come from ``test_proxying``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from helpers.runtime.proxy import mirroring
from helpers.runtime.routes import Cors, Destination, HeaderOps, Mirror, RetryPolicy, WeightedDestination
from tests.test_proxying import (
    Client,
    Seen,
    Upstream,
    echo,
    fetch,
    forward,
    gateway,
    hang,
    response,
    route,
    running,
    table,
    to,
    wait_until,
)

# What an HTTPRoute `retry` becomes (retries apply to disconnects, resets and timeouts).
GATEWAY_API_RETRY = frozenset({"connect-failure", "refused-stream", "reset", "retriable-status-codes"})


# ── retries: every attempt counts, per-try timeouts are retried ──────────────


def test_per_try_timeouts_are_retried_within_the_route_timeout(run: Callable[..., Any]) -> None:
    async def hang_first(up: Upstream, req: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if len(up.seen) == 1:
            return await hang(up, req, reader, writer)
        return await echo(up, req, reader, writer)

    async def always_500(up: Upstream, req: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(500, b"boom"))
        return True

    async def scenario() -> dict[str, Any]:
        retried, unretried, failing, stuck = (
            Upstream("retried", hang_first),
            Upstream("unretried", hang_first),
            Upstream("failing", always_500),
            Upstream("stuck", hang),
        )
        async with running(retried, unretried, failing, stuck):
            t = table(
                [
                    route(
                        forward(to("retried"), retries=RetryPolicy(GATEWAY_API_RETRY, 2, 0.2, frozenset({500}))),
                        prefix="/retried",
                    ),
                    route(  # a per-try timeout without a retry: timeouts.backendRequest alone
                        forward(to("unretried"), retries=RetryPolicy(frozenset(), 0, 0.2)), prefix="/unretried"
                    ),
                    route(
                        forward(to("failing"), retries=RetryPolicy(GATEWAY_API_RETRY, 2, None, frozenset({500}))),
                        prefix="/failing",
                    ),
                    route(  # many retries, but the route timeout bounds them all
                        forward(to("stuck"), timeout=0.5, retries=RetryPolicy(GATEWAY_API_RETRY, 50, 0.1)),
                        prefix="/stuck",
                    ),
                ],
                [retried.cluster(), unretried.cluster(), failing.cluster(), stuck.cluster()],
            )
            async with gateway(t) as gw:
                return {
                    "retried": await fetch(gw.port, "/retried"),
                    "retried_seen": len(retried.seen),
                    "unretried": await fetch(gw.port, "/unretried"),
                    "unretried_seen": len(unretried.seen),
                    "failing": await fetch(gw.port, "/failing"),
                    "failing_seen": len(failing.seen),
                    "stuck": await fetch(gw.port, "/stuck"),
                    "stats": gw.stats.snapshot(),
                }

    got = run(scenario())
    assert (got["retried"].status, got["retried_seen"]) == (200, 2)
    assert (got["unretried"].status, got["unretried"].text, got["unretried_seen"]) == (
        504,
        "upstream request timeout",
        1,
    )
    assert (got["failing"].status, got["failing"].text, got["failing_seen"]) == (500, "boom", 3)  # 1 try + 2 retries
    assert (got["stuck"].status, got["stuck"].text) == (504, "upstream request timeout")
    assert got["stats"]["failing"]["by_status"] == {"500": 1}


# ── RequestMirror ────────────────────────────────────────────────────────────


def mirror(cluster: str, percent: float = 100.0) -> Mirror:
    return Mirror(Destination(cluster), percent)


def test_mirrors_get_a_copy_and_never_delay_the_real_request(run: Callable[..., Any]) -> None:
    async def scenario() -> dict[str, Any]:
        v1, v2, v3, slow = Upstream("v1"), Upstream("v2"), Upstream("v3"), Upstream("slow", hang)
        async with running(v1, v2, v3, slow):
            t = table(
                [
                    route(forward(to("v1"), mirrors=(mirror("v2"), mirror("v3"))), prefix="/multi"),
                    route(forward(to("v1"), mirrors=(mirror("slow"), mirror("nowhere"))), prefix="/slow"),
                    route(
                        forward(
                            WeightedDestination(Destination("v1"), 1, mirrors=(mirror("v3"),)),
                            header_ops=HeaderOps(request_add=(("x-route", "yes", False),)),
                        ),
                        prefix="/backend",
                    ),
                ],
                [v1.cluster(), v2.cluster(), v3.cluster(), slow.cluster()],
            )
            async with gateway(t) as gw:
                multi = await fetch(
                    gw.port, "/multi?id=1", method="POST", headers={"x-a": "b"}, body=b"copy me", host="gw.test:8080"
                )
                await wait_until(lambda: len(v2.seen) == 1 and len(v3.seen) == 1, "both mirrors to get their copy")
                slow_answer = await fetch(gw.port, "/slow")
                in_flight = gw.mirrors_in_flight  # the copy to "slow" is still unanswered
                await fetch(gw.port, "/backend")
                await wait_until(lambda: len(v3.seen) == 2, "the backendRef's mirror to get its copy")
                await wait_until(lambda: "v3" in gw.stats.snapshot(), "the mirror to be counted")
                return {
                    "multi": multi,
                    "slow": slow_answer,
                    "in_flight": in_flight,
                    "v1": v1.seen,
                    "v2": v2.seen,
                    "v3": v3.seen,
                    "stats": gw.stats.snapshot(),
                }

    got = run(scenario())
    assert got["multi"].status == 200 and got["multi"].json()["name"] == "v1"
    real = got["v1"][0]
    for copy in (got["v2"][0], got["v3"][0]):
        assert (copy.method, copy.target, copy.body) == ("POST", "/multi?id=1", b"copy me")
        assert copy.headers["host"] == "gw.test-shadow:8080" and copy.headers["x-a"] == "b"
    assert real.headers["host"] == "gw.test:8080"  # the real request keeps its Host
    assert got["slow"].status == 200 and got["in_flight"] == 1
    assert got["v3"][1].target == "/backend" and got["v3"][1].headers["x-route"] == "yes"
    # Copies count on the mirror's cluster, not on the route's upstream.
    assert got["stats"]["v1"]["requests"] == 3 and got["stats"]["v2"]["by_status"] == {"200": 1}


def test_mirror_percent_is_honoured(run: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    rolls = iter([0.10, 0.30, 0.19, 0.999])  # percent 20: copied, not, copied, not

    async def scenario() -> int:
        async with running(Upstream("v1"), Upstream("v2")) as (v1, v2):
            t = table([route(forward(to("v1"), mirrors=(mirror("v2", 20.0),)))], [v1.cluster(), v2.cluster()])
            async with gateway(t) as gw, Client(gw.port) as c:
                for _ in range(4):
                    assert (await c.request(path="/p")).status == 200
                await wait_until(lambda: len(v2.seen) == 2 and gw.mirrors_in_flight == 0, "the copies to land")
                return len(v2.seen)

    monkeypatch.setattr(mirroring, "_random", lambda: next(rolls))
    assert run(scenario()) == 2


# ── CORS ─────────────────────────────────────────────────────────────────────

CORS_1 = Cors(
    allow_origins=("https://www.foo.com", "https://*.bar.com"),
    allow_methods=("GET", "OPTIONS"),
    allow_headers=("x-header-1", "x-header-2"),
    expose_headers=("x-header-3", "x-header-4"),
    allow_credentials=True,
    max_age=3600,
)
PREFLIGHT = {"access-control-request-method": "GET", "access-control-request-headers": "x-header-1, x-header-2"}


def test_cors_preflights_and_simple_requests(run: Callable[..., Any]) -> None:
    async def scenario() -> dict[str, Any]:
        async with running(Upstream("v1")) as (v1,):
            t = table(
                [
                    route(forward(to("v1"), cors=CORS_1), prefix="/cors-1"),
                    route(
                        forward(to("v1"), cors=Cors(("*",), ("*",), ("*",), allow_credentials=True)),
                        prefix="/wild",
                    ),
                    route(forward(to("v1"), cors=Cors(("*",), ("PUT",))), prefix="/any-origin"),
                ],
                [v1.cluster()],
            )
            async with gateway(t) as gw:

                async def ask(path: str, method: str, origin: str, extra: dict[str, str] | None = None) -> Any:
                    async with Client(gw.port) as c:
                        return await c.request(method, path, headers={"Origin": origin, **(extra or {})})

                return {
                    "exact": await ask("/cors-1", "OPTIONS", "https://www.foo.com", PREFLIGHT),
                    "deep": await ask("/cors-1", "OPTIONS", "https://xpto.www.bar.com", PREFLIGHT),
                    "denied": await ask("/cors-1", "OPTIONS", "https://foobar.com", PREFLIGHT),
                    "simple": await ask("/cors-1", "GET", "https://www.bar.com"),
                    "simple_denied": await ask("/cors-1", "GET", "https://bar.com"),
                    "wild": await ask(
                        "/wild",
                        "OPTIONS",
                        "https://other.foo.com",
                        {"access-control-request-method": "PUT", "access-control-request-headers": "x-a, x-b"},
                    ),
                    "any": await ask("/any-origin", "PUT", "https://foobar.com:12345"),
                    "seen": [(s.method, s.target) for s in v1.seen],
                }

    got = run(scenario())
    for key, origin in (("exact", "https://www.foo.com"), ("deep", "https://xpto.www.bar.com")):
        h = got[key].headers
        assert got[key].status == 200 and h["access-control-allow-origin"] == origin
        assert h["access-control-allow-methods"] == "GET, OPTIONS"
        assert h["access-control-allow-headers"] == "x-header-1, x-header-2"
        assert h["access-control-expose-headers"] == "x-header-3, x-header-4"
        assert (h["access-control-max-age"], h["access-control-allow-credentials"]) == ("3600", "true")
    # A preflight from another origin is answered by the gateway too (kgateway turns Envoy's
    # forward_not_matching_preflights off): 200, the policy's headers, no allowed origin.
    denied = got["denied"].headers
    assert got["denied"].status == 200 and got["denied"].body == b""
    assert "access-control-allow-origin" not in denied and "access-control-expose-headers" not in denied
    assert (denied["access-control-allow-methods"], denied["access-control-allow-credentials"]) == (
        "GET, OPTIONS",
        "true",
    )
    simple = got["simple"].headers
    assert simple["access-control-allow-origin"] == "https://www.bar.com" and got["simple"].json()["name"] == "v1"
    assert simple["access-control-expose-headers"] == "x-header-3, x-header-4"
    assert "access-control-allow-origin" not in got["simple_denied"].headers
    wild = got["wild"].headers  # with credentials a wildcard echoes what was asked, never "*"
    assert (wild["access-control-allow-origin"], wild["access-control-allow-methods"]) == (
        "https://other.foo.com",
        "PUT",
    )
    assert wild["access-control-allow-headers"] == "x-a, x-b" and wild["access-control-allow-credentials"] == "true"
    assert got["any"].headers["access-control-allow-origin"] == "https://foobar.com:12345"
    assert "access-control-allow-credentials" not in got["any"].headers
    # The gateway answered every preflight itself: the backend saw only the actual requests.
    assert got["seen"] == [("GET", "/cors-1"), ("GET", "/cors-1"), ("PUT", "/any-origin")]


# ── per-backendRef filters ───────────────────────────────────────────────────


def test_backend_filters_apply_only_to_the_picked_backend(run: Callable[..., Any]) -> None:
    def backend(name: str) -> WeightedDestination:
        ops = HeaderOps(request_add=(("backend", name, False),), response_add=(("x-picked", name, False),))
        return WeightedDestination(Destination(name), 10, header_ops=ops)

    async def scenario() -> list[tuple[str, str, str]]:
        async with running(Upstream("v1"), Upstream("v2")) as (v1, v2):
            t = table([route(forward(backend("v1"), backend("v2")))], [v1.cluster(), v2.cluster()])
            async with gateway(t) as gw, Client(gw.port) as c:
                answers = [await c.request(path="/", headers={"backend": "client"}) for _ in range(40)]
                return [(a.json()["name"], a.json()["headers"]["backend"], a.headers["x-picked"]) for a in answers]

    got = run(scenario())
    assert all(name == seen == picked for name, seen, picked in got)
    assert {name for name, _, _ in got} == {"v1", "v2"}
