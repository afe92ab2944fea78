"""The control plane: one process per lab home, holding every runtime part together.

It owns the store, the pod supervisor, discovery, the translator and the gateway
proxy, and is driven through the admin API (``admin``). Every change, an applied
object or a pod becoming ready, ends in ``_rebuild``: discovery brings Upstreams up
to date, the translator builds a new route table, and the proxy swaps it in before
the change is reported done. So the very next request follows it.

Its process is ``python -m helpers.runtime.admin --home DIR`` (``coalmine up`` starts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from . import discovering, kinds
from . import kgateway as kgw
from .home import LabHome
from .kinds import BY_NAME, key, ref
from .proxying import GatewayProxy
from .routes import Endpoint, RouteTable
from .stats import UpstreamStats
from .store import Store
from .supervising import Supervisor
from .translating import Report, gloo_status, translate, validate

log = logging.getLogger("coalmine.controlplane")

BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public")
GLOO_NAMESPACE = "gloo-system"
_TRANSLATED_KINDS = ("VirtualService", "Upstream", "UpstreamGroup", "Service")
_FDS_RETRY_SECONDS = 2.0


class ControlPlane:
    """The lab's runtime: apply, delete, get, install, ready; see the module doc."""

    def __init__(self, home: LabHome) -> None:
        self.home = home
        home.pods_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(home.store_file)
        self.supervisor = Supervisor(home.pods_dir, self._configmap, self._rebuild)
        self.stats = UpstreamStats()
        self.proxy: GatewayProxy | None = None
        self.kgateway = kgw.Kgateway(self.store, self.stats)  # the Gateway API half
        self.reports: dict[tuple[str, str, str], Report] = {}
        self.table = RouteTable()
        self._version = 0
        self._functions: dict[str, tuple[str, dict[str, Any]] | None] = {}
        self._fds_tried: dict[str, float] = {}
        self._fds_tasks: set[asyncio.Task[None]] = set()
        self._fds_recheck = False
        self._session: aiohttp.ClientSession | None = None

    # ── lifecycle ────────────────────────────────────────────────────────────

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3))
        self.supervisor.set_deployments(self.store.list("Deployment"))
        if self.gloo_installed:
            await self._start_gateway(self.store.extra["gloo"].get("proxyPort"), strict=False)
        self._rebuild()
        await self.settle()

    async def settle(self) -> None:
        """After a change: start or stop the Gateway listeners' proxies."""
        await self.kgateway.sync()

    async def close(self) -> None:
        for task in list(self._fds_tasks):
            task.cancel()
        await asyncio.gather(*self._fds_tasks, return_exceptions=True)
        await self.supervisor.close()
        await self.kgateway.close()
        if self.proxy is not None:
            await self.proxy.stop()
        if self._session is not None:
            await self._session.close()

    @property
    def gloo_installed(self) -> bool:
        return "gloo" in self.store.extra

    @property
    def proxy_port(self) -> int | None:
        return self.store.extra.get("gloo", {}).get("proxyPort") if self.proxy else None

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
            except _Refused as e:
                result["error"] = str(e)
            results.append(result)
        return results

    def _apply_one(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        problems = kinds.check_object(obj)
        if problems:
            raise _Refused("; ".join(problems))
        kind = BY_NAME[str(obj["kind"])]
        obj = _with_namespace(obj, kind)
        if kind.gloo and not self.gloo_installed:
            raise _Refused(
                f'no matches for kind "{kind.name}" in version "{kind.api_version}": '
                "Gloo's CRDs are not installed; run `coalmine install gloo` first")
        if kind.gateway_api and not self.kgateway.installed:
            raise _Refused(
                f'no matches for kind "{kind.name}" in version "{kind.api_version}": '
                "the Gateway API CRDs are not installed; run `coalmine install kgateway` first")
        ns = obj["metadata"].get("namespace")
        if ns and ns not in self.namespaces():
            raise _Refused(f'namespaces "{ns}" not found: create it first (apiVersion: v1, kind: Namespace)')
        warnings: list[str] = []
        if kind.gloo:
            problems = validate(obj)
            if problems:
                raise _Refused(_gloo_refusal(obj, problems))
            candidate = [o for o in self._translation_inputs() if key(o) != key(obj)] + [dict(obj)]
            _, reports = translate(candidate, self._endpoints())
            report = reports.get(key(obj))
            if report is not None and report.errors:
                raise _Refused(_gloo_refusal(obj, report.errors))
            warnings = list(report.warnings) if report else []
        if kind.gateway_api:
            problems = kgw.admission(obj)
            if problems:
                raise _Refused(f"{ref(obj)} is invalid: {'; '.join(problems)}. The running configuration is unchanged.")
            warnings = kgw.preview(self.kgateway, list(self.store), self._endpoints(), obj)
        action, _ = self.store.put(obj)
        if action != "unchanged":
            self._changed(kind.name)
        return {"action": action, "warnings": warnings}

    def delete(self, refs: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
        """Delete objects by (kind, namespace, name); a missing one is an error."""
        results = []
        for kind_name, ns, name in refs:
            kind = BY_NAME[kind_name]
            k = (kind_name, "" if not kind.namespaced else (ns or "default"), name)
            shown = f"{kind.ref_prefix}/{name}"
            if kind_name == "Pod":
                pod = next((p for p in self.supervisor.pods() if (p.namespace, p.name) == k[1:]), None)
                if pod is None:
                    results.append({"ref": shown, "error": f'pods "{name}" not found', "reason": "NotFound"})
                    continue
                self.supervisor.delete_pod(pod)
                results.append({"ref": shown, "action": "deleted"})
                continue
            if kind_name == "Namespace" and name in BUILTIN_NAMESPACES + (GLOO_NAMESPACE, kgw.NAMESPACE):
                results.append({"ref": shown, "error": f'namespace "{name}" is part of the lab and cannot be deleted'})
                continue
            if self.store.delete(k) is None:
                resource = f"{kind.plural}.{kind.group}" if kind.group else kind.plural
                results.append({"ref": shown, "error": f'{resource} "{name}" not found', "reason": "NotFound"})
                continue
            if kind_name == "Namespace":
                for obj in self.store:
                    if key(obj)[1] == name:
                        self.store.delete(key(obj))
            results.append({"ref": shown, "action": "deleted"})
            self._changed(kind_name)
        return results

    def _changed(self, kind_name: str) -> None:
        if kind_name in ("Deployment", "Namespace"):
            self.supervisor.set_deployments(self.store.list("Deployment"))
        self._rebuild()

    # ── install ──────────────────────────────────────────────────────────────

    async def install(self, component: str, port: int | None = None) -> dict[str, Any]:
        """Install Gloo (its namespace, discovery and the gateway proxy) or kgateway
        (the Gateway API: its namespace, the GatewayClass, a proxy per listener)."""
        if component == "kgateway":
            self.kgateway.install()
            self._rebuild()
            await self.settle()
            return {"component": "kgateway", "gateways": self.kgateway.urls()}
        if component != "gloo":
            raise _Refused(f'unknown component "{component}": the local runtime installs "gloo" or "kgateway"')
        if self.proxy is None:
            await self._start_gateway(port, strict=port is not None)
        self._rebuild()
        return {"component": "gloo", "proxyPort": self.proxy_port}

    async def _start_gateway(self, port: int | None, strict: bool) -> None:
        proxy = GatewayProxy(self.table, self.stats)
        try:
            bound = await proxy.start("127.0.0.1", port or 0)
        except OSError as e:
            if strict:
                raise _Refused(f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}; "
                               "free the port or pick another with --port") from e
            bound = await proxy.start("127.0.0.1", 0)
        self.proxy = proxy
        self.store.extra["gloo"] = {"proxyPort": bound}
        self.store.save()

    # ── translation ──────────────────────────────────────────────────────────

    def _rebuild(self) -> None:
        """Bring discovery up to date, translate, and swap the new table in."""
        if self.gloo_installed:
            self._discover()
        self._version += 1
        self.table, self.reports = translate(self._translation_inputs(), self._endpoints(), self._version)
        if self.proxy is not None:
            self.proxy.swap(self.table)
        self.kgateway.rebuild(self.store, self._endpoints(), self._version)

    def _translation_inputs(self) -> list[dict[str, Any]]:
        return [o for o in self.store if o.get("kind") in _TRANSLATED_KINDS]

    def _endpoints(self) -> dict[tuple[str, str, int], tuple[Endpoint, ...]]:
        found = {}
        for svc in self.store.list("Service"):
            ns, name = key(svc)[1], svc["metadata"]["name"]
            for port, eps in self.supervisor.endpoints(svc).items():
                found[(ns, name, port)] = eps
        return found

    def _discover(self) -> None:
        wanted: dict[str, dict[str, Any]] = {}
        endpoints = self._endpoints()
        for svc in self.store.list("Service"):
            for us in discovering.upstreams_for(svc):
                name = us["metadata"]["name"]
                found = self._functions.get(name)
                if found:
                    us = discovering.with_functions(us, discovering.swagger_url(us, found[0]), found[1])
                wanted[name] = us
                kube = us["spec"]["kube"]
                eps = endpoints.get((kube["serviceNamespace"], kube["serviceName"], kube["servicePort"]))
                if eps and name not in self._functions:
                    self._start_fds(name, eps[0])
        for us in self.store.list("Upstream", GLOO_NAMESPACE):
            name = us["metadata"]["name"]
            if discovering.is_discovered(us) and name not in wanted:
                self.store.delete(key(us))
                self._functions.pop(name, None)
                self._fds_tried.pop(name, None)
        for name, us in wanted.items():
            existing = self.store.get(("Upstream", GLOO_NAMESPACE, name))
            if existing is None or discovering.is_discovered(existing):
                self.store.put(us)

    def _start_fds(self, name: str, endpoint: Endpoint) -> None:
        last = self._fds_tried.get(name)
        if last is not None and time.monotonic() - last < _FDS_RETRY_SECONDS:
            # Tried moments ago: look again once the pause is over, so discovery
            # never waits for an unrelated change to come back to it.
            if not self._fds_recheck:
                self._fds_recheck = True
                asyncio.get_running_loop().call_later(_FDS_RETRY_SECONDS, self._recheck_fds)
            return
        if any(t.get_name() == name for t in self._fds_tasks):
            return
        self._fds_tried[name] = time.monotonic()
        task = asyncio.get_running_loop().create_task(self._fds(name, endpoint), name=name)
        self._fds_tasks.add(task)
        task.add_done_callback(self._fds_tasks.discard)

    def _recheck_fds(self) -> None:
        self._fds_recheck = False
        self._rebuild()

    async def _fds(self, name: str, endpoint: Endpoint) -> None:
        assert self._session is not None
        found = await discovering.fetch_functions(self._session, endpoint.host, endpoint.port)
        # None is remembered too: a service without swagger is a plain upstream.
        self._functions[name] = found
        self._rebuild()

    def _configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.get(("ConfigMap", namespace, name))

    def namespaces(self) -> set[str]:
        found = set(BUILTIN_NAMESPACES) | {o["metadata"]["name"] for o in self.store.list("Namespace")}
        if self.gloo_installed:
            found.add(GLOO_NAMESPACE)
        if self.kgateway.installed:
            found.add(kgw.NAMESPACE)
        return found

    # ── reading ──────────────────────────────────────────────────────────────

    def get(self, kind_name: str, namespace: str | None, name: str | None) -> list[dict[str, Any]]:
        """Objects of a kind with their live status; ``namespace`` None means all."""
        kind = BY_NAME[kind_name]
        if kind_name == "Pod":
            objects = [p.to_object() for p in self.supervisor.pods()]
        elif kind_name == "Namespace":
            objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n},
                        "status": {"phase": "Active"}} for n in sorted(self.namespaces())]
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
        if obj["kind"] == "Deployment":
            obj["status"] = self.supervisor.deployment_status(k[1], k[2])
        elif obj["kind"] == "Service":
            eps = self.supervisor.endpoints(obj)
            obj["status"] = {"loadBalancer": {}, "localEndpoints": {
                str(p): [f"{e.host}:{e.port}" for e in es] for p, es in eps.items()}}
        elif BY_NAME[obj["kind"]].gateway_api:
            status = self.kgateway.status_of(k)
            if status is not None:
                obj["status"] = status
        elif k in self.reports:
            obj["status"] = gloo_status(self.reports[k], "gloo" if obj["kind"] == "Upstream" else "gateway")
        return obj

    def ready(self) -> dict[str, Any]:
        """What ``coalmine wait`` waits for: deployments ready, gateway serving,
        function discovery done for every service with ready endpoints."""
        deployments = []
        for dep in self.store.list("Deployment"):
            k = key(dep)
            st = self.supervisor.deployment_status(k[1], k[2])
            want = int(dep["spec"].get("replicas", 1))
            deployments.append({"name": f"{k[1]}/{k[2]}", "ready": st.get("availableReplicas", 0),
                                "desired": want, "done": st.get("availableReplicas", 0) >= want
                                and st.get("replicas", 0) == want})
        pending = []
        if self.gloo_installed:
            endpoints = self._endpoints()
            for svc in self.store.list("Service"):
                for us in discovering.upstreams_for(svc):
                    kube = us["spec"]["kube"]
                    if endpoints.get((kube["serviceNamespace"], kube["serviceName"], kube["servicePort"])) \
                            and us["metadata"]["name"] not in self._functions:
                        pending.append(us["metadata"]["name"])
        gateway = {"installed": self.gloo_installed, "serving": self.proxy is not None, "port": self.proxy_port}
        listeners = self.kgateway.pending()
        done = all(d["done"] for d in deployments) and not pending and (self.proxy is not None or not self.gloo_installed)
        return {"ready": done and not listeners, "deployments": deployments, "discoveryPending": pending,
                "gateway": gateway, "listenersPending": listeners}

    def status(self) -> dict[str, Any]:
        pods = self.supervisor.pods()
        return {
            "home": str(self.home.root),
            "gateway": {"installed": self.gloo_installed, "url": self.proxy_url()},
            "objects": len(list(self.store)),
            "pods": {"total": len(pods), "ready": sum(p.ready for p in pods)},
            "routeTableVersion": self.table.version,
            "gatewayApi": {"installed": self.kgateway.installed, "gateways": self.kgateway.urls()},
        }

    def proxy_url(self) -> str | None:
        return f"http://127.0.0.1:{self.proxy_port}" if self.proxy_port else None

    def route_summary(self) -> list[dict[str, Any]]:
        """The served route table, one row per route, for learners and tests."""
        rows = []
        for vh in self.table.virtual_hosts:
            for i, route in enumerate(vh.routes):
                rows.append({"virtualHost": vh.name, "index": i, "source": route.source,
                             "action": type(route.action).__name__})
        return rows + self.kgateway.route_rows()


class _Refused(Exception):
    """An object the runtime will not take; the message says why."""


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


def _gloo_refusal(obj: Mapping[str, Any], problems: list[str]) -> str:
    joined = "; ".join(problems)
    return (f"admission refused by Gloo validation (strict): {ref(obj)} would be Rejected: {joined}. "
            "The running configuration is unchanged.")
