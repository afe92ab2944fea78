"""A gateway's stats in Prometheus's text format, as Envoy's admin ``/stats/prometheus``.

The names and labels are Envoy's, so the queries written for a real gateway (Flagger's
built-in Gloo checks, dashboards, a MetricTemplate) work on the lab's unchanged:

- ``envoy_cluster_upstream_rq{envoy_response_code, envoy_cluster_name}``: requests per
  status code (counter); ``envoy_cluster_upstream_rq_xx{envoy_response_code_class}`` per
  class; ``envoy_cluster_upstream_rq_total`` and ``_completed`` in all (counters);
- ``envoy_cluster_upstream_rq_time``: the latency histogram in milliseconds, with
  Envoy's default buckets (``_bucket{le}``, cumulative, up to ``+Inf``; ``_sum``, ``_count``);
- ``envoy_server_live`` and ``envoy_server_uptime`` (gauges).

``envoy_cluster_name`` is Envoy's name for the cluster, which the gateway hands over as
``names`` (Gloo names a cluster ``<upstream>_<namespace>``, kgateway
``kube_<namespace>_<service>_<port>``); a cluster it does not name keeps the runtime's
name, with ``:`` made ``_`` as Envoy does in stats names. Every named cluster has its
counters, zero before any request, as Envoy's configured clusters do; the histogram
appears with the first request.
"""

from __future__ import annotations

from collections.abc import Mapping

from helpers.runtime.proxy.stats import ENVOY_BUCKETS_MS, Totals, UpstreamStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what Envoy's admin answers
PATH = "/stats/prometheus"


def envoy_name(cluster: str, names: Mapping[str, str]) -> str:
    """Envoy's name for the runtime's ``cluster``: the gateway's, else the runtime's
    with ``:`` made ``_`` (Envoy's stats names never hold a colon)."""
    return names.get(cluster) or cluster.replace(":", "_")


def render(stats: UpstreamStats, names: Mapping[str, str], uptime_s: float) -> str:
    """The text ``/stats/prometheus`` answers for one gateway: its ``stats``, its
    clusters named by ``names`` (the runtime's name to Envoy's), ``uptime_s`` seconds up."""
    clusters: dict[str, Totals] = {
        envoy_name(c, names): Totals(0, {}, [0] * (len(ENVOY_BUCKETS_MS) + 1), 0.0) for c in names
    }
    for cluster, totals in stats.totals().items():
        shown = envoy_name(cluster, names)
        if shown in clusters:
            clusters[shown].add(totals)
        else:
            clusters[shown] = totals
    by_code, by_class, completed, total = [], [], [], []
    histogram: list[str] = []
    for shown, t in sorted(clusters.items()):
        cluster = f'envoy_cluster_name="{_escape(shown)}"'
        classes: dict[int, int] = {}
        for status, n in sorted(t.by_status.items()):
            by_code.append(f'envoy_cluster_upstream_rq{{envoy_response_code="{status}",{cluster}}} {n}')
            classes[status // 100] = classes.get(status // 100, 0) + n
        by_class += [
            f'envoy_cluster_upstream_rq_xx{{envoy_response_code_class="{c}",{cluster}}} {n}'
            for c, n in sorted(classes.items())
        ]
        completed.append(f"envoy_cluster_upstream_rq_completed{{{cluster}}} {sum(t.by_status.values())}")
        total.append(f"envoy_cluster_upstream_rq_total{{{cluster}}} {t.requests}")
        if t.requests:
            histogram += _histogram("envoy_cluster_upstream_rq_time", cluster, t)
    lines = [
        "# TYPE envoy_cluster_upstream_rq counter",
        *by_code,
        "# TYPE envoy_cluster_upstream_rq_completed counter",
        *completed,
        "# TYPE envoy_cluster_upstream_rq_total counter",
        *total,
        "# TYPE envoy_cluster_upstream_rq_xx counter",
        *by_class,
        "# TYPE envoy_server_live gauge",
        "envoy_server_live 1",
        "# TYPE envoy_server_uptime gauge",
        f"envoy_server_uptime {int(uptime_s)}",
        "# TYPE envoy_cluster_upstream_rq_time histogram",
        *histogram,
    ]
    return "\n".join(lines) + "\n"


def _histogram(metric: str, cluster: str, t: Totals) -> list[str]:
    lines, seen = [], 0
    for bound, n in zip(ENVOY_BUCKETS_MS, t.counts, strict=False):
        seen += n
        lines.append(f'{metric}_bucket{{{cluster},le="{_number(bound)}"}} {seen}')
    count = sum(t.counts)  # from the buckets, so +Inf and _count always agree
    lines.append(f'{metric}_bucket{{{cluster},le="+Inf"}} {count}')
    lines.append(f"{metric}_sum{{{cluster}}} {_number(round(t.sum_ms, 3))}")
    lines.append(f"{metric}_count{{{cluster}}} {count}")
    return lines


def _number(x: float) -> str:
    # As Envoy prints them: 0.5, 1, 3600000 (never 3.6e+06).
    return str(int(x)) if x == int(x) else repr(x)


def _escape(value: str) -> str:
    # The text format's escapes in a label value: backslash, double quote, newline.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
