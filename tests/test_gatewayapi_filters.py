"""HTTPRoute filters through the real gateway proxy: one test per filter, from the spec.

Each test translates an HTTPRoute (``translating_gatewayapi``) next to echo
upstreams started by the test, serves the listener's table with a ``GatewayProxy``
on loopback and sends real HTTP. The expectations are the examples written in
``apis/v1/httproute_types.go`` (HTTPHeaderFilter, HTTPPathModifier's table,
HTTPRequestRedirectFilter's port rules).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from helpers import httproutes
from helpers.runtime.gatewayapi.translating import translate
from helpers.runtime.routes import Endpoint

from .test_proxying import Upstream, fetch, gateway, running
from .test_translating_gatewayapi import GATEWAY_CLASS, LISTENER, SERVICES


def table_for(rules: list[dict[str, Any]], *ups: Upstream) -> Any:
    endpoints = {("default", f"petstore-{up.name}", 8080): [Endpoint("127.0.0.1", up.port)] for up in ups}
    route = httproutes.http_route(rules)
    route["metadata"].update(creationTimestamp="2026-01-01T00:00:00Z")
    return translate([GATEWAY_CLASS, httproutes.gateway(), *SERVICES, route], endpoints).listeners[LISTENER]


def prefix(path: str) -> dict[str, Any]:
    return {"path": {"type": "PathPrefix", "value": path}}


def to(version: str = "v1") -> list[dict[str, Any]]:
    return [{"name": f"petstore-{version}", "port": 8080}]


def test_request_header_modifier_sets_adds_and_removes(run: Callable[..., Any]) -> None:
    f = {
        "type": "RequestHeaderModifier",
        "requestHeaderModifier": {
            "set": [{"name": "my-header", "value": "bar"}],
            "add": [{"name": "my-list", "value": "bar,baz"}],
            "remove": ["my-secret"],
        },
    }

    async def scenario() -> dict[str, str]:
        async with running(Upstream("v1")) as (v1,):
            async with gateway(table_for([{"matches": [prefix("/")], "filters": [f], "backendRefs": to()}], v1)) as gw:
                r = await fetch(gw.port, "/", headers={"my-header": "foo", "my-list": "foo", "my-secret": "s"})
                return dict(r.json()["headers"])

    seen = run(scenario())
    assert seen["my-header"] == "bar" and seen["my-list"] == "foo,bar,baz" and "my-secret" not in seen


def test_response_header_modifier(run: Callable[..., Any]) -> None:
    f = {
        "type": "ResponseHeaderModifier",
        "responseHeaderModifier": {
            "set": [{"name": "x-upstream", "value": "hidden"}],
            "add": [{"name": "x-added", "value": "1"}],
            "remove": ["content-type"],
        },
    }

    async def scenario() -> dict[str, str]:
        async with running(Upstream("v1")) as (v1,):
            async with gateway(table_for([{"matches": [prefix("/")], "filters": [f], "backendRefs": to()}], v1)) as gw:
                return (await fetch(gw.port, "/")).headers

    headers = run(scenario())
    assert headers["x-upstream"] == "hidden" and headers["x-added"] == "1" and "content-type" not in headers


# Request path | Prefix match | Replace prefix | Modified path (HTTPPathModifier.ReplacePrefixMatch)
REPLACE_PREFIX = [
    ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
    ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
    ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
    ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
    ("/foo", "/foo", "/xyz", "/xyz"),
    ("/foo/", "/foo", "/xyz", "/xyz/"),
    ("/foo/bar", "/foo", "", "/bar"),
    ("/foo/", "/foo", "", "/"),
    ("/foo", "/foo", "", "/"),
    ("/foo/", "/foo", "/", "/"),
    ("/foo", "/foo", "/", "/"),
]


def test_url_rewrite_replace_prefix_match_follows_the_spec_table(run: Callable[..., Any]) -> None:
    async def scenario() -> list[str]:
        got = []
        async with running(Upstream("v1")) as (v1,):
            for path, match, replacement, _ in REPLACE_PREFIX:
                f = {
                    "type": "URLRewrite",
                    "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": replacement}},
                }
                async with gateway(
                    table_for([{"matches": [prefix(match)], "filters": [f], "backendRefs": to()}], v1)
                ) as gw:
                    got.append((await fetch(gw.port, path)).json()["path"])
        return got

    assert run(scenario()) == [row[3] for row in REPLACE_PREFIX]


def test_url_rewrite_full_path_and_hostname_keep_the_query(run: Callable[..., Any]) -> None:
    f = {
        "type": "URLRewrite",
        "urlRewrite": {
            "hostname": "petstore.internal",
            "path": {"type": "ReplaceFullPath", "replaceFullPath": "/api/pets"},
        },
    }

    async def scenario() -> dict[str, Any]:
        async with running(Upstream("v1")) as (v1,):
            rules = [
                {"matches": [{"path": {"type": "Exact", "value": "/findPets"}}], "filters": [f], "backendRefs": to()}
            ]
            async with gateway(table_for(rules, v1)) as gw:
                return dict((await fetch(gw.port, "/findPets?limit=1")).json())

    seen = run(scenario())
    assert seen["path"] == "/api/pets?limit=1" and seen["headers"]["host"] == "petstore.internal"


@pytest.mark.parametrize(
    "redirect,location",
    [
        ({}, "http://gw.test:{port}/old/1"),  # the listener's port when no scheme is given
        ({"scheme": "https"}, "https://gw.test/old/1"),  # the scheme's well-known port, not written
        ({"hostname": "new.example.com", "port": 8443}, "http://new.example.com:8443/old/1"),
        ({"scheme": "http", "port": 80}, "http://gw.test/old/1"),
        ({"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"}}, "http://gw.test:{port}/new/1"),
        (
            {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/moved"}, "statusCode": 301},
            "http://gw.test:{port}/moved",
        ),
    ],
)
def test_request_redirect(run: Callable[..., Any], redirect: dict[str, Any], location: str) -> None:
    f = {"type": "RequestRedirect", "requestRedirect": redirect}

    async def scenario() -> tuple[int, str, int]:
        async with gateway(table_for([{"matches": [prefix("/old")], "filters": [f]}])) as gw:
            r = await fetch(gw.port, "/old/1", host=f"gw.test:{gw.port}")
            assert gw.port is not None
            return r.status, r.headers["location"], gw.port

    status, got, port = run(scenario())
    assert status == redirect.get("statusCode", 302) and got == location.format(port=port)


def test_an_unresolved_backend_gets_500_and_the_rest_is_served(run: Callable[..., Any]) -> None:
    async def scenario() -> list[int]:
        async with running(Upstream("v1")) as (v1,):
            rules = [
                {"matches": [prefix("/bad")], "backendRefs": to("v9")},
                {"matches": [prefix("/")], "backendRefs": to()},
            ]
            async with gateway(table_for(rules, v1)) as gw:
                return [(await fetch(gw.port, p)).status for p in ("/bad", "/good")]

    assert run(scenario()) == [500, 200]
