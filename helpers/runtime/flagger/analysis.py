"""One tick of Flagger's canary scheduler: a pure state machine with a clock.

``advance(canary, status, world, now)`` is one run of Flagger's ``advanceCanary``
(pkg/controller/scheduler.go, 1.44): from the Canary and its last status it decides
the next step, asks the ``World`` to do it (scale, route, promote, call webhooks,
read metrics) and returns the new status. No socket, no wall clock: the shell
(``controller``) implements the World; tests use a fake one and a fake clock.

Initializing -> Initialized; a new target revision -> Progressing (or Waiting
behind a confirm-rollout gate); each tick the hooks and metric checks run, a
failure counts one failed check, a pass moves the canary one step (``weights``);
then Promoting (after the confirm-promotion gates: WaitingPromotion) -> Finalising
-> Succeeded. ``threshold`` failed checks, a ``rollback`` webhook answering 2xx or
the progress deadline roll it back: Failed.

Events go to ``World.event`` as they happen (reason Synced, as Flagger's) and come
back from ``tick`` with the phase they report, for the ``event`` webhooks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from helpers.runtime.flagger import status as st
from helpers.runtime.flagger.status import CanaryStatus, parse_rfc3339
from helpers.runtime.flagger.weights import TOTAL, max_weight, next_step_weight, routed_weights, strategy
from helpers.runtime.flagger.world import Event, Tick, World, hook_names, webhook_outcomes

__all__ = ["Event", "Tick", "World", "advance", "tick"]

T = TypeVar("T")
PROGRESS_DEADLINE_S = 600  # Flagger's default progressDeadlineSeconds
_ADVANCING = (st.PROGRESSING, st.WAITING, st.WAITING_PROMOTION, st.PROMOTING, st.FINALISING)
_DEADLINE_PHASES = (st.INITIALIZING, st.PROGRESSING, st.WAITING_PROMOTION, st.PROMOTING, st.FINALISING)


async def advance(canary: Mapping[str, Any], status: CanaryStatus, world: World, now: datetime) -> CanaryStatus:
    """One scheduler tick for ``canary`` (the whole object: metadata names the events,
    spec drives the analysis); returns the new status, leaving ``status`` as it was."""
    return (await tick(canary, status, world, now)).status


async def tick(canary: Mapping[str, Any], status: CanaryStatus, world: World, now: datetime) -> Tick:
    """``advance``, also returning the tick's events (for the ``event`` webhooks)."""
    if not isinstance(canary.get("spec"), Mapping):
        raise TypeError("advance takes the whole Canary object (metadata and spec), not its spec")
    run = _Run(canary, status.copy(), world, now)
    try:
        await run.advance()
    except _Stop:
        pass
    return Tick(run.status, tuple(run.events))


class _Stop(Exception):
    """Ends the tick early (a World call failed; its warning is recorded)."""


class _Run:
    """The state of one tick; the methods follow the scheduler's functions."""

    def __init__(self, canary: Mapping[str, Any], status: CanaryStatus, world: World, now: datetime) -> None:
        meta, spec = canary.get("metadata") or {}, canary.get("spec") or {}
        self.spec, self.status, self.world, self.now = spec, status, world, now
        self.analysis: Mapping[str, Any] = spec.get("analysis") or {}
        self.ns = str(meta.get("namespace") or "default")
        self.name = f"{meta.get('name', '')}.{self.ns}"  # Flagger names a canary <name>.<namespace>
        self.target = str((spec.get("targetRef") or {}).get("name", ""))
        self.kind = str((spec.get("targetRef") or {}).get("kind") or "Deployment")
        self.skip = bool(spec.get("skipAnalysis")) or not self.analysis
        self.threshold = int(self.analysis.get("threshold") or 0) or 1
        self.iterations = int(self.analysis.get("iterations") or 0)
        self.revision = ""
        self.events: list[Event] = []

    # ── plumbing ─────────────────────────────────────────────────────────────

    def info(self, message: str, phase: str | None = None) -> None:
        self._record(message, False, phase)

    def warn(self, message: str, phase: str | None = None) -> None:
        self._record(message, True, phase)

    def _record(self, message: str, warning: bool, phase: str | None) -> None:
        self.events.append(Event(message, warning, self.status.phase if phase is None else phase))
        self.world.event(message, warning)

    async def call(self, pending: Awaitable[T]) -> T:
        """A World call; a failure becomes a warning event and ends the tick."""
        try:
            return await pending
        except Exception as e:  # any failure of the I/O side is reported, never raised
            self.warn(str(e) or type(e).__name__)
            raise _Stop from e

    def set_phase(self, phase: str) -> None:
        self.status.set_phase(phase, self.now, analysis_iterations=self.iterations, kind=self.kind)

    def sync(self, phase: str, canary_weight: int = 0) -> None:
        self.status.sync(phase, self.revision, self.now, canary_weight=canary_weight, kind=self.kind)

    def changed(self, applied: str, promoted: str) -> bool:
        """Flagger's hasSpecChanged: a new revision, unless it is the promoted one (a manual rollback)."""
        return not applied or (self.revision != promoted and self.revision != applied)

    def deadline_passed(self) -> bool:
        """``progressDeadlineSeconds`` since the last status write. Kubernetes counts from
        when the Deployment stopped progressing; the phases listed here write the status
        as the rollout moves, so the two agree there. In the idle phases the last write
        may be hours old: a Deployment not ready then is waited for, not failed."""
        if self.status.phase not in _DEADLINE_PHASES:
            return False
        since = parse_rfc3339(self.status.last_transition_time)
        limit = self.spec.get("progressDeadlineSeconds")
        seconds = PROGRESS_DEADLINE_S if limit is None else float(limit)
        return since is not None and (self.now - since).total_seconds() > seconds

    async def gate(self, hook_type: str, phase: str, passed: str | None) -> tuple[str, str] | None:
        """Run the webhooks of one type: the first failing one as (name, message), or
        None when all passed; ``passed`` names the info event of each one that did."""
        names = hook_names(self.analysis, hook_type)
        if not names:
            return None
        failures = await self.call(self.world.run_webhooks(hook_type, phase))
        for name, failure in webhook_outcomes(names, failures):
            if failure is not None:
                return name, failure
            if passed:
                self.info(f"{passed} check {name} passed")
        return None

    async def ready(self, primary: bool) -> bool:
        """Flagger's IsPrimaryReady / IsCanaryReady: a warning while not ready; past
        the progress deadline the rollout fails (rolled back, or kept on the canary
        when the promoted primary is the broken one)."""
        ok, reason = await self.call(self.world.primary_ready() if primary else self.world.target_ready())
        if ok:
            return True
        what = f"{self.target}-primary" if primary else self.target
        stuck = self.deadline_passed()
        if stuck:
            reason = f'deployment "{what}" exceeded its progress deadline'
        problem = f"{what}.{self.ns} not ready: {reason}"
        self.warn(problem if primary else f"canary deployment {problem}")
        if stuck:
            if primary and self.status.phase in (st.PROMOTING, st.FINALISING):
                await self.failed_promotion(problem)
            else:
                await self.rollback()
        return False

    # ── the tick ─────────────────────────────────────────────────────────────

    async def advance(self) -> None:
        if self.spec.get("suspend"):
            self.info("skipping canary run as object is suspended")
            return
        revision = await self.call(self.world.target_revision())
        if revision is None:
            self.warn(f'deployment {self.target}.{self.ns} get query error: deployments.apps "{self.target}" not found')
            return
        self.revision = revision
        initializing = self.status.phase in ("", st.INITIALIZING)
        if self.status.phase == "":
            self.set_phase(st.INITIALIZING)
        if initializing and not self.skip:
            self.info("all the metrics providers are available!")
        await self.call(self.world.initialize())
        if initializing:
            if not self.skip and not await self.ready(primary=True):
                return
            await self.call(self.world.scale_target(0))  # the apex Service already selects the primary
            await self.call(self.world.set_weights(TOTAL, 0))
            self.sync(st.INITIALIZED)
            self.info(f"Initialization done! {self.name}")
        if not self.should_advance():
            return
        if not self.skip and not await self.ready(primary=True):
            return
        primary_weight, canary_weight = routed_weights(self.analysis, self.status)
        if not await self.check_canary_status():
            return
        if self.status.phase in (st.PROGRESSING, st.WAITING_PROMOTION) and self.changed(
            self.status.last_applied_spec, self.status.last_promoted_spec
        ):
            self.info(f"New revision detected! Restarting analysis for {self.target}.{self.ns}")
            await self.call(self.world.set_weights(TOTAL, 0))
            self.sync(st.PROGRESSING)
            return
        if not await self.ready(primary=False):
            return
        if self.skip:
            await self.skip_analysis()
            return
        if self.status.phase in (st.PROGRESSING, st.WAITING, st.WAITING_PROMOTION) and await self.rollback_requested():
            self.warn(f"Rolling back {self.name} manual webhook invoked")
            await self.rollback()
            return
        if self.status.phase == st.PROMOTING:
            await self.promotion_traffic_shift(primary_weight, canary_weight)
            return
        if self.status.phase == st.FINALISING:
            await self.call(self.world.scale_target(0))
            self.set_phase(st.SUCCEEDED)
            await self.post_rollout(st.SUCCEEDED)
            self.info(f"Promotion completed! Scaling down {self.target}.{self.ns}")
            return
        if self.status.phase in (st.PROGRESSING, st.WAITING_PROMOTION) and self.status.failed_checks >= self.threshold:
            await self.rollback()
            return
        if not await self.run_checks(canary_weight):
            self.status.failed_checks += 1
            self.status.touch(self.now)
            return
        kind = strategy(self.analysis)
        if kind == "ab-testing":
            await self.run_iterations(blue_green=False)
        elif kind == "blue-green":
            await self.run_iterations(blue_green=True)
        elif next_step_weight(self.analysis, canary_weight) > 0:
            if self.status.phase == st.PROGRESSING:
                closed = await self.gate("confirm-traffic-increase", st.PROGRESSING, "Confirm-traffic-increase")
                if closed:
                    self.warn(f"Halt {self.name} advancement waiting for traffic increase approval {closed[0]}")
                    return
            await self.run_canary(primary_weight, canary_weight)

    def should_advance(self) -> bool:
        if self.status.phase in _ADVANCING:
            return True
        applied, promoted = self.status.last_applied_spec, self.status.last_promoted_spec
        if self.status.phase == st.FAILED:  # Flagger records the revision even after a failure
            s = self.status
            weights = {"canary_weight": s.canary_weight, "failed_checks": s.failed_checks, "iterations": s.iterations}
            s.sync(st.FAILED, self.revision, self.now, kind=self.kind, **weights)
        return self.changed(applied, promoted)

    async def check_canary_status(self) -> bool:
        """True to go on analysing; a new revision starts here (behind the confirm-rollout gates)."""
        if self.status.phase in (st.PROGRESSING, st.WAITING_PROMOTION, st.PROMOTING, st.FINALISING):
            return True
        closed = await self.gate("confirm-rollout", self.status.phase, "Confirm-rollout")
        if closed:
            if self.status.phase != st.WAITING:
                self.set_phase(st.WAITING)
                self.warn(f"Halt {self.name} advancement waiting for approval {closed[0]}")
            return False
        self.info(f"New revision detected! Scaling up {self.target}.{self.ns}", phase=st.PROGRESSING)
        await self.call(self.world.scale_target(1))
        self.sync(st.PROGRESSING)
        return False

    async def rollback_requested(self) -> bool:
        names = hook_names(self.analysis, "rollback")
        if not names:
            return False
        failures = await self.call(self.world.run_webhooks("rollback", self.status.phase))
        for name, failure in webhook_outcomes(names, failures):
            if failure is None:
                self.warn(f"Rollback check {name} passed")
                return True
            self.info(f"Rollback hook {name} not signaling a rollback")
        return False

    async def run_checks(self, canary_weight: int) -> bool:
        """Pre-rollout hooks before any traffic reaches the canary; afterwards the
        rollout hooks then the metric checks. False: one failed check."""
        if canary_weight == 0 and self.status.iterations == 0:
            self.info(f"Starting canary analysis for {self.target}.{self.ns}")
            failed = await self.gate("pre-rollout", st.PROGRESSING, "Pre-rollout")
            if failed:
                self.warn(f"Halt {self.name} advancement pre-rollout check {failed[0]} failed {failed[1]}")
            return failed is None
        failed = await self.gate("rollout", st.PROGRESSING, None)
        if failed:
            self.warn(f"Halt {self.name} advancement external check {failed[0]} failed {failed[1]}")
            return False
        problems = await self.call(self.world.check_metrics())
        if problems:
            self.warn(problems[0])
        return not problems

    async def confirm_promotion(self) -> bool:
        closed = await self.gate("confirm-promotion", st.PROGRESSING, "Confirm-promotion")
        if not closed:
            return True
        if self.status.phase != st.WAITING_PROMOTION:
            self.set_phase(st.WAITING_PROMOTION)
            self.warn(f"Halt {self.name} advancement waiting for promotion approval {closed[0]}")
        else:
            self.status.iterations = self.iterations - 1
            self.status.touch(self.now)
        return False

    async def promote(self) -> None:
        self.info(f"Copying {self.target}.{self.ns} template spec to {self.target}-primary.{self.ns}")
        await self.call(self.world.promote())
        self.set_phase(st.PROMOTING)

    async def run_canary(self, primary_weight: int, canary_weight: int) -> None:
        if canary_weight < max_weight(self.analysis):
            step = next_step_weight(self.analysis, canary_weight)
            primary_weight, canary_weight = max(0, primary_weight - step), min(TOTAL, canary_weight + step)
            await self.call(self.world.set_weights(primary_weight, canary_weight))
            self.status.canary_weight = canary_weight
            self.status.touch(self.now)
            self.info(f"Advance {self.name} canary weight {canary_weight}")
        elif await self.confirm_promotion():
            await self.promote()

    async def run_iterations(self, blue_green: bool) -> None:
        """A/B testing (matched requests all to the canary) and Blue/Green (the canary
        tested apart, then all traffic to it before promotion): count iterations."""
        done = self.status.iterations
        if self.iterations > done:
            if not blue_green:
                await self.call(self.world.set_weights(0, TOTAL))
            self.status.iterations = done + 1
            self.status.touch(self.now)
            self.info(f"Advance {self.name} canary iteration {done + 1}/{self.iterations}")
        elif not await self.confirm_promotion():
            return
        elif blue_green and self.iterations == done:
            self.info("Routing all traffic to canary")
            await self.call(self.world.set_weights(0, TOTAL))
            self.status.iterations = done + 1
            self.status.touch(self.now)
        elif blue_green or self.iterations == done:
            await self.promote()

    async def promotion_traffic_shift(self, primary_weight: int, canary_weight: int) -> None:
        step = int(self.analysis.get("stepWeightPromotion") or 0)
        if step == 0:
            self.info("Routing all traffic to primary")
            await self.call(self.world.set_weights(TOTAL, 0))
            self.set_phase(st.FINALISING)
        elif canary_weight > 0:
            primary_weight, canary_weight = min(TOTAL, primary_weight + step), max(0, canary_weight - step)
            await self.call(self.world.set_weights(primary_weight, canary_weight))
            self.info(f"Advance {self.name} primary weight {primary_weight}")
            if primary_weight == TOTAL:
                self.set_phase(st.FINALISING)
            else:
                self.status.canary_weight = canary_weight
                self.status.touch(self.now)

    async def skip_analysis(self) -> None:
        await self.call(self.world.set_weights(TOTAL, 0))
        self.info(f"Copying {self.target}.{self.ns} template spec to {self.target}-primary.{self.ns}")
        await self.call(self.world.promote())
        await self.call(self.world.scale_target(0))
        self.set_phase(st.SUCCEEDED)
        await self.post_rollout(st.SUCCEEDED)
        self.info(f"Promotion completed! Canary analysis was skipped for {self.target}.{self.ns}")

    async def rollback(self) -> None:
        if self.status.failed_checks >= self.threshold:
            self.warn(f"Rolling back {self.name} failed checks threshold reached {self.status.failed_checks}")
        await self.call(self.world.set_weights(TOTAL, 0))
        self.warn(f"Canary failed! Scaling down {self.name}", phase=st.FAILED)
        await self.call(self.world.scale_target(0))
        self.sync(st.FAILED)
        await self.post_rollout(st.FAILED)

    async def failed_promotion(self, reason: str) -> None:
        """The promoted primary is broken: keep all traffic on the canary, the healthy copy."""
        self.warn(f"Promotion of {self.target}.{self.ns} failed, primary not ready: {reason}")
        await self.call(self.world.set_weights(0, TOTAL))
        self.sync(st.FAILED, canary_weight=TOTAL)
        await self.post_rollout(st.FAILED)

    async def post_rollout(self, phase: str) -> None:
        failed = await self.gate("post-rollout", phase, "Post-rollout")
        if failed:
            self.warn(f"Post-rollout hook {failed[0]} failed {failed[1]}")
