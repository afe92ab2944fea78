"""Gloo Edge in a box: the Gloo half of the control plane.

``coalmine install gloo`` turns it on: the namespace ``gloo-system`` appears, the
gateway's port on 127.0.0.1 is chosen (it listens once a VirtualService exists, as
Gloo's does: ``listening``), and discovery writes one Upstream per Service port
(with the REST functions read from ``/swagger.json``). On every rebuild the
translator (``translating``) turns VirtualServices, RouteTables, Upstreams and
UpstreamGroups into one route table, which the proxy swaps in, and keeps a report
per resource for its Gloo-shaped status. ``admit`` is strict validation at apply time.

The gateway proxy has its own stats (``stats``), as the ``gateway-proxy`` Envoy has;
``cluster_names`` gives Envoy's name of each of its clusters for their Prometheus
exposition (``envoy_cluster_names``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import aiohttp

from helpers.errors import ApplyRefused, PortInUse
from helpers.kinds import GLOO_NAMESPACE, key, ref
from helpers.runtime.gloo import discovering
from helpers.runtime.gloo.listening import Listener, reserve
from helpers.runtime.gloo.status import Report, gloo_status
from helpers.runtime.gloo.translating import translate, validate
from helpers.runtime.proxy.dataplane import DataPlane
from helpers.runtime.proxy.proxying import GatewayProxy
from helpers.runtime.proxy.stats import UpstreamStats
from helpers.runtime.routes import Endpoint, RouteTable
from helpers.runtime.store import Store

Endpoints = Mapping[tuple[str, str, int], Sequence[Endpoint]]
KINDS = ("VirtualService", "RouteTable", "Upstream", "UpstreamGroup", "Service")
_FDS_RETRY_SECONDS = 2.0
# Kinds Gloo 1.22.1's validating webhook is not registered for (its Helm chart lists
# virtualservices, routetables, gateways and upstreams, not upstreamgroups): only the
# CRD's schema checks them, so a group that breaks a route is stored all the same.
_WEBHOOK_SKIPS = ("UpstreamGroup",)


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
        # Only grows: a cluster that leaves the table keeps its name in the stats.
        self.cluster_names: dict[str, str] = {}
        self.listener: Listener | None = None
        self.table = RouteTable()
        self.reports: dict[tuple[str, str, str], Report] = {}
        self._functions: dict[str, tuple[str, dict[str, Any]] | None] = {}
        self._fds_tried: dict[str, float] = {}
        self._fds_tasks: set[asyncio.Task[None]] = set()
        self._settling: set[asyncio.Task[None]] = set()
        self._fds_recheck = False
        self._session: aiohttp.ClientSession | None = None
        self._preview: tuple[int, Endpoints, RouteTable, dict[tuple[str, str, str], Report]] | None = None

    @property
    def installed(self) -> bool:
        return "gloo" in self.store.extra

    @property
    def proxy(self) -> GatewayProxy | None:
        """The gateway proxy once installed, listening or not (see ``listening``)."""
        return self.listener.proxy if self.listener is not None else None

    @property
    def listening(self) -> bool:
        """Whether the gateway port accepts connections: only while a VirtualService exists."""
        return self.listener is not None and self.listener.open

    @property
    def proxy_port(self) -> int | None:
        return self.listener.port if self.listener is not None else None

    def proxy_url(self) -> str | None:
        return f"http://127.0.0.1:{self.proxy_port}" if self.proxy_port else None

    # ── lifecycle ────────────────────────────────────────────────────────────

    async def start(self) -> None:
        """After a restart: take the gateway's port again, if installed."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3))
        if self.installed:
            self._take_port(self.store.extra["gloo"].get("proxyPort"), strict=False)

    async def install(self, port: int | None) -> None:
        """Record the install and reserve the gateway's port (``port`` if given)."""
        if self.listener is None:
            self._take_port(port, strict=port is not None)

    def _take_port(self, port: int | None, strict: bool) -> None:
        try:
            reservation = reserve(port or 0)
        except OSError as e:
            if strict:
                raise PortInUse(
                    f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}; free the port or pick another with --port"
                ) from e
            reservation = reserve(0)
        self.listener = Listener(reservation, self.stats, self.dataplane)
        self.listener.swap(self.table)
        self._record_port()

    def _record_port(self) -> None:
        if self.listener is not None and self.store.extra.get("gloo") != {"proxyPort": self.listener.port}:
            self.store.extra["gloo"] = {"proxyPort": self.listener.port}
            self.store.save()

    async def settle(self) -> None:
        """Open the listener if a VirtualService exists, close it if none does."""
        if self.listener is not None:
            await self.listener.set_open(bool(self.store.list("VirtualService")))
            self._record_port()

    async def close(self) -> None:
        for task in [*self._fds_tasks, *self._settling]:
            task.cancel()
        await asyncio.gather(*self._fds_tasks, *self._settling, return_exceptions=True)
        if self.listener is not None:
            await self.listener.close()
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
        warnings = list(report.warnings) if report else []
        # Gloo's webhook refuses a change that leaves ANY resource in error, e.g. a
        # RouteTable closing a delegation cycle; errors that were there before are
        # not this change's doing.
        caused = {
            k: [e for e in other.errors if e not in (self.reports.get(k) or Report()).errors]
            for k, other in sorted(reports.items())
        }
        if obj.get("kind") in _WEBHOOK_SKIPS:
            # Nothing refuses it on a cluster: say what its status and the others' will.
            if report is not None:
                warnings = [f"{_shown(key(obj))} is Rejected: {e}" for e in report.errors] + warnings
            for k, errors in caused.items():
                warnings += [f"{_shown(k)} is now Rejected: {e}" for e in errors if k != key(obj)]
        else:
            if report is not None and report.errors:
                raise ApplyRefused(_refusal(obj, report.errors))
            for k, errors in caused.items():
                if errors:
                    raise ApplyRefused(_refusal(obj, errors, _shown(k)))
        # What the store will hold once ``obj`` is put: the rebuild that follows at once
        # serves this translation instead of making it again.
        self._preview = (self.store.version + 1, endpoints, table, reports)
        return warnings

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
        self.cluster_names.update(
            envoy_cluster_names(self.table.clusters, self.store.list("Upstream"), self.store.list("Service"))
        )
        if self.listener is not None:
            self.listener.swap(self.table)
            if self.listener.open != bool(self.store.list("VirtualService")):
                self._settle_soon()

    def _settle_soon(self) -> None:
        # The control plane awaits ``settle`` after each change; this makes the
        # listener follow the store even when a rebuild comes from elsewhere.
        try:
            task = asyncio.get_running_loop().create_task(self.settle())
        except RuntimeError:  # no loop: a translator driven by a test, nothing listens
            return
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    def _inputs(self) -> list[dict[str, Any]]:
        return [o for o in self.store if o.get("kind") in KINDS]

    def status_of(self, k: tuple[str, str, str]) -> dict[str, Any] | None:
        """The Gloo-shaped ``status`` of a VirtualService, Upstream or UpstreamGroup."""
        report = self.reports.get(k)
        if report is None:
            return None
        # Gloo's own syncer reports Upstreams and UpstreamGroups; its gateway, the rest.
        return gloo_status(report, "gloo" if k[0] in ("Upstream", "UpstreamGroup") else "gateway")

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


def envoy_cluster_names(
    clusters: Iterable[str], upstreams: Iterable[Mapping[str, Any]], services: Iterable[Mapping[str, Any]]
) -> dict[str, str]:
    """Envoy's name of each of the translator's ``clusters``, as Gloo names them
    (``UpstreamToClusterName``): ``<upstream>_<namespace>``; a Service used as a
    ``kube`` destination is the in-memory upstream ``kube-svc:<ns>-<service>-<port>`` in
    the Service's namespace, and Envoy's stats make its ``:`` a ``_``."""
    owners: dict[str, str] = {}  # the translator gives the plain name to the first in (namespace, name) order
    for us in sorted(upstreams, key=lambda u: (u["metadata"].get("namespace", ""), u["metadata"]["name"])):
        owners.setdefault(us["metadata"]["name"], us["metadata"].get("namespace", ""))
    kube = {
        f"kube-svc:{svc['metadata'].get('namespace', '')}-{svc['metadata']['name']}-{port.get('port')}": (
            svc["metadata"].get("namespace", "")
        )
        for svc in services
        for port in (svc.get("spec") or {}).get("ports") or []
    }
    found: dict[str, str] = {}
    for cluster in clusters:
        if cluster in owners:
            found[cluster] = f"{cluster}_{owners[cluster]}"
        elif cluster in kube:
            found[cluster] = f"{cluster.replace(':', '_')}_{kube[cluster]}"
        elif "." in cluster:  # "<namespace>.<name>": a second upstream of the same name
            ns, name = cluster.split(".", 1)
            found[cluster] = f"{name}_{ns}"
    return found


def _shown(k: tuple[str, str, str]) -> str:
    return ref({"kind": k[0], "metadata": {"name": k[2]}})


def _refusal(obj: Mapping[str, Any], problems: list[str], other: str | None = None) -> str:
    joined = "; ".join(problems)
    what = f"{ref(obj)} would make {other} Rejected" if other else f"{ref(obj)} would be Rejected"
    return f"admission refused by Gloo validation (strict): {what}: {joined}. The running configuration is unchanged."
