"""kgateway in a box: the Gateway API half of the control plane.

``coalmine install kgateway`` turns it on: the namespace ``kgateway-system`` and the
GatewayClass ``kgateway`` appear, and from then on every Gateway listener of that
class is served by its own ``GatewayProxy`` on a 127.0.0.1 port of its own (kept
across restarts, like the Gloo proxy's). On every rebuild the translator
(``translating_gatewayapi``) makes one route table per listener, each swapped into
its proxy; ``sync`` starts and stops proxies as listeners come and go.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from helpers.kinds import GATEWAY_NETWORKING_V1, KGATEWAY_NAMESPACE, key
from helpers.runtime.gatewayapi import schema as gatewayapi_schema
from helpers.runtime.gatewayapi.status import stamp
from helpers.runtime.gatewayapi.translating import GatewayTranslation, ListenerKey, translate
from helpers.runtime.proxy.dataplane import DataPlane, on
from helpers.runtime.proxy.proxying import GatewayProxy
from helpers.runtime.proxy.stats import UpstreamStats
from helpers.runtime.routes import Endpoint
from helpers.runtime.store import Store, now_rfc3339

log = logging.getLogger("coalmine.kgateway")

NAMESPACE = KGATEWAY_NAMESPACE
CLASS_NAME = "kgateway"
KINDS = ("GatewayClass", "Gateway", "HTTPRoute", "Service", "Namespace")


def gateway_class() -> dict[str, Any]:
    """The GatewayClass that kgateway's Helm chart installs."""
    return {
        "apiVersion": GATEWAY_NETWORKING_V1,
        "kind": "GatewayClass",
        "metadata": {"name": CLASS_NAME},
        "spec": {
            "controllerName": gatewayapi_schema.CONTROLLER,
            "description": "kgateway, served by the coalmine local runtime",
        },
    }


class Kgateway:
    """The Gateway API translation and the listeners' proxies of one lab."""

    def __init__(self, store: Store, stats: UpstreamStats, dataplane: DataPlane | None = None) -> None:
        self.store, self.stats, self.dataplane = store, stats, dataplane
        self.result = GatewayTranslation()
        self.proxies: dict[ListenerKey, GatewayProxy] = {}
        self._statuses: dict[tuple[str, str, str], dict[str, Any]] = {}

    @property
    def installed(self) -> bool:
        return "kgateway" in self.store.extra

    def install(self) -> None:
        """Record the install and make the GatewayClass (idempotent)."""
        if not self.installed:
            self.store.extra["kgateway"] = {"ports": {}}
        self.store.put(gateway_class())

    # ── translation ──────────────────────────────────────────────────────────

    def translate(
        self,
        objects: Iterable[Mapping[str, Any]],
        endpoints: Mapping[tuple[str, str, int], Sequence[Endpoint]],
        version: int = 0,
    ) -> GatewayTranslation:
        objects = [o for o in objects if o.get("kind") in KINDS]
        labels = {
            o["metadata"]["name"]: dict(o["metadata"].get("labels") or {})
            for o in objects
            if o.get("kind") == "Namespace"
        }
        return translate(objects, endpoints, labels, version)

    def rebuild(
        self,
        objects: Iterable[Mapping[str, Any]],
        endpoints: Mapping[tuple[str, str, int], Sequence[Endpoint]],
        version: int,
    ) -> None:
        """Translate again and swap each running listener's table."""
        if not self.installed:
            return
        self.result = self.translate(objects, endpoints, version)
        now = now_rfc3339()
        self._statuses = {k: stamp(s, self._statuses.get(k), now) for k, s in self.result.statuses.items()}
        for lk, proxy in self.proxies.items():
            table = self.result.listeners.get(lk)
            if table is not None:
                proxy.swap(table)

    def status_of(self, k: tuple[str, str, str]) -> dict[str, Any] | None:
        status = self._statuses.get(k)
        if status is None or k[0] != "Gateway":
            return status
        listeners = []
        for li in status.get("listeners") or []:
            proxy = self.proxies.get((k[1], k[2], li["name"]))
            # Not a Gateway API field: where the local runtime serves the listener.
            listeners.append({**li, "localPort": proxy.port} if proxy is not None else li)
        return {**status, "listeners": listeners}

    # ── listeners ────────────────────────────────────────────────────────────

    async def sync(self) -> None:
        """Start a proxy for every listener to serve, stop those no longer wanted."""
        wanted = self.result.listeners if self.installed else {}
        for lk in [lk for lk in self.proxies if lk not in wanted]:
            await on(self.dataplane, self.proxies.pop(lk).stop())
            self._ports().pop("/".join(lk), None)
        for lk, table in wanted.items():
            if lk not in self.proxies:
                await self._start(lk, table)
        self.store.save()

    async def _start(self, lk: ListenerKey, table: Any) -> None:
        remembered = self._ports().get("/".join(lk))
        proxy = GatewayProxy(table, self.stats)
        try:
            port = await on(self.dataplane, proxy.start("127.0.0.1", remembered or 0))
        except OSError:
            log.warning("listener %s: port %s is taken; using another", "/".join(lk), remembered)
            port = await on(self.dataplane, proxy.start("127.0.0.1", 0))
        self.proxies[lk] = proxy
        self._ports()["/".join(lk)] = port

    def _ports(self) -> dict[str, int]:
        ports: dict[str, int] = self.store.extra.setdefault("kgateway", {}).setdefault("ports", {})
        return ports

    async def close(self) -> None:
        for proxy in self.proxies.values():
            await on(self.dataplane, proxy.stop())
        self.proxies.clear()

    def urls(self) -> dict[str, dict[str, str]]:
        """``{"namespace/gateway": {"listener": "http://127.0.0.1:PORT"}}``."""
        found: dict[str, dict[str, str]] = {}
        for (ns, gw, li), proxy in sorted(self.proxies.items()):
            found.setdefault(f"{ns}/{gw}", {})[li] = f"http://127.0.0.1:{proxy.port}"
        return found

    def pending(self) -> list[str]:
        """Listeners to serve that have no proxy yet."""
        return ["/".join(lk) for lk in self.result.listeners if lk not in self.proxies]

    def route_rows(self) -> list[dict[str, Any]]:
        rows = []
        for _lk, table in sorted(self.result.listeners.items()):
            for vh in table.virtual_hosts:
                for i, route in enumerate(vh.routes):
                    rows.append(
                        {
                            "virtualHost": vh.name,
                            "index": i,
                            "source": route.source,
                            "action": type(route.action).__name__,
                        }
                    )
        return rows


def admission(obj: Mapping[str, Any]) -> list[str]:
    """What the Gateway API CRDs (schema and CEL rules) refuse in ``obj``."""
    return gatewayapi_schema.validate(obj)


def preview(
    kg: Kgateway,
    objects: list[Mapping[str, Any]],
    endpoints: Mapping[tuple[str, str, int], Sequence[Endpoint]],
    obj: Mapping[str, Any],
) -> list[str]:
    """The warnings ``apply`` shows for ``obj`` if it joined ``objects``."""
    k = key(obj)
    candidate = [o for o in objects if key(o) != k] + [dict(obj)]
    return kg.translate(candidate, endpoints).warnings.get(k, [])
