"""CanaryWatch computes what Flagger's checks compute (success rate and p99 per side over
a window of the gateway's counters), with either provider's clusters; follow_rollout
reports a rollout step by step, and RolloutPlot draws it; all against a scripted lab,
no sockets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from helpers.builders import progressive
from helpers.errors import NotFound
from helpers.live.progressive import CanaryWatch, Step, follow_rollout, role_clusters, wait_for_phase
from helpers.live.progressive_view import RolloutPlot

BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000]
CANARY = "default-petstore-canaryupstream-80"
PRIMARY = "default-petstore-primaryupstream-80"
# What lab.stats() names the gatewayapi:v1 Canary's Services petstore-primary and petstore-canary.
KUBE_PRIMARY, KUBE_CANARY = "kube-svc:default-petstore-primary-80", "kube-svc:default-petstore-canary-80"


def upstream(requests: int, fives: int, counts: list[int]) -> dict[str, Any]:
    return {
        "requests": requests,
        "by_class": {"2xx": requests - fives, "5xx": fives} if fives else {"2xx": requests},
        "latency_ms": {"buckets": BUCKETS, "counts": counts + [0] * (len(BUCKETS) + 1 - len(counts))},
    }


class ScriptedLab:
    """Answers ``objects("canaries", ...)`` and ``stats()`` from a list of states, one per poll."""

    def __init__(
        self, states: list[tuple[dict[str, Any], dict[str, Any]]], canary: dict[str, Any] | None = None
    ) -> None:
        self.states: Iterator[tuple[dict[str, Any], dict[str, Any]]] = iter(states)
        self.current: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
        self.canary = canary or progressive.canary()

    def objects(self, kind: str, name: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        meta = self.canary["metadata"]
        assert (kind, name, namespace) == ("canaries", meta["name"], meta["namespace"])
        self.current = next(self.states, self.current)
        status, _ = self.current
        return [] if status is None else [{**self.canary, "status": status}]

    def stats(self) -> dict[str, Any]:
        return self.current[1]


def state(phase: str, weight: int = 0, failed: int = 0, /, **stats: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    return {"phase": phase, "canaryWeight": weight, "failedChecks": failed}, stats


def test_checks_are_computed_over_the_window_from_counter_differences() -> None:
    lab = ScriptedLab(
        [
            state("Progressing", 10, **{"default-petstore-80": upstream(5, 5, [5])}),
            state("Progressing", 10, **{CANARY: upstream(200, 20, [0, 0, 180, 0, 0, 0, 0, 20])}),
        ]
    )
    watch = CanaryWatch(lab)  # type: ignore[arg-type]
    watch.poll()
    assert watch.checks("canary") == (None, None, 0), "no counters yet: no values, as Flagger says"
    watch.poll()
    success, p99, requests = watch.checks("canary", seconds=60)
    assert requests == 200 and success == pytest.approx(90.0)
    # 99% of 200 is rank 198: the 18th of the 20 requests in the (100, 250] bucket.
    assert p99 == pytest.approx(100 + 150 * 18 / 20)
    assert watch.checks("primary") == (None, None, 0), "unrelated upstreams are not the primary"
    assert watch.thresholds() == {"request-success-rate": (99, "15s"), "request-duration": (500, "15s")}
    assert watch.step_targets() == [10, 20, 30, 40, 50]


def test_follow_rollout_reports_each_new_step_until_the_end() -> None:
    primary = {PRIMARY: upstream(50, 0, [0, 50])}
    lab = ScriptedLab(
        [
            state("Succeeded", **primary),  # the controller has not seen the new revision yet
            state("Progressing", 0, **primary),
            state("Progressing", 10, **primary, **{CANARY: upstream(10, 3, [0, 10])}),
            state("Progressing", 10, 1, **primary, **{CANARY: upstream(20, 6, [0, 20])}),
            state("Progressing", 10, 2, **primary, **{CANARY: upstream(30, 9, [0, 30])}),
            state("Failed", 0, 0, **primary, **{CANARY: upstream(30, 9, [0, 30])}),
        ]
    )
    said: list[str] = []
    rollout = follow_rollout(lab, timeout=5, say=said.append, every=0)  # type: ignore[arg-type]
    assert rollout.phase == "Failed"
    assert rollout.steps == [
        Step("Progressing", 0, 0, 0),
        Step("Progressing", 10, 0, 0),
        Step("Progressing", 10, 1, 0),
        Step("Progressing", 10, 2, 0),
        Step("Failed", 0, 0, 0),
    ]
    assert said[1] == "Progressing      canary weight  10%   failed checks 0"
    assert (rollout.canary_requests, rollout.canary_errors) == (30, 9)


def test_waiting_names_the_phase_it_waited_for() -> None:
    lab = ScriptedLab([state("Progressing")])
    with pytest.raises(TimeoutError, match="canary petstore is Progressing, not Succeeded"):
        wait_for_phase(lab, ["Succeeded"], timeout=0)  # type: ignore[arg-type]
    missing = ScriptedLab([(None, {})])  # type: ignore[list-item]
    with pytest.raises(NotFound, match=r"apply manifests/flagger/canary\.yaml"):
        CanaryWatch(missing).poll()  # type: ignore[arg-type]


def test_the_plot_draws_a_watch_and_shows_as_a_png() -> None:
    lab = ScriptedLab(
        [
            state("Progressing", 10, **{CANARY: upstream(10, 0, [0, 10])}),
            state("Progressing", 20, 1, **{CANARY: upstream(30, 5, [0, 25, 5])}),
        ]
    )
    watch = CanaryWatch(lab)  # type: ignore[arg-type]
    watch.poll()
    watch.poll()
    plot = RolloutPlot()
    plot.update(watch, marks=True)
    assert plot.weight_ax.get_title() == "canary petstore: Progressing, weight 20%, failed checks 1/2"
    assert list(plot._failed.get_ydata()) == [20.0], "the failed check is marked at its weight"
    assert plot._repr_png_()[:4] == b"\x89PNG"


def test_a_gatewayapi_canary_reads_the_clusters_of_its_primary_and_canary_services() -> None:
    both = {
        KUBE_PRIMARY: upstream(90, 0, [0, 90]),
        KUBE_CANARY: upstream(10, 1, [0, 10]),
        PRIMARY: upstream(7, 7, [7]),  # a Gloo Upstream's: not this Canary's
    }
    lab = ScriptedLab(
        [state("Progressing", 10, **{KUBE_PRIMARY: upstream(40, 0, [0, 40])}), state("Progressing", 10, **both)],
        progressive.canary(provider="gatewayapi:v1"),
    )
    watch = CanaryWatch(lab)  # type: ignore[arg-type]
    watch.poll()
    sample = watch.poll()
    assert sample.totals["primary"][:2] == (90, 0) and sample.totals["canary"][:2] == (10, 1)
    # 99% of the 50 new requests is rank 49.5, in the (0.5, 1] bucket.
    success, p99, requests = watch.checks("primary", seconds=60)
    assert (success, requests) == (100.0, 50) and p99 == pytest.approx(0.5 + 0.5 * 49.5 / 50)
    success, _, requests = watch.checks("canary", seconds=60)
    assert requests == 10 and success == pytest.approx(90.0)


def test_a_gloo_canary_does_not_count_the_kube_services_of_the_same_name() -> None:
    lab = ScriptedLab(
        [state("Progressing", 10, **{KUBE_PRIMARY: upstream(9, 0, [9]), KUBE_CANARY: upstream(3, 0, [3])})]
    )
    assert CanaryWatch(lab).poll().totals == {}  # type: ignore[arg-type]


def test_the_roles_follow_the_canarys_namespace_service_and_port() -> None:
    found = progressive.canary(provider="gatewayapi:v1")
    found["metadata"] = {"name": "web", "namespace": "shop"}
    found["spec"]["service"].update(name="store", port=9898)
    assert role_clusters(found) == {
        "primary": ("kube-svc:shop-store-primary-9898",),
        "canary": ("kube-svc:shop-store-canary-9898",),
    }
    gloo = progressive.canary()
    gloo["metadata"]["namespace"] = "shop"
    assert role_clusters(gloo)["canary"] == ("shop-petstore-canaryupstream-80", "shop.shop-petstore-canaryupstream-80")


def test_a_gloo_upstream_named_again_in_another_namespace_is_added_up() -> None:
    # The translator names the second of two same-named Upstreams "<namespace>.<name>".
    lab = ScriptedLab(
        [state("Progressing", 10, **{CANARY: upstream(4, 1, [0, 4]), f"default.{CANARY}": upstream(6, 0, [0, 6])})]
    )
    requests, fives, counts = CanaryWatch(lab).poll().totals["canary"]  # type: ignore[arg-type]
    assert (requests, fives, counts[:2]) == (10, 1, [0, 10])
