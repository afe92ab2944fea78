"""Per-upstream request stats, like Envoy's cluster stats (``upstream_rq_*``).

The gateway proxy calls ``UpstreamStats.record`` once per request that picked an
upstream, with the final status (its own 503/504 answers included) and the time
from the end of the request to the end of the response. Recording is a few dict
and list updates, cheap enough for the data path; percentiles are estimated from
the latency histogram only when someone asks for a ``snapshot``.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

# Upper bounds (ms) of the latency histogram buckets, as Envoy's defaults.
BUCKETS_MS: tuple[float, ...] = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


class _Cluster:
    __slots__ = ("by_status", "counts", "requests", "sum_ms")

    def __init__(self) -> None:
        self.requests = 0
        self.by_status: dict[int, int] = {}
        self.counts = [0] * (len(BUCKETS_MS) + 1)  # the last bucket is "over 60 s"
        self.sum_ms = 0.0


class UpstreamStats:
    """Request counts by status and class, and a latency histogram, per upstream.

    >>> s = UpstreamStats()
    >>> s.record("default-petstore-v1-8080", 200, 0.003)
    >>> s.snapshot()["default-petstore-v1-8080"]["by_class"]
    {'2xx': 1}
    """

    def __init__(self) -> None:
        self._clusters: dict[str, _Cluster] = {}

    def record(self, cluster: str, status: int, seconds: float) -> None:
        """Count one finished request to ``cluster``."""
        c = self._clusters.get(cluster)
        if c is None:
            c = self._clusters[cluster] = _Cluster()
        c.requests += 1
        c.by_status[status] = c.by_status.get(status, 0) + 1
        ms = seconds * 1000.0
        c.sum_ms += ms
        c.counts[bisect_left(BUCKETS_MS, ms)] += 1

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able copy: ``{cluster: {requests, by_status, by_class, latency_ms,
        p50_ms, p99_ms}}``.

        ``latency_ms.counts`` are per bucket, not cumulative: ``counts[i]`` counts
        requests that took at most ``buckets[i]`` ms and more than ``buckets[i-1]``;
        the one extra last entry counts those over ``buckets[-1]``. ``p50_ms`` and
        ``p99_ms`` are estimated from the histogram (linear within a bucket), as
        Envoy and Prometheus do.
        """
        out: dict[str, Any] = {}
        # The proxies record on the data plane's thread while this runs on the control
        # plane's: copy each dict in one step (atomic under the GIL) before walking it.
        for name, c in sorted(list(self._clusters.items())):
            by_status = dict(c.by_status)
            by_class: dict[str, int] = {}
            for status, n in by_status.items():
                key = f"{status // 100}xx"
                by_class[key] = by_class.get(key, 0) + n
            out[name] = {
                "requests": c.requests,
                "by_status": {str(s): n for s, n in sorted(by_status.items())},
                "by_class": dict(sorted(by_class.items())),
                "latency_ms": {
                    "buckets": list(BUCKETS_MS),
                    "counts": list(c.counts),
                    "counts_are": "per-bucket",
                    "sum": round(c.sum_ms, 3),
                },
                "p50_ms": _quantile(c.counts, 0.50),
                "p99_ms": _quantile(c.counts, 0.99),
            }
        return out

    def reset(self) -> None:
        """Forget everything recorded so far."""
        self._clusters = {}


def _quantile(counts: list[int], q: float) -> float | None:
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
