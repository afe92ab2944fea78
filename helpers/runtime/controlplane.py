"""The control plane: one process per lab home, holding every runtime part together.

It owns the store and the pod supervisor, and the two gateway halves: ``gloo.edge``
(discovery, VirtualService translation, the gateway proxy) and
``gatewayapi.kgateway`` (HTTPRoutes, a proxy per Gateway listener), and, after
``install flagger``, the canary controller (``flagger.controller``), one more client
of the store that applies through the same path as a user. It is driven
through the admin API (``admin``). Every change, an applied object or a pod
becoming ready, ends in ``rebuild``: each half translates anew (Gloo serves the
translation its admission check just made, when nothing else changed since) and its
proxies swap the new tables in before the change is reported done. So the very next
request follows it. The proxies serve from their own thread (``proxy.dataplane``),
so the work done here never stops the traffic. Each rebuild also refreshes the
in-lab DNS table the pods read (``servicedns``). Each gateway's stats: ``statsserver``.

Its process is ``python -m helpers.runtime.admin --home DIR`` (``coalmine up`` starts it).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from helpers import kinds
from helpers.errors import ApplyRefused, InvalidArgument
from helpers.kinds import BUILTIN_NAMESPACES, BY_NAME, GLOO_NAMESPACE, KGATEWAY_NAMESPACE, key, ref
from helpers.runtime import apiserver, servicedns
from helpers.runtime.flagger.controller import CanaryController
from helpers.runtime.flagger.events import EventLog
from helpers.runtime.flagger.schema import check_canary
from helpers.runtime.flagger.windows import AllGateways
from helpers.runtime.gatewayapi import kgateway as kgw
from helpers.runtime.gloo.edge import Gloo
from helpers.runtime.home import LabHome
from helpers.runtime.prometheus import PrometheusServer
from helpers.runtime.proxy.dataplane import DataPlane
from helpers.runtime.proxy.stats import UpstreamStats
from helpers.runtime.reading import Reading
from helpers.runtime.routes import Endpoint
from helpers.runtime.statsserver import GatewayStats
from helpers.runtime.store import Store
from helpers.runtime.supervising import Supervisor

log = logging.getLogger("coalmine.controlplane")


class ControlPlane(Reading):
    """The lab's runtime: apply, delete, install (and get, ready, status: ``reading``);
    see the module doc."""

    def __init__(self, home: LabHome) -> None:
        self.home = home
        self.store = Store(home.store_file)
        # Pods die with the control plane that ran them: what a killed one left is garbage.
        shutil.rmtree(home.pods_dir, ignore_errors=True)
        home.pods_dir.mkdir(parents=True, exist_ok=True)
        self.supervisor = Supervisor(home.pods_dir, self._configmap, self.rebuild, secret=self._secret)
        self.dataplane = DataPlane()  # the proxies' own loop and thread (``proxy.dataplane``)
        self.gloo = Gloo(self.store, UpstreamStats(), self._endpoints, self.rebuild, self.dataplane)  # Gloo Edge
        self.kgateway = kgw.Kgateway(self.store, dataplane=self.dataplane)  # the Gateway API half, stats per Gateway
        self.stats = GatewayStats(self.gloo, self.kgateway, lambda: home.token(create=True), self.store)
        self.services = servicedns.ServiceTable(servicedns.services_file(home.root))
        self.events = EventLog()
        kg = self.kgateway  # the checks read every gateway's stats (``flagger.windows``)
        stats = AllGateways(lambda: [self.gloo.stats, *(kg.stats_of(*g) for g in kg.gateways())])
        self.flagger = CanaryController(self.store, self, stats, lambda: self.services.table, self.events)
        self.prometheus = PrometheusServer(self.store, home, self.stats.urls)
        self._version = 0

    # ── lifecycle ────────────────────────────────────────────────────────────

    async def start(self) -> None:
        self.supervisor.set_deployments(self.store.list("Deployment"))
        await self.gloo.start()
        self.rebuild()
        await self.settle()
        await self.flagger.start()
        await self.prometheus.start()

    async def settle(self) -> None:
        """After a change: open or close Gloo's listener (only while a VirtualService
        exists) and start or stop the Gateway listeners' proxies."""
        await self.gloo.settle()
        await self.kgateway.sync()
        await self.stats.sync()
        self.prometheus.update()  # gateways came or went: scrape what is there now

    async def close(self) -> None:
        await self.prometheus.close()
        await self.flagger.close()
        await self.supervisor.close()
        await self.kgateway.close()
        await self.gloo.close()
        await self.stats.close()
        await self.dataplane.close()

    # ── apply / delete ───────────────────────────────────────────────────────

    def apply(self, objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Apply each object in order, as ``kubectl apply`` does.

        Each result is ``{"ref", "action"}`` (created / configured / unchanged, plus
        ``warnings``) or ``{"ref", "error"}``. A refused object changes nothing.
        """
        results = []
        for obj in objects:
            result: dict[str, Any] = {"ref": ref(obj) if isinstance(obj, Mapping) else "object"}
            try:
                result.update(self._apply_one(obj))
            except ApplyRefused as e:
                result["error"] = str(e)
            results.append(result)
        return results

    def _apply_one(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        problems = apiserver.check_object(obj)
        if problems:
            raise ApplyRefused("; ".join(problems))
        kind = BY_NAME[str(obj["kind"])]
        obj = apiserver.stored(_with_namespace(obj, kind))  # a served older version is stored as the newest
        if kind.gloo and not self.gloo.installed:
            raise ApplyRefused(
                f'no matches for kind "{kind.name}" in version "{kind.api_version}": '
                "Gloo's CRDs are not installed; run `coalmine install gloo` first"
            )
        if kind.gateway_api and not self.kgateway.installed:
            raise ApplyRefused(
                f'no matches for kind "{kind.name}" in version "{kind.api_version}": '
                "the Gateway API CRDs are not installed; run `coalmine install kgateway` first"
            )
        if kind.flagger and not self.flagger.installed:
            raise ApplyRefused(
                f'no matches for kind "{kind.name}" in version "{kind.api_version}": '
                "Flagger's CRDs are not installed; run `coalmine install flagger` first"
            )
        ns = obj["metadata"].get("namespace")
        if ns and ns not in self.namespaces():
            raise ApplyRefused(f'namespaces "{ns}" not found: create it first (apiVersion: v1, kind: Namespace)')
        warnings: list[str] = []
        if kind.gloo:
            warnings = self.gloo.admit(obj)
        if kind.gateway_api:
            problems = kgw.admission(obj, self.kgateway.channel)
            if problems:
                raise ApplyRefused(
                    f"{ref(obj)} is invalid: {'; '.join(problems)}. The running configuration is unchanged."
                )
            warnings = kgw.preview(self.kgateway, list(self.store), self._endpoints(), obj)
        if kind.flagger:
            problems, warnings = check_canary(obj)
            if problems:
                raise ApplyRefused(f"{ref(obj)} is invalid: {'; '.join(problems)}")
        action, _ = self.store.put(obj)
        if action != "unchanged":
            self._changed(kind.name)
        if kind.flagger:
            self.flagger.sync(applied=(obj["metadata"]["namespace"], obj["metadata"]["name"]))
        self.gloo.forget_preview()
        return {"action": action, "warnings": warnings}

    def delete(self, refs: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
        """Delete objects by (kind, namespace, name); a missing one is an error."""
        return [self._delete_one(kinds.BY_NAME[kind_name], ns, name) for kind_name, ns, name in refs]

    def _delete_one(self, kind: kinds.Kind, ns: str, name: str) -> dict[str, Any]:
        k = (kind.name, "" if not kind.namespaced else (ns or "default"), name)
        shown = f"{kind.ref_prefix}/{name}"
        if kind.name == "Pod":
            pod = next((p for p in self.supervisor.pods() if (p.namespace, p.name) == k[1:]), None)
            if pod is None:
                return {"ref": shown, "error": f'pods "{name}" not found', "reason": "NotFound"}
            self.supervisor.delete_pod(pod)
            return {"ref": shown, "action": "deleted"}
        if kind.name == "Namespace" and name in (*BUILTIN_NAMESPACES, GLOO_NAMESPACE, KGATEWAY_NAMESPACE):
            return {"ref": shown, "error": f'namespace "{name}" is part of the lab and cannot be deleted'}
        if self.store.delete(k) is None:
            resource = f"{kind.plural}.{kind.group}" if kind.group else kind.plural
            return {"ref": shown, "error": f'{resource} "{name}" not found', "reason": "NotFound"}
        if kind.name == "Namespace":
            for obj in self.store:
                if key(obj)[1] == name:
                    self.store.delete(key(obj))
        self._changed(kind.name)
        return {"ref": shown, "action": "deleted"}

    def _changed(self, kind_name: str) -> None:
        if kind_name in ("Deployment", "Namespace"):
            self.supervisor.set_deployments(self.store.list("Deployment"))
        self.rebuild()
        if kind_name in ("Canary", "Namespace"):
            self.flagger.sync()  # a deleted Canary's objects go with it

    # ── install ──────────────────────────────────────────────────────────────

    async def install(self, component: str, port: int | None = None, channel: str | None = None) -> dict[str, Any]:
        """Install Gloo (its namespace, discovery and the gateway proxy), kgateway
        (the Gateway API: its namespace, the GatewayClass, a proxy per listener; the
        CRDs of ``channel``, standard by default) or Flagger (the Canary kind and its
        controller; it needs gloo or kgateway, its providers here) or Prometheus."""
        if channel is not None and component != "kgateway":
            raise InvalidArgument(
                f"--channel is a Gateway API choice: it goes with `install kgateway`, not {component}"
            )
        if component == "flagger":
            providers = [p for p, g in (("gloo", self.gloo), ("gatewayapi:v1", self.kgateway)) if g.installed]
            if not providers:
                raise InvalidArgument("flagger needs a gateway: `coalmine install gloo` or `install kgateway` first")
            self.flagger.install()
            namespace = GLOO_NAMESPACE if self.gloo.installed else KGATEWAY_NAMESPACE
            return {"component": "flagger", "namespace": namespace, "providers": providers}
        if component == "prometheus":
            installed = await self.prometheus.install()
            self.rebuild()  # its in-lab name resolves at once
            return installed
        if component == "kgateway":
            pruned = self.kgateway.install(channel)
            self.rebuild()
            await self.settle()
            return {
                "component": "kgateway",
                "channel": self.kgateway.channel,
                "gateways": self.kgateway.urls(),
                "pruned": pruned,
            }
        if component != "gloo":
            raise InvalidArgument(
                f'unknown component "{component}": the local runtime installs gloo, kgateway, flagger or prometheus'
            )
        await self.gloo.install(port)
        self.rebuild()
        await self.stats.sync()  # the gateway-proxy's stats, listening or not
        return {"component": "gloo", "proxyPort": self.proxy_port}

    # ── translation ──────────────────────────────────────────────────────────

    def rebuild(self) -> None:
        """Translate everything anew; each half swaps its proxies' tables."""
        self._version += 1
        self.gloo.rebuild(self._version)
        endpoints = self._endpoints()
        self.kgateway.rebuild(self.store, endpoints, self._version)
        self.services.update(servicedns.build_table(self.store.list("Service"), endpoints, self._gateways()))

    def _gateways(self) -> dict[str, dict[int, int]]:
        """Each gateway as the Service a cluster has for it: Gloo's ``gateway-proxy``
        on port 80, each kgateway Gateway on its listeners' ports."""
        found: dict[str, dict[int, int]] = {}
        if self.proxy_port:
            found[servicedns.GLOO_GATEWAY] = {80: self.proxy_port}
        if self.prometheus.url:  # as Flagger's chart names its Prometheus
            found[servicedns.PROMETHEUS] = {servicedns.PROMETHEUS_PORT: self.prometheus.port}
        for name, listeners in self.kgateway.urls().items():
            ns, gw = name.split("/", 1)
            spec = (self.store.get(("Gateway", ns, gw)) or {}).get("spec") or {}
            ports = {li.get("name"): li.get("port") for li in spec.get("listeners") or []}
            for listener, url in listeners.items():
                if isinstance(ports.get(listener), int):
                    found.setdefault(f"{gw}.{ns}", {})[ports[listener]] = int(url.rsplit(":", 1)[1])
        return found

    def _endpoints(self) -> dict[tuple[str, str, int], tuple[Endpoint, ...]]:
        found = {}
        slices = self.store.list("EndpointSlice")
        for svc in self.store.list("Service"):
            ns, name = key(svc)[1], svc["metadata"]["name"]
            for port, eps in self.supervisor.endpoints(svc, slices).items():
                found[(ns, name, port)] = eps
        return found

    def deployment_status(self, namespace: str, name: str) -> dict[str, int]:
        """How a Deployment's pods are doing (replicas, updated, ready, available)."""
        return self.supervisor.deployment_status(namespace, name)

    def _configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.get(("ConfigMap", namespace, name))

    def _secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.get(("Secret", namespace, name))


def _with_namespace(obj: Mapping[str, Any], kind: kinds.Kind) -> dict[str, Any]:
    obj = dict(obj)
    meta = dict(obj.get("metadata") or {})
    if kind.namespaced:
        meta.setdefault("namespace", "default")
        if not meta["namespace"]:
            meta["namespace"] = "default"
    else:
        meta.pop("namespace", None)
    obj["metadata"] = meta
    return obj
