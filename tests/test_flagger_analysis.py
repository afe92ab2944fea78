"""The canary analysis core (``helpers.runtime.flagger.analysis``): Flagger's scheduler,
one tick at a time, with a fake World and a fake clock (no sockets, no sleeping).

The sequences follow Flagger 1.44's own scheduler tests (pkg/controller/scheduler_*_test.go).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.runtime.flagger.analysis import Tick, advance, tick
from helpers.runtime.flagger.status import PHASES, CanaryStatus
from helpers.runtime.flagger.weights import max_weight, next_step_weight, routed_weights
from helpers.runtime.flagger.world import webhook_outcomes

START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=10)


@dataclass
class FakeWorld:
    """Records what a tick asked for; the test sets what it answers."""

    revision: str | None = "v1"
    target: tuple[bool, str] = (True, "")
    primary: tuple[bool, str] = (True, "")
    hooks: dict[str, list[str]] = field(default_factory=dict)  # type -> failures it reports
    metrics: list[str] = field(default_factory=list)
    broken: dict[str, Exception] = field(default_factory=dict)  # method -> what it raises
    weights: list[tuple[int, int]] = field(default_factory=list)
    scaled: list[int] = field(default_factory=list)
    promoted: int = 0
    calls: list[str] = field(default_factory=list)
    hook_calls: list[tuple[str, str]] = field(default_factory=list)
    events: list[tuple[str, bool]] = field(default_factory=list)

    def _enter(self, name: str) -> None:
        self.calls.append(name)
        if name in self.broken:
            raise self.broken[name]

    async def target_revision(self) -> str | None:
        self._enter("target_revision")
        return self.revision

    async def target_ready(self) -> tuple[bool, str]:
        self._enter("target_ready")
        return self.target

    async def primary_ready(self) -> tuple[bool, str]:
        self._enter("primary_ready")
        return self.primary

    async def initialize(self) -> None:
        self._enter("initialize")

    async def set_weights(self, primary: int, canary: int) -> None:
        self._enter("set_weights")
        self.weights.append((primary, canary))

    async def scale_target(self, replicas: int) -> None:
        self._enter("scale_target")
        self.scaled.append(replicas)

    async def promote(self) -> None:
        self._enter("promote")
        self.promoted += 1

    async def run_webhooks(self, hook_type: str, phase: str) -> list[str]:
        self._enter("run_webhooks")
        self.hook_calls.append((hook_type, phase))
        return list(self.hooks.get(hook_type, []))

    async def check_metrics(self) -> list[str]:
        self._enter("check_metrics")
        return list(self.metrics)

    def event(self, message: str, warning: bool = False) -> None:
        self.events.append((message, warning))


def canary(spec: dict[str, Any] | None = None, **analysis: Any) -> dict[str, Any]:
    base = {"interval": "10s", "threshold": 2, "stepWeight": 20, "maxWeight": 60}
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "petstore", "namespace": "default"},
        "spec": {
            "provider": "gloo",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "petstore"},
            "service": {"port": 80},
            "analysis": {**base, **analysis},
            **(spec or {}),
        },
    }


@dataclass
class Rollout:
    """A Canary, its status and a fake clock that moves one interval per tick."""

    obj: dict[str, Any] = field(default_factory=canary)
    world: FakeWorld = field(default_factory=FakeWorld)
    status: CanaryStatus = field(default_factory=CanaryStatus)
    now: datetime = START
    last: Tick | None = None

    def tick(self) -> list[str]:
        """One tick; the messages of its events."""
        self.last = asyncio.run(tick(self.obj, self.status, self.world, self.now))
        self.status, self.now = self.last.status, self.now + INTERVAL
        return [e.message for e in self.last.events]

    def initialized(self) -> Rollout:
        self.tick()
        assert self.status.phase == "Initialized", self.world.events
        return self

    def ship(self, revision: str = "v2") -> list[str]:
        self.world.revision = revision
        return self.tick()

    def run_until(self, phase: str, limit: int = 30) -> list[str]:
        seen: list[str] = []
        for _ in range(limit):
            seen += self.tick()
            if self.status.phase == phase:
                return seen
        raise AssertionError(f"never reached {phase}: {seen}")


# ── initialization ───────────────────────────────────────────────────────────


def test_initializing_waits_for_the_primary_then_initializes() -> None:
    r = Rollout()
    r.world.primary = (False, "waiting for rollout to finish: 0 of 1 updated replicas are available")
    assert r.tick() == [
        "all the metrics providers are available!",
        "petstore-primary.default not ready: waiting for rollout to finish: 0 of 1 updated replicas are available",
    ]
    assert r.status.phase == "Initializing"
    assert r.status.promoted is not None and r.status.promoted["status"] == "Unknown"
    assert r.status.promoted["message"] == "New Deployment detected, starting initialization."
    assert r.world.weights == [] and r.world.scaled == []

    r.world.primary = (True, "")
    assert r.tick()[-1] == "Initialization done! petstore.default"
    assert r.world.weights == [(100, 0)] and r.world.scaled == [0]
    s = r.status
    assert (s.phase, s.canary_weight, s.last_applied_spec, s.last_promoted_spec) == ("Initialized", 0, "v1", "v1")
    assert s.promoted is not None and (s.promoted["status"], s.promoted["reason"]) == ("True", "Initialized")
    assert s.promoted["message"] == "Deployment initialization completed."
    assert s.last_transition_time == "2026-11-30T12:00:10Z"


def test_an_unchanged_target_is_left_alone() -> None:
    r = Rollout().initialized()
    before = r.status.to_dict()
    assert r.tick() == [] and r.tick() == []
    assert r.status.to_dict() == before
    assert r.world.scaled == [0] and r.world.promoted == 0


def test_a_missing_target_is_a_warning() -> None:
    r = Rollout(world=FakeWorld(revision=None))
    assert r.tick() == ['deployment petstore.default get query error: deployments.apps "petstore" not found']
    assert r.status.phase == "" and r.last is not None and r.last.events[0].warning


# ── a good rollout, step by step ─────────────────────────────────────────────


def test_a_new_revision_scales_the_target_up_and_starts_progressing() -> None:
    r = Rollout().initialized()
    assert r.ship() == ["New revision detected! Scaling up petstore.default"]
    assert r.world.scaled == [0, 1]
    s = r.status
    assert (s.phase, s.canary_weight, s.failed_checks, s.last_applied_spec, s.last_promoted_spec) == (
        "Progressing",
        0,
        0,
        "v2",
        "v1",
    )
    assert r.last is not None and r.last.events[0].phase == "Progressing"
    assert s.promoted is not None and s.promoted["message"] == "New revision detected, progressing canary analysis."


def test_a_good_rollout_steps_up_to_max_weight_then_promotes_and_finalises() -> None:
    r = Rollout(obj=canary(webhooks=[{"name": "notify", "type": "post-rollout", "url": "http://n/"}]))
    r.initialized().ship()
    assert r.tick() == ["Starting canary analysis for petstore.default", "Advance petstore.default canary weight 20"]
    assert r.tick() == ["Advance petstore.default canary weight 40"]
    assert r.status.canary_weight == 40
    assert r.tick() == ["Advance petstore.default canary weight 60"]
    assert r.tick() == ["Copying petstore.default template spec to petstore-primary.default"]
    assert (r.status.phase, r.status.canary_weight, r.world.promoted) == ("Promoting", 60, 1)
    assert r.tick() == ["Routing all traffic to primary"]
    assert (r.status.phase, r.status.canary_weight) == ("Finalising", 0)
    assert r.tick() == ["Post-rollout check notify passed", "Promotion completed! Scaling down petstore.default"]
    assert r.world.weights == [(100, 0), (80, 20), (60, 40), (40, 60), (100, 0)]
    assert r.world.scaled == [0, 1, 0]
    assert ("post-rollout", "Succeeded") in r.world.hook_calls
    s = r.status
    assert (s.phase, s.canary_weight, s.last_promoted_spec) == ("Succeeded", 0, "v2")
    assert s.promoted is not None and (s.promoted["status"], s.promoted["reason"]) == ("True", "Succeeded")
    assert r.world.calls.count("check_metrics") == 3  # none before any traffic reached the canary


def test_step_weights_are_followed_and_the_last_one_is_the_max() -> None:
    r = Rollout(obj=canary(stepWeight=None, maxWeight=None, stepWeights=[5, 25, 50]))
    r.initialized().ship()
    r.run_until("Promoting")
    assert r.world.weights[1:] == [(95, 5), (75, 25), (50, 50)]


def test_step_weight_promotion_moves_traffic_back_in_steps() -> None:
    # Flagger's TestScheduler_DeploymentAnalysisPhases: stepWeight 100, stepWeightPromotion 50.
    r = Rollout(obj=canary(stepWeight=100, maxWeight=None, stepWeightPromotion=50))
    r.initialized().ship()
    seen = []
    for _ in range(5):
        r.tick()
        seen.append((r.status.phase, r.status.canary_weight))
    assert seen == [("Progressing", 100), ("Promoting", 100), ("Promoting", 50), ("Finalising", 0), ("Succeeded", 0)]
    assert r.world.weights[-3:] == [(0, 100), (50, 50), (100, 0)]
    assert "Advance petstore.default primary weight 50" in [m for m, _ in r.world.events]


def test_promotion_waits_for_the_primary_rollout() -> None:
    r = Rollout(obj=canary(stepWeight=60))
    r.initialized().ship()
    r.run_until("Promoting")
    r.world.primary = (False, "waiting for rollout to finish: 1 old replicas are pending termination")
    assert r.tick() == [
        "petstore-primary.default not ready: waiting for rollout to finish: 1 old replicas are pending termination"
    ]
    assert r.status.phase == "Promoting"
    r.world.primary = (True, "")
    assert r.tick() == ["Routing all traffic to primary"]


# ── failed checks and rollback ───────────────────────────────────────────────


def test_failed_checks_reach_the_threshold_and_roll_back() -> None:
    r = Rollout(obj=canary(webhooks=[{"name": "notify", "type": "post-rollout", "url": "http://n/"}]))
    r.initialized().ship()
    r.tick()  # weight 20
    r.world.metrics = ["Halt petstore.default advancement success rate 50.00% < 99%"]
    assert r.tick() == ["Halt petstore.default advancement success rate 50.00% < 99%"]
    assert (r.status.failed_checks, r.status.canary_weight) == (1, 20)
    r.tick()
    assert r.status.failed_checks == 2 and r.status.phase == "Progressing"
    assert r.tick() == [
        "Rolling back petstore.default failed checks threshold reached 2",
        "Canary failed! Scaling down petstore.default",
        "Post-rollout check notify passed",
    ]
    assert r.world.weights[-1] == (100, 0) and r.world.scaled[-1] == 0
    s = r.status
    assert (s.phase, s.canary_weight, s.failed_checks) == ("Failed", 0, 0)  # Flagger's SyncStatus resets the count
    assert s.promoted is not None and s.promoted["status"] == "False"
    assert s.promoted["message"] == "Canary analysis failed, Deployment scaled to zero."
    assert ("post-rollout", "Failed") in r.world.hook_calls
    assert r.last is not None and [e.phase for e in r.last.events][1] == "Failed"
    assert all(warning for _, warning in r.world.events[-3:-1])


def test_no_data_is_a_failed_check_that_says_no_traffic_reached_the_canary() -> None:
    r = Rollout()
    r.initialized().ship()
    r.tick()
    no_data = (
        "Halt advancement no values found for gloo metric request-success-rate "
        "probably petstore.default is not receiving traffic: no values found"
    )
    r.world.metrics = [no_data, "Halt petstore.default advancement request duration 1.2s > 500ms"]
    assert r.tick() == [no_data]  # the first failing check, as Flagger stops there
    assert r.status.failed_checks == 1 and r.world.weights[-1] == (80, 20)


def test_a_failing_rollout_hook_halts_before_the_metrics() -> None:
    hooks = [{"name": "load-test", "type": "rollout", "url": "http://t/"}, {"name": "smoke", "url": "http://s/"}]
    r = Rollout(obj=canary(webhooks=hooks))
    r.initialized().ship()
    r.tick()
    r.world.hooks["rollout"] = ["smoke failed 500 Internal Server Error"]
    assert r.tick() == ["Halt petstore.default advancement external check smoke failed 500 Internal Server Error"]
    r.world.hooks["rollout"] = ["connection refused"]  # a bare error belongs to the first webhook that runs
    assert r.tick() == ["Halt petstore.default advancement external check load-test failed connection refused"]
    assert r.status.failed_checks == 2 and "check_metrics" not in r.world.calls[-2:]


def test_a_failing_pre_rollout_hook_is_a_failed_check() -> None:
    r = Rollout(obj=canary(webhooks=[{"name": "smoke", "type": "pre-rollout", "url": "http://s/"}]))
    r.initialized().ship()
    r.world.hooks["pre-rollout"] = ["smoke failed boom"]
    assert r.tick() == [
        "Starting canary analysis for petstore.default",
        "Halt petstore.default advancement pre-rollout check smoke failed boom",
    ]
    assert (r.status.failed_checks, r.status.canary_weight) == (1, 0)
    r.world.hooks.clear()
    assert r.tick()[1:] == ["Pre-rollout check smoke passed", "Advance petstore.default canary weight 20"]


def test_the_rollback_webhook_rolls_back_when_it_answers_2xx() -> None:
    r = Rollout(obj=canary(webhooks=[{"name": "rb", "type": "rollback", "url": "http://l/rollback/check"}]))
    r.initialized().ship()
    r.world.hooks["rollback"] = ["rb failed closed"]
    assert r.tick()[0] == "Rollback hook rb not signaling a rollback"
    r.world.hooks["rollback"] = []
    assert r.tick() == [
        "Rollback check rb passed",
        "Rolling back petstore.default manual webhook invoked",
        "Canary failed! Scaling down petstore.default",
    ]
    assert r.status.phase == "Failed" and r.world.weights[-1] == (100, 0)
    assert ("rollback", "Progressing") in r.world.hook_calls


def test_a_canary_not_ready_is_waited_for_then_rolled_back_after_the_deadline() -> None:
    r = Rollout(obj=canary({"progressDeadlineSeconds": 25}))
    r.initialized().ship()
    why = "waiting for rollout to finish: 0 of 1 updated replicas are available"
    r.world.target = (False, why)
    msg = f"canary deployment petstore.default not ready: {why}"
    assert r.tick() == [msg] and r.tick() == [msg]  # 10 s and 20 s after the scale-up
    assert r.status.phase == "Progressing"
    assert r.tick() == [
        'canary deployment petstore.default not ready: deployment "petstore" exceeded its progress deadline',
        "Canary failed! Scaling down petstore.default",
    ]
    assert r.status.phase == "Failed" and r.world.scaled[-1] == 0


def test_a_primary_broken_by_the_promotion_keeps_traffic_on_the_canary() -> None:
    # Flagger's TestScheduler_DeploymentPromotionPrimaryNotReady (#1898)
    r = Rollout(obj=canary({"progressDeadlineSeconds": 15}, stepWeight=60))
    r.initialized().ship()
    r.run_until("Promoting")
    r.world.primary = (False, "waiting for rollout to finish: 0 of 1 updated replicas are available")
    r.tick()
    events = r.tick()
    assert events[1].startswith("Promotion of petstore.default failed, primary not ready: petstore-primary.default")
    assert r.world.weights[-1] == (0, 100) and r.world.scaled[-1] == 1  # the canary stays up
    assert (r.status.phase, r.status.canary_weight) == ("Failed", 100)


def test_a_new_revision_after_a_failure_starts_again() -> None:
    r = Rollout(obj=canary(threshold=1))
    r.initialized().ship()
    r.tick()
    r.world.metrics = ["Halt petstore.default advancement success rate 0.00% < 99%"]
    r.run_until("Failed")
    r.world.metrics = []
    assert r.tick() == [] and r.status.phase == "Failed"
    assert r.ship("v3") == ["New revision detected! Scaling up petstore.default"]
    assert (r.status.phase, r.status.last_applied_spec) == ("Progressing", "v3")


# ── a new revision during the analysis ───────────────────────────────────────


def test_a_new_revision_during_the_analysis_restarts_it() -> None:
    r = Rollout()
    r.initialized().ship()
    r.tick()
    r.world.metrics = ["Halt petstore.default advancement success rate 90.00% < 99%"]
    r.tick()
    assert (r.status.canary_weight, r.status.failed_checks) == (20, 1)
    r.world.metrics = []
    assert r.ship("v3") == ["New revision detected! Restarting analysis for petstore.default"]
    assert r.world.weights[-1] == (100, 0)
    s = r.status
    assert (s.phase, s.canary_weight, s.failed_checks, s.iterations, s.last_applied_spec) == (
        "Progressing",
        0,
        0,
        0,
        "v3",
    )
    assert r.tick()[0] == "Starting canary analysis for petstore.default"


def test_going_back_to_the_promoted_revision_does_not_restart() -> None:
    r = Rollout()
    r.initialized().ship()
    r.tick()
    assert r.ship("v1") == ["Advance petstore.default canary weight 40"]  # Flagger: a manual rollback, not a revision


# ── A/B testing and Blue/Green ───────────────────────────────────────────────


def test_ab_testing_routes_the_matched_requests_to_the_canary_for_n_iterations() -> None:
    match = [{"headers": {"x-canary": {"exact": "true"}}}]
    r = Rollout(obj=canary(stepWeight=None, maxWeight=None, iterations=2, match=match))
    r.initialized().ship()
    assert r.tick()[1:] == ["Advance petstore.default canary iteration 1/2"]
    assert r.world.weights[-1] == (0, 100) and r.status.canary_weight == 0  # Flagger keeps the status weight at 0
    assert r.tick() == ["Advance petstore.default canary iteration 2/2"]
    assert r.world.calls.count("check_metrics") == 1
    assert r.tick() == ["Copying petstore.default template spec to petstore-primary.default"]
    assert routed_weights(r.obj["spec"]["analysis"], r.status) == (0, 100)
    assert r.tick() == ["Routing all traffic to primary"]
    assert r.world.weights[-1] == (100, 0)
    r.run_until("Succeeded")


def test_blue_green_tests_the_canary_apart_then_switches_all_traffic() -> None:
    # Flagger's TestScheduler_DeploymentBlueGreenAnalysisPhases (iterations 1, no match)
    r = Rollout(obj=canary(stepWeight=None, maxWeight=None, iterations=1))
    r.initialized().ship()
    assert r.tick()[1:] == ["Advance petstore.default canary iteration 1/1"]
    assert r.world.weights == [(100, 0)]  # the canary gets no routed traffic while it is tested
    assert r.tick() == ["Routing all traffic to canary"]
    assert r.world.weights[-1] == (0, 100) and r.status.phase == "Progressing"
    assert r.tick() == ["Copying petstore.default template spec to petstore-primary.default"]
    assert r.tick() == ["Routing all traffic to primary"] and r.status.phase == "Finalising"
    r.tick()
    assert r.status.phase == "Succeeded"


# ── gates ────────────────────────────────────────────────────────────────────


def test_confirm_rollout_holds_a_new_revision_in_waiting() -> None:
    r = Rollout(obj=canary(webhooks=[{"name": "gate", "type": "confirm-rollout", "url": "http://l/gate/check"}]))
    r.initialized()
    r.world.hooks["confirm-rollout"] = ["gate failed closed"]
    assert r.ship() == ["Halt petstore.default advancement waiting for approval gate"]
    assert r.status.phase == "Waiting" and r.world.scaled == [0]
    assert r.status.promoted is not None and r.status.promoted["message"] == "Waiting for approval."
    assert r.tick() == [] and r.status.phase == "Waiting"  # warned once
    r.world.hooks.clear()
    assert r.tick() == ["Confirm-rollout check gate passed", "New revision detected! Scaling up petstore.default"]
    assert r.status.phase == "Progressing" and r.world.scaled == [0, 1]
    assert [p for t, p in r.world.hook_calls if t == "confirm-rollout"] == ["Initialized", "Waiting", "Waiting"]


def test_confirm_traffic_increase_holds_the_weight_without_a_failed_check() -> None:
    gate = {"name": "more", "type": "confirm-traffic-increase", "url": "http://l/gate/check"}
    r = Rollout(obj=canary(webhooks=[gate]))
    r.initialized().ship()
    r.world.hooks["confirm-traffic-increase"] = ["more failed closed"]
    assert r.tick()[1:] == ["Halt petstore.default advancement waiting for traffic increase approval more"]
    assert (r.status.canary_weight, r.status.failed_checks, r.world.weights) == (0, 0, [(100, 0)])
    r.world.hooks.clear()
    assert r.tick()[1:] == ["Confirm-traffic-increase check more passed", "Advance petstore.default canary weight 20"]


def test_confirm_promotion_waits_at_max_weight_while_the_checks_go_on() -> None:
    gate = {"name": "promote", "type": "confirm-promotion", "url": "http://l/gate/check"}
    r = Rollout(obj=canary(webhooks=[gate], stepWeight=30))
    r.initialized().ship()
    r.tick()
    r.tick()
    r.world.hooks["confirm-promotion"] = ["promote failed closed"]
    assert r.tick() == ["Halt petstore.default advancement waiting for promotion approval promote"]
    s = r.status
    assert (s.phase, s.canary_weight, s.iterations) == ("WaitingPromotion", 0, -1)  # as Flagger writes it
    assert r.world.weights[-1] == (40, 60)  # the route stays at the max weight
    metrics_before = r.world.calls.count("check_metrics")
    assert r.tick() == [] and r.world.calls.count("check_metrics") == metrics_before + 1
    r.world.hooks.clear()
    assert r.tick() == [
        "Confirm-promotion check promote passed",
        "Copying petstore.default template spec to petstore-primary.default",
    ]
    assert r.status.phase == "Promoting" and r.world.promoted == 1
    r.run_until("Succeeded")


# ── skipAnalysis, suspend and failures of the World ──────────────────────────


def test_skip_analysis_promotes_at_once() -> None:
    r = Rollout(obj=canary({"skipAnalysis": True}))
    r.initialized().ship()
    assert r.status.phase == "Progressing"
    assert r.tick() == [
        "Copying petstore.default template spec to petstore-primary.default",
        "Promotion completed! Canary analysis was skipped for petstore.default",
    ]
    assert (r.status.phase, r.world.promoted, r.world.scaled) == ("Succeeded", 1, [0, 1, 0])
    assert "check_metrics" not in r.world.calls and "primary_ready" not in r.world.calls


def test_a_suspended_canary_does_nothing() -> None:
    r = Rollout(obj=canary({"suspend": True}))
    assert r.tick() == ["skipping canary run as object is suspended"]
    assert r.status == CanaryStatus() and r.world.calls == []


def test_a_failing_world_call_is_a_warning_and_ends_the_tick() -> None:
    r = Rollout().initialized()
    r.world.broken["scale_target"] = RuntimeError("deployment petstore.default patch query error: conflict")
    assert r.ship() == [
        "New revision detected! Scaling up petstore.default",
        "deployment petstore.default patch query error: conflict",
    ]
    assert r.status.phase == "Initialized"  # nothing written: the next tick tries again
    del r.world.broken["scale_target"]
    r.tick()
    assert r.status.phase == "Progressing"


def test_advance_leaves_the_given_status_alone_and_needs_the_whole_object() -> None:
    status = CanaryStatus()
    after = asyncio.run(advance(canary(), status, FakeWorld(), START))
    assert after.phase == "Initialized" and status == CanaryStatus()
    with pytest.raises(TypeError, match="whole Canary object"):
        asyncio.run(advance(canary()["spec"], status, FakeWorld(), START))


def test_every_event_goes_to_the_world_and_comes_back_with_its_phase() -> None:
    r = Rollout().initialized()
    r.ship()
    assert r.last is not None
    assert [(e.message, e.warning) for e in r.last.events] == r.world.events[-1:]


# ── weights ──────────────────────────────────────────────────────────────────


def test_weights_follow_flaggers_rules() -> None:
    assert max_weight({"stepWeights": [10, 30, 120]}) == 100
    assert max_weight({"maxWeight": 50}) == 50 and max_weight({}) == 100
    assert next_step_weight({"stepWeight": 15, "stepWeights": [1, 2]}, 30) == 15
    assert [next_step_weight({"stepWeights": [10, 25, 60]}, w) for w in (0, 10, 25, 33, 100)] == [10, 15, 35, 67, 1]
    assert next_step_weight({}, 0) == 0


def test_webhook_failures_are_matched_to_their_webhooks() -> None:
    names = ["gate", "gate-2"]
    assert webhook_outcomes(names, ["gate-2 failed closed"]) == [("gate", None), ("gate-2", "closed")]
    assert webhook_outcomes(names, ["closed"]) == [("gate", "closed"), ("gate-2", None)]
    assert webhook_outcomes(names, []) == [("gate", None), ("gate-2", None)]


@settings(max_examples=60, deadline=None)
@given(
    steps=st.one_of(
        st.builds(lambda w: {"stepWeight": w}, st.integers(1, 100)),
        st.builds(lambda ws: {"stepWeights": sorted(ws)}, st.sets(st.integers(1, 100), min_size=1, max_size=5)),
    ),
    max_w=st.integers(0, 100),
    promotion=st.integers(0, 100),
    outcomes=st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=5, max_size=40),
)
def test_weights_always_add_up_to_100(
    steps: dict[str, Any], max_w: int, promotion: int, outcomes: list[tuple[bool, bool, bool]]
) -> None:
    gates = [{"name": "g", "type": t, "url": "http://g/"} for t in ("confirm-traffic-increase", "confirm-promotion")]
    analysis = {"stepWeight": None, "maxWeight": max_w, "stepWeightPromotion": promotion, "webhooks": gates, **steps}
    r = Rollout(obj=canary(threshold=3, **analysis)).initialized()
    r.ship()
    for i, (metrics_ok, gate_open, new_revision) in enumerate(outcomes):
        r.world.metrics = [] if metrics_ok else ["Halt petstore.default advancement success rate 1.00% < 99%"]
        r.world.hooks = (
            {} if gate_open else {"confirm-traffic-increase": ["g closed"], "confirm-promotion": ["g closed"]}
        )
        if new_revision and i % 7 == 3:
            r.world.revision = f"v{i + 3}"
        r.tick()
        assert r.status.phase in PHASES
        assert 0 <= r.status.canary_weight <= 100
        primary, routed = routed_weights(r.obj["spec"]["analysis"], r.status)
        assert primary + routed == 100 and 0 <= routed <= 100
    assert all(p + c == 100 and 0 <= c <= 100 for p, c in r.world.weights)
    if r.world.weights and r.status.phase not in ("Initialized", "Waiting"):
        assert r.world.weights[-1] == routed_weights(r.obj["spec"]["analysis"], r.status)


def test_the_status_reads_and_writes_flaggers_camel_case() -> None:
    r = Rollout().initialized()
    r.ship()
    d = r.status.to_dict()
    assert list(d) == [
        "phase",
        "failedChecks",
        "canaryWeight",
        "iterations",
        "lastAppliedSpec",
        "lastPromotedSpec",
        "lastTransitionTime",
        "conditions",
    ]
    assert d["conditions"][0]["type"] == "Promoted" and d["conditions"][0]["reason"] == "Progressing"
    assert d["conditions"][0]["lastTransitionTime"] == "2026-11-30T12:00:10Z"  # status True -> Unknown: a transition
    assert CanaryStatus.from_dict(d) == r.status and CanaryStatus.from_dict(None) == CanaryStatus()
    assert CanaryStatus().to_dict() == {"phase": "", "failedChecks": 0, "canaryWeight": 0, "iterations": 0}
