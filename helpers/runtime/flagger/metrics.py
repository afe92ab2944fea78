"""The built-in metric checks, read from the gateway's per-upstream stats.

Flagger's Gloo observer asks Prometheus about Envoy's cluster of the canary
Upstream (``<namespace>-<target>-canaryupstream-<port>``) over the metric's interval:

- ``request-success-rate``: requests not answered 5xx / all requests * 100
  (``envoy_cluster_upstream_rq`` by response code);
- ``request-duration``: the 99th percentile in ms of ``envoy_cluster_upstream_rq_time``'s
  histogram (``histogram_quantile(0.99, ...)``).

With ``provider: gatewayapi:v1`` Flagger's observer reads the canary pods' own
``http_request_duration_seconds`` instead; here the checks read what the kgateway
listeners sent to the canary Service (``kube-svc:<namespace>-<target>-canary-<port>``),
the same requests seen from the gateway.

Here the same numbers come from ``UpstreamStats.window`` over the same interval. No
request in the window means no value, a failed check: "no values found ... probably
<target>.<namespace> is not receiving traffic". Checks stop at the first failure, and
the message is the event Flagger records, word for word.

``check_all`` runs them in Flagger's order: every built-in check first, then each
metric with a ``templateRef`` (its MetricTemplate's PromQL against Prometheus,
``templatechecks``); a metric that is neither fails as "no usable metrics template".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from helpers.runtime import regex
from helpers.runtime.flagger.httproutes import canary_cluster_pattern
from helpers.runtime.proxy.stats import quantile

BUILTIN = ("request-success-rate", "request-duration")
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


def _clusters(stats: Windows, namespace: str, target: str, provider: str = PROVIDER) -> list[str]:
    ns, name = regex.escape(namespace), regex.escape(target)
    if provider.startswith("gatewayapi:"):
        # Flagger's gatewayapi observer reads the canary pods' own request metrics; here,
        # what the kgateway listeners sent to the canary Service.
        pattern = regex.compile(canary_cluster_pattern(namespace, target))
    else:
        # The observer's envoy_cluster_name regex, less Envoy's "_<namespace>" suffix; the
        # translator names a second same-named upstream "<namespace>.<name>".
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
    """The failed built-in check of ``canary``'s metrics (at most one: checks stop
    there), as Flagger's event words it; empty when every one is within its range."""
    meta, spec = canary.get("metadata") or {}, canary.get("spec") or {}
    name, ns = str(meta.get("name")), str(meta.get("namespace") or "default")
    target = str((spec.get("targetRef") or {}).get("name"))
    provider = str(spec.get("provider") or PROVIDER)
    clusters = _clusters(stats, ns, target, provider)
    for metric in (spec.get("analysis") or {}).get("metrics") or []:
        metric_name = metric.get("name")
        if metric_name not in BUILTIN:
            continue  # a MetricTemplate's or no usable one: ``check_all`` comes to it after these
        seconds = parse_duration(str(metric.get("interval") or DEFAULT_INTERVAL))
        total, errors, counts = _window(stats, clusters, seconds)
        threshold = metric.get("thresholdRange") or {}
        if metric_name == "request-success-rate":
            if total == 0:
                return [
                    f"Halt advancement no values found for {provider} metric {metric_name} "
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
                    f"Halt advancement no values found for {provider} metric {metric_name} "
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


class TemplateChecks(Protocol):
    """What runs a MetricTemplate metric (``templatechecks.TemplateChecks``)."""

    async def check(self, canary: Mapping[str, Any], metric: Mapping[str, Any]) -> str | None: ...


async def check_all(
    canary: Mapping[str, Any],
    stats: Windows,
    parse_duration: Callable[[str], float],
    templates: TemplateChecks,
) -> list[str]:
    """The failed check of ``canary``'s metrics, built-in ones first, then those with a
    ``templateRef`` in order (Flagger's ``runBuiltinMetricChecks``, ``runMetricChecks``)."""
    failed = check_metrics(canary, stats, parse_duration)
    if failed:
        return failed
    for metric in ((canary.get("spec") or {}).get("analysis") or {}).get("metrics") or []:
        if metric.get("templateRef"):
            problem = await templates.check(canary, metric)
            if problem is not None:
                return [problem]
        elif metric.get("name") not in BUILTIN and not metric.get("query"):
            return ["Metric query failed for no usable metrics template and query were configured"]
    return []
