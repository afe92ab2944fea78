"""Per-upstream stats: counts by status and class, the latency histogram, percentiles."""

from __future__ import annotations

import json

import pytest

from helpers.runtime.proxy.stats import BUCKETS_MS, UpstreamStats


def test_counts_by_cluster_status_and_class() -> None:
    stats = UpstreamStats()
    for status in (200, 200, 201, 503, 404):
        stats.record("default-petstore-v1-8080", status, 0.002)
    stats.record("default-petstore-v2-8080", 504, 15.0)
    snap = stats.snapshot()
    v1, v2 = snap["default-petstore-v1-8080"], snap["default-petstore-v2-8080"]
    assert v1["requests"] == 5
    assert v1["by_status"] == {"200": 2, "201": 1, "404": 1, "503": 1}
    assert v1["by_class"] == {"2xx": 3, "4xx": 1, "5xx": 1}
    assert (v2["requests"], v2["by_status"], v2["by_class"]) == (1, {"504": 1}, {"5xx": 1})
    assert set(snap) == {"default-petstore-v1-8080", "default-petstore-v2-8080"}
    assert json.loads(json.dumps(snap)) == snap  # JSON-able as it is


def test_histogram_buckets_are_per_bucket_upper_bounds() -> None:
    stats = UpstreamStats()
    for ms in (0.2, 0.5, 0.7, 3, 60000, 70000):
        stats.record("c", 200, ms / 1000)
    latency = stats.snapshot()["c"]["latency_ms"]
    assert latency["buckets"] == list(BUCKETS_MS) and latency["counts_are"] == "per-bucket"
    counts = latency["counts"]
    assert len(counts) == len(BUCKETS_MS) + 1  # the last one: over the last bound
    assert counts[0] == 2  # 0.2 and 0.5 (a bound is inclusive)
    assert counts[1] == 1 and counts[2] == 1  # 0.7 ≤ 1; 3 ≤ 5
    assert counts[BUCKETS_MS.index(60000)] == 1 and counts[-1] == 1
    assert sum(counts) == 6
    assert latency["sum"] == pytest.approx(0.2 + 0.5 + 0.7 + 3 + 60000 + 70000)


def test_percentiles_come_from_the_histogram() -> None:
    stats = UpstreamStats()
    for _ in range(98):
        stats.record("c", 200, 0.003)  # the 1-5 ms bucket
    for _ in range(2):
        stats.record("c", 200, 0.2)  # the 100-250 ms bucket
    snap = stats.snapshot()["c"]
    assert 1 < snap["p50_ms"] <= 5
    assert 100 < snap["p99_ms"] <= 250
    stats.record("slow", 200, 120.0)
    assert stats.snapshot()["slow"]["p99_ms"] == BUCKETS_MS[-1]  # beyond the last bound: the bound


def test_reset_forgets_everything() -> None:
    stats = UpstreamStats()
    stats.record("c", 200, 0.001)
    stats.reset()
    assert stats.snapshot() == {}
    stats.record("c", 500, 0.001)
    assert stats.snapshot()["c"]["by_status"] == {"500": 1}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_counts_only_the_last_seconds() -> None:
    clock = FakeClock()
    stats = UpstreamStats(clock=clock)
    stats.record("c", 200, 0.003)
    clock.now += 10
    for status in (200, 500, 503, 404):
        stats.record("c", status, 0.003)
    last5 = stats.window("c", 5)
    assert last5["requests"] == 4
    assert last5["by_class"] == {"2xx": 1, "4xx": 1, "5xx": 2}
    assert stats.window("c", 11)["requests"] == 5  # the first request is 10 s old
    assert stats.snapshot()["c"]["requests"] == 5  # the totals are untouched


def test_window_histogram_and_p99() -> None:
    clock = FakeClock()
    stats = UpstreamStats(clock=clock)
    for _ in range(99):
        stats.record("c", 200, 0.003)
    stats.record("c", 200, 0.2)
    window = stats.window("c", 30)
    assert window["latency_ms"]["buckets"] == list(BUCKETS_MS)
    assert sum(window["latency_ms"]["counts"]) == 100
    assert 1 < window["p99_ms"] <= 5
    clock.now += 31
    empty = stats.window("c", 30)
    assert (empty["requests"], empty["by_class"], empty["p99_ms"]) == (0, {}, None)
    assert stats.window("unknown", 30)["requests"] == 0


def test_window_slots_are_reused_after_the_kept_span() -> None:
    from helpers.runtime.proxy.stats import WINDOW_KEPT_S

    clock = FakeClock()
    stats = UpstreamStats(clock=clock)
    stats.record("c", 500, 0.001)
    clock.now += WINDOW_KEPT_S  # the same slot of the ring, a new second
    stats.record("c", 200, 0.001)
    assert stats.window("c", WINDOW_KEPT_S)["by_class"] == {"2xx": 1}
