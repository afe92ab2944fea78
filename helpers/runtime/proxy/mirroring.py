"""RequestMirror: copies of a request sent to other clusters, their answers dropped.

As Envoy's shadowing: the copy has the same method, path, headers and body as
the request the route forwards, its Host suffixed ``-shadow``; ``percent`` of the
requests are copied; the copy is fire and forget, so it never delays or fails
the real request, and it is never retried. Each copy is counted in the stats of
the mirror's cluster (not of the route's upstream), as Envoy counts shadowed
requests on the shadow cluster.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from time import perf_counter
from typing import cast

from helpers.runtime.proxy.forwarding import ConnectFailure, Exchange, Forwarder
from helpers.runtime.proxy.stats import UpstreamStats
from helpers.runtime.proxy.upstreams import UpstreamReset
from helpers.runtime.routes import Endpoint, Mirror, RouteTable

_random = random.random


class Mirroring:
    """The mirrored copies in flight for one proxy (so ``close`` can end them)."""

    def __init__(self, forwarder: Forwarder, stats: UpstreamStats) -> None:
        self._forwarder = forwarder
        self._stats = stats
        self._tasks: set[asyncio.Task[None]] = set()

    def send(
        self,
        loop: asyncio.AbstractEventLoop,
        table: RouteTable,
        mirrors: tuple[Mirror, ...],
        render: Callable[[str], tuple[bytes, bytes]],
        head_only: bool,
        timeout: float | None,
    ) -> None:
        """Start a copy to each of ``mirrors`` whose percent says so; ``render`` makes
        the copy's head and body for a cluster name. Returns at once."""
        for mirror in mirrors:
            if mirror.percent < 100 and _random() * 100 >= mirror.percent:
                continue
            dest = mirror.destination
            cluster = table.clusters.get(dest.cluster)
            if dest.invalid is not None or cluster is None or not cluster.endpoints:
                continue  # nowhere to send it; the real request is not affected
            head, body = render(dest.cluster)
            task = loop.create_task(
                self._copy(dest.cluster, cluster.endpoints, head, body, head_only, timeout, dest.protocol)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _copy(
        self,
        name: str,
        endpoints: tuple[Endpoint, ...],
        head: bytes,
        body: bytes,
        head_only: bool,
        timeout: float | None,
        protocol: str,
    ) -> None:
        started = perf_counter()
        ep = self._forwarder.next_endpoint(name, endpoints)
        conn: Exchange | None = None
        try:
            async with asyncio.timeout(timeout):
                conn = await self._forwarder.send(ep, head, body, head_only, protocol)
                if not conn.attach(_drop):  # read the whole answer, so the connection can be reused
                    await cast("asyncio.Future[None]", conn.done)
            status = conn.status
            conn.release()
        except (TimeoutError, ConnectFailure, UpstreamReset) as e:
            status = 504 if isinstance(e, TimeoutError) else 503  # what Envoy would have answered
            if conn is not None:
                conn.close()
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        self._stats.record(name, status, perf_counter() - started)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel the copies in flight and wait until they ended."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _drop(_: bytes) -> None:
    return None
