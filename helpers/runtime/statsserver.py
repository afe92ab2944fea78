"""Each gateway's stats endpoint: ``GET /stats/prometheus`` on a 127.0.0.1 port of its own.

A cluster runs one Envoy per gateway (Gloo's ``gateway-proxy``, and one per kgateway
Gateway), each with its admin port serving its own stats; Prometheus scrapes each.
Here each gateway gets a small HTTP server on the control plane's loop (never on the
data plane's thread: a scrape costs the traffic nothing but the copy of the counters)
answering ``proxy.exposition``'s text. Unlike Envoy's admin port, it asks for the lab's
token as ``Authorization: Bearer <token>`` (Prometheus: ``authorization:
{credentials_file: <lab home>/token}``).

The ports are kept in the store, so a restarted control plane listens where it did
(the scrape targets stay right), unless another program took the port meanwhile.

``GatewayStats`` is the control plane's view of every gateway's stats: the endpoints
(``urls``) and the per-upstream ``snapshot``, every gateway's added up (the admin API's
``/v1/stats``, as before gateways had stats of their own) or one gateway's.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from helpers.errors import InvalidArgument
from helpers.kinds import GLOO_NAMESPACE
from helpers.runtime.gatewayapi.kgateway import Kgateway
from helpers.runtime.gloo.edge import Gloo
from helpers.runtime.proxy.exposition import CONTENT_TYPE, PATH, render
from helpers.runtime.proxy.stats import UpstreamStats, merged_snapshot
from helpers.runtime.store import Store

HOST = "127.0.0.1"
GLOO_PROXY = f"{GLOO_NAMESPACE}/gateway-proxy"  # the Deployment running Gloo's Envoy on a cluster
log = logging.getLogger("coalmine.stats")


@dataclass(frozen=True, eq=False)
class StatsSource:
    """What one gateway's endpoint shows: its stats, and Envoy's names of its clusters
    (a live mapping, the gateway's own, which grows as clusters appear)."""

    stats: UpstreamStats
    names: Mapping[str, str]

    def same(self, other: StatsSource) -> bool:
        return self.stats is other.stats and self.names is other.names


class StatsListener:
    """One gateway's ``/stats/prometheus``, token-protected, on ``HOST``."""

    def __init__(self, source: StatsSource, token: str) -> None:
        self.source, self._token = source, token
        self.port: int | None = None
        self._started = time.monotonic()
        self._runner: web.AppRunner | None = None

    async def start(self, port: int = 0) -> int:
        """Listen on ``port`` (0: a free one) and return it; ``OSError`` if it is taken."""
        app = web.Application()
        app.router.add_get(PATH, self._serve)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, HOST, port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner, self.port = runner, int(runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve(self, request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not (given and given.isascii() and hmac.compare_digest(given.encode(), self._token.encode())):
            return web.Response(
                status=401, text="missing or wrong lab token (Authorization: Bearer <lab home>/token)\n"
            )
        text = render(self.source.stats, self.source.names, time.monotonic() - self._started)
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


class StatsListeners:
    """A stats endpoint per gateway, started and stopped as gateways come and go.

    ``ports`` is where each gateway listened last (``"namespace/name"`` to port), kept
    by the caller across restarts; ``save`` is called when it changes."""

    def __init__(self, token: Callable[[], str], ports: dict[str, int], save: Callable[[], None]) -> None:
        self._token, self._ports, self._save = token, ports, save
        self._listeners: dict[str, StatsListener] = {}

    async def sync(self, sources: Mapping[str, StatsSource]) -> None:
        """Serve exactly ``sources`` (gateway name to what it shows)."""
        changed = False
        for name in [n for n in self._listeners if n not in sources or not self._listeners[n].source.same(sources[n])]:
            await self._listeners.pop(name).stop()
            if name not in sources:
                changed = self._ports.pop(name, None) is not None or changed
        for name, source in sorted(sources.items()):
            if name in self._listeners:
                continue
            listener, remembered = StatsListener(source, self._token()), self._ports.get(name, 0)
            try:
                port = await listener.start(remembered)
            except OSError:
                log.warning("stats of %s: port %s is taken; using another", name, remembered)
                port = await listener.start(0)
            self._listeners[name] = listener
            if self._ports.get(name) != port:
                self._ports[name], changed = port, True
        if changed:
            self._save()

    def urls(self) -> dict[str, str]:
        """``{"namespace/name": "http://127.0.0.1:PORT/stats/prometheus"}`` per gateway."""
        return {name: f"http://{HOST}:{li.port}{PATH}" for name, li in sorted(self._listeners.items())}

    async def close(self) -> None:
        """Stop every endpoint (the ports stay remembered for the next start)."""
        for listener in self._listeners.values():
            await listener.stop()
        self._listeners.clear()


class GatewayStats:
    """Every gateway's stats: Gloo's ``gateway-proxy`` once installed (its admin port is
    there before any VirtualService opens the gateway), and each kgateway Gateway, by
    ``"namespace/name"``. ``token`` gives the lab's token; the ports live in ``store``."""

    def __init__(self, gloo: Gloo, kgateway: Kgateway, token: Callable[[], str], store: Store) -> None:
        self.gloo, self.kgateway = gloo, kgateway
        self.listeners = StatsListeners(token, store.extra.setdefault("statsPorts", {}), store.save)

    def sources(self) -> dict[str, StatsSource]:
        """What each gateway's endpoint shows, by gateway."""
        found = {}
        if self.gloo.installed:
            found[GLOO_PROXY] = StatsSource(self.gloo.stats, self.gloo.cluster_names)
        for ns, name in self.kgateway.gateways():
            found[f"{ns}/{name}"] = StatsSource(self.kgateway.stats_of(ns, name), self.kgateway.cluster_names)
        return found

    async def sync(self) -> None:
        """After a change: an endpoint for each gateway there is, none for those gone."""
        await self.listeners.sync(self.sources())

    def urls(self) -> dict[str, str]:
        """Where each gateway serves its stats in Prometheus's format, by gateway."""
        return self.listeners.urls()

    def snapshot(self, gateway: str | None = None) -> dict[str, Any]:
        """Per-upstream stats (``UpstreamStats.snapshot``): every gateway's added up,
        or the one ``gateway`` (``gloo-system/gateway-proxy`` or ``namespace/name``)."""
        sources = self.sources()
        if gateway is None:
            return merged_snapshot(dict.fromkeys(s.stats for s in sources.values()))
        if gateway not in sources:
            raise InvalidArgument(f'no gateway "{gateway}": the lab has {_listed(sources)}')
        return sources[gateway].stats.snapshot()

    def url(self, gateway: str | None = None) -> str:
        """Where ``gateway`` serves its stats; by default Gloo's proxy, else the one
        Gateway there is. ``InvalidArgument`` naming the choices otherwise."""
        urls = self.urls()
        if gateway is None:
            gateway = GLOO_PROXY if GLOO_PROXY in urls else next(iter(urls)) if len(urls) == 1 else None
            if gateway is None:
                raise InvalidArgument(
                    "no gateway yet: run `coalmine install gloo` (or install kgateway and apply a Gateway)"
                    if not urls
                    else f"the lab has several gateways ({_listed(urls)}): pick one with --gateway NAMESPACE/NAME"
                )
        if gateway not in urls:
            raise InvalidArgument(f'no gateway "{gateway}": the lab has {_listed(urls)}')
        return urls[gateway]

    async def close(self) -> None:
        await self.listeners.close()


def _listed(gateways: Mapping[str, Any]) -> str:
    return ", ".join(sorted(gateways)) or "none yet (run `coalmine install gloo` or `install kgateway`)"
