"""What a MetricTemplate and a Canary's templateRef may say: Flagger's CRD, and the local
runtime's limits said as such."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from helpers.kinds import lookup
from helpers.runtime.flagger.schema import check_canary

TEMPLATE: dict[str, Any] = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "MetricTemplate",
    "metadata": {"name": "error-rate", "namespace": "default"},
    "spec": {
        "provider": {"type": "prometheus", "address": "http://flagger-prometheus.gloo-system:9090"},
        "query": 'sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}-{{ target }}-.*"}'
        "[{{ interval }}]))",
    },
}


def changed(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node = obj
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return obj


def test_the_kind_is_known_by_its_names() -> None:
    assert lookup("metrictemplates").name == lookup("MetricTemplate").name == "MetricTemplate"
    assert lookup("metrictemplate").flagger


def test_a_prometheus_template_is_accepted() -> None:
    assert check_canary(TEMPLATE) == ([], [])
    with_auth = changed(TEMPLATE, "spec.provider.secretRef", {"name": "prom-auth"})
    with_auth = changed(with_auth, "spec.provider.headers", {"X-Scope-OrgID": ["lab"]})
    assert check_canary(changed(with_auth, "spec.provider.insecureSkipVerify", True)) == ([], [])


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        ("spec.provider.type", "datadog", 'spec.provider.type: "datadog": the local runtime runs MetricTemplates with'),
        ("spec.provider.type", "prom", 'spec.provider.type: "prom" is not one of prometheus, influxdb'),
        ("spec.provider.type", None, "spec.provider.type: required field is missing"),
        ("spec.query", None, "spec.query: required field is missing"),
        ("spec.query", 42, "spec.query: expected a string, got number 42"),
        ("spec.provider.url", "http://p", "spec.provider.url: unknown field (known here: address, headers"),
        ("spec.provider.secretRef", {}, "spec.provider.secretRef.name: required field is missing"),
        ("spec.provider.headers", {"A": "b"}, 'spec.provider.headers.A: expected a list, got string "b"'),
        (
            "spec.query",
            "{{ if namespace }}x{{ end }}",
            "spec.query: {{ if namespace }}: Go template actions such as if",
        ),
        ("apiVersion", "flagger.app/v1alpha1", 'apiVersion: MetricTemplate is "flagger.app/v1beta1"'),
    ],
)
def test_what_is_refused_names_the_field(path: str, value: Any, error: str) -> None:
    errors, _ = check_canary(changed(TEMPLATE, path, value))
    assert any(e.startswith(error) for e in errors), errors


def test_what_flagger_would_fail_at_analysis_is_a_warning() -> None:
    errors, warnings = check_canary(changed(TEMPLATE, "spec.query", "{{ nmespace }}"))
    assert errors == [] and warnings == [
        'spec.query: Flagger cannot render it (template: tmpl:1: function "nmespace" not defined): '
        "every check with this template fails"
    ]
    errors, warnings = check_canary(changed(TEMPLATE, "spec.provider.address", None))
    assert errors == [] and warnings[0].startswith("spec.provider.address: missing: Flagger fails every check")


CANARY: dict[str, Any] = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "petstore", "namespace": "default"},
    "spec": {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "petstore"},
        "service": {"port": 80},
        "analysis": {
            "interval": "10s",
            "stepWeight": 10,
            "metrics": [
                {
                    "name": "error-rate",
                    "templateRef": {"name": "error-rate", "namespace": "default"},
                    "templateVariables": {"direction": "inbound"},
                    "thresholdRange": {"max": 1},
                    "interval": "1m",
                }
            ],
        },
    },
}


def test_a_canary_may_name_a_template() -> None:
    assert check_canary(CANARY) == ([], [])
    errors, _ = check_canary(changed(CANARY, "spec.analysis.metrics.0.templateVariables", {"n": 1}))
    assert errors == ['spec.analysis.metrics[0].templateVariables.n: expected a string, got number 1 (quote it: "1")']
    errors, _ = check_canary(changed(CANARY, "spec.analysis.metrics.0.templateRef", {"namespace": "x"}))
    assert errors == ["spec.analysis.metrics[0].templateRef.name: required field is missing"]


def test_a_template_metric_without_interval_or_range_warns_what_flagger_does() -> None:
    bare = changed(
        changed(CANARY, "spec.analysis.metrics.0.interval", None), "spec.analysis.metrics.0.thresholdRange", None
    )
    errors, warnings = check_canary(bare)
    assert errors == []
    assert warnings == [
        "spec.analysis.metrics[0].interval: missing: Flagger renders the template's {{ interval }} empty "
        "(only built-in checks default to 1m)",
        "spec.analysis.metrics[0]: no thresholdRange: Flagger fails this check whenever the query returns more than 0",
    ]


def test_inline_queries_point_to_metric_templates() -> None:
    errors, _ = check_canary(changed(CANARY, "spec.analysis.metrics.0.query", "sum(up)"))
    assert any("put the query in a MetricTemplate" in e for e in errors)
