"""The built-in checks, from the gateway's stats windows, worded as Flagger's events."""

from __future__ import annotations

from typing import Any

import pytest

from helpers.runtime.flagger.metrics import check_metrics, go_duration, go_float
from helpers.runtime.proxy.stats import UpstreamStats

CLUSTER = "default-petstore-canaryupstream-80"


def seconds(text: str) -> float:
    return float(text.rstrip("s"))


def canary(*metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "pets", "namespace": "default"},
        "spec": {"targetRef": {"name": "petstore"}, "analysis": {"metrics": list(metrics)}},
    }


SUCCESS = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "30s"}
DURATION = {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "30s"}


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_traffic_is_no_value_and_a_failed_check() -> None:
    stats = UpstreamStats()
    stats.record("default-petstore-primaryupstream-80", 200, 0.001)  # the primary's traffic does not count
    (message,) = check_metrics(canary(SUCCESS, DURATION), stats, seconds)
    assert message == (
        "Halt advancement no values found for gloo metric request-success-rate "
        "probably petstore.default is not receiving traffic: no values found"
    )
    (message,) = check_metrics(canary(DURATION), stats, seconds)
    assert message.endswith("probably petstore.default is not receiving traffic")


def test_success_rate_counts_5xx_only() -> None:
    stats = UpstreamStats()
    for status in [200] * 97 + [404, 500, 503]:
        stats.record(CLUSTER, status, 0.002)
    assert check_metrics(canary({**SUCCESS, "thresholdRange": {"min": 98}}), stats, seconds) == []
    (message,) = check_metrics(canary(SUCCESS, DURATION), stats, seconds)
    assert message == "Halt pets.default advancement success rate 98.00% < 99%"


def test_duration_is_the_p99_in_whole_ms() -> None:
    stats = UpstreamStats()
    for _ in range(90):
        stats.record(CLUSTER, 200, 0.003)
    for _ in range(10):
        stats.record(CLUSTER, 200, 0.9)  # the 500-1000 ms bucket
    (message,) = check_metrics(canary(SUCCESS, DURATION), stats, seconds)
    assert message.startswith("Halt pets.default advancement request duration ") and message.endswith("ms > 500ms")
    assert check_metrics(canary({**DURATION, "thresholdRange": {"max": 1000}}), stats, seconds) == []


def test_only_the_metrics_interval_counts() -> None:
    clock = Clock()
    stats = UpstreamStats(clock=clock)
    for _ in range(10):
        stats.record(CLUSTER, 500, 0.001)
    clock.now += 60
    stats.record(CLUSTER, 200, 0.001)
    assert check_metrics(canary(SUCCESS), stats, seconds) == []  # the 500s are older than 30 s
    assert check_metrics(canary({**SUCCESS, "interval": "90s"}), stats, seconds) != []


def test_the_built_in_checks_leave_template_metrics_and_unknown_names_to_check_all() -> None:
    stats = UpstreamStats()
    stats.record(CLUSTER, 200, 0.001)
    assert check_metrics(canary({"name": "errors", "templateRef": {"name": "t"}}), stats, seconds) == []
    assert check_metrics(canary({"name": "other"}), stats, seconds) == []


@pytest.mark.parametrize(
    ("ms", "text"), [(0, "0s"), (523, "523ms"), (1500, "1.5s"), (60000, "1m0s"), (61500, "1m1.5s"), (3600000, "1h0m0s")]
)
def test_durations_print_as_go_does(ms: int, text: str) -> None:
    assert go_duration(ms) == text


def test_floats_print_as_go_does() -> None:
    assert (go_float(99), go_float(99.5)) == ("99", "99.5")
