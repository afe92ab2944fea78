"""The admin API: how the CLI and the notebooks talk to a lab's control plane.

JSON over HTTP on 127.0.0.1 only, every request carrying the lab's token
(``Authorization: Bearer <token>``; the token file is mode 0600). It also serves
the gateway's per-upstream stats, like Envoy's admin ``/stats``. An error is
answered as ``{"error": message, "type": class name}`` with the status its class
in ``helpers.errors`` declares; anything else is a bug, answered 500.

    GET  /v1/status                  the lab at a glance
    POST /v1/apply     {objects}     apply, kubectl-style results
    POST /v1/delete    {refs}        delete by kind/namespace/name
    GET  /v1/objects/{kind}          ?namespace=&name=
    POST /v1/install/{component}     {port?, channel?}: gloo, kgateway (channel) or flagger
    GET  /v1/ready                   what `coalmine wait` waits for
    GET  /v1/stats                   ?gateway= : per-upstream request counts and latency,
                                     every gateway's added up or one gateway's
    GET  /v1/stats/url               ?gateway= : where a gateway serves its stats in
                                     Prometheus's format (``statsserver``)
    GET  /v1/routes                  the served route table, one row per route
    GET  /v1/events                  ?namespace= : events (the canary controller's), oldest first
    POST /v1/shutdown                stop every pod and exit
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import hmac
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from helpers.errors import CoalmineError, InvalidArgument, LabStartError, ManifestError
from helpers.kinds import lookup
from helpers.runtime.controlplane import ControlPlane
from helpers.runtime.home import ALREADY_RUNNING, MIN_TOKEN_LENGTH, REFUSED, REFUSED_PREFIX, LabHome

CONTROL_PLANE = web.AppKey("control_plane", ControlPlane)
STOP = web.AppKey("stop", asyncio.Event)
TOKEN = web.AppKey("token", str)
log = logging.getLogger("coalmine.admin")


@web.middleware
async def _require_token(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    expected = request.app[TOKEN]
    # Only two non-empty ASCII credentials are compared: an empty token never opens the
    # API, and a header that is not ASCII (or not UTF-8) is simply wrong, not a crash.
    if not (given and expected and given.isascii() and hmac.compare_digest(given.encode(), expected.encode())):
        return web.json_response({"error": "missing or wrong lab token (see <lab home>/token)"}, status=401)
    try:
        return await handler(request)
    except CoalmineError as e:
        # One status per error class (``http_status``); the client raises the same class.
        return web.json_response({"error": str(e), "type": type(e).__name__}, status=e.http_status)
    except web.HTTPException:
        raise
    except Exception as e:  # a bug: say where to look, keep serving
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response(
            {
                "error": f"internal error in the control plane ({type(e).__name__}: {e}); "
                "its log (controlplane.log in the lab home) has the details"
            },
            status=500,
        )


async def _body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; ``ManifestError`` when it is not one."""
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError as e:
        raise ManifestError(f"the request body is not JSON: {e}") from None
    except RecursionError:
        raise ManifestError("the request body is nested too deeply: objects are nested at most 100 levels") from None
    if not isinstance(body, dict):
        raise ManifestError("the request body must be a JSON object")
    return body


def _cp(request: web.Request) -> ControlPlane:
    return request.app[CONTROL_PLANE]


async def _status(request: web.Request) -> web.Response:
    return web.json_response(_cp(request).status())


def _list(body: dict[str, Any], field: str) -> list[Any]:
    value = body.get(field) or []
    if not isinstance(value, list):
        raise ManifestError(f"{field} must be a list, not {type(value).__name__}")
    return value


def _ref(r: Any) -> tuple[str, str, str]:
    """(kind, namespace, name) of one ref of a delete; ``ManifestError`` naming what is missing."""
    if not isinstance(r, dict) or not all(isinstance(r.get(k), str) and r.get(k) for k in ("kind", "name")):
        raise ManifestError(f'each ref of a delete needs "kind" and "name" (strings), not {r!r}')
    return lookup(r["kind"]).name, r.get("namespace") or "default", r["name"]


def _port(value: Any) -> int | None:
    if value in (None, 0):
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise InvalidArgument(f"port must be a number from 1 to 65535, not {value!r}")
    return value


async def _apply(request: web.Request) -> web.Response:
    body = await _body(request)
    results = _cp(request).apply(_list(body, "objects"))
    await _cp(request).settle()  # new Gateway listeners listen before the answer
    return web.json_response({"results": results})


async def _delete(request: web.Request) -> web.Response:
    body = await _body(request)
    refs = [_ref(r) for r in _list(body, "refs")]
    results = _cp(request).delete(refs)
    await _cp(request).settle()
    return web.json_response({"results": results})


async def _objects(request: web.Request) -> web.Response:
    kind = lookup(request.match_info["kind"])
    q = request.query
    items = _cp(request).get(kind.name, q.get("namespace") or None, q.get("name") or None)
    return web.json_response({"items": items})


async def _install(request: web.Request) -> web.Response:
    body = await _body(request)
    channel = body.get("channel")
    if channel is not None and not isinstance(channel, str):
        raise InvalidArgument('"channel" must be a string: "standard" or "experimental"')
    result = await _cp(request).install(request.match_info["component"], _port(body.get("port")), channel)
    return web.json_response(result)


async def _ready(request: web.Request) -> web.Response:
    return web.json_response(_cp(request).ready())


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(_cp(request).stats.snapshot(request.query.get("gateway") or None))


async def _stats_url(request: web.Request) -> web.Response:
    return web.json_response({"url": _cp(request).stats.url(request.query.get("gateway") or None)})


async def _routes(request: web.Request) -> web.Response:
    return web.json_response({"routes": _cp(request).route_summary()})


async def _events(request: web.Request) -> web.Response:
    return web.json_response({"items": _cp(request).events_of(request.query.get("namespace") or None)})


async def _shutdown(request: web.Request) -> web.Response:
    request.app[STOP].set()
    return web.json_response({"stopping": True})


def make_app(cp: ControlPlane, token: str, stop: asyncio.Event) -> web.Application:
    """The admin API of ``cp``, opened by ``token`` (at least ``MIN_TOKEN_LENGTH`` characters)."""
    if len(token) < MIN_TOKEN_LENGTH or not token.isascii():
        raise LabStartError(f"the admin token must be at least {MIN_TOKEN_LENGTH} ASCII characters")
    app = web.Application(middlewares=[_require_token], client_max_size=16 * 1024**2)
    app[CONTROL_PLANE], app[TOKEN], app[STOP] = cp, token, stop
    app.router.add_get("/v1/status", _status)
    app.router.add_post("/v1/apply", _apply)
    app.router.add_post("/v1/delete", _delete)
    app.router.add_get("/v1/objects/{kind}", _objects)
    app.router.add_post("/v1/install/{component}", _install)
    app.router.add_get("/v1/ready", _ready)
    app.router.add_get("/v1/stats", _stats)
    app.router.add_get("/v1/stats/url", _stats_url)
    app.router.add_get("/v1/routes", _routes)
    app.router.add_get("/v1/events", _events)
    app.router.add_post("/v1/shutdown", _shutdown)
    return app


async def _run(home: LabHome) -> None:
    # The proxies' thread (``proxy.dataplane``) shares the interpreter with the control
    # plane's: while a big translation runs, each of the gateway's turns waits for the
    # switch interval (5 ms by default) several times per request. 0.5 ms keeps a
    # request's added latency to a few milliseconds, for a little more switching.
    sys.setswitchinterval(0.0005)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    cp = ControlPlane(home)
    await cp.start()
    runner = web.AppRunner(make_app(cp, home.token(create=True), stop), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    home.write_state({"pid": os.getpid(), "adminPort": port, "proxyPort": cp.proxy_port})
    log.info("control plane %d serving admin API on 127.0.0.1:%d", os.getpid(), port)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await cp.close()
        await runner.cleanup()
        home.state_file.unlink(missing_ok=True)


def serve(argv: list[str] | None = None) -> int:
    """Run a control plane for ``--home`` until told to stop. One per home."""
    parser = argparse.ArgumentParser(prog="python -m helpers.runtime.admin")
    parser.add_argument("--home", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    home = LabHome.resolve(args.home)
    try:
        home.ensure()
    except CoalmineError as e:
        print(f"{REFUSED_PREFIX}{e}", file=sys.stderr)
        return REFUSED
    lock = open(home.lock_file, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"a control plane is already running for {home.root}", file=sys.stderr)
        return ALREADY_RUNNING
    try:
        try:
            import uvloop  # optional: a faster event loop for the gateway
        except ImportError:
            asyncio.run(_run(home))
        else:
            uvloop.run(_run(home))
    except CoalmineError as e:
        # A refusal to start (a damaged store, a home it cannot use): one line, last in
        # the log, which `coalmine up` shows as it is.
        print(f"{REFUSED_PREFIX}{e}", file=sys.stderr)
        return REFUSED
    return 0


if __name__ == "__main__":
    raise SystemExit(serve())
