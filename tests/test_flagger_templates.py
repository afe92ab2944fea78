"""MetricTemplate queries rendered with Flagger's variables, as Go's text/template does."""

from __future__ import annotations

from typing import Any

import pytest

from helpers.runtime.flagger import templates
from helpers.runtime.flagger.templates import Model, TemplateError, Unsupported, model_of, parse, render

MODEL = Model("pets", "shop", "petstore", "petstore", "petstore", "petstore", "30s", {"direction": "inbound"})

# Flagger's own Gloo success-rate query (pkg/metrics/observers/gloo.go), as a template.
GLOO_SUCCESS_RATE = """
sum(rate(envoy_cluster_upstream_rq{
    envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+",
    envoy_response_code!~"5.*"}[{{ interval }}]))
"""


def canary(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "pets", "namespace": "shop"},
        "spec": {"targetRef": {"name": "petstore"}, **spec},
    }


def test_every_variable_renders_as_flaggers_model_fills_it() -> None:
    query = "{{ name }} {{ namespace }} {{ target }} {{ service }} {{ ingress }} {{ route }} [{{ interval }}]"
    assert render(query, MODEL) == "pets shop petstore petstore petstore petstore [30s]"
    assert render("{{variables.direction}}", MODEL) == "inbound"
    assert render("{{ variables }}", Model(*"abcdefg", {"b": "2", "a": "1"})) == "map[a:1 b:2]"  # fmt's map


def test_flaggers_gloo_query_renders_the_canary_upstreams_regex() -> None:
    out = render(GLOO_SUCCESS_RATE, MODEL)
    assert 'envoy_cluster_name=~"shop-petstore-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"' in out
    assert out.rstrip().endswith('envoy_response_code!~"5.*"}[30s]))')


def test_the_model_comes_from_the_canary_and_the_metric() -> None:
    metric = {"name": "errors", "interval": "1m", "templateVariables": {"k": "v"}}
    assert model_of(canary(), metric) == Model(
        "pets", "shop", "petstore", "petstore", "petstore", "petstore", "1m", {"k": "v"}
    )
    refs = canary(service={"name": "front"}, ingressRef={"name": "ing"}, routeRef={"name": "r"})
    m = model_of(refs, {"name": "errors"})
    assert (m.service, m.ingress, m.route, m.interval) == ("front", "ing", "r", "")  # no default interval


def test_trim_markers_and_comments() -> None:
    assert render("a  \n {{- namespace -}} \n b", MODEL) == "ashopb"
    assert render("x {{/* a comment */}}y{{- /* trimmed */ -}} z", MODEL) == "x yz"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("{{ foo }}", 'template parsing failed: template: tmpl:1: function "foo" not defined'),
        ("x\n{{ namespace ", "template parsing failed: template: tmpl:2: unclosed action"),
        ("{{ }}", "template parsing failed: template: tmpl:1: missing value for command"),
        (
            "a\n  {{ variables.missing }}",
            'template excution failed: template: tmpl:2:5: executing "tmpl" at <variables>: '
            'map has no entry for key "missing"',
        ),
        (
            "{{ .Namespace }}",
            'template excution failed: template: tmpl:1:3: executing "tmpl" at <.Namespace>: '
            'nil data; no entry for key "Namespace"',
        ),
        (
            "{{ target.name }}",
            'template excution failed: template: tmpl:1:3: executing "tmpl" at <target>: '
            "can't evaluate field name in type string",
        ),
    ],
)
def test_what_go_refuses_fails_with_flaggers_words(query: str, message: str) -> None:
    with pytest.raises(TemplateError) as e:
        render(query, MODEL)
    assert str(e.value) == message


@pytest.mark.parametrize(
    "query",
    ["{{ if namespace }}x{{ end }}", '{{ namespace | printf "%s" }}', '{{ index variables "a" }}', "{{ $x := 1 }}"],
)
def test_go_constructs_beyond_the_variables_are_refused_as_local_limits(query: str) -> None:
    with pytest.raises(Unsupported) as e:
        parse(query)
    assert "not rendered by the local runtime" in str(e.value) and "{{ variables.KEY }}" in str(e.value)
    assert templates.SUPPORTED.startswith("{{ name }}")
