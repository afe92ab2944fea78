"""The progressive-delivery builders return exactly the objects of manifests/flagger/,
build the A/B and gated variants the lesson applies, and refuse bad arguments."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from helpers.builders import progressive
from helpers.errors import InvalidArgument
from helpers.loading import load_manifests

FLAGGER = Path(__file__).resolve().parents[1] / "manifests" / "flagger"


def only(name: str) -> dict[str, Any]:
    (doc,) = load_manifests(FLAGGER / name)
    return doc


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("canary.yaml", progressive.canary),
        ("gatewayapi/canary.yaml", lambda: progressive.canary(provider="gatewayapi:v1")),
        ("virtualservice.yaml", progressive.delegating_virtual_service),
        ("rollout-good.yaml", lambda: progressive.rollout("v2")),
        ("rollout-bad.yaml", lambda: progressive.rollout("v3", error_rate=0.3)),
        ("rollout-slow.yaml", lambda: progressive.rollout("v3", latency_ms=1000)),
        ("gatewayapi/rollout-regression.yaml", lambda: progressive.rollout("v3", latency_ms=150)),
        ("gatewayapi/latency-regression.yaml", progressive.latency_regression),
    ],
)
def test_builders_equal_the_files(name: str, build: Any) -> None:
    assert build() == only(name)


def test_rollout_v1_is_the_petstore_deployment_itself() -> None:
    """Shipping v1 again is the Deployment of petstore.yaml: what the lab started with."""
    assert progressive.rollout("v1") == progressive.petstore_deployment()
    deployment = progressive.rollout("v2", error_rate=0.5, latency_ms=20)
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[:3] == [
        {"name": "VERSION", "value": "v2"},
        {"name": "ERROR_RATE", "value": "0.5"},
        {"name": "LATENCY_MS", "value": "20"},
    ]


def test_the_canary_checks_and_load_test() -> None:
    spec = progressive.canary()["spec"]
    assert spec["provider"] == "gloo"
    assert spec["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "petstore"}
    analysis = spec["analysis"]
    assert [m["name"] for m in analysis["metrics"]] == ["request-success-rate", "request-duration"]
    start, hook = analysis["webhooks"]
    assert start["type"] == "pre-rollout" and start["metadata"] == hook["metadata"]
    assert hook["type"] == "rollout" and hook["url"] == "http://flagger-loadtester.default/"
    assert (
        hook["metadata"]["cmd"].startswith("hey -z ")
        and "http://gateway-proxy.gloo-system/api/pets" in (hook["metadata"]["cmd"])
    )


def test_ab_canary_matches_a_header_for_some_iterations() -> None:
    analysis = progressive.ab_canary(value="insider", iterations=4)["spec"]["analysis"]
    assert analysis["iterations"] == 4
    assert analysis["match"] == [{"headers": {"x-canary": {"exact": "insider"}}}]
    assert "stepWeight" not in analysis and "maxWeight" not in analysis
    assert "-H 'x-canary: insider'" in analysis["webhooks"][0]["metadata"]["cmd"]


def test_a_gate_and_new_metrics_make_new_canaries() -> None:
    base = progressive.canary()
    before = copy.deepcopy(base)
    gated = progressive.with_webhook(base, progressive.gate())
    assert gated["spec"]["analysis"]["webhooks"][-1] == {
        "name": "confirm-promotion-gate",
        "type": "confirm-promotion",
        "url": "http://flagger-loadtester.default/gate/check",
    }
    fewer = progressive.with_metrics(base, [progressive.success_rate(95)])
    assert fewer["spec"]["analysis"]["metrics"] == [
        {"name": "request-success-rate", "thresholdRange": {"min": 95}, "interval": "15s"}
    ]
    assert base == before, "the builders never change what they are given"


@pytest.mark.parametrize("name", ["canary.yaml", "gatewayapi/canary.yaml"])
def test_metric_windows_hold_two_scrapes_of_flaggers_prometheus(name: str) -> None:
    """On a cluster Flagger puts a metric's interval into PromQL (rate(...[15s])), and
    rate needs two samples: Flagger's chart Prometheus scrapes every 5 s."""
    from helpers.durations import parse_duration

    chart_scrape_s = 5.0  # charts/flagger/templates/prometheus.yaml, v1.44: scrape_interval 5s
    for metric in only(name)["spec"]["analysis"]["metrics"]:
        assert parse_duration(metric["interval"]) >= 3 * chart_scrape_s, metric


def test_a_template_metric_refers_to_its_metric_template() -> None:
    template = progressive.metric_template("error-rate", "100 - 1")
    assert template["kind"] == "MetricTemplate" and template["apiVersion"] == "flagger.app/v1beta1"
    assert template["spec"] == {
        "provider": {"type": "prometheus", "address": "http://flagger-prometheus.gloo-system:9090"},
        "query": "100 - 1",
    }
    assert progressive.template_metric("error-rate", maximum=1) == {
        "name": "error-rate",
        "templateRef": {"name": "error-rate", "namespace": "default"},
        "thresholdRange": {"max": 1},
        "interval": "15s",
    }
    with pytest.raises(InvalidArgument, match="give a maximum or a minimum"):
        progressive.template_metric("error-rate")
    query = progressive.latency_regression()["spec"]["query"]
    assert query.count("{{ interval }}") == 2 and "kube_{{ namespace }}_{{ target }}-canary_" in query


def test_the_fallback_route_follows_the_delegating_route() -> None:
    routes = progressive.delegating_virtual_service(fallback=True)["spec"]["virtualHost"]["routes"]
    assert [list(r)[1] for r in routes] == ["delegateAction", "routeAction"]
    assert routes[1]["routeAction"]["single"]["upstream"] == {
        "name": "default-petstore-primaryupstream-80",
        "namespace": "default",
    }


def test_the_local_runtime_accepts_every_canary_the_lesson_applies() -> None:
    from helpers.runtime.flagger.schema import check_canary

    for canary in (
        progressive.canary(),
        progressive.ab_canary(),
        progressive.with_webhook(progressive.canary(), progressive.gate()),
        progressive.canary(metrics=[progressive.success_rate()]),
        progressive.canary(provider="gatewayapi:v1"),
        progressive.ab_canary(provider="gatewayapi:v1"),
    ):
        problems, warnings = check_canary(canary)
        assert problems == []
        # At most one warning: Flagger on a cluster raises intervals under 10 s to 10 s.
        assert all(w.startswith("spec.analysis.interval") for w in warnings), warnings


@pytest.mark.parametrize(
    "call",
    [
        lambda: progressive.canary(step_weight=0),
        lambda: progressive.canary(max_weight=101),
        lambda: progressive.canary(threshold=True),
        lambda: progressive.ab_canary(iterations=0),
        lambda: progressive.rollout("v4"),
        lambda: progressive.canary(provider="istio"),
        lambda: progressive.canary(provider="gatewayapi:v1", gateway="http"),
        lambda: progressive.rollout("v2", error_rate=1.5),
        lambda: progressive.rollout("v2", latency_ms=-1),
    ],
)
def test_bad_arguments_are_refused(call: Any) -> None:
    with pytest.raises(InvalidArgument):
        call()
