"""The built-in metric checks, read from the gateway's per-upstream stats.

Flagger's Gloo observer asks Prometheus about Envoy's cluster of the canary
Upstream (``<namespace>-<target>-canaryupstream-<port>``) over the metric's interval:

- ``request-success-rate``: requests not answered 5xx / all requests * 100
  (``envoy_cluster_upstream_rq`` by response code);
- ``request-duration``: the 99th percentile in ms of ``envoy_cluster_upstream_rq_time``'s
  histogram (``histogram_quantile(0.99, ...)``).

Here the same numbers come from ``UpstreamStats.window`` over the same interval. No
request in the window means no value, a failed check: "no values found ... probably
<target>.<namespace> is not receiving traffic". Checks stop at the first failure, and
the message is the event Flagger records, word for word.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from helpers.runtime import regex
from helpers.runtime.proxy.stats import quantile

DEFAULT_INTERVAL = "1m"  # Flagger's metric interval when a metric gives none
PROVIDER = "gloo"


class Windows(Protocol):
    """What the checks read: ``UpstreamStats``'s cluster names and windows."""

    def names(self) -> Iterable[str]: ...

    def window(self, cluster: str, seconds: float) -> dict[str, Any]: ...


def go_float(x: float) -> str:
    """A number as Go's ``%v`` prints a float64 (``99``, ``99.5``)."""
    return str(int(x)) if x == int(x) and abs(x) < 1e21 else repr(x)


def go_duration(ms: int) -> str:
    """Milliseconds as Go's ``time.Duration`` prints them (``523ms``, ``1.5s``, ``1m2s``)."""
    if ms == 0:
        return "0s"
    if abs(ms) < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def _clusters(stats: Windows, namespace: str, target: str) -> list[str]:
    # The observer's envoy_cluster_name regex, less Envoy's "_<namespace>" suffix; the
    # translator names a second same-named upstream "<namespace>.<name>".
    ns, name = regex.escape(namespace), regex.escape(target)
    pattern = regex.compile(rf"({ns}\.)?{ns}-{name}-canaryupstream-[0-9a-zA-Z-]+")
    return [n for n in stats.names() if pattern.fullmatch(n)]


def _window(stats: Windows, clusters: list[str], seconds: float) -> tuple[int, int, list[int]]:
    """(all requests, 5xx, latency bucket counts) summed over ``clusters``."""
    total, errors, counts = 0, 0, list[int]()
    for cluster in clusters:
        w = stats.window(cluster, seconds)
        total += w["requests"]
        errors += w["by_class"].get("5xx", 0)
        bucket_counts = w["latency_ms"]["counts"]
        counts = [a + b for a, b in zip(counts, bucket_counts, strict=True)] if counts else list(bucket_counts)
    return total, errors, counts


def check_metrics(
    canary: Mapping[str, Any],
    stats: Windows,
    parse_duration: Callable[[str], float],
) -> list[str]:
    """The failed check of ``canary``'s metrics (at most one: checks stop there), as
    Flagger's event words it; empty when every metric is within its range."""
    meta, spec = canary.get("metadata") or {}, canary.get("spec") or {}
    name, ns = str(meta.get("name")), str(meta.get("namespace") or "default")
    target = str((spec.get("targetRef") or {}).get("name"))
    clusters = _clusters(stats, ns, target)
    for metric in (spec.get("analysis") or {}).get("metrics") or []:
        metric_name = metric.get("name")
        if metric.get("templateRef"):
            ref = metric["templateRef"]
            return [
                f"Metric template {ref.get('name')}.{ref.get('namespace') or ns} error: MetricTemplates "
                "are not supported by the local runtime yet"
            ]
        if metric_name not in ("request-success-rate", "request-duration"):
            return ["Metric query failed for no usable metrics template and query were configured"]
        seconds = parse_duration(str(metric.get("interval") or DEFAULT_INTERVAL))
        total, errors, counts = _window(stats, clusters, seconds)
        threshold = metric.get("thresholdRange") or {}
        if metric_name == "request-success-rate":
            if total == 0:
                return [
                    f"Halt advancement no values found for {PROVIDER} metric {metric_name} "
                    f"probably {target}.{ns} is not receiving traffic: no values found"
                ]
            rate = (total - errors) / total * 100
            low, high = threshold.get("min"), threshold.get("max")
            if "thresholdRange" not in metric and metric.get("threshold") is not None:
                low = metric["threshold"]
            if low is not None and rate < low:
                return [f"Halt {name}.{ns} advancement success rate {rate:.2f}% < {go_float(low)}%"]
            if high is not None and rate > high:
                return [f"Halt {name}.{ns} advancement success rate {rate:.2f}% > {go_float(high)}%"]
        else:
            value = quantile(counts, 0.99) if total else None
            if value is None:
                return [
                    f"Halt advancement no values found for {PROVIDER} metric {metric_name} "
                    f"probably {target}.{ns} is not receiving traffic"
                ]
            ms = int(value)  # Flagger truncates the query's value to whole milliseconds
            low, high = threshold.get("min"), threshold.get("max")
            if "thresholdRange" not in metric and metric.get("threshold") is not None:
                high = metric["threshold"]
            if low is not None and ms < int(low):
                return [f"Halt {name}.{ns} advancement request duration {go_duration(ms)} < {go_duration(int(low))}"]
            if high is not None and ms > int(high):
                return [f"Halt {name}.{ns} advancement request duration {go_duration(ms)} > {go_duration(int(high))}"]
    return []
