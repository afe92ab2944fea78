"""The gateway proxy ("gateway-proxy"): serves a ``RouteTable`` the way Envoy would.

    client ─► downstreams.Downstream: httptools parser, keep-alive, pipelining
               └► GatewayProxy._serve: RequestView → table.select → the route's action
                    ├─ no route / DirectResponse / Redirect: answered here
                    └─ RouteAction: faults → weighted destination → cluster →
                       endpoint (round robin) → rewriting.upstream_request →
                       upstreams.UpstreamPool ─► pod, with timeout and retries;
                       the response streams back re-framed, the pod paused
                       while the client reads slowly

``swap`` replaces the table in one assignment; a request reads the table once, when
its routing starts, so it is routed wholly by one table and none is dropped.
Per-request work is kept small (no logging, one task, a future or two): this is
the data path of every lab request.
"""

from __future__ import annotations

import asyncio
import random
from time import perf_counter
from typing import cast

from helpers.runtime.matching import Matcher, RequestView
from helpers.runtime.proxy.downstreams import Clients, Downstream, Request
from helpers.runtime.proxy.rewriting import HOP_BY_HOP, query_params, redirect_location, upstream_request
from helpers.runtime.proxy.stats import UpstreamStats
from helpers.runtime.proxy.upstreams import UpstreamConnection, UpstreamPool, UpstreamReset
from helpers.runtime.proxy.wire import NAMES, ListenError, clean, connection_header, lower_name, status_line
from helpers.runtime.routes import Cluster, DirectResponse, Endpoint, RouteAction, RouteTable

_RESPONSE_DROP = HOP_BY_HOP | {"content-length"}  # framing is set anew for the client
_random = random.random


class GatewayProxy:
    """An HTTP/1.1 reverse proxy serving one ``RouteTable`` at a time, on one port."""

    def __init__(self, table: RouteTable, stats: UpstreamStats | None = None) -> None:
        self._table = table
        self.stats = stats if stats is not None else UpstreamStats()
        self.port: int | None = None
        self._pool = UpstreamPool()
        self._clients: Clients | None = None
        self._rr: dict[str, int] = {}  # round-robin position per cluster
        self._server: asyncio.AbstractServer | None = None
        self._stopped = False

    # ── lifecycle ────────────────────────────────────────────────────────────

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0 picks a free port) and return the port.

        Raises ``ListenError`` (an ``OSError``) naming the address when it is taken."""
        if self._server is not None or self._stopped:
            raise RuntimeError("a GatewayProxy starts once; make a new one")
        loop = asyncio.get_running_loop()
        clients = Clients(loop, self._serve)
        try:
            self._server = await loop.create_server(clients.connection, host, port, backlog=1024)
        except OSError as e:  # nothing started: start may be called again (another port)
            raise ListenError(e.errno, host, port) from e
        self._clients = clients
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    @property
    def table(self) -> RouteTable:
        """The table new requests are routed by."""
        return self._table

    def swap(self, table: RouteTable) -> None:
        """Serve ``table`` from now on; requests already routed finish on their table."""
        self._table = table

    @property
    def flow_control_pauses(self) -> int:
        """How often an upstream was paused because its client read more slowly than
        it sent (Envoy's ``upstream_flow_control_paused_reading_total``)."""
        return self._clients.flow_control_pauses if self._clients is not None else 0

    async def stop(self) -> None:
        """Stop listening, close client and upstream connections, wait until closed."""
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None:
            self._server.close()
        if self._clients is not None:
            await self._clients.close()  # ends the requests in flight too
        await self._pool.close()
        if self._server is not None:
            await self._server.wait_closed()

    # ── one request ──────────────────────────────────────────────────────────

    async def _serve(self, down: Downstream, req: Request) -> None:
        table = self._table  # read once: this request is routed by this table only
        view = RequestView(req.method, req.headers.get("host", ""), req.path, query_params(req.query), req.headers)
        found = table.select(view)
        if found is None:
            down.reply(req, 404, f"no route matched {req.method} {req.path} (host {view.host})")
            return
        route, matcher = found
        action = route.action
        if isinstance(action, RouteAction):
            await self._forward(down, req, view, table, matcher, action)
        elif isinstance(action, DirectResponse):
            down.reply(req, action.status, action.body, content_type=action.content_type.encode("latin-1"))
        else:
            location = redirect_location(req, view, matcher, action)
            down.reply(req, action.status, "", extra=b"location: %s\r\n" % location.encode("latin-1", "replace"))

    async def _forward(
        self,
        down: Downstream,
        req: Request,
        view: RequestView,
        table: RouteTable,
        matcher: Matcher,
        action: RouteAction,
    ) -> None:
        dest = action.pick(_random())
        name = dest.cluster
        faults = action.faults
        if faults is not None:  # Envoy's fault filter: delay first, then abort
            if faults.delay_percent and _random() * 100 < faults.delay_percent:
                await asyncio.sleep(faults.delay_seconds)
            if faults.abort_percent and _random() * 100 < faults.abort_percent:
                status = down.reply(req, faults.abort_status, "fault filter abort")
                self.stats.record(name, status, perf_counter() - req.received)
                return
        cluster = table.clusters.get(name)
        rest = dest.rest
        if dest.invalid is not None:  # the Gateway API: an invalid backendRef is a 500
            status = down.reply(req, 500, dest.invalid)
        elif cluster is None:
            status = down.reply(req, 503, f'upstream "{name}" not found: no such upstream in the route table')
        elif not cluster.endpoints:
            status = down.reply(req, 503, f'no healthy endpoints for upstream "{name}"')
        elif rest is not None and rest.function not in cluster.functions:
            status = down.reply(req, 503, f'function "{rest.function}" not found on upstream "{name}"')
        else:
            fn = cluster.functions[rest.function] if rest is not None else None
            head, body = upstream_request(req, view, matcher, action, name, down.peer, rest, fn)
            status = await self._exchange(down, req, name, cluster, action, head, body)
        self.stats.record(name, status, perf_counter() - req.received)

    async def _exchange(
        self, down: Downstream, req: Request, name: str, cluster: Cluster, action: RouteAction, head: bytes, body: bytes
    ) -> int:
        """Forward under the route's timeout; the status the client got."""
        if action.timeout is None:
            return await self._attempts(down, req, name, cluster, action, head, body)
        # One loop timer that cancels this task: what asyncio.timeout does, minus
        # its bookkeeping, as nearly every request pays for it.
        deadline = _Deadline(cast("asyncio.Task[None]", down.task))
        timer = down.clients.loop.call_later(action.timeout, deadline.expire)
        try:
            return await self._attempts(down, req, name, cluster, action, head, body)
        except asyncio.CancelledError:
            if not deadline.expired or down.lost:
                raise
            deadline.task.uncancel()
            if down.sent_status:  # too late for a 504: cut the response short
                down.must_close = True
                return down.sent_status
            return down.reply(req, 504, "upstream request timeout")
        finally:
            timer.cancel()

    async def _attempts(
        self, down: Downstream, req: Request, name: str, cluster: Cluster, action: RouteAction, head: bytes, body: bytes
    ) -> int:
        policy = action.retries
        left = policy.num_retries if policy is not None else 0
        per_try = policy.per_try_timeout if policy is not None else None
        endpoints = cluster.endpoints
        head_only = req.method == "HEAD"
        tries = 0
        while True:
            if tries:  # Envoy's fully jittered back-off: 25 ms base, 250 ms cap
                await asyncio.sleep(_random() * min(0.025 * (2**tries - 1), 0.25))
                endpoints = self._endpoints(name, endpoints)
            tries += 1
            i = self._rr.get(name, 0)
            self._rr[name] = i + 1
            ep = endpoints[i % len(endpoints)]
            sent = perf_counter()
            try:
                conn = self._pool.take(ep) if per_try is None else None
                stale = False
                if conn is not None:  # the usual case, inline: a pooled connection
                    conn.send(head, body, head_only)
                    try:
                        await cast("asyncio.Future[None]", conn.head)
                    except UpstreamReset as e:
                        if e.started:
                            raise
                        conn, stale = None, True  # the keep-alive race: see _send
                    except BaseException:
                        conn.close()
                        raise
                if conn is None:
                    if per_try is None:
                        conn = await self._send(name, ep, head, body, head_only, stale=stale)
                    else:
                        async with asyncio.timeout(per_try):
                            conn = await self._send(name, ep, head, body, head_only, self._pool.take(ep))
            except TimeoutError:  # per try (TimeoutError is an OSError: it goes first)
                if left and policy is not None and policy.retries_status(504):
                    left -= 1
                    continue
                return down.reply(req, 504, "upstream request timeout")
            except (OSError, UpstreamReset) as e:
                if left and policy is not None and policy.retries_connect_failure():
                    left -= 1
                    continue
                reason = e.reason if isinstance(e, UpstreamReset) else "connection failure"
                return down.reply(
                    req,
                    503,
                    "upstream connect error or disconnect/reset before headers. "
                    f'reset reason: {reason} (upstream "{name}", endpoint {ep.host}:{ep.port})',
                )
            if left and policy is not None and policy.retries_status(conn.status):
                conn.release()  # this answer is dropped; keep the connection if it is whole
                left -= 1
                continue
            status = conn.status  # read before the connection goes back to the pool
            chunked = self._relay_head(down, req, name, action, conn, sent)
            if chunked is not None:
                await self._relay_body(down, conn, chunked)
            return status

    def _endpoints(self, name: str, fallback: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
        # A retry picks among the cluster's current endpoints (a pod may have been
        # replaced since the request started), as Envoy's retries follow EDS.
        cluster = self._table.clusters.get(name)
        return cluster.endpoints if cluster is not None and cluster.endpoints else fallback

    async def _send(
        self,
        name: str,
        ep: Endpoint,
        head: bytes,
        body: bytes,
        head_only: bool,
        conn: UpstreamConnection | None = None,
        stale: bool = False,
    ) -> UpstreamConnection:
        """Send on ``conn`` (pooled) or a new connection; return it once the head arrived.

        A pooled connection that the upstream closed just as we reused it (the
        keep-alive race: it died before any response byte) is replaced by a new
        one; if the endpoint now refuses connections (its pod is going away), by
        one to another endpoint of the cluster. Nothing had reached an upstream,
        so the client never sees it."""
        if conn is not None:
            conn.send(head, body, head_only)
            try:
                await cast("asyncio.Future[None]", conn.head)
                return conn
            except UpstreamReset as e:
                if e.started:
                    raise
                stale = True
            except BaseException:
                conn.close()
                raise
        try:
            conn = await self._pool.connect(ep)
        except OSError:
            other = self._other_endpoint(name, ep) if stale else None
            if other is None:
                raise
            conn = self._pool.take(other) or await self._pool.connect(other)
        conn.send(head, body, head_only)
        try:
            await cast("asyncio.Future[None]", conn.head)
        except BaseException:
            conn.close()
            raise
        return conn

    def _other_endpoint(self, name: str, ep: Endpoint) -> Endpoint | None:
        cluster = self._table.clusters.get(name)
        others = [e for e in cluster.endpoints if e != ep] if cluster is not None else []
        if not others:
            return None
        i = self._rr.get(name, 0)
        self._rr[name] = i + 1
        return others[i % len(others)]

    def _relay_head(
        self, down: Downstream, req: Request, name: str, action: RouteAction, conn: UpstreamConnection, sent: float
    ) -> bool | None:
        """Send the response head, and the body if it is all here already (the
        usual small answer: one write). Else whether the body is to be chunked."""
        status = conn.status
        service_ms = int((perf_counter() - sent) * 1000)
        ops = action.header_ops
        remove: frozenset[str] = frozenset()
        adds: tuple[tuple[str, str, bool], ...] = ()
        if ops is not None:
            remove, adds = ops.response_remove, ops.response_add
            if adds:
                remove = remove | {h for h, _, append in adds if not append}
        parts = [status_line(status)]
        names = NAMES
        for n, v in conn.headers:
            key = names.get(n) or lower_name(n)
            if key not in _RESPONSE_DROP and key not in remove:
                parts.append(n + b": " + v + b"\r\n")
        keep = req.keep_alive and not down.must_close
        chunked = False
        if req.method == "HEAD" or status in (204, 304) or status < 200:
            if conn.length is not None:
                parts.append(b"content-length: %d\r\n" % conn.length)
        elif conn.length is not None:
            parts.append(b"content-length: %d\r\n" % conn.length)
        elif req.http11:
            parts.append(b"transfer-encoding: chunked\r\n")
            chunked = True
        else:  # an HTTP/1.0 client: the body ends when the connection does
            keep = False
        parts.append(
            b"x-envoy-upstream-service-time: %d\r\nx-coalmine-upstream: %s\r\n"
            % (service_ms, name.encode("latin-1", "replace"))
        )
        for h, value, _ in adds:
            parts.append(f"{h}: {clean(value)}\r\n".encode("latin-1", "replace"))
        parts.append(connection_header(req.http11, keep))
        if not keep:
            down.must_close = True
        down.sent_status = status
        if conn.complete:
            data = b"".join(conn.pending)
            conn.pending = []
            if chunked:
                parts.append(b"%x\r\n%b\r\n0\r\n\r\n" % (len(data), data) if data else b"0\r\n\r\n")
            else:
                parts.append(data)
            down.transport.write(b"".join(parts))
            conn.release()
            return None
        down.transport.write(b"".join(parts))
        return chunked

    async def _relay_body(self, down: Downstream, conn: UpstreamConnection, chunked: bool) -> None:
        """Stream the rest of the body as it comes, pausing the upstream while the
        client's transport is over its high-water mark."""
        try:
            if not conn.attach(down.write_chunk if chunked else down.transport.write):
                down.streaming = conn
                if down.write_paused and conn.pause():
                    down.clients.flow_control_pauses += 1
                await cast("asyncio.Future[None]", conn.done)
        except UpstreamReset:
            down.must_close = True  # the client sees the body cut short, as from Envoy
            return
        except BaseException:
            conn.close()
            raise
        finally:
            down.streaming = None
        if chunked:
            down.transport.write(b"0\r\n\r\n")
        conn.release()


class _Deadline:
    """A route timeout: when it expires, the request's task is cancelled."""

    __slots__ = ("expired", "task")

    def __init__(self, task: asyncio.Task[None]) -> None:
        self.task = task
        self.expired = False

    def expire(self) -> None:
        self.expired = True
        self.task.cancel()
