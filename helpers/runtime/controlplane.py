"""The control plane: one process per lab home, holding every runtime part together.

It owns the store and the pod supervisor, and the two gateway halves: ``gloo.edge``
(discovery, VirtualService translation, the gateway proxy) and
``gatewayapi.kgateway`` (HTTPRoutes, a proxy per Gateway listener). It is driven
through the admin API (``admin``). Every change, an applied object or a pod
becoming ready, ends in ``rebuild``: each half translates anew (Gloo serves the
translation its admission check just made, when nothing else changed since) and its
proxies swap the new tables in before the change is reported done. So the very next
request follows it. The proxies serve from their own thread (``proxy.dataplane``),
so the work done here never stops the traffic.

Its process is ``python -m helpers.runtime.admin --home DIR`` (``coalmine up`` starts it).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from typing import Any

from helpers import kinds
from helpers.errors import ApplyRefused, InvalidArgument
from helpers.kinds import BUILTIN_NAMESPACES, BY_NAME, GLOO_NAMESPACE, KGATEWAY_NAMESPACE, key, ref
from helpers.runtime import apiserver
from helpers.runtime.gatewayapi import kgateway as kgw
from helpers.runtime.gloo.edge import Gloo
from helpers.runtime.home import LabHome
from helpers.runtime.proxy.dataplane import DataPlane
from helpers.runtime.proxy.stats import UpstreamStats
from helpers.runtime.routes import Endpoint
from helpers.runtime.store import Store
from helpers.runtime.supervising import Supervisor

log = logging.getLogger("coalmine.controlplane")


class ControlPlane:
    """The lab's runtime: apply, delete, get, install, ready; see the module doc."""

    def __init__(self, home: LabHome) -> None:
        self.home = home
        self.store = Store(home.store_file)
        # Pods die with the control plane that ran them: what a killed one left is garbage.
        shutil.rmtree(home.pods_dir, ignore_errors=True)
        home.pods_dir.mkdir(parents=True, exist_ok=True)
        self.supervisor = Supervisor(home.pods_dir, self._configmap, self.rebuild)
        self.stats = UpstreamStats()
        self.dataplane = DataPlane()  # the proxies' own loop and thread (``proxy.dataplane``)
        self.gloo = Gloo(self.store, self.stats, self._endpoints, self.rebuild, self.dataplane)  # Gloo Edge
        self.kgateway = kgw.Kgateway(self.store, self.stats, self.dataplane)  # the Gateway API half
        self._version = 0

    # ── lifecycle ────────────────────────────────────────────────────────────

    async def start(self) -> None:
        self.supervisor.set_deployments(self.store.list("Deployment"))
        await self.gloo.start()
        self.rebuild()
        await self.settle()

    async def settle(self) -> None:
        """After a change: start or stop the Gateway listeners' proxies."""
        await self.kgateway.sync()

    async def close(self) -> None:
        await self.supervisor.close()
        await self.kgateway.close()
        await self.gloo.close()
        await self.dataplane.close()

    @property
    def proxy_port(self) -> int | None:
        """The port of Gloo's gateway proxy, once installed."""
        return self.gloo.proxy_port

    # ── apply / delete ───────────────────────────────────────────────────────

    def apply(self, objects: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
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
        obj = _with_namespace(obj, kind)
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
        ns = obj["metadata"].get("namespace")
        if ns and ns not in self.namespaces():
            raise ApplyRefused(f'namespaces "{ns}" not found: create it first (apiVersion: v1, kind: Namespace)')
        warnings: list[str] = []
        if kind.gloo:
            warnings = self.gloo.admit(obj)
        if kind.gateway_api:
            problems = kgw.admission(obj)
            if problems:
                raise ApplyRefused(
                    f"{ref(obj)} is invalid: {'; '.join(problems)}. The running configuration is unchanged."
                )
            warnings = kgw.preview(self.kgateway, list(self.store), self._endpoints(), obj)
        action, _ = self.store.put(obj)
        if action != "unchanged":
            self._changed(kind.name)
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

    # ── install ──────────────────────────────────────────────────────────────

    async def install(self, component: str, port: int | None = None) -> dict[str, Any]:
        """Install Gloo (its namespace, discovery and the gateway proxy) or kgateway
        (the Gateway API: its namespace, the GatewayClass, a proxy per listener)."""
        if component == "kgateway":
            self.kgateway.install()
            self.rebuild()
            await self.settle()
            return {"component": "kgateway", "gateways": self.kgateway.urls()}
        if component != "gloo":
            raise InvalidArgument(f'unknown component "{component}": the local runtime installs "gloo" or "kgateway"')
        await self.gloo.install(port)
        self.rebuild()
        return {"component": "gloo", "proxyPort": self.proxy_port}

    # ── translation ──────────────────────────────────────────────────────────

    def rebuild(self) -> None:
        """Translate everything anew; each half swaps its proxies' tables."""
        self._version += 1
        self.gloo.rebuild(self._version)
        self.kgateway.rebuild(self.store, self._endpoints(), self._version)

    def _endpoints(self) -> dict[tuple[str, str, int], tuple[Endpoint, ...]]:
        found = {}
        for svc in self.store.list("Service"):
            ns, name = key(svc)[1], svc["metadata"]["name"]
            for port, eps in self.supervisor.endpoints(svc).items():
                found[(ns, name, port)] = eps
        return found

    def _configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.get(("ConfigMap", namespace, name))

    def namespaces(self) -> set[str]:
        found = set(BUILTIN_NAMESPACES) | {o["metadata"]["name"] for o in self.store.list("Namespace")}
        if self.gloo.installed:
            found.add(GLOO_NAMESPACE)
        if self.kgateway.installed:
            found.add(KGATEWAY_NAMESPACE)
        return found

    # ── reading ──────────────────────────────────────────────────────────────

    def get(self, kind_name: str, namespace: str | None, name: str | None) -> list[dict[str, Any]]:
        """Objects of a kind with their live status; ``namespace`` None means all."""
        kind = kinds.lookup(kind_name)
        kind_name = kind.name  # "services", "svc" and "Service" name the same kind
        if kind_name == "Pod":
            objects = [p.to_object() for p in self.supervisor.pods()]
        elif kind_name == "Namespace":
            objects = [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}, "status": {"phase": "Active"}}
                for n in sorted(self.namespaces())
            ]
        else:
            objects = [self._with_status(o) for o in self.store.list(kind_name)]
        if kind.namespaced and namespace is not None:
            objects = [o for o in objects if o["metadata"].get("namespace") == namespace]
        if name is not None:
            objects = [o for o in objects if o["metadata"]["name"] == name]
        return objects

    def _with_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = dict(obj)
        k = key(obj)
        status: dict[str, Any] | None = None
        if obj["kind"] == "Deployment":
            status = self.supervisor.deployment_status(k[1], k[2])
        elif obj["kind"] == "Service":
            eps = self.supervisor.endpoints(obj)
            status = {
                "loadBalancer": {},
                "localEndpoints": {str(p): [f"{e.host}:{e.port}" for e in es] for p, es in eps.items()},
            }
        elif BY_NAME[obj["kind"]].gateway_api:
            status = self.kgateway.status_of(k)
        elif BY_NAME[obj["kind"]].gloo:
            status = self.gloo.status_of(k)
        if status is not None:
            obj["status"] = status
        return obj

    def ready(self) -> dict[str, Any]:
        """What ``coalmine wait`` waits for: deployments ready, gateway serving,
        function discovery done for every service with ready endpoints."""
        deployments = []
        for dep in self.store.list("Deployment"):
            k = key(dep)
            st = self.supervisor.deployment_status(k[1], k[2])
            want = int(dep["spec"].get("replicas", 1))
            deployments.append(
                {
                    "name": f"{k[1]}/{k[2]}",
                    "ready": st.get("availableReplicas", 0),
                    "desired": want,
                    "done": st.get("availableReplicas", 0) >= want and st.get("replicas", 0) == want,
                }
            )
        pending = self.gloo.discovery_pending()
        serving = self.gloo.proxy is not None
        gateway = {"installed": self.gloo.installed, "serving": serving, "port": self.proxy_port}
        listeners = self.kgateway.pending()
        done = all(d["done"] for d in deployments) and not pending and (serving or not self.gloo.installed)
        return {
            "ready": done and not listeners,
            "deployments": deployments,
            "discoveryPending": pending,
            "gateway": gateway,
            "listenersPending": listeners,
        }

    def status(self) -> dict[str, Any]:
        pods = self.supervisor.pods()
        return {
            "home": str(self.home.root),
            "gateway": {"installed": self.gloo.installed, "url": self.gloo.proxy_url()},
            "objects": len(list(self.store)),
            "pods": {"total": len(pods), "ready": sum(p.ready for p in pods)},
            "routeTableVersion": self.gloo.table.version,
            "gatewayApi": {"installed": self.kgateway.installed, "gateways": self.kgateway.urls()},
        }

    def route_summary(self) -> list[dict[str, Any]]:
        """The served route tables, one row per route, for learners and tests."""
        return self.gloo.route_rows() + self.kgateway.route_rows()


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
