"""Lesson 9's start state and its way back: the exercise fails at its start with the
line the notebook stores (with or without Prometheus), the Gateway's stats page parses
into the requests the test sent, and going back to lesson 7 leaves nothing of lesson 9."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers import Lab, sampling
from helpers.lessons import promql
from helpers.lessons.exercises import check, ensure, reset
from helpers.live.progressive import apply_canary, wait_for_phase
from helpers.runtime import prometheus as prometheus_server
from tests.conftest import wait_for

from .conftest import module_lab

pytestmark = pytest.mark.integration

FAILS_AT_START = (
    "FAIL: no check of the Canary reads the response codes (its checks: latency-regression)\n"
    "Hint: apply a MetricTemplate whose query is the canary's % of 5xx answers "
    "(progressive.metric_template(...), envoy_cluster_upstream_rq by envoy_response_code), "
    "then add progressive.template_metric(name, maximum=...) to the Canary's metrics"
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with module_lab(tmp_path_factory, "lesson9") as lab:
        yield lab


def test_the_exercise_fails_at_its_start_and_the_lab_is_lesson_9s(lab: Lab) -> None:
    reset(9, lab)
    assert str(check(9, lab)) == FAILS_AT_START
    status = lab.status()
    assert status["gatewayApi"]["installed"] and not status["gateway"]["installed"]
    has_prometheus = prometheus_server.find_binary() is not None
    assert bool(status["prometheus"]["installed"]) == has_prometheus
    (canary,) = lab.objects("canaries", "petstore", "default")
    assert canary["spec"]["provider"] == "gatewayapi:v1"
    assert [m["name"] for m in canary["spec"]["analysis"]["metrics"]] == ["latency-regression"]


def test_the_stats_page_counts_the_requests_sent_through_the_gateway(lab: Lab) -> None:
    ensure(9, lab)
    apply_canary(lab, promql.lesson_canary())
    wait_for_phase(lab, ["Initialized"])
    url = lab.proxy_url(gateway=promql.GATEWAY)
    wait_for(lambda: sampling.sample(url, "/api/pets", n=1)["status"].tolist() == [200] or None, 30, "the route")
    before = promql.scrape(lab, promql.GATEWAY)
    assert "# TYPE envoy_cluster_upstream_rq_time histogram" in before.types()
    pets = sampling.sample(url, "/api/pets", n=40, rate=200)
    assert set(pets["status"].tolist()) == {200}
    after = promql.scrape(lab, promql.GATEWAY)
    sent = after.requests_by_code("primary").get("200", 0) - before.requests_by_code("primary").get("200", 0)
    assert sent >= 40  # ours, and the load tester's if it ran meanwhile
    assert after.requests_by_code("canary") == {}, "weight 0: the canary answered nothing"
    p95 = promql.quantile_between(before, after, "primary", 0.95)
    assert p95 is not None and p95 > 0
    assert promql.quantile_between(before, after, "canary", 0.95) is None


def test_going_back_to_lesson_7_leaves_nothing_of_lesson_9(lab: Lab) -> None:
    reset(9, lab)
    ensure(7, lab)
    status = lab.status()
    assert not status["prometheus"]["installed"]
    assert status["gateway"]["installed"] and status["gatewayApi"]["installed"]
    assert lab.objects("deployments", "petstore", "default") == []
    assert sorted(d["metadata"]["name"] for d in lab.objects("deployments")) == ["petstore-v1", "petstore-v2"]
