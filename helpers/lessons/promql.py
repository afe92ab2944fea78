"""Lesson 9's set-up, its reading of the gateway's metrics, and its exercise.

The lesson starts from a lab with kgateway and its Gateway ``kgateway-system/http``, the
canary controller, the lab's Prometheus where the machine has one (``make prometheus``),
the petstore (one Deployment ``petstore``, v1) and the loadtester. A lab that ran a
Canary before is emptied first, as for lesson 8.

``scrape`` reads a Gateway's stats page in Prometheus's text format and ``Scrape`` answers
what the lesson asks of it (requests per status code, a latency quantile between two
scrapes), from the same counters Prometheus stores: the lesson's verdicts hold with or
without a Prometheus server.

The exercise's Canary checks only the latency-regression MetricTemplate, so a version
that fails 30% of its requests quickly (``rollout-bad.yaml``) is promoted. The learner
writes a MetricTemplate for the canary's error rate, adds it to the Canary, ships the
bad version and watches the analysis roll it back.
"""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from helpers.builders import httproutes, progressive
from helpers.errors import CheckFailed
from helpers.lab import Lab
from helpers.lessons.inforce import settle
from helpers.lessons.probing import http_get
from helpers.lessons.progressive import primary_version, shipped_and_rolled_back, watched
from helpers.lessons.served import primary
from helpers.live.progressive import apply_canary, follow_rollout, wait_for_phase
from helpers.loading import load_manifests, manifests_dir

GATEWAY = progressive.KGATEWAY  # the Gateway the Canary's HTTPRoute attaches to
ROLES = ("primary", "canary")
BAD_ERROR_RATE = "0.3"  # rollout-bad.yaml's ERROR_RATE: the version the exercise must catch
LATENCY_MAX_MS = 100  # the lesson's latency-regression threshold
ROLLOUT_TIMEOUT_S = 180.0
WAIT_S = 120.0


def start_objects() -> list[dict[str, Any]]:
    """What lesson 9 applies before its first step: the petstore, the loadtester and
    the Gateway ``kgateway-system/http``."""
    folder = manifests_dir() / "flagger"
    return [*load_manifests([folder / "petstore.yaml", folder / "loadtester.yaml"]), httproutes.gateway()]


def prometheus_available(lab: Lab) -> bool:
    """Whether the lab can run a Prometheus server (``lab.status()["prometheus"]["available"]``)."""
    return bool((lab.status().get("prometheus") or {}).get("available"))


def lesson_canary(metrics: Iterable[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The lesson's Canary: ``manifests/flagger/gatewayapi/canary.yaml``, with ``metrics``
    instead of the built-in checks when given."""
    found = progressive.canary(provider=progressive.GATEWAY_API)
    return found if metrics is None else progressive.with_metrics(found, list(metrics))


def latency_checked_canary() -> dict[str, Any]:
    """The built-in checks and the latency-regression MetricTemplate (at most 100 ms)."""
    checks = [progressive.success_rate(), progressive.duration()]
    return lesson_canary([*checks, progressive.template_metric("latency-regression", maximum=LATENCY_MAX_MS)])


def exercise_canary() -> dict[str, Any]:
    """The exercise's Canary: the latency-regression MetricTemplate its only check."""
    return lesson_canary([progressive.template_metric("latency-regression", maximum=LATENCY_MAX_MS)])


def error_rate_query() -> str:
    """The reference answer's PromQL: the % of the canary's requests answered 5xx, as
    100 minus the share of the others (a version with no 5xx has no 5xx series at all)."""
    cluster = 'envoy_cluster_name=~"kube_{{ namespace }}_{{ target }}-canary_[0-9]+"'
    window = "[{{ interval }}]"
    return (
        f'100 - sum(rate(envoy_cluster_upstream_rq{{{cluster}, envoy_response_code!~"5.*"}}{window}))\n'
        f"/ sum(rate(envoy_cluster_upstream_rq{{{cluster}}}{window})) * 100\n"
    )


# ── the gateway's metrics, as Prometheus reads them ─────────────────────────


def scrape(lab: Lab, gateway: str = GATEWAY) -> Scrape:
    """The Gateway's stats page (``lab.stats_url(gateway)``), read with the lab's token."""
    home = Path(str(lab.status()["home"]))
    token = (home / "token").read_text(encoding="utf-8").strip()
    request = urllib.request.Request(lab.stats_url(gateway), headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return Scrape(answer.read().decode("utf-8"))


class Scrape:
    """One scrape of a stats page: the metric families ``prometheus_client`` parses."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = list(text_string_to_metric_families(text))

    def types(self, prefix: str = "envoy_cluster_upstream_rq") -> list[str]:
        """The ``# TYPE`` lines of the metrics whose name starts with ``prefix``."""
        return [line for line in self.text.splitlines() if line.startswith(f"# TYPE {prefix}")]

    def samples(
        self, family: str, role: str, target: str = progressive.NAME
    ) -> list[tuple[str, dict[str, str], float]]:
        """``(sample name, labels, value)`` of the family ``family`` for the Service
        ``<target>-<role>``. The parser names a counter's family without ``_total``, as
        OpenMetrics does, so ``envoy_cluster_upstream_rq`` and ``..._rq_total`` share one."""
        cluster = f"_{target}-{role}_"
        return [
            (s.name, dict(s.labels), float(s.value))
            for f in self.families
            if f.name == family
            for s in f.samples
            if cluster in s.labels.get("envoy_cluster_name", "")
        ]

    def requests_by_code(self, role: str) -> dict[str, int]:
        """``{status code: requests}`` the gateway sent to the ``role`` Service so far."""
        found: dict[str, int] = {}
        for _, labels, value in self.samples("envoy_cluster_upstream_rq", role):
            if "envoy_response_code" in labels:  # not ..._rq_total, in the same family
                code = labels["envoy_response_code"]
                found[code] = found.get(code, 0) + int(value)
        return found

    def buckets(self, role: str) -> dict[float, float]:
        """The latency histogram's cumulative counts by upper bound (ms), ``+Inf`` last."""
        found: dict[float, float] = {}
        for name, labels, value in self.samples("envoy_cluster_upstream_rq_time", role):
            if not name.endswith("_bucket"):
                continue
            le = float(labels["le"])
            found[le] = found.get(le, 0.0) + value
        return dict(sorted(found.items()))


def quantile_between(before: Scrape, after: Scrape, role: str, q: float) -> float | None:
    """The ``q`` quantile (ms) of the requests ``role`` answered between two scrapes,
    as PromQL's ``histogram_quantile(q, increase(..._bucket[...]))``: linear inside
    its bucket. None when it answered none."""
    old = before.buckets(role)
    counts = [(le, n - old.get(le, 0.0)) for le, n in after.buckets(role).items()]
    if not counts or counts[-1][1] <= 0:
        return None
    rank, lower, seen = q * counts[-1][1], 0.0, 0.0
    for le, cumulative in counts:
        if cumulative >= rank:
            if math.isinf(le):
                return lower  # Prometheus answers the highest finite bound
            inside = cumulative - seen
            return lower + (le - lower) * ((rank - seen) / inside if inside else 1.0)
        lower, seen = le, cumulative
    return lower


# ── the exercise ─────────────────────────────────────────────────────────────


def exercise_start(lab: Lab) -> list[str]:
    """From the lesson's start: the latency-regression MetricTemplate and the exercise's
    Canary, initialized."""
    lines = list(lab.apply(progressive.latency_regression()))
    lines += apply_canary(lab, exercise_canary())
    wait_for_phase(lab, ("Initialized", "Succeeded"), WAIT_S)
    return lines


def solve(lab: Lab) -> list[str]:
    """The reference answer: an ``error-rate`` MetricTemplate (at most 1%) added to the
    Canary, then the bad version shipped and followed until the analysis ends."""
    lines = list(lab.apply(progressive.metric_template("error-rate", error_rate_query())))
    checks = [*exercise_canary()["spec"]["analysis"]["metrics"], progressive.template_metric("error-rate", maximum=1)]
    lines += apply_canary(lab, lesson_canary(checks))
    lines += lab.apply(manifests_dir() / "flagger" / "rollout-bad.yaml")
    follow_rollout(lab, ROLLOUT_TIMEOUT_S, say=None)
    return lines


def _error_metrics(lab: Lab, metrics: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """The Canary's template metrics whose MetricTemplate reads the response codes."""
    found = []
    for metric in metrics:
        ref = metric.get("templateRef") or {}
        if not ref.get("name"):
            continue
        templates = lab.objects("metrictemplates", str(ref["name"]), str(ref.get("namespace") or progressive.NAMESPACE))
        query = str(((templates[0] if templates else {}).get("spec") or {}).get("query") or "")
        if "envoy_response_code" in query:
            found.append((metric, query))
    return found


def check(lab: Lab) -> str:
    watch, sample = watched(lab, 9)
    metrics = list(((watch.canary.get("spec") or {}).get("analysis") or {}).get("metrics") or [])
    errors = _error_metrics(lab, metrics)
    if not errors:
        names = ", ".join(str(m.get("name")) for m in metrics) or "none"
        raise CheckFailed(
            f"no check of the Canary reads the response codes (its checks: {names})",
            "apply a MetricTemplate whose query is the canary's % of 5xx answers "
            "(progressive.metric_template(...), envoy_cluster_upstream_rq by envoy_response_code), "
            "then add progressive.template_metric(name, maximum=...) to the Canary's metrics",
        )
    metric, _ = errors[0]
    name, maximum = str(metric.get("name")), (metric.get("thresholdRange") or {}).get("max")
    if maximum is None or float(maximum) >= 100 * float(BAD_ERROR_RATE):
        raise CheckFailed(
            f"the {name} check allows {'any error rate' if maximum is None else f'{maximum:g}% of errors'}: "
            f"the bad version's {100 * float(BAD_ERROR_RATE):g}% passes it",
            "give the metric a thresholdRange max of a few % (template_metric(name, maximum=1))",
        )
    if not (lab.status().get("prometheus") or {}).get("installed"):
        raise CheckFailed(
            "the check is right, but this lab has no Prometheus to run its query",
            'install one (`make prometheus`), then lab.install("prometheus") and exercises.reset(9)',
        )
    shipped_and_rolled_back(sample, lab, 9, "bad", "rollout-bad.yaml", f"ERROR_RATE={BAD_ERROR_RATE}")
    halts = [m for m in lab.events(progressive.NAMESPACE)["MESSAGE"] if f"advancement {name} " in str(m)]
    if not halts:
        raise CheckFailed(
            f"the bad version was rolled back, but not by {name}: it never measured too many errors",
            "look at lab.events('default') for what failed, then exercises.reset(9)",
        )
    settle(lab, primary(primary_version(lab), GATEWAY))  # the rollback's routes, all to the primary
    status, data = http_get(lab.proxy_url(gateway=GATEWAY), "/api/pets")
    if status != 200 or not isinstance(data, list):
        raise CheckFailed(f"GET /api/pets through the Gateway answered {status}", "look at lab.get('canaries')")
    return f"your {name} template (at most {maximum:g}% of 5xx) rolled the bad version back; the primary still serves"
