"""The canary controller: Flagger's scheduler loop, inside the local control plane.

After ``coalmine install flagger`` it runs one asyncio task per Canary. Every
``analysis.interval`` (and at once when the Canary is applied) the task calls
``analysis.tick`` (``advance``, with the tick's events), the pure state machine, with
a ``CanaryWorld``: the I/O one step needs; then it posts the events to the Canary's
``event`` webhooks. The world reads the Canary's target from the store and the gateway's stats,
calls webhooks, and writes the objects Flagger makes (``objects``, and the provider's
route from ``routers``: a RouteTable for gloo, an HTTPRoute for gatewayapi:v1) through the
control plane's own ``apply``, so validation, translation and the proxy's table swap
happen exactly as for a user's apply. It never touches the proxy: data flows
controller -> store -> translator -> route table -> proxy.

The Canary's status is kept with the store (``extra``) and shown on the Canary as
Flagger writes it; each transition is an Event (``events``). Deleting a Canary
deletes what it made (its owner references), as Kubernetes' garbage collector
does with Flagger's objects; the target stays as Flagger leaves it (scaled to zero).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp

from helpers.durations import parse_duration
from helpers.errors import ApplyRefused
from helpers.kinds import key
from helpers.runtime.flagger import metrics, objects, routers, webhooks
from helpers.runtime.flagger.analysis import tick
from helpers.runtime.flagger.events import EventLog
from helpers.runtime.flagger.status import CanaryStatus
from helpers.runtime.flagger.templatechecks import TemplateChecks
from helpers.runtime.flagger.world import Tick
from helpers.runtime.servicedns import Table
from helpers.runtime.store import Store

log = logging.getLogger("coalmine.flagger")
DEFAULT_INTERVAL = "1m"  # Flagger's analysis.interval when none is given
Key = tuple[str, str]  # (namespace, name) of a Canary
Step = Callable[[Mapping[str, Any], CanaryStatus, Any, datetime], Awaitable[Tick]]


class ControlPlaneApi(Protocol):
    """What the controller asks of the control plane: its own apply and delete, and
    how a Deployment's pods are doing."""

    def apply(self, objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]: ...

    def delete(self, refs: list[tuple[str, str, str]]) -> list[dict[str, Any]]: ...

    def deployment_status(self, namespace: str, name: str) -> dict[str, int]: ...


class CanaryController:
    """Flagger for one lab: a task per Canary, statuses and events."""

    def __init__(
        self,
        store: Store,
        api: ControlPlaneApi,
        stats: metrics.Windows,
        table: Callable[[], Table],
        events: EventLog | None = None,
        step: Step = tick,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.api, self.stats, self.table = store, api, stats, table
        self.events = events or EventLog()
        self.step, self.clock = step, clock
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self._wake: dict[Key, asyncio.Event] = {}
        self._uids: dict[Key, str] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._closing = False

    @property
    def installed(self) -> bool:
        return "flagger" in self.store.extra

    def install(self) -> None:
        """Record the install (it survives a restart) and start following Canaries."""
        if not self.installed:
            self.store.extra["flagger"] = {"canaries": {}}
            self.store.save()
        self.sync()

    async def start(self) -> None:
        """After a restart: follow the stored Canaries again, if installed."""
        if self.installed:
            self.sync()

    async def close(self) -> None:
        self._closing = True
        tasks = list(self._tasks.values()) + list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()

    # ── following the store ──────────────────────────────────────────────────

    def sync(self, applied: Key | None = None) -> None:
        """Make the tasks follow the Canaries in the store: start one for a new Canary,
        tick at once for the one just ``applied``, and clean up after a deleted one."""
        if not self.installed or self._closing:
            return
        present = {(k[1], k[2]): c for c in self.store.list("Canary") for k in [key(c)]}
        for k in [k for k in self._tasks if k not in present or present[k]["metadata"].get("uid") != self._uids[k]]:
            self._forget(k)
        for k, canary in present.items():
            if k not in self._tasks:
                self._uids[k] = str(canary["metadata"].get("uid", ""))
                self._wake[k] = asyncio.Event()
                self._tasks[k] = asyncio.get_running_loop().create_task(self._run(k), name=f"canary {k[0]}/{k[1]}")
            elif k == applied:
                self._wake[k].set()

    def _forget(self, k: Key) -> None:
        """A Canary is gone: stop its task, delete what it owned, drop its status."""
        self._tasks.pop(k).cancel()
        self._wake.pop(k, None)
        owner = {"metadata": {"name": k[1], "namespace": k[0], "uid": self._uids.pop(k, "")}}
        owned = [key(o) for o in self.store if objects.owned_by(o, owner)]
        if owned:
            self.api.delete(owned)
        self.store.extra.get("flagger", {}).get("canaries", {}).pop(f"{k[0]}/{k[1]}", None)
        self.store.save()

    def status_of(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Flagger-shaped status of a Canary (None before its first step)."""
        found = self.store.extra.get("flagger", {}).get("canaries", {}).get(f"{namespace}/{name}")
        return dict(found) if found else None

    # ── the loop ─────────────────────────────────────────────────────────────

    async def _run(self, k: Key) -> None:
        while True:
            interval = await self.step_once(k)
            wake = self._wake.get(k)
            if wake is None:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), interval)
            wake.clear()

    async def step_once(self, k: Key) -> float:
        """One step of a Canary; returns the seconds until the next."""
        canary = self.store.get(("Canary", k[0], k[1]))
        if canary is None:
            return 1.0
        spec = canary.get("spec") or {}
        try:
            interval = parse_duration(str((spec.get("analysis") or {}).get("interval") or DEFAULT_INTERVAL))
        except ValueError:
            interval = 60.0
        before = CanaryStatus.from_dict(self.status_of(*k))
        canary = {**canary, "status": before.to_dict()}
        world = CanaryWorld(self, canary)
        try:
            done = await self.step(canary, before.copy(), world, self.clock())
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug in a step must not stop the Canary's loop
            log.exception("canary %s/%s: step failed", *k)
            world.event(f"internal error in the canary controller ({type(e).__name__}: {e})", warning=True)
            return interval
        after = done.status.to_dict()
        if after != before.to_dict() and self.store.get(("Canary", k[0], k[1])) is not None:
            self.store.extra.setdefault("flagger", {}).setdefault("canaries", {})[f"{k[0]}/{k[1]}"] = after
            self.store.save()
        for event in done.events:
            world.post_event(event.message, event.warning, event.phase)
        return max(interval, 0.05)

    # ── I/O the world shares ─────────────────────────────────────────────────

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def background(self, work: Awaitable[Any]) -> None:
        """Run ``work`` without waiting for it (event webhooks), cancelled on close."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def write(self, objs: list[dict[str, Any]]) -> None:
        """Apply through the control plane; ``ApplyRefused`` with its reasons if refused."""
        errors = [f"{r['ref']}: {r['error']}" for r in self.api.apply(objs) if "error" in r]
        if errors:
            raise ApplyRefused("; ".join(errors))


def _ready(status: Mapping[str, int], want: int) -> str | None:
    """Why a Deployment is not rolled out, in Flagger's words; None when it is."""
    replicas, updated = status.get("replicas", 0), status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < want:
        return f"waiting for rollout to finish: {updated} out of {want} new replicas have been updated"
    if replicas > updated:
        return f"waiting for rollout to finish: {replicas - updated} old replicas are pending termination"
    if available < updated:
        return (
            f"waiting for rollout to finish: {available} of {updated} (readyThreshold 100%) "
            "updated replicas are available"
        )
    return None


class CanaryWorld:
    """What one step of one Canary reads and changes (``analysis.World``)."""

    def __init__(self, controller: CanaryController, canary: dict[str, Any]) -> None:
        self.c, self.canary = controller, canary
        self.names = objects.Names.of(canary)
        self.router = routers.router_for(canary)  # the provider's: RouteTable or HTTPRoute

    # reading

    def _get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.c.store.get((kind, self.names.namespace, name))

    def _deployment(self, name: str) -> dict[str, Any] | None:
        return self._get("Deployment", name)

    def _target(self) -> dict[str, Any]:
        target = self._deployment(self.names.target)
        if target is None:
            n = self.names
            raise LookupError(
                f'deployment {n.target}.{n.namespace} get query error: deployments.apps "{n.target}" not found'
            )
        return target

    def _configs(self, target: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        cms = {o["metadata"]["name"]: o for o in self.c.store.list("ConfigMap", self.names.namespace)}
        return objects.tracked((target.get("spec") or {}).get("template") or {}, cms)

    async def target_revision(self) -> str | None:
        target = self._deployment(self.names.target)
        if target is None:
            return None
        return objects.revision((target.get("spec") or {}).get("template") or {}, self._configs(target))

    def _readiness(self, name: str) -> str | None:
        dep = self._deployment(name)
        n = self.names
        if dep is None:
            return f'deployment {name}.{n.namespace} get query error: deployments.apps "{name}" not found'
        want = int((dep.get("spec") or {}).get("replicas", 1))
        return _ready(self.c.api.deployment_status(n.namespace, name), want)

    async def target_ready(self) -> tuple[bool, str]:
        why = self._readiness(self.names.target)
        return why is None, why or ""

    async def primary_ready(self) -> tuple[bool, str]:
        n = self.names
        why = self._readiness(n.primary_deployment)
        if why is not None:
            return False, why
        primary = self._deployment(n.primary_deployment) or {}
        if (primary.get("spec") or {}).get("replicas") == 0:
            name = self.canary["metadata"]["name"]
            return False, f"halt {name}.{n.namespace} advancement: primary deployment is scaled to zero"
        return True, ""

    # writing

    async def initialize(self) -> None:
        n, target = self.names, self._target()
        configs = self._configs(target)
        writes: list[dict[str, Any]] = []
        if self._deployment(n.primary_deployment) is None:
            # The primary's ConfigMaps are copied with it, then only when it is promoted.
            writes += objects.primary_configmaps(self.canary, configs)
            writes.append(objects.primary_deployment(self.canary, target, configs))
        existing = {s: self.c.store.get(("Service", n.namespace, s)) for s in (n.canary, n.primary, n.apex)}
        writes += objects.services(self.canary, target, existing)
        writes += self.router.refresh(self.canary, target, self._get)
        self.c.write(writes)

    async def set_weights(self, primary: int, canary: int) -> None:
        if primary == 0 and canary == 0:
            raise ValueError(f"RoutingRule {self.names.apex}.{self.names.namespace} update failed: no valid weights")
        self.c.write([self.router.route(self.canary, primary, canary, self._get)])

    async def scale_target(self, replicas: int) -> None:
        target = dict(self._target())
        if replicas > 0:
            # Flagger's ScaleFromZero: the target's own replicas, else the primary's, else 1.
            own = (target.get("spec") or {}).get("replicas")
            primary = (self._deployment(self.names.primary_deployment) or {}).get("spec") or {}
            replicas = own if isinstance(own, int) and own > 0 else int(primary.get("replicas") or 1)
        target["spec"] = {**(target.get("spec") or {}), "replicas": replicas}
        self.c.write([target])

    async def promote(self) -> None:
        n, target = self.names, self._target()
        configs = self._configs(target)
        primary = objects.primary_deployment(self.canary, target, configs)
        replicas = (target.get("spec") or {}).get("replicas")
        if not (isinstance(replicas, int) and replicas > 0):
            old = self._deployment(n.primary_deployment) or {}
            primary["spec"]["replicas"] = (old.get("spec") or {}).get("replicas", 1)
        self.c.write([*objects.primary_configmaps(self.canary, configs), primary])

    # asking others

    def _hooks(self, hook_type: str) -> list[dict[str, Any]]:
        hooks = ((self.canary.get("spec") or {}).get("analysis") or {}).get("webhooks") or []
        return [h for h in hooks if (h.get("type") or "rollout") == hook_type]

    async def run_webhooks(self, hook_type: str, phase: str) -> list[str]:
        failures = []
        for hook in self._hooks(hook_type):
            timeout = str(hook.get("timeout") or "")
            seconds = parse_duration(timeout if len(timeout) >= 2 else webhooks.DEFAULT_TIMEOUT)
            body = webhooks.payload(self.canary, phase, hook)
            failed = await webhooks.call(
                self.c.session(), str(hook.get("url")), body, seconds, self.c.table(), int(hook.get("retries") or 0)
            )
            if failed is not None:
                failures.append(f"{hook.get('name')} failed {failed}")
        return failures

    async def check_metrics(self) -> list[str]:
        templates = TemplateChecks(self.c.store.get, self.c.session(), self.c.table())
        return await metrics.check_all(self.canary, self.c.stats, parse_duration, templates)

    def event(self, message: str, warning: bool = False) -> None:
        log.info("canary %s/%s: %s", self.names.namespace, self.canary["metadata"]["name"], message)
        self.c.events.record(self.canary, message, warning)

    def post_event(self, message: str, warning: bool, phase: str) -> None:
        """Send one event to the Canary's ``event`` webhooks, not waiting for them."""
        canary = {**self.canary, "status": {**(self.canary.get("status") or {}), "phase": phase}}
        for hook in self._hooks("event"):
            body = webhooks.event_payload(canary, hook, message, "Warning" if warning else "Normal")
            timeout = str(hook.get("timeout") or "")
            seconds = parse_duration(timeout if len(timeout) >= 2 else webhooks.DEFAULT_TIMEOUT)
            self.c.background(webhooks.call(self.c.session(), str(hook.get("url")), body, seconds, self.c.table()))
