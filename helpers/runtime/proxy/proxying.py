"""The gateway proxy ("gateway-proxy"): serves a ``RouteTable`` the way Envoy would.

    client ─► downstreams.Downstream: httptools parser, keep-alive, pipelining (TLS optional);
              a cleartext connection opening with HTTP/2's preface → h2server, a
              StreamDownstream per stream
               └► GatewayProxy._serve: listener (SNI / Host; 421 if they disagree) →
                  RequestView → table.select → the route's action
                    ├─ no route / DirectResponse / Redirect: answered here
                    └─ RouteAction: CORS preflight → faults → weighted destination
                       (its own filters) → mirrors (mirroring, fire and forget) →
                       cluster → rewriting.upstream_request → forwarding.Forwarder:
                       endpoint (round robin), attempts under the route timeout and
                       retry policy (HTTP/1.1, or h2c streams for an h2c destination),
                       the response streamed back re-framed;
                       a WebSocket handshake → tunnel

``swap`` replaces the table in one assignment; a request reads the table once, when
its routing starts, so it is routed wholly by one table and none is dropped.
Per-request work is kept small (no logging, one task, a future or two): this is
the data path of every lab request.
"""

from __future__ import annotations

import asyncio
import random
import ssl as ssl_module
from time import perf_counter

from helpers.runtime.matching import Matcher, RequestView
from helpers.runtime.proxy import cors as cors_filter
from helpers.runtime.proxy.downstreams import Clients, Downstream
from helpers.runtime.proxy.forwarding import NO_EDITS, Forwarder, ResponseEdits
from helpers.runtime.proxy.h2server import serve_http2
from helpers.runtime.proxy.mirroring import Mirroring
from helpers.runtime.proxy.request import Request
from helpers.runtime.proxy.rewriting import query_params, redirect_location, upstream_request
from helpers.runtime.proxy.stats import UpstreamStats
from helpers.runtime.proxy.tls import remember_sni
from helpers.runtime.proxy.tunnel import tunnel, wants_websocket
from helpers.runtime.proxy.upstreams import UpstreamPool
from helpers.runtime.proxy.wire import ListenError, clean
from helpers.runtime.routes import DirectResponse, HeaderOps, RouteAction, RouteTable, WeightedDestination

_random = random.random


class GatewayProxy:
    """An HTTP/1.1 reverse proxy serving one ``RouteTable`` at a time, on one port."""

    def __init__(self, table: RouteTable, stats: UpstreamStats | None = None) -> None:
        self._table = table
        self.stats = stats if stats is not None else UpstreamStats()
        self.port: int | None = None
        self.listener_port: int | None = None
        self.scheme = "http"
        self._pool = UpstreamPool()
        self._forwarder = Forwarder(self._pool, lambda: self._table)
        self._mirroring = Mirroring(self._forwarder, self.stats)
        self._clients: Clients | None = None
        self._server: asyncio.AbstractServer | None = None
        self._stopped = False

    # ── lifecycle ────────────────────────────────────────────────────────────

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl: ssl_module.SSLContext | None = None,
        listener_port: int | None = None,
    ) -> int:
        """Listen on ``host:port`` (0 picks a free port) and return the port.

        With ``ssl`` the proxy speaks HTTPS (the context holds the listener's
        certificates and may choose between them by SNI). ``listener_port`` is the
        port the Gateway listener declares, which redirects without a port keep;
        by default the port listened on.

        Raises ``ListenError`` (an ``OSError``) naming the address when it is taken."""
        if self._server is not None or self._stopped:
            raise RuntimeError("a GatewayProxy starts once; make a new one")
        loop = asyncio.get_running_loop()
        clients = Clients(loop, self._serve)
        clients.http2 = serve_http2
        if ssl is not None:
            remember_sni(ssl)
        try:
            self._server = await loop.create_server(clients.connection, host, port, backlog=1024, ssl=ssl)
        except OSError as e:  # nothing started: start may be called again (another port)
            raise ListenError(e.errno, host, port) from e
        self._clients = clients
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.listener_port = listener_port if listener_port is not None else self.port
        self.scheme = "https" if ssl is not None else "http"
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

    @property
    def mirrors_in_flight(self) -> int:
        """Mirrored copies sent and not answered yet."""
        return self._mirroring.in_flight

    async def stop(self) -> None:
        """Stop listening, close client and upstream connections, wait until closed."""
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None:
            self._server.close()
        if self._clients is not None:
            await self._clients.close()  # ends the requests in flight too
        await self._mirroring.close()
        await self._pool.close()
        await self._forwarder.h2.close()
        if self._server is not None:
            await self._server.wait_closed()

    # ── one request ──────────────────────────────────────────────────────────

    async def _serve(self, down: Downstream, req: Request) -> None:
        table = self._table  # read once: this request is routed by this table only
        host = req.headers.get("host", "")
        view = RequestView(req.method, host, req.path, query_params(req.query), req.headers)
        listener = None
        if table.listener_hostnames:  # several listeners share this port
            listener = table.listener_for(host)
            if down.tls and table.listener_for(down.sni or "") != listener:
                down.reply(req, 421, "misdirected request: the host is served by another listener of this port")
                return
        found = table.select(view, listener) if listener is not None or not table.listener_hostnames else None
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
            location = redirect_location(req, view, matcher, action, self.listener_port, self.scheme)
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
        edits = NO_EDITS
        policy = action.cors
        if policy is not None and req.headers.get("origin"):  # Envoy's CORS filter runs first
            origin = req.headers["origin"]
            allowed = cors_filter.origin_allowed(policy, origin)
            if cors_filter.is_preflight(req.method, req.headers):  # answered here, allowed or not
                down.reply(req, 200, "", extra=cors_filter.preflight_headers(policy, req.headers, allowed))
                return
            if allowed:
                edits = ResponseEdits(cors_filter.CORS_RESPONSE_HEADERS, cors_filter.response_headers(policy, origin))
        picked = action.pick_weighted(_random())
        dest = picked.destination
        name = dest.cluster
        faults = action.faults
        if faults is not None:  # Envoy's fault filter: delay first, then abort
            if faults.delay_percent and _random() * 100 < faults.delay_percent:
                await asyncio.sleep(faults.delay_seconds)
            if faults.abort_percent and _random() * 100 < faults.abort_percent:
                status = down.reply(req, faults.abort_status, "fault filter abort")
                self.stats.record(name, status, perf_counter() - req.received)
                return
        if action.mirrors or picked.mirrors:
            self._mirror(down, req, view, table, matcher, action, picked)
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
            websocket = wants_websocket(req)
            head, body = upstream_request(
                req,
                view,
                matcher,
                action,
                name,
                down.peer,
                rest,
                fn,
                backend_ops=picked.header_ops,
                scheme=self.scheme,
                upgrade=websocket,
            )
            if websocket:
                ep = self._forwarder.next_endpoint(name, cluster.endpoints)
                status = await tunnel(down, req, name, ep, head, action.timeout)
            else:
                edits = _response_edits(action, picked, edits)
                status = await self._forwarder.exchange(
                    down, req, name, cluster, action, head, body, edits, dest.protocol
                )
        self.stats.record(name, status, perf_counter() - req.received)

    def _mirror(
        self,
        down: Downstream,
        req: Request,
        view: RequestView,
        table: RouteTable,
        matcher: Matcher,
        action: RouteAction,
        picked: WeightedDestination,
    ) -> None:
        scheme, peer, loop = self.scheme, down.peer, down.clients.loop
        head_only = req.method == "HEAD"
        # Route-level mirrors copy the request as the route sends it; a backendRef's
        # own mirrors also carry that backendRef's header filter.
        for mirrors, ops in ((action.mirrors, None), (picked.mirrors, picked.header_ops)):
            if not mirrors:
                continue

            def render(name: str, ops: HeaderOps | None = ops) -> tuple[bytes, bytes]:
                return upstream_request(
                    req, view, matcher, action, name, peer, backend_ops=ops, scheme=scheme, shadow=True
                )

            self._mirroring.send(loop, table, mirrors, render, head_only, action.timeout)


def _response_edits(action: RouteAction, picked: WeightedDestination, cors: ResponseEdits) -> ResponseEdits:
    """The response header changes: the backendRef's filter, the route's, and CORS's."""
    if action.header_ops is None and picked.header_ops is None:
        return cors
    remove: set[str] = set(cors.remove)
    lines: list[bytes] = [cors.add] if cors.add else []
    for ops in (picked.header_ops, action.header_ops):
        if ops is None:
            continue
        remove |= ops.response_remove
        remove |= {h for h, _, append in ops.response_add if not append}
        lines += [f"{h}: {clean(value)}\r\n".encode("latin-1", "replace") for h, value, _ in ops.response_add]
    return ResponseEdits(frozenset(remove), b"".join(lines))
