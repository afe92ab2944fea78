"""Per-upstream request stats, like Envoy's cluster stats (``upstream_rq_*``).

The gateway proxy calls ``UpstreamStats.record`` once per request that picked an
upstream, with the final status (its own 503/504 answers included) and the time
from the end of the request to the end of the response. Recording is a few dict
and list updates, cheap enough for the data path; percentiles are estimated from
the latency histogram only when someone asks for a ``snapshot``.

Beside the totals, each upstream keeps per-second buckets for the last
``WINDOW_KEPT_S`` seconds, so ``window`` answers what Prometheus's ``rate(...[30s])``
over Envoy's counters would: the canary controller's metrics read them.

Each gateway has its own ``UpstreamStats``, as each Envoy has its own stats:
``totals`` is what ``proxy.exposition`` writes in Prometheus's format, and
``merged_snapshot`` adds several gateways' snapshots up (the admin API's ``/v1/stats``).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# Upper bounds (ms) of the latency histogram buckets the snapshots and windows show:
# Envoy's defaults up to a minute.
BUCKETS_MS: tuple[float, ...] = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
# Envoy's default buckets go on to an hour (``Stats::HistogramSettingsImpl::defaultBuckets``);
# the Prometheus exposition shows all of them, so requests over a minute are told apart too.
OVER_MS: tuple[float, ...] = (300000, 600000, 1800000, 3600000)
ENVOY_BUCKETS_MS: tuple[float, ...] = BUCKETS_MS + OVER_MS
# How far back ``window`` can look: 15 minutes of one-second buckets per upstream.
WINDOW_KEPT_S = 900


class _Second:
    """What one upstream answered during one second of the clock."""

    __slots__ = ("by_class", "counts", "requests", "second")

    def __init__(self, second: int) -> None:
        self.second = second
        self.requests = 0
        self.by_class = [0, 0, 0, 0, 0, 0]  # 0xx..5xx
        self.counts = [0] * (len(BUCKETS_MS) + 1)


class _Cluster:
    __slots__ = ("by_status", "counts", "over", "requests", "seconds", "sum_ms")

    def __init__(self) -> None:
        self.requests = 0
        self.by_status: dict[int, int] = {}
        self.counts = [0] * (len(BUCKETS_MS) + 1)  # the last bucket is "over 60 s"
        self.over = [0] * (len(OVER_MS) + 1)  # "over 60 s" split at Envoy's larger bounds
        self.sum_ms = 0.0
        # A ring indexed by second % WINDOW_KEPT_S: a slot holding an older second is reused.
        self.seconds: list[_Second | None] = [None] * WINDOW_KEPT_S


class UpstreamStats:
    """Request counts by status and class, and a latency histogram, per upstream.

    >>> s = UpstreamStats()
    >>> s.record("default-petstore-v1-8080", 200, 0.003)
    >>> s.snapshot()["default-petstore-v1-8080"]["by_class"]
    {'2xx': 1}
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clusters: dict[str, _Cluster] = {}
        self._clock = clock

    def record(self, cluster: str, status: int, seconds: float) -> None:
        """Count one finished request to ``cluster``."""
        c = self._clusters.get(cluster)
        if c is None:
            c = self._clusters[cluster] = _Cluster()
        c.requests += 1
        c.by_status[status] = c.by_status.get(status, 0) + 1
        ms = seconds * 1000.0
        c.sum_ms += ms
        bucket = bisect_left(BUCKETS_MS, ms)
        c.counts[bucket] += 1
        if bucket == len(BUCKETS_MS):  # rare: only requests over a minute pay for this
            c.over[bisect_left(OVER_MS, ms)] += 1
        now = int(self._clock())
        slot = c.seconds[now % WINDOW_KEPT_S]
        if slot is None or slot.second != now:
            slot = c.seconds[now % WINDOW_KEPT_S] = _Second(now)
        slot.requests += 1
        slot.by_class[min(max(status // 100, 0), 5)] += 1
        slot.counts[bucket] += 1

    def window(self, cluster: str, seconds: float) -> dict[str, Any]:
        """What ``cluster`` answered over the last ``seconds`` (at most ``WINDOW_KEPT_S``):
        ``{requests, by_class, latency_ms: {buckets, counts}, p99_ms}``, counted in whole
        seconds, the current one included. ``p99_ms`` is None when nothing was answered,
        as Prometheus has no value for a rate over no requests."""
        now = int(self._clock())
        span = max(1, min(round(seconds), WINDOW_KEPT_S))
        requests, by_class, counts = 0, [0] * 6, [0] * (len(BUCKETS_MS) + 1)
        c = self._clusters.get(cluster)
        for slot in list(c.seconds) if c is not None else []:
            if slot is None or not now - span < slot.second <= now:
                continue
            requests += slot.requests
            by_class = [a + b for a, b in zip(by_class, list(slot.by_class), strict=True)]
            counts = [a + b for a, b in zip(counts, list(slot.counts), strict=True)]
        return {
            "requests": requests,
            "by_class": {f"{i}xx": n for i, n in enumerate(by_class) if n},
            "latency_ms": {"buckets": list(BUCKETS_MS), "counts": counts},
            "p99_ms": quantile(counts, 0.99),
        }

    def totals(self) -> dict[str, Totals]:
        """What each upstream answered since the start: the counters Envoy keeps."""
        out: dict[str, Totals] = {}
        # The proxies record on the data plane's thread while this runs on the control
        # plane's: copy each dict and list in one step (atomic under the GIL) before use.
        for name, c in sorted(list(self._clusters.items())):
            counts, over = list(c.counts), list(c.over)
            out[name] = Totals(c.requests, dict(c.by_status), counts[:-1] + over, c.sum_ms)
        return out

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able copy: ``{cluster: {requests, by_status, by_class, latency_ms,
        p50_ms, p99_ms}}``.

        ``latency_ms.counts`` are per bucket, not cumulative: ``counts[i]`` counts
        requests that took at most ``buckets[i]`` ms and more than ``buckets[i-1]``;
        the one extra last entry counts those over ``buckets[-1]``. ``p50_ms`` and
        ``p99_ms`` are estimated from the histogram (linear within a bucket), as
        Envoy and Prometheus do.
        """
        return merged_snapshot([self])

    def names(self) -> list[str]:
        """The clusters that answered at least once."""
        return sorted(list(self._clusters))

    def reset(self) -> None:
        """Forget everything recorded so far."""
        self._clusters = {}


@dataclass
class Totals:
    """One upstream's counters: requests, requests per status, the latency histogram
    per bucket of ``ENVOY_BUCKETS_MS`` (plus one over the last bound) and its sum in ms."""

    requests: int
    by_status: dict[int, int]
    counts: list[int]
    sum_ms: float

    def add(self, other: Totals) -> None:
        self.requests += other.requests
        for status, n in other.by_status.items():
            self.by_status[status] = self.by_status.get(status, 0) + n
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.sum_ms += other.sum_ms


def merged_snapshot(stats: Iterable[UpstreamStats]) -> dict[str, Any]:
    """The ``snapshot`` of several gateways' stats added up, upstream by upstream
    (one gateway's stats: its own ``snapshot``)."""
    merged: dict[str, Totals] = {}
    for one in stats:
        for name, totals in one.totals().items():
            if name in merged:
                merged[name].add(totals)
            else:
                merged[name] = totals
    out: dict[str, Any] = {}
    for name, t in sorted(merged.items()):
        by_class: dict[str, int] = {}
        for status, n in t.by_status.items():
            key = f"{status // 100}xx"
            by_class[key] = by_class.get(key, 0) + n
        counts = [*t.counts[: len(BUCKETS_MS)], sum(t.counts[len(BUCKETS_MS) :])]
        out[name] = {
            "requests": t.requests,
            "by_status": {str(s): n for s, n in sorted(t.by_status.items())},
            "by_class": dict(sorted(by_class.items())),
            "latency_ms": {
                "buckets": list(BUCKETS_MS),
                "counts": counts,
                "counts_are": "per-bucket",
                "sum": round(t.sum_ms, 3),
            },
            "p50_ms": quantile(counts, 0.50),
            "p99_ms": quantile(counts, 0.99),
        }
    return out


def quantile(counts: list[int], q: float) -> float | None:
    """The ``q`` quantile (ms) of a per-bucket histogram, interpolated linearly
    inside the bucket where it falls; None when nothing was recorded."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            lower = BUCKETS_MS[i - 1] if i > 0 else 0.0
            if i == len(BUCKETS_MS):  # over the last bound: the bound is all we know
                return float(BUCKETS_MS[-1])
            upper = BUCKETS_MS[i]
            return round(lower + (upper - lower) * (rank - seen) / n, 3)
        seen += n
    return float(BUCKETS_MS[-1])
