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
