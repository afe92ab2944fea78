"""Webhooks as Flagger calls them: the payload, what passes, what fails and how it says so."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from helpers.runtime.flagger import webhooks

CANARY = {
    "metadata": {"name": "petstore", "namespace": "default"},
    "status": {"phase": "Progressing", "lastAppliedSpec": "abc"},
}


async def serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


def table(port: int) -> dict[str, Any]:
    return {"version": 1, "services": {"tester.default": {"80": [f"127.0.0.1:{port}"]}}}


def call_with(
    status: int, body: str = "", delay: float = 0.0, retries: int = 0, **payload: Any
) -> tuple[str | None, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append({"host": request.headers.get("Host"), "path": request.path, "body": await request.json()})
        await asyncio.sleep(delay)
        return web.Response(status=status, text=body)

    async def main() -> str | None:
        runner, port = await serve(handler)
        try:
            async with aiohttp.ClientSession() as session:
                return await webhooks.call(
                    session, "http://tester.default/hook", payload or {"a": 1}, 0.5, table(port), retries
                )
        finally:
            await runner.cleanup()

    return asyncio.run(main()), seen


def test_payload_is_flaggers() -> None:
    hook = {"name": "load", "url": "http://tester.default/", "metadata": {"type": "cmd", "cmd": "hey -z 1m http://x/"}}
    body = webhooks.payload(CANARY, "Progressing", hook)
    assert set(body) == {"name", "namespace", "phase", "checksum", "metadata"}
    assert (body["name"], body["namespace"], body["phase"]) == ("petstore", "default", "Progressing")
    assert body["metadata"] == {"type": "cmd", "cmd": "hey -z 1m http://x/"}
    assert body["checksum"] == webhooks.payload(CANARY, "Promoting", {})["checksum"]  # same revision, same checksum
    other = {**CANARY, "status": {"lastAppliedSpec": "def"}}
    assert webhooks.payload(other, "Progressing", {})["checksum"] != body["checksum"]


def test_event_payload_carries_the_event() -> None:
    body = webhooks.event_payload(
        CANARY, {"metadata": {"eventType": "ignored", "team": "pets"}}, "Advance", "Normal", now=1.5
    )
    assert body["phase"] == "Progressing"
    assert body["metadata"] == {"eventMessage": "Advance", "eventType": "Normal", "timestamp": "1500", "team": "pets"}


def test_a_2xx_up_to_202_passes_and_the_host_is_kept() -> None:
    failed, seen = call_with(202, "accepted")
    assert failed is None
    assert seen == [{"host": "tester.default", "path": "/hook", "body": {"a": 1}}]


def test_other_statuses_fail_with_the_body() -> None:
    assert call_with(204)[0] == "status 204"  # Flagger fails anything above 202
    assert call_with(400, "cmd not understood: foo\n")[0] == "cmd not understood: foo"


def test_5xx_is_retried_then_gives_up() -> None:
    failed, seen = call_with(503, "down")
    assert failed == "POST http://tester.default/hook giving up after 1 attempt(s)" and len(seen) == 1
    failed, seen = call_with(500, retries=1)
    assert failed == "POST http://tester.default/hook giving up after 2 attempt(s)" and len(seen) == 2


def test_the_timeout_fails_the_hook() -> None:
    failed, _ = call_with(200, delay=2.0)
    assert failed is not None and "giving up after 1 attempt(s)" in failed and "deadline exceeded" in failed


def test_a_service_without_endpoints_fails_clearly() -> None:
    async def main() -> str | None:
        empty = {"version": 1, "services": {"tester.default": {"80": []}}}
        async with aiohttp.ClientSession() as session:
            return await webhooks.call(session, "http://tester.default/", {}, 1.0, empty)

    failed = asyncio.run(main())
    assert failed is not None and "tester.default has no ready endpoints for port 80" in failed
    assert json.dumps(failed)  # one line, printable
