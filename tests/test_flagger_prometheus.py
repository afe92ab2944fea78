"""Flagger's prometheus provider against a small fake Prometheus on loopback: the request
it sends, the numbers it reads, and how each failure is worded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from helpers.runtime.flagger import prometheus
from helpers.runtime.flagger.prometheus import NoValuesFound, Provider, QueryFailed, provider_of, query_url, value_of

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def vector(*values: str) -> dict[str, Any]:
    result = [{"metric": {"i": str(i)}, "value": [1700000000.5, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def table(port: int) -> dict[str, Any]:
    return {"version": 1, "services": {"flagger-prometheus.gloo-system": {"9090": [f"127.0.0.1:{port}"]}}}


def ask(handler: Handler, query: str, provider: Provider | None = None) -> float | str:
    """The number a query gives, or the failure's text."""

    async def main() -> float | str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:
                p = provider or Provider("http://flagger-prometheus.gloo-system:9090")
                return await prometheus.run_query(session, p, query, table(port))
        except QueryFailed as e:
            return f"{type(e).__name__}: {e}"
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def answering(body: Any, status: int = 200, seen: list[web.Request] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        if seen is not None:
            seen.append(request)
        return web.Response(status=status, text=body if isinstance(body, str) else json.dumps(body))

    return handler


def test_the_request_is_flaggers() -> None:
    seen: list[web.Request] = []
    p = Provider("http://flagger-prometheus.gloo-system:9090", {"X-Scope-OrgID": ("lab",)}, token="s3cret")
    assert ask(answering(vector("99.5"), seen=seen), "sum(\n\t rate(x[1m])\n)", p) == 99.5
    (request,) = seen
    assert request.path == "/api/v1/query" and request.method == "GET"
    assert request.query["query"] == "sum( rate(x[1m]) )"  # whitespace runs made one space
    assert request.headers["Authorization"] == "Bearer s3cret" and request.headers["X-Scope-OrgID"] == "lab"
    assert request.headers["Host"] == "flagger-prometheus.gloo-system:9090"  # the Service's name, kept


def test_basic_auth_from_username_and_password() -> None:
    seen: list[web.Request] = []
    spec = {"type": "prometheus", "address": "http://flagger-prometheus.gloo-system:9090", "secretRef": {"name": "s"}}
    p = provider_of(spec, {"username": "u", "password": "p"})
    assert ask(answering(vector("1"), seen=seen), "vector(1)", p) == 1.0
    assert seen[0].headers["Authorization"] == "Basic dTpw"


def test_the_address_keeps_its_path() -> None:
    assert query_url("http://prom:9090", "up") == "http://prom:9090/api/v1/query?query=up"
    assert query_url("https://prom/select/0/", "a b") == "https://prom/select/0/api/v1/query?query=a+b"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (vector("1", "2.5"), 2.5),  # the last series counts, as Flagger reads the vector
        (vector("+Inf"), float("inf")),
        (vector(), "NoValuesFound: no values found"),
        (vector("NaN"), "NoValuesFound: no values found"),  # a rate over no requests
        ({"status": "success", "data": {"resultType": "matrix", "result": [{"values": [[1, "1"]]}]}}, "multiple"),
        (vector("abc"), 'QueryFailed: strconv.ParseFloat: parsing "abc": invalid syntax'),
        ({"status": "success", "data": {"resultType": "scalar", "result": [1, "1"]}}, "error unmarshaling result"),
        ("not json", "QueryFailed: error unmarshaling result"),
    ],
)
def test_the_answer_is_read_as_flagger_reads_it(body: Any, expected: float | str) -> None:
    got = ask(answering(body), "q")
    if isinstance(expected, float):
        assert got == expected
    else:
        assert isinstance(got, str) and expected in got


def test_an_error_answer_fails_with_its_body() -> None:
    body = '{"status":"error","errorType":"bad_data","error":"parse error: unexpected end of input"}'
    assert ask(answering(body, status=400), "sum(") == (f"QueryFailed: error response: Status 400 Bad Request: {body}")


def test_a_slow_prometheus_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prometheus, "TIMEOUT_S", 0.05)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)  # far beyond the timeout
        return web.json_response(vector("1"))

    assert ask(slow, "up") == (
        'QueryFailed: request failed: Get "http://flagger-prometheus.gloo-system:9090/api/v1/query?query=up": '
        "context deadline exceeded"
    )


def test_unreachable_and_unknown_addresses() -> None:
    refused = ask(answering(vector("1")), "up", Provider("http://127.0.0.1:1"))
    assert refused == (
        'QueryFailed: request failed: Get "http://127.0.0.1:1/api/v1/query?query=up": '
        "dial tcp 127.0.0.1:1: connect: connection refused"
    )
    assert "unsupported protocol scheme" in str(ask(answering(vector("1")), "up", Provider("prom:9090")))


def test_the_provider_is_made_as_flaggers() -> None:
    with pytest.raises(ValueError, match=r"^prometheus address  is not a valid URL$"):
        provider_of({"type": "prometheus"}, None)
    with pytest.raises(ValueError, match=r"^prometheus credentials does not contain a username$"):
        provider_of({"type": "prometheus", "address": "http://p", "secretRef": {"name": "s"}}, {})
    with pytest.raises(ValueError, match=r"^prometheus credentials does not contain a password$"):
        provider_of({"type": "prometheus", "address": "http://p", "secretRef": {"name": "s"}}, {"username": "u"})
    p = provider_of(
        {"type": "prometheus", "address": "http://p", "secretRef": {"name": "s"}, "headers": {"A": ["1", "2"]}},
        {"token": "t", "username": "u"},
    )
    assert (p.token, p.username, p.headers) == ("t", "", {"A": ("1", "2")})  # a token wins


def test_value_of_reads_bytes() -> None:
    assert value_of(json.dumps(vector("42")).encode()) == 42.0
    with pytest.raises(NoValuesFound):
        value_of(b'{"status":"success","data":{"resultType":"vector","result":[]}}')
