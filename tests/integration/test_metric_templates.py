"""Flagger's own Gloo queries, as MetricTemplates against the lab's real Prometheus, give
the verdicts the built-in checks give, on the same traffic and the same window.

Three canary Upstreams, named as Flagger's Gloo router names them
(``default-<target>-canaryupstream-80``), each in front of a petstore: ``good`` (fast,
no errors), ``bad`` (30% of answers 500) and ``slow`` (700 ms an answer). Real
traffic goes through the gateway to all three; then, for each target, the built-in
checks (``metrics.check_metrics``, on the gateway's counts of exactly that traffic) and
the MetricTemplates (``templatechecks``: rendered, sent to Prometheus's
``/api/v1/query``, compared with the same ``thresholdRange``) must both pass or both
fail. The templates' queries are ``pkg/metrics/observers/gloo.go``'s, as a learner
would copy them into a MetricTemplate.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import aiohttp
import pytest
import yaml

from helpers import Lab
from helpers.durations import parse_duration
from helpers.runtime import prometheus as prometheus_server
from helpers.runtime import servicedns
from helpers.runtime.flagger import metrics
from helpers.runtime.flagger.prometheus import NoValuesFound, Provider, run_query
from helpers.runtime.flagger.templatechecks import TemplateChecks
from tests.conftest import wait_for
from tests.integration.conftest import MANIFESTS, Hammer

pytestmark = pytest.mark.integration

needs_prometheus = pytest.mark.skipif(
    prometheus_server.find_binary() is None,
    reason="no `prometheus` on PATH: `make prometheus` (or `sudo apt-get install prometheus`) installs it",
)

TARGETS = {"good": {}, "bad": {"ERROR_RATE": "0.3"}, "slow": {"LATENCY_MS": "700"}}
INTERVAL = "1m"  # covers all the traffic at the moment of the checks, in both readings
CLUSTER_RE = '"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"'
SUCCESS_RATE_QUERY = f"""
sum(rate(envoy_cluster_upstream_rq{{envoy_cluster_name=~{CLUSTER_RE}, envoy_response_code!~"5.*"}}[{{{{ interval }}}}]))
/
sum(rate(envoy_cluster_upstream_rq{{envoy_cluster_name=~{CLUSTER_RE}}}[{{{{ interval }}}}]))
* 100
"""
DURATION_QUERY = f"""
histogram_quantile(0.99,
  sum(rate(envoy_cluster_upstream_rq_time_bucket{{envoy_cluster_name=~{CLUSTER_RE}}}[{{{{ interval }}}}])) by (le)
)
"""
BUILTIN = {
    "success": {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": INTERVAL},
    "duration": {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": INTERVAL},
}
TEMPLATED = {
    kind: {**metric, "name": f"gloo-{kind}", "templateRef": {"name": f"gloo-{kind}", "namespace": "gloo-system"}}
    for kind, metric in BUILTIN.items()
}


def metric_template(name: str, query: str) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": name, "namespace": "gloo-system"},
        "spec": {"provider": {"type": "prometheus", "address": servicedns.PROMETHEUS_URL}, "query": query},
    }


def backends() -> list[dict[str, Any]]:
    """The petstore's ConfigMap, then per target a Deployment, a Service and the canary Upstream."""
    docs = list(yaml.safe_load_all((MANIFESTS / "flagger" / "petstore.yaml").read_text()))
    app = next(d for d in docs if d and d["kind"] == "ConfigMap")
    deployment = next(d for d in docs if d and d["kind"] == "Deployment")
    out = [app]
    for target, env in TARGETS.items():
        d = copy.deepcopy(deployment)
        d["metadata"] = {"name": target, "namespace": "default", "labels": {"app": target}}
        d["spec"]["selector"] = {"matchLabels": {"app": target}}
        d["spec"]["template"]["metadata"]["labels"] = {"app": target}
        d["spec"]["template"]["spec"]["containers"][0]["env"] += [{"name": k, "value": v} for k, v in env.items()]
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": target, "namespace": "default"},
            "spec": {"selector": {"app": target}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }
        upstream = {
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Upstream",
            "metadata": {"name": f"default-{target}-canaryupstream-80", "namespace": "default"},
            "spec": {"kube": {"serviceName": target, "serviceNamespace": "default", "servicePort": 80}},
        }
        out += [d, service, upstream]
    return out


def virtual_service() -> dict[str, Any]:
    routes = [
        {
            "matchers": [{"prefix": f"/{target}"}],
            "routeAction": {
                "single": {"upstream": {"name": f"default-{target}-canaryupstream-80", "namespace": "default"}}
            },
            "options": {"prefixRewrite": "/api/pets"},
        }
        for target in TARGETS
    ]
    return {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "canaries", "namespace": "gloo-system"},
        "spec": {"virtualHost": {"domains": ["*"], "routes": routes}},
    }


def canary(target: str, metric: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": target, "namespace": "default"},
        "spec": {"provider": "gloo", "targetRef": {"name": target}, "analysis": {"metrics": [metric]}},
    }


class Between:
    """The gateway's counts between two snapshots of ``lab.stats()``, as the built-in
    checks read a window: the traffic of the test is all there is in it."""

    def __init__(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        self.before, self.after = before, after

    def names(self) -> list[str]:
        return sorted(self.after)

    def window(self, cluster: str, seconds: float) -> dict[str, Any]:
        new, old = self.after.get(cluster) or {}, self.before.get(cluster) or {}
        classes = set(new.get("by_class") or {})
        counts = new["latency_ms"]["counts"]
        old_counts = (old.get("latency_ms") or {}).get("counts") or [0] * len(counts)
        return {
            "requests": new.get("requests", 0) - old.get("requests", 0),
            "by_class": {c: new["by_class"][c] - (old.get("by_class") or {}).get(c, 0) for c in classes},
            "latency_ms": {
                "buckets": new["latency_ms"]["buckets"],
                "counts": [a - b for a, b in zip(counts, old_counts, strict=True)],
            },
        }


async def scraped_so_far(url: str, promql: str) -> float | None:
    """The query's number, None before Prometheus has any sample of it."""
    async with aiohttp.ClientSession() as session:
        try:
            return await run_query(session, Provider(url), promql, {})
        except NoValuesFound:
            return None


def total(stats: dict[str, Any], target: str) -> int:
    return int((stats.get(f"default-{target}-canaryupstream-80") or {}).get("requests", 0))


@needs_prometheus
def test_flaggers_gloo_queries_as_metric_templates_agree_with_the_built_in_checks(lab: Lab) -> None:
    lab.install("gloo")
    lab.install("flagger")
    lab.apply(*backends())
    lab.wait(60)
    lab.apply(virtual_service())
    templates = [metric_template("gloo-success", SUCCESS_RATE_QUERY), metric_template("gloo-duration", DURATION_QUERY)]
    lab.apply(*templates)
    stored = {
        ("MetricTemplate", "gloo-system", t["metadata"]["name"]): t
        for t in lab.objects("metrictemplates", namespace="gloo-system")
    }
    assert len(stored) == 2
    url = lab.install("prometheus")["url"]
    # The three counters, zero until traffic comes: once Prometheus has them, it sees the
    # traffic from its start (a rate needs a sample from before it, on a cluster too).
    scraped = 'sum(envoy_cluster_upstream_rq_total{envoy_cluster_name=~"default-(good|bad|slow)-canaryupstream-.*"})'
    wait_for(lambda: asyncio.run(scraped_so_far(url, scraped)) is not None, 60, "Prometheus's first scrape")

    before = lab.stats()
    with Hammer(lab.proxy_url(), 1, "/good"), Hammer(lab.proxy_url(), 1, "/bad"), Hammer(lab.proxy_url(), 2, "/slow"):
        wait_for(
            lambda: (s := lab.stats()) and all(total(s, t) - total(before, t) >= 10 for t in TARGETS),
            120,
            "10 requests through each canary upstream",
        )
    after = lab.stats()
    sent = sum(total(after, t) - total(before, t) for t in TARGETS)
    wait_for(lambda: asyncio.run(scraped_so_far(url, scraped)) == sent, 60, "Prometheus to have every request")
    table = {
        "version": 1,
        "services": {servicedns.PROMETHEUS: {str(servicedns.PROMETHEUS_PORT): [url[len("http://") :]]}},
    }

    async def verdicts() -> dict[tuple[str, str], tuple[str | None, str | None, float | None]]:
        async with aiohttp.ClientSession() as session:
            checks = TemplateChecks(stored.get, session, table)
            found = {}
            for target in TARGETS:
                for kind in BUILTIN:
                    builtin = metrics.check_metrics(
                        canary(target, BUILTIN[kind]), Between(before, after), parse_duration
                    )
                    started = time.perf_counter()
                    templated = await checks.check(canary(target, TEMPLATED[kind]), TEMPLATED[kind])
                    found[(target, kind)] = (builtin[0] if builtin else None, templated, time.perf_counter() - started)
            return found

    found = asyncio.run(verdicts())
    for (target, kind), (builtin, templated, _) in found.items():
        assert (builtin is None) == (templated is None), (
            f"{target} {kind}: built-in {builtin!r}, template {templated!r}"
        )
    assert [k for k, (b, _, _) in found.items() if b is not None] == [("bad", "success"), ("slow", "duration")]
    assert found[("bad", "success")][1].startswith("Halt bad.default advancement gloo-success ")
    assert found[("slow", "duration")][1].startswith("Halt slow.default advancement gloo-duration ")
    latencies = sorted(seconds * 1000 for _, _, seconds in found.values())
    print(
        f"\nmetric templates: {len(found)} verdicts agree; {sent} requests; template check (render + query) "
        f"median {latencies[len(latencies) // 2]:.1f} ms, max {latencies[-1]:.1f} ms; "
        + "; ".join(f"{t}/{k}: {b or 'pass'} | {m or 'pass'}" for (t, k), (b, m, _) in found.items())
    )


@needs_prometheus
def test_the_canary_controller_rolls_back_on_a_metric_templates_verdict(lab: Lab) -> None:
    """A Canary whose only check is Flagger's Gloo success rate as a MetricTemplate: the
    controller queries the lab's Prometheus by its in-lab name and rolls a bad release back."""
    flagger = MANIFESTS / "flagger"
    lab.apply(flagger / "petstore.yaml", flagger / "loadtester.yaml")
    lab.install("gloo")
    lab.install("flagger")
    lab.install("prometheus")
    lab.wait(60)
    spec = yaml.safe_load((flagger / "canary.yaml").read_text())
    spec["spec"]["analysis"].update(
        interval="5s", threshold=2, stepWeight=25, maxWeight=50, metrics=[{**TEMPLATED["success"], "interval": "30s"}]
    )
    spec["spec"]["progressDeadlineSeconds"] = 60
    lab.apply(flagger / "virtualservice.yaml", metric_template("gloo-success", SUCCESS_RATE_QUERY), spec)
    wait_for(
        lambda: (lab.objects("canary", "petstore")[0].get("status") or {}).get("phase") == "Initialized", 60, "init"
    )
    started = time.monotonic()
    lab.apply(flagger / "rollout-bad.yaml")
    wait_for(
        lambda: (lab.objects("canary", "petstore")[0].get("status") or {}).get("phase") == "Failed", 180, "rollback"
    )
    rolled_back_s = time.monotonic() - started
    messages = list(lab.events("default")["MESSAGE"])
    assert any(m.startswith("Halt petstore.default advancement gloo-success ") for m in messages), "\n".join(messages)
    assert not any("Metric query failed" in m or "Metric template" in m for m in messages), messages
    print(f"\nmetric templates: bad rollout to Failed with a PromQL check in {rolled_back_s:.1f}s")
