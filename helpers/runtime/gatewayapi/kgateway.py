"""kgateway in a box: the Gateway API half of the control plane.

``coalmine install kgateway`` turns it on: the namespace ``kgateway-system`` and the
GatewayClass ``kgateway`` appear, and from then on every port of a Gateway of that
class is served by its own ``GatewayProxy`` on a 127.0.0.1 port of its own (kept
across restarts, like the Gloo proxy's); the listeners sharing a Gateway port share
that proxy, as they share a socket on a cluster. On every rebuild the translator
(``gatewayapi.translating``) makes one route table per port, each swapped into its
proxy; ``sync`` starts and stops proxies as ports come and go, and restarts an HTTPS
one whose certificates changed (TLS terminated with ``certificates.port_context``).

Each Gateway has its own stats (``stats_of``), as each Gateway's Envoy has on a
cluster, shared by its ports' proxies and kept while the Gateway exists;
``cluster_names`` gives Envoy's name of each cluster (``kube_<ns>_<service>_<port>``,
kgateway's ``ir.Upstream.ClusterName``) for their Prometheus exposition.

The install records the Gateway API channel (``channels``): ``standard`` unless
``--channel experimental``; the schema follows it. Installing again with the other
channel switches, as applying the other CRDs would. Back to ``standard``, the stored
objects lose their experimental fields at once (``channels.prune``): a cluster's API
server drops them when it reads the objects (etcd keeps them until the next write),
so a controller stops seeing them either way.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from helpers.kinds import GATEWAY_NETWORKING_V1, KGATEWAY_NAMESPACE, key
from helpers.runtime.gatewayapi import schema as gatewayapi_schema
from helpers.runtime.gatewayapi.certificates import port_context
from helpers.runtime.gatewayapi.channels import STANDARD, channel_named, prune
from helpers.runtime.gatewayapi.status import stamp
from helpers.runtime.gatewayapi.translating import GatewayTranslation, ListenerKey, PortKey, PortTable, translate
from helpers.runtime.proxy.dataplane import DataPlane, on
from helpers.runtime.proxy.proxying import GatewayProxy
from helpers.runtime.proxy.stats import UpstreamStats
from helpers.runtime.routes import Endpoint
from helpers.runtime.store import Store, now_rfc3339

log = logging.getLogger("coalmine.kgateway")

NAMESPACE = KGATEWAY_NAMESPACE
CLASS_NAME = "kgateway"
KINDS = ("GatewayClass", "Gateway", "HTTPRoute", "ReferenceGrant", "Service", "Secret", "Namespace")


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
    """The Gateway API translation and the Gateway ports' proxies of one lab."""

    def __init__(self, store: Store, stats: UpstreamStats | None = None, dataplane: DataPlane | None = None) -> None:
        """``stats``: one ``UpstreamStats`` every Gateway records into (a test's single
        view); by default each Gateway has its own."""
        self.store, self.dataplane = store, dataplane
        self._shared_stats = stats
        self._stats: dict[tuple[str, str], UpstreamStats] = {}
        # Only grows: a cluster that leaves the tables keeps its name in the stats.
        self.cluster_names: dict[str, str] = {}
        self.result = GatewayTranslation()
        self.proxies: dict[PortKey, GatewayProxy] = {}
        self._served: dict[PortKey, PortTable] = {}  # what each running proxy was started with
        self._statuses: dict[tuple[str, str, str], dict[str, Any]] = {}

    @property
    def installed(self) -> bool:
        return "kgateway" in self.store.extra

    @property
    def channel(self) -> str:
        """The Gateway API channel installed: ``standard`` or ``experimental``."""
        return str((self.store.extra.get("kgateway") or {}).get("channel") or STANDARD)

    def install(self, channel: str | None = None) -> list[str]:
        """Record the install and its channel (default standard) and make the
        GatewayClass (idempotent). Returns the experimental fields a switch back to
        the standard channel pruned, as ``Kind/namespace/name: field`` lines."""
        channel = channel_named(channel)
        if not self.installed:
            self.store.extra["kgateway"] = {"ports": {}}
        switched = self.channel != channel
        self.store.extra["kgateway"]["channel"] = channel
        self.store.put(gateway_class())
        pruned: list[str] = []
        for obj in list(self.store) if switched and channel == STANDARD else []:
            kept, removed = prune(obj)
            if removed:
                self.store.put(kept)
                meta = obj["metadata"]
                pruned += [f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}: {r}" for r in removed]
        self.store.save()
        return pruned

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
        for pk, proxy in self.proxies.items():
            served = self.result.ports.get(pk)
            if served is not None:
                proxy.swap(served.table)
        clusters = {c for served in self.result.ports.values() for c in served.table.clusters}
        self.cluster_names.update(envoy_cluster_names(clusters, self.store.list("Service")))

    # ── stats ────────────────────────────────────────────────────────────────

    def gateways(self) -> list[tuple[str, str]]:
        """(namespace, name) of every Gateway of a class kgateway handles: each one an
        Envoy of its own on a cluster, with its own stats."""
        if not self.installed:
            return []
        ours = {
            gc["metadata"]["name"]
            for gc in self.store.list("GatewayClass")
            if (gc.get("spec") or {}).get("controllerName") == gatewayapi_schema.CONTROLLER
        }
        return sorted(
            (gw["metadata"].get("namespace") or "default", gw["metadata"]["name"])
            for gw in self.store.list("Gateway")
            if (gw.get("spec") or {}).get("gatewayClassName") in ours
        )

    def stats_of(self, namespace: str, name: str) -> UpstreamStats:
        """The stats of the Gateway ``namespace/name`` (what its Envoy counted)."""
        if self._shared_stats is not None:
            return self._shared_stats
        return self._stats.setdefault((namespace, name), UpstreamStats())

    def status_of(self, k: tuple[str, str, str]) -> dict[str, Any] | None:
        status = self._statuses.get(k)
        if status is None or k[0] != "Gateway":
            return status
        listeners = []
        for li in status.get("listeners") or []:
            proxy = self._proxy_of((k[1], k[2], li["name"]))
            # Not a Gateway API field: where the local runtime serves the listener.
            listeners.append({**li, "localPort": proxy.port} if proxy is not None else li)
        return {**status, "listeners": listeners}

    # ── ports ────────────────────────────────────────────────────────────────

    async def sync(self) -> None:
        """Start a proxy for every port to serve, stop those no longer wanted, and
        restart one whose scheme or certificates changed (on the same local port)."""
        wanted = self.result.ports if self.installed else {}
        for pk in [pk for pk in self.proxies if pk not in wanted or _tls_changed(self._served[pk], wanted[pk])]:
            await on(self.dataplane, self.proxies.pop(pk).stop())
            if pk not in wanted:
                self._ports().pop(self._remembered_as(pk), None)
            self._served.pop(pk, None)
        for pk, served in wanted.items():
            if pk not in self.proxies:
                await self._start(pk, served)
            self._served[pk] = served  # the same socket, perhaps more or fewer listeners on it
        gateways = set(self.gateways())
        for gone in [g for g in self._stats if g not in gateways]:
            del self._stats[gone]  # its Envoy is gone, and its counters with it
        self.store.save()

    async def _start(self, pk: PortKey, served: PortTable) -> None:
        name = f"{pk[0]}/{pk[1]}/{served.listeners[0]}"
        remembered = self._ports().get(name)
        context = port_context(served.certificates) if served.scheme == "https" and served.certificates else None
        proxy = GatewayProxy(served.table, self.stats_of(pk[0], pk[1]))
        try:
            port = await on(self.dataplane, self._listen(proxy, remembered or 0, context, pk[2]))
        except OSError:
            log.warning("listener %s: port %s is taken; using another", name, remembered)
            port = await on(self.dataplane, self._listen(proxy, 0, context, pk[2]))
        self.proxies[pk] = proxy
        self._served[pk] = served
        self._ports()[name] = port

    @staticmethod
    async def _listen(proxy: GatewayProxy, port: int, context: ssl.SSLContext | None, listener_port: int) -> int:
        # ``listener_port``: the port the Gateway declares, which redirects keep.
        return await proxy.start("127.0.0.1", port, ssl=context, listener_port=listener_port)

    def _remembered_as(self, pk: PortKey) -> str:
        served = self._served.get(pk)
        return f"{pk[0]}/{pk[1]}/{served.listeners[0]}" if served else ""

    def _proxy_of(self, lk: ListenerKey) -> GatewayProxy | None:
        for pk, served in self._served.items():
            if pk[:2] == lk[:2] and lk[2] in served.listeners:
                return self.proxies.get(pk)
        return None

    def _ports(self) -> dict[str, int]:
        ports: dict[str, int] = self.store.extra.setdefault("kgateway", {}).setdefault("ports", {})
        return ports

    async def close(self) -> None:
        for proxy in self.proxies.values():
            await on(self.dataplane, proxy.stop())
        self.proxies.clear()
        self._served.clear()

    def urls(self) -> dict[str, dict[str, str]]:
        """``{"namespace/gateway": {"listener": "http://127.0.0.1:PORT"}}`` (``https``
        for HTTPS listeners); listeners sharing a Gateway port share the local one."""
        found: dict[str, dict[str, str]] = {}
        for pk, proxy in sorted(self.proxies.items()):
            served = self._served[pk]
            for li in served.listeners:
                found.setdefault(f"{pk[0]}/{pk[1]}", {})[li] = f"{served.scheme}://127.0.0.1:{proxy.port}"
        return found

    def pending(self) -> list[str]:
        """Listeners to serve that have no proxy yet."""
        return [
            f"{pk[0]}/{pk[1]}/{li}"
            for pk, served in self.result.ports.items()
            if pk not in self.proxies
            for li in served.listeners
        ]

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


def admission(obj: Mapping[str, Any], channel: str = STANDARD) -> list[str]:
    """What the Gateway API CRDs of ``channel`` (schema and CEL rules) refuse in ``obj``."""
    return gatewayapi_schema.validate(obj, channel)


def preview(
    kg: Kgateway,
    objects: list[Mapping[str, Any]],
    endpoints: Mapping[tuple[str, str, int], Sequence[Endpoint]],
    obj: Mapping[str, Any],
) -> list[str]:
    """The warnings ``apply`` shows for ``obj`` if it joined ``objects``: what the
    schema accepts but the local runtime ignores, then what the translation says."""
    k = key(obj)
    candidate = [o for o in objects if key(o) != k] + [dict(obj)]
    return gatewayapi_schema.check(obj, kg.channel).warnings + kg.translate(candidate, endpoints).warnings.get(k, [])


def envoy_cluster_names(clusters: Iterable[str], services: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Envoy's name of each of the translator's ``kube-svc:<ns>-<service>-<port>``
    clusters, as kgateway names a Service port's: ``kube_<ns>_<service>_<port>``."""
    by_cluster = {
        f"kube-svc:{ns}-{name}-{port.get('port')}": f"kube_{ns}_{name}_{port.get('port')}"
        for svc in services
        for ns, name in [(svc["metadata"].get("namespace") or "default", svc["metadata"]["name"])]
        for port in (svc.get("spec") or {}).get("ports") or []
    }
    return {c: by_cluster[c] for c in clusters if c in by_cluster}


def _tls_changed(before: PortTable, now: PortTable) -> bool:
    # The socket's TLS is fixed when it opens: new certificates need a new socket.
    return (before.scheme, before.certificates) != (now.scheme, now.certificates)
