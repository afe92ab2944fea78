"""Canary metrics with a templateRef: the MetricTemplate found, rendered and queried as
Flagger does (against a fake Prometheus on loopback), each failure worded as its event;
and the order of all checks (built-in first)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
from aiohttp import web

from helpers.runtime.flagger.metrics import check_all
from helpers.runtime.flagger.templatechecks import TemplateChecks, verdict
from helpers.runtime.proxy.stats import UpstreamStats

ADDRESS = "http://flagger-prometheus.gloo-system:9090"
CANARY_CLUSTER = "default-petstore-canaryupstream-80"


def template(name: str = "error-rate", namespace: str = "default", **provider: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "provider": {"type": "prometheus", "address": ADDRESS, **provider},
            "query": 'errors{ns="{{ namespace }}",app="{{ target }}",dir="{{ variables.dir }}"}[{{ interval }}]',
        },
    }


def canary(*metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "pets", "namespace": "default"},
        "spec": {"targetRef": {"name": "petstore"}, "analysis": {"metrics": list(metrics)}},
    }


METRIC = {
    "name": "error-rate",
    "templateRef": {"name": "error-rate"},
    "templateVariables": {"dir": "in"},
    "thresholdRange": {"max": 5},
    "interval": "30s",
}


def run(objects: list[dict[str, Any]], answer: str, *metrics: dict[str, Any], stats: UpstreamStats | None = None):
    """(the check's event or [], the queries Prometheus saw, their headers)."""
    seen: list[tuple[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.query.get("query", ""), request.headers.get("Authorization", "")))
        result = [{"metric": {}, "value": [1, answer]}]
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})

    store = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}

    async def main() -> list[str]:
        app = web.Application()
        app.router.add_get("/api/v1/query", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        dns = {
            "version": 1,
            "services": {"flagger-prometheus.gloo-system": {"9090": [f"127.0.0.1:{runner.addresses[0][1]}"]}},
        }
        try:
            async with aiohttp.ClientSession() as session:
                checks = TemplateChecks(store.get, session, dns)
                return await check_all(canary(*metrics), stats or UpstreamStats(), lambda s: float(s[:-1]), checks)
        finally:
            await runner.cleanup()

    return asyncio.run(main()), seen


def test_the_query_is_rendered_with_the_metrics_variables_and_compared() -> None:
    assert run([template()], "1.5", METRIC) == ([], [('errors{ns="default",app="petstore",dir="in"}[30s]', "")])
    failed, _ = run([template()], "12.345", METRIC)
    assert failed == ["Halt pets.default advancement error-rate 12.35 > 5"]
    failed, _ = run([template()], "1", {**METRIC, "thresholdRange": {"min": 2}})
    assert failed == ["Halt pets.default advancement error-rate 1.00 < 2"]


def test_no_values_and_query_failures_are_flaggers_events() -> None:
    failed, _ = run([template()], "NaN", METRIC)
    assert failed == ["Halt advancement no values found for custom metric: error-rate: no values found"]
    failed, _ = run([template()], "x", METRIC)
    assert failed == ['Metric query failed for error-rate: strconv.ParseFloat: parsing "x": invalid syntax']


def test_the_template_is_looked_up_where_flagger_looks() -> None:
    failed, seen = run([template(namespace="other")], "1", METRIC)
    assert failed == ['Metric template error-rate.default error: metrictemplate.flagger.app "error-rate" not found']
    assert seen == []
    elsewhere = {**METRIC, "templateRef": {"name": "error-rate", "namespace": "other"}}
    assert run([template(namespace="other")], "1", elsewhere)[0] == []


def test_secrets_give_the_credentials() -> None:
    secret = {
        "kind": "Secret",
        "metadata": {"name": "prom-auth", "namespace": "default"},
        "data": {"token": base64.b64encode(b"t0k3n").decode()},
    }
    failed, seen = run([template(secretRef={"name": "prom-auth"}), secret], "1", METRIC)
    assert failed == [] and seen[0][1] == "Bearer t0k3n"
    failed, _ = run([template(secretRef={"name": "prom-auth"})], "1", METRIC)
    assert failed == ['Metric template error-rate.default secret prom-auth error: secrets "prom-auth" not found']
    no_user = {**secret, "data": {}, "stringData": {"password": "p"}}
    failed, _ = run([template(secretRef={"name": "prom-auth"}), no_user], "1", METRIC)
    assert failed == [
        "Metric template error-rate.default provider prometheus error: "
        "prometheus credentials does not contain a username"
    ]


def test_render_errors_are_reported_at_each_check() -> None:
    failed, _ = run([template()], "1", {**METRIC, "templateVariables": {}})
    assert failed == [
        "Metric template error-rate.default query render error: template excution failed: template: tmpl:1:55: "
        'executing "tmpl" at <variables>: map has no entry for key "dir"'
    ]


def test_built_in_checks_run_first_then_templates_in_order() -> None:
    stats = UpstreamStats()
    for code in [200] * 9 + [500]:
        stats.record(CANARY_CLUSTER, code, 0.001)
    builtin = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "30s"}
    failed, seen = run([template()], "50", METRIC, builtin, stats=stats)
    assert failed == ["Halt pets.default advancement success rate 90.00% < 99%"] and seen == []
    failed, _ = run([template()], "50", METRIC, {**builtin, "thresholdRange": {"min": 80}}, stats=stats)
    assert failed == ["Halt pets.default advancement error-rate 50.00 > 5"]
    failed, _ = run([template()], "1", METRIC, {"name": "other"}, stats=stats)
    assert failed == ["Metric query failed for no usable metrics template and query were configured"]


def test_without_a_threshold_range_any_positive_value_fails() -> None:
    assert verdict("pets", "default", {"name": "m"}, 0.0) is None
    assert verdict("pets", "default", {"name": "m"}, 0.5) == "Halt pets.default advancement m 0.50 > 0"
    assert verdict("pets", "default", {"name": "m", "thresholdRange": {"max": 1}}, float("inf")) == (
        "Halt pets.default advancement m +Inf > 1"
    )
