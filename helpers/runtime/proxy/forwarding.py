"""Forwarding one request to a cluster: attempts, retries, timeouts, the answer relayed.

``Forwarder.exchange`` runs the attempts under the route's timeout, which bounds
them all. An attempt picks an endpoint (round robin), sends on a pooled or new
connection and waits for the response head, under the per-try timeout if the
retry policy has one. What happens when an attempt fails follows Envoy's router:

- the connection could not be made (nothing was sent): retried when the policy
  retries connect failures (``connect-failure``, ``reset``, ``5xx``, ``gateway-error``);
- the connection broke after the request was written (the upstream may have read
  it, even a POST), or the per-try timeout fired: retried only under ``reset``,
  ``5xx`` or ``gateway-error``;
- an answer with a retriable status: dropped and retried.

Without a policy nothing is sent twice: the client gets the 503 or 504. Every
attempt counts against ``num_retries``; each retry waits Envoy's jittered back-off
and picks among the cluster's current endpoints.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from time import perf_counter
from typing import cast

from helpers.runtime.proxy.downstreams import Downstream
from helpers.runtime.proxy.h2c import H2Pool, H2Stream
from helpers.runtime.proxy.request import Request
from helpers.runtime.proxy.rewriting import HOP_BY_HOP
from helpers.runtime.proxy.upstreams import UpstreamConnection, UpstreamPool, UpstreamReset
from helpers.runtime.proxy.wire import NAMES, connection_header, lower_name, status_line
from helpers.runtime.routes import Cluster, Endpoint, RouteAction, RouteTable

_RESPONSE_DROP = HOP_BY_HOP | {"content-length"}  # framing is set anew for the client
_random = random.random

Exchange = UpstreamConnection | H2Stream  # one request and its answer, over HTTP/1.1 or h2c


class ResponseEdits:
    """What the gateway changes in an upstream's answer: headers removed, lines added."""

    __slots__ = ("add", "remove")

    def __init__(self, remove: frozenset[str] = frozenset(), add: bytes = b"") -> None:
        self.remove = remove
        self.add = add


NO_EDITS = ResponseEdits()


class ConnectFailure(Exception):
    """No connection to the endpoint: the request was never sent."""


class Forwarder:
    """Sends requests to clusters' endpoints over one pool, round robin per cluster."""

    def __init__(self, pool: UpstreamPool, table: Callable[[], RouteTable]) -> None:
        self.pool = pool
        self.h2 = H2Pool()  # for clusters spoken to in h2c (Destination.protocol)
        self._table = table
        self._rr: dict[str, int] = {}  # round-robin position per cluster

    def next_endpoint(self, name: str, endpoints: tuple[Endpoint, ...]) -> Endpoint:
        i = self._rr.get(name, 0)
        self._rr[name] = i + 1
        return endpoints[i % len(endpoints)]

    async def exchange(
        self,
        down: Downstream,
        req: Request,
        name: str,
        cluster: Cluster,
        action: RouteAction,
        head: bytes,
        body: bytes,
        edits: ResponseEdits,
        protocol: str = "http",
    ) -> int:
        """Forward under the route's timeout; the status the client got. ``protocol``
        is how the cluster is spoken to: HTTP/1.1, or ``h2c`` (HTTP/2, prior knowledge)."""
        if action.timeout is None:
            return await self._attempts(down, req, name, cluster, action, head, body, edits, protocol)
        # One loop timer that cancels this task: what asyncio.timeout does, minus
        # its bookkeeping, as nearly every request pays for it.
        deadline = _Deadline(cast("asyncio.Task[None]", down.task))
        timer = down.clients.loop.call_later(action.timeout, deadline.expire)
        try:
            return await self._attempts(down, req, name, cluster, action, head, body, edits, protocol)
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
        self,
        down: Downstream,
        req: Request,
        name: str,
        cluster: Cluster,
        action: RouteAction,
        head: bytes,
        body: bytes,
        edits: ResponseEdits,
        protocol: str,
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
            ep = self.next_endpoint(name, endpoints)
            sent = perf_counter()
            try:
                if per_try is None:
                    conn = await self.send(ep, head, body, head_only, protocol)
                else:
                    async with asyncio.timeout(per_try):
                        conn = await self.send(ep, head, body, head_only, protocol)
            except TimeoutError:  # per try (TimeoutError is an OSError: it goes first)
                if left and policy is not None and policy.retries_timeout():
                    left -= 1
                    continue
                return down.reply(req, 504, "upstream request timeout")
            except (ConnectFailure, UpstreamReset) as e:
                connect = isinstance(e, ConnectFailure)
                retried = policy is not None and (
                    policy.retries_connect_failure() if connect else policy.retries_reset()
                )
                if left and retried:
                    left -= 1
                    continue
                reason = "connection failure" if connect else cast(UpstreamReset, e).reason
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
            chunked = relay_head(down, req, name, conn, sent, edits)
            if chunked is not None:
                await relay_body(down, conn, chunked)
            return status

    def _endpoints(self, name: str, fallback: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
        # A retry picks among the cluster's current endpoints (a pod may have been
        # replaced since the request started), as Envoy's retries follow EDS.
        cluster = self._table().clusters.get(name)
        return cluster.endpoints if cluster is not None and cluster.endpoints else fallback

    async def send(self, ep: Endpoint, head: bytes, body: bytes, head_only: bool, protocol: str = "http") -> Exchange:
        """Send on an idle pooled connection or a new one (h2c: a new stream on a
        shared connection); return the exchange once the answer's head arrived.

        A pooled connection the upstream closed while idle has left the pool when
        its close was read; one that breaks after we wrote to it fails the attempt
        (``UpstreamReset``), as Envoy's does: the upstream may have read the request."""
        conn: Exchange | None
        try:
            if protocol == "h2c":
                conn = await self.h2.stream(ep)
            else:
                conn = self.pool.take(ep) or await self.pool.connect(ep)
        except OSError as e:
            raise ConnectFailure(str(e)) from e
        conn.send(head, body, head_only)
        try:
            await cast("asyncio.Future[None]", conn.head)
        except BaseException:
            conn.close()
            raise
        return conn


def relay_head(
    down: Downstream, req: Request, name: str, conn: Exchange, sent: float, edits: ResponseEdits
) -> bool | None:
    """Send the response head, and the body if it is all here already (the usual
    small answer: one write). Else whether the body is to be chunked."""
    status = conn.status
    service_ms = int((perf_counter() - sent) * 1000)
    remove = edits.remove
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
    if edits.add:
        parts.append(edits.add)
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


async def relay_body(down: Downstream, conn: Exchange, chunked: bool) -> None:
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
