"""The gateways' stats in Prometheus's text format, as Envoy's ``/stats/prometheus``:
names, labels, TYPE lines and histogram buckets, read back with ``prometheus_client``'s
parser (never a regex); Envoy's cluster names as Gloo and kgateway give them, so
Flagger's own queries select them; each gateway's endpoint and its token.

``prometheus_client``'s parser keeps counters the OpenMetrics way: a family
``envoy_cluster_upstream_rq`` holds samples named ``envoy_cluster_upstream_rq_total``,
and the family ``envoy_cluster_upstream_rq_total`` is renamed ``envoy_cluster_upstream_rq``.
So ``families`` keys them by their TYPE line, which the text itself carries.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from helpers.runtime.gatewayapi.kgateway import Kgateway
from helpers.runtime.gatewayapi.kgateway import envoy_cluster_names as kgateway_names
from helpers.runtime.gloo.edge import envoy_cluster_names as gloo_names
from helpers.runtime.proxy.exposition import CONTENT_TYPE, render
from helpers.runtime.proxy.stats import ENVOY_BUCKETS_MS, UpstreamStats, merged_snapshot
from helpers.runtime.statsserver import StatsListeners, StatsSource
from helpers.runtime.store import Store

T = TypeVar("T")
TOKEN = "t" * 32
# pkg/metrics/observers/gloo.go (Flagger 1.44): the cluster its Gloo queries select.
FLAGGER_GLOO_CLUSTER = "{namespace}-{target}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 20))


def families(text: str) -> dict[str, tuple[str, list[Sample]]]:
    """``{name on the TYPE line: (type, samples)}`` of an exposition."""
    declared = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    parsed = list(text_string_to_metric_families(text))
    assert len(parsed) == len(declared)  # one family per TYPE line, in order
    return {name: (f.type, f.samples) for name, f in zip(declared, parsed, strict=True)}


def value(samples: list[Sample], **labels: str) -> float:
    found = [s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (labels, samples)
    return found[0]


def recorded() -> UpstreamStats:
    stats = UpstreamStats()
    for status, seconds in ((200, 0.0004), (200, 0.003), (201, 0.02), (503, 0.3), (500, 70.0)):
        stats.record("default-petstore-canaryupstream-80", status, seconds)
    stats.record("kube-svc:default-petstore-v1-8080", 200, 0.001)
    return stats


def test_counters_per_code_class_and_total_with_envoys_names_and_types() -> None:
    names = {"default-petstore-canaryupstream-80": "default-petstore-canaryupstream-80_default"}
    fams = families(render(recorded(), names, 5.0))
    canary = {"envoy_cluster_name": "default-petstore-canaryupstream-80_default"}
    kind, per_code = fams["envoy_cluster_upstream_rq"]
    assert kind == "counter"
    assert {s.labels["envoy_response_code"]: s.value for s in per_code if s.labels.items() >= canary.items()} == {
        "200": 2,
        "201": 1,
        "500": 1,
        "503": 1,
    }
    assert value(fams["envoy_cluster_upstream_rq_total"][1], **canary) == 5
    assert fams["envoy_cluster_upstream_rq_total"][0] == "counter"
    assert value(fams["envoy_cluster_upstream_rq_completed"][1], **canary) == 5
    by_class = fams["envoy_cluster_upstream_rq_xx"][1]
    assert value(by_class, envoy_response_code_class="2", **canary) == 3
    assert value(by_class, envoy_response_code_class="5", **canary) == 2
    # A cluster the gateway did not name keeps the runtime's, without Envoy's forbidden ':'.
    assert (
        value(fams["envoy_cluster_upstream_rq_total"][1], envoy_cluster_name="kube-svc_default-petstore-v1-8080") == 1
    )
    assert fams["envoy_server_live"] == ("gauge", [Sample("envoy_server_live", {}, 1.0)])
    assert fams["envoy_server_uptime"][0] == "gauge"


def test_histogram_has_envoys_buckets_cumulative_in_milliseconds() -> None:
    names = {"default-petstore-canaryupstream-80": "default-petstore-canaryupstream-80_default"}
    kind, samples = families(render(recorded(), names, 5.0))["envoy_cluster_upstream_rq_time"]
    assert kind == "histogram"
    canary = [s for s in samples if s.labels["envoy_cluster_name"] == "default-petstore-canaryupstream-80_default"]
    buckets = {float(s.labels["le"]): s.value for s in canary if s.name.endswith("_bucket")}
    assert list(buckets) == [*ENVOY_BUCKETS_MS, math.inf]
    assert ENVOY_BUCKETS_MS[-1] == 3_600_000  # up to an hour, as Envoy's defaults
    assert buckets[0.5] == 1 and buckets[5] == 2 and buckets[25] == 3 and buckets[250] == 3
    assert buckets[500] == 4  # the 300 ms 503
    assert buckets[60000] == 4 and buckets[300000] == 5  # 70 s: past a minute, within five
    assert buckets[math.inf] == 5
    assert value([s for s in canary if s.name.endswith("_count")]) == 5
    assert value([s for s in canary if s.name.endswith("_sum")]) == 0.4 + 3 + 20 + 300 + 70000


def test_a_named_cluster_without_traffic_has_zero_counters_and_no_histogram() -> None:
    fams = families(render(UpstreamStats(), {"idle": "idle_default"}, 0))
    assert value(fams["envoy_cluster_upstream_rq_total"][1], envoy_cluster_name="idle_default") == 0
    assert fams["envoy_cluster_upstream_rq"][1] == []
    assert fams["envoy_cluster_upstream_rq_time"][1] == []


def test_label_values_are_escaped() -> None:
    stats = UpstreamStats()
    stats.record('odd"name\\x', 200, 0.001)
    total = families(render(stats, {}, 0))["envoy_cluster_upstream_rq_total"][1]
    assert value(total, envoy_cluster_name='odd"name\\x') == 1


def test_gloo_names_clusters_upstream_underscore_namespace_as_flaggers_query_expects() -> None:
    upstreams = [
        {"metadata": {"name": "default-petstore-canaryupstream-80", "namespace": "default"}},
        {"metadata": {"name": "default-petstore-v1-8080", "namespace": "gloo-system"}},
        {"metadata": {"name": "default-petstore-v1-8080", "namespace": "team"}},
    ]
    services = [{"metadata": {"name": "petstore", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}}]
    clusters = [
        "default-petstore-canaryupstream-80",
        "default-petstore-v1-8080",
        "team.default-petstore-v1-8080",
        "kube-svc:default-petstore-80",
    ]
    names = gloo_names(clusters, upstreams, services)
    assert names == {
        "default-petstore-canaryupstream-80": "default-petstore-canaryupstream-80_default",
        "default-petstore-v1-8080": "default-petstore-v1-8080_gloo-system",
        "team.default-petstore-v1-8080": "default-petstore-v1-8080_team",
        "kube-svc:default-petstore-80": "kube-svc_default-petstore-80_default",
    }
    pattern = FLAGGER_GLOO_CLUSTER.format(namespace="default", target="petstore")
    assert [n for n in names.values() if re.fullmatch(pattern, n)] == ["default-petstore-canaryupstream-80_default"]


def test_kgateway_names_clusters_kube_namespace_service_port() -> None:
    services = [
        {"metadata": {"name": "petstore-canary", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}},
        {"metadata": {"name": "petstore-primary", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}},
    ]
    names = kgateway_names(["kube-svc:default-petstore-canary-80", "kube-svc:default-gone-80"], services)
    assert names == {"kube-svc:default-petstore-canary-80": "kube_default_petstore-canary_80"}


def test_each_gateway_has_its_own_stats_and_the_snapshot_adds_them_up(tmp_path: Path) -> None:
    kg = Kgateway(Store(tmp_path / "store.json"))
    a, b = kg.stats_of("default", "a"), kg.stats_of("default", "b")
    assert a is not b and kg.stats_of("default", "a") is a
    a.record("c", 200, 0.001)
    b.record("c", 503, 0.001)
    b.record("d", 200, 0.001)
    merged = merged_snapshot([a, b])
    assert merged["c"]["requests"] == 2 and merged["c"]["by_status"] == {"200": 1, "503": 1}
    assert merged["d"]["requests"] == 1
    assert merged_snapshot([a]) == a.snapshot()
    shared = UpstreamStats()
    one = Kgateway(Store(tmp_path / "other.json"), shared)  # one view for every Gateway, as tests use
    assert one.stats_of("default", "a") is shared and one.stats_of("x", "y") is shared


def test_the_endpoint_wants_the_token_and_keeps_its_port() -> None:
    stats = recorded()
    saved: list[dict[str, int]] = []
    ports: dict[str, int] = {}

    async def scenario() -> tuple[list[tuple[int, str, str]], int, int]:
        listeners = StatsListeners(lambda: TOKEN, ports, lambda: saved.append(dict(ports)))
        await listeners.sync({"gloo-system/gateway-proxy": StatsSource(stats, {})})
        url = listeners.urls()["gloo-system/gateway-proxy"]
        answers = []
        async with aiohttp.ClientSession() as session:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}"}):
                async with session.get(url, headers=headers) as resp:
                    answers.append((resp.status, resp.headers.get("Content-Type", ""), await resp.text()))
        first = ports["gloo-system/gateway-proxy"]
        await listeners.close()
        again = StatsListeners(lambda: TOKEN, ports, lambda: saved.append(dict(ports)))  # a restart
        await again.sync({"gloo-system/gateway-proxy": StatsSource(stats, {})})
        second = int(again.urls()["gloo-system/gateway-proxy"].split(":")[2].split("/")[0])
        await again.sync({})  # the gateway went: its endpoint and remembered port with it
        assert again.urls() == {} and ports == {}
        return answers, first, second

    answers, first, second = run(scenario())
    assert [a[0] for a in answers] == [401, 401, 200]
    assert answers[2][1] == CONTENT_TYPE
    assert "envoy_cluster_upstream_rq_total" in families(answers[2][2])
    assert second == first
    assert saved[0] == {"gloo-system/gateway-proxy": first}
