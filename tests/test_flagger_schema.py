"""What a Canary may say locally (``helpers.runtime.flagger.schema``): accepted as
Flagger's CRD accepts it, refused with one line naming the field, or accepted with a
warning naming a field the local runtime ignores; and Go's durations."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers.runtime.flagger.schema import check_canary

MANIFEST = Path(__file__).resolve().parents[1] / "manifests" / "flagger" / "canary.yaml"
GOOD: dict[str, Any] = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "petstore", "namespace": "default"},
    "spec": {
        "provider": "gloo",
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "petstore"},
        "progressDeadlineSeconds": 60,
        "service": {"port": 80, "targetPort": 8080},
        "analysis": {
            "interval": "15s",
            "threshold": 2,
            "maxWeight": 50,
            "stepWeight": 10,
            "stepWeightPromotion": 25,
            "metrics": [
                {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "30s"},
                {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"},
            ],
            "webhooks": [
                {"name": "gate", "type": "confirm-promotion", "url": "http://flagger-loadtester.default/gate/check"},
                {
                    "name": "load-test",
                    "url": "http://flagger-loadtester.default/",
                    "timeout": "5s",
                    "metadata": {"type": "cmd", "cmd": "hey -z 1m -q 10 -c 2 http://gateway-proxy.gloo-system/"},
                },
            ],
        },
    },
}


def changed(path: str, value: Any) -> dict[str, Any]:
    """GOOD with the field at dotted ``path`` set to ``value`` (None deletes it)."""
    obj = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node: Any = obj
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if value is None:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return obj


def test_a_complete_canary_is_accepted_without_warnings() -> None:
    assert check_canary(GOOD) == ([], [])


def test_the_lesson_manifest_is_accepted() -> None:
    assert check_canary(yaml.safe_load(MANIFEST.read_text())) == ([], [])
    assert check_canary(changed("spec.analysis.interval", "1s")) == ([], [])  # a lesson cannot wait minutes


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("spec.provider", "istio", 'spec.provider: "istio": the local runtime\'s Flagger supports provider gloo'),
        ("spec.provider", "gatewayapi:v1", "spec.service.gatewayRefs: required with provider gatewayapi:v1"),
        (
            "spec.provider",
            "gatewayapi:v1beta1",
            "the local runtime serves gateway.networking.k8s.io/v1: use gatewayapi:v1",
        ),
        ("spec.provider", "envoy", 'spec.provider: "envoy" is not one of apisix'),
        ("spec.targetRef.kind", "DaemonSet", "spec.targetRef: apps/v1/DaemonSet: the local runtime's Flagger targets"),
        ("spec.targetRef.kind", "StatefulSet", 'spec.targetRef.kind: "StatefulSet" is not one of'),
        ("spec.targetRef.apiVersion", None, "spec.targetRef.apiVersion: required field is missing"),
        ("spec.analysis", None, "spec.analysis: required field is missing"),
        ("spec.service.port", "80", 'spec.service.port: expected a number, got string "80" (remove the quotes)'),
        ("spec.service.targetPort", 0, "spec.service.targetPort: 0 is out of range"),
        ("spec.service.name", "shop", 'spec.service.name: "shop": the local runtime names the generated Services'),
        ("spec.analysis.interval", "500ms", 'spec.analysis.interval: "500ms" is too short: it must be at least 1s'),
        ("spec.analysis.interval", "1h", 'spec.analysis.interval: "1h" must start with whole seconds or minutes'),
        ("spec.analysis.interval", "1m30x", 'spec.analysis.interval: invalid duration "1m30x"'),
        ("spec.analysis.interval", 30, 'spec.analysis.interval: expected a duration such as "10s"'),
        ("spec.analysis.threshold", 2.5, "spec.analysis.threshold: expected a whole number, got number 2.5"),
        ("spec.analysis.maxWeight", 150, "spec.analysis.maxWeight: 150 is out of range: it must be from 0 to 100"),
        ("spec.analysis.stepWeight", -5, "spec.analysis.stepWeight: -5 is out of range"),
        ("spec.analysis.stepWeights", [10, 50, 30], "spec.analysis.stepWeights: [10, 50, 30] must increase"),
        ("spec.analysis.stepWeights", [0, 50], "spec.analysis.stepWeights[0]: 0 is out of range"),
        ("spec.analysis.metrics.0.name", "error-rate", 'spec.analysis.metrics[0].name: "error-rate" is not a built-in'),
        ("spec.analysis.metrics.0.name", None, "spec.analysis.metrics[0].name: required field is missing"),
        ("spec.analysis.metrics.0.templateRef", {"namespace": "t"}, "metrics[0].templateRef.name: required field"),
        ("spec.analysis.metrics.0.query", "sum(x)", "spec.analysis.metrics[0].query: not supported by the local"),
        ("spec.analysis.metrics.0.threshold", 99, "spec.analysis.metrics[0].threshold: not supported"),
        ("spec.analysis.metrics.0.thresholdRange", {"min": "99"}, "spec.analysis.metrics[0].thresholdRange.min"),
        ("spec.analysis.metrics.1.thresholdRange", {"min": 600, "max": 500}, "min 600 is above max 500"),
        (
            "spec.analysis.metrics.0.interval",
            "1m3",
            'spec.analysis.metrics[0].interval: missing unit in duration "1m3"',
        ),
        (
            "spec.analysis.webhooks.0.type",
            "gate",
            'spec.analysis.webhooks[0].type: "gate" is not one of confirm-rollout',
        ),
        ("spec.analysis.webhooks.0.url", None, "spec.analysis.webhooks[0].url: required field is missing"),
        ("spec.analysis.webhooks.0.url", "loadtester/", 'spec.analysis.webhooks[0].url: "loadtester/" is not an http'),
        ("spec.analysis.webhooks.1.timeout", "5", 'spec.analysis.webhooks[1].timeout: "5" must start with whole'),
        ("spec.analysis.webhooks.1.metadata", {"n": 2}, "spec.analysis.webhooks[1].metadata.n: expected a string"),
        ("spec.analysis.match", [{"headers": {"x": {}}}], "spec.analysis.match[0].headers.x: a header match needs"),
        (
            "spec.analysis.match",
            [{"headers": {"x": {"regex": "("}}}],
            "spec.analysis.match[0].headers.x.regex: invalid",
        ),
        ("spec.analysis.match", [{"uri": {"prefix": "/"}}], "spec.analysis.match[0].uri: unknown field"),
        (
            "spec.canaryAnalysis",
            {},
            "spec.canaryAnalysis: unknown field; spec.canaryAnalysis was renamed spec.analysis",
        ),
        ("spec.analysis.stepWieght", 10, "spec.analysis.stepWieght: unknown field (known here:"),
        (
            "apiVersion",
            "flagger.app/v1alpha3",
            'apiVersion: Canary is "flagger.app/v1beta1", not "flagger.app/v1alpha3"',
        ),
    ],
)
def test_refused_with_one_line_naming_the_field(path: str, value: Any, message: str) -> None:
    errors, _ = check_canary(changed(path, value))
    assert any(message in e for e in errors), errors


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("spec.autoscalerRef", {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "a"}, None),
        ("spec.upstreamRef", {"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "name": "u"}, None),
        ("spec.ingressRef", {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "i"}, None),
        ("spec.metricsServer", "http://prometheus:9090", None),
        ("spec.revertOnDeletion", True, None),
        ("spec.service.gatewayRefs", [{"name": "gw"}], None),
        ("spec.service.hosts", ["petstore.example.com"], None),
        ("spec.service.apex", {"labels": {"a": "b"}}, None),
        ("spec.service.primary", {"annotations": {"a": "b"}}, None),
        ("spec.service.canary", {"labels": {"a": "b"}}, None),
        ("spec.service.retries", {"attempts": 3}, None),
        ("spec.analysis.mirror", True, None),
        ("spec.analysis.mirrorWeight", 50, None),
        ("spec.analysis.sessionAffinity", {"cookieName": "c"}, None),
        ("spec.analysis.alerts", [{"name": "a", "providerRef": {"name": "slack"}}], None),
        ("spec.analysis.canaryReadyThreshold", 50, None),
        ("spec.analysis.primaryReadyThreshold", 50, None),
        ("spec.analysis.stepWeights", [10, 20], "spec.analysis.stepWeights"),
        (
            "spec.analysis.match",
            [{"headers": {"x-canary": {"prefix": "t"}}}],
            "spec.analysis.match[0].headers.x-canary.prefix",
        ),
        ("spec.analysis.metrics.0.thresholdRange", None, "spec.analysis.metrics[0]"),
    ],
)
def test_known_fields_the_local_runtime_ignores_are_accepted_with_a_warning(
    path: str, value: Any, field: str | None
) -> None:
    errors, warnings = check_canary(changed(path, value))
    assert errors == []
    where = field or path
    assert any(w.startswith(f"{where}:") for w in warnings), warnings


def test_a_canary_that_could_never_shift_traffic_is_warned_about() -> None:
    obj = changed("spec.analysis.stepWeight", None)
    assert check_canary(obj) == (
        [],
        ["spec.analysis: no stepWeight, stepWeights or iterations: Flagger never shifts traffic to the canary"],
    )
    ab = changed("spec.analysis.iterations", 5)
    ab["spec"]["analysis"]["match"] = [{"headers": {"x-canary": {"exact": "true"}}}]
    assert check_canary(ab) == ([], [])


def test_no_provider_means_gloo_and_a_webhook_without_type_is_a_rollout_hook() -> None:
    assert check_canary(changed("spec.provider", None)) == ([], [])
    assert check_canary(changed("spec.analysis.webhooks.1.type", "")) == ([], [])


def test_something_that_is_not_an_object_is_refused() -> None:
    assert check_canary(["Canary"]) == (["expected an object (a YAML mapping), got a list"], [])
