"""Gloo Edge in a box: the Gloo half of the control plane.

``coalmine install gloo`` turns it on: the namespace ``gloo-system`` appears, the
gateway proxy listens on 127.0.0.1, and discovery writes one Upstream per Service
port (with the REST functions read from ``/swagger.json``). On every rebuild the
translator (``translating``) turns VirtualServices, Upstreams and UpstreamGroups
into one route table, which the proxy swaps in, and keeps a report per resource for
its Gloo-shaped status. ``admit`` is strict validation at apply time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp

from helpers.errors import ApplyRefused, PortInUse
from helpers.kinds import GLOO_NAMESPACE, key, ref
from helpers.runtime.gloo import discovering
from helpers.runtime.gloo.status import Report, gloo_status
from helpers.runtime.gloo.translating import translate, validate
from helpers.runtime.proxy.dataplane import DataPlane, on
from helpers.runtime.proxy.proxying import GatewayProxy
from helpers.runtime.proxy.stats import UpstreamStats
from helpers.runtime.routes import Endpoint, RouteTable
from helpers.runtime.store import Store

Endpoints = Mapping[tuple[str, str, int], Sequence[Endpoint]]
KINDS = ("VirtualService", "Upstream", "UpstreamGroup", "Service")
_FDS_RETRY_SECONDS = 2.0


class Gloo:
    """Gloo's discovery, translation and gateway proxy for one lab.

    ``endpoints`` gives the ready endpoints of every Service port; ``changed`` asks
    the control plane for a rebuild (discovery found functions, a retry is due).
    """

    def __init__(
        self,
        store: Store,
        stats: UpstreamStats,
        endpoints: Callable[[], Endpoints],
        changed: Callable[[], None],
        dataplane: DataPlane | None = None,
    ) -> None:
        self.store, self.stats, self.dataplane = store, stats, dataplane
        self._endpoints, self._changed = endpoints, changed
        self.proxy: GatewayProxy | None = None
        self.table = RouteTable()
        self.reports: dict[tuple[str, str, str], Report] = {}
        self._functions: dict[str, tuple[str, dict[str, Any]] | None] = {}
        self._fds_tried: dict[str, float] = {}
        self._fds_tasks: set[asyncio.Task[None]] = set()
        self._fds_recheck = False
        self._session: aiohttp.ClientSession | None = None
        self._preview: tuple[int, Endpoints, RouteTable, dict[tuple[str, str, str], Report]] | None = None

    @property
    def installed(self) -> bool:
        return "gloo" in self.store.extra

    @property
    def proxy_port(self) -> int | None:
        return self.store.extra.get("gloo", {}).get("proxyPort") if self.proxy else None

    def proxy_url(self) -> str | None:
        return f"http://127.0.0.1:{self.proxy_port}" if self.proxy_port else None

    # ── lifecycle ────────────────────────────────────────────────────────────

    async def start(self) -> None:
        """After a restart: serve again where the proxy listened before, if installed."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3))
        if self.installed:
            await self._start_proxy(self.store.extra["gloo"].get("proxyPort"), strict=False)

    async def install(self, port: int | None) -> None:
        """Record the install and start the gateway proxy (on ``port`` if given)."""
        if self.proxy is None:
            await self._start_proxy(port, strict=port is not None)

    async def _start_proxy(self, port: int | None, strict: bool) -> None:
        proxy = GatewayProxy(self.table, self.stats)
        try:
            bound = await on(self.dataplane, proxy.start("127.0.0.1", port or 0))
        except OSError as e:
            if strict:
                raise PortInUse(
                    f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}; free the port or pick another with --port"
                ) from e
            bound = await on(self.dataplane, proxy.start("127.0.0.1", 0))
        self.proxy = proxy
        self.store.extra["gloo"] = {"proxyPort": bound}
        self.store.save()

    async def close(self) -> None:
        for task in list(self._fds_tasks):
            task.cancel()
        await asyncio.gather(*self._fds_tasks, return_exceptions=True)
        if self.proxy is not None:
            await on(self.dataplane, self.proxy.stop())
        if self._session is not None:
            await self._session.close()

    # ── admission and translation ────────────────────────────────────────────

    def admit(self, obj: Mapping[str, Any]) -> list[str]:
        """Strict validation of a Gloo object about to be applied: raise ``ApplyRefused``
        if Gloo would reject it, else return its warnings."""
        problems = validate(obj)
        if problems:
            raise ApplyRefused(_refusal(obj, problems))
        candidate = [o for o in self._inputs() if key(o) != key(obj)] + [dict(obj)]
        endpoints = self._endpoints()
        table, reports = translate(candidate, endpoints)
        report = reports.get(key(obj))
        if report is not None and report.errors:
            raise ApplyRefused(_refusal(obj, report.errors))
        # What the store will hold once ``obj`` is put: the rebuild that follows at once
        # serves this translation instead of making it again.
        self._preview = (self.store.version + 1, endpoints, table, reports)
        return list(report.warnings) if report else []

    def forget_preview(self) -> None:
        """The admitted object was not stored (unchanged): its preview is not the store."""
        self._preview = None

    def rebuild(self, version: int) -> None:
        """Bring discovery up to date, translate, and swap the new table in."""
        if self.installed:
            self._discover()
        preview, self._preview = self._preview, None
        endpoints = self._endpoints()
        if preview is not None and preview[:2] == (self.store.version, endpoints):  # nothing changed since
            self.table, self.reports = dataclasses.replace(preview[2], version=version), preview[3]
        else:
            self.table, self.reports = translate(self._inputs(), endpoints, version)
        if self.proxy is not None:
            self.proxy.swap(self.table)

    def _inputs(self) -> list[dict[str, Any]]:
        return [o for o in self.store if o.get("kind") in KINDS]

    def status_of(self, k: tuple[str, str, str]) -> dict[str, Any] | None:
        """The Gloo-shaped ``status`` of a VirtualService, Upstream or UpstreamGroup."""
        report = self.reports.get(k)
        if report is None:
            return None
        return gloo_status(report, "gloo" if k[0] == "Upstream" else "gateway")

    def route_rows(self) -> list[dict[str, Any]]:
        """The served route table, one row per route."""
        return [
            {"virtualHost": vh.name, "index": i, "source": route.source, "action": type(route.action).__name__}
            for vh in self.table.virtual_hosts
            for i, route in enumerate(vh.routes)
        ]

    # ── discovery ────────────────────────────────────────────────────────────

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

    def discovery_pending(self) -> list[str]:
        """Upstreams with ready endpoints whose functions discovery has not read yet."""
        if not self.installed:
            return []
        endpoints, pending = self._endpoints(), []
        for svc in self.store.list("Service"):
            for us in discovering.upstreams_for(svc):
                kube = us["spec"]["kube"]
                if (
                    endpoints.get((kube["serviceNamespace"], kube["serviceName"], kube["servicePort"]))
                    and us["metadata"]["name"] not in self._functions
                ):
                    pending.append(us["metadata"]["name"])
        return pending

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
        self._changed()

    async def _fds(self, name: str, endpoint: Endpoint) -> None:
        assert self._session is not None
        try:
            found = await discovering.fetch_functions(self._session, endpoint.host, endpoint.port)
        except ConnectionError:
            # No answer at all (the pod is stopping, or not quite up): not "no functions";
            # look again once the pause is over, while discovery stays pending.
            asyncio.get_running_loop().call_later(_FDS_RETRY_SECONDS, self._changed)
            return
        # None is remembered too: a service without swagger is a plain upstream.
        self._functions[name] = found
        self._changed()


def _refusal(obj: Mapping[str, Any], problems: list[str]) -> str:
    joined = "; ".join(problems)
    return (
        f"admission refused by Gloo validation (strict): {ref(obj)} would be Rejected: {joined}. "
        "The running configuration is unchanged."
    )
