"""Each gateway's stats in Prometheus's format over real traffic: requests through Gloo's
proxy and a kgateway Gateway, each gateway's ``/stats/prometheus`` scraped with the lab's
token and read back with ``prometheus_client``'s parser; counts per code and the
latency histogram match what the client saw; without the token, 401.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from helpers import Lab

from .conftest import MANIFESTS, Client
from .test_cli import coalmine

pytestmark = pytest.mark.integration
GATEWAY = "kgateway-system/http"
PATHS = ("/petstore", "/petstore/1", "/petstore/999")


def scrape(url: str, token: str | None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text: str, cluster: str) -> list[Sample]:
    """Every sample about ``cluster``, as the parser names them (counters end in _total)."""
    return [
        s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("envoy_cluster_name") == cluster
    ]


def traffic(url: str, rounds: int) -> Counter[int]:
    """GET each of ``PATHS`` ``rounds`` times; the status codes the client saw."""
    client, seen = Client(url), Counter[int]()
    try:
        for _ in range(rounds):
            for path in PATHS:
                seen[client.get(path)[0]] += 1
    finally:
        client.close()
    return seen


def check_scrape(text: str, cluster: str, seen: Counter[int]) -> None:
    found = samples(text, cluster)
    per_code = {
        int(s.labels["envoy_response_code"]): s.value
        for s in found
        if s.name == "envoy_cluster_upstream_rq_total" and "envoy_response_code" in s.labels
    }
    assert per_code == dict(seen)
    total = [s.value for s in found if s.name == "envoy_cluster_upstream_rq_total" and len(s.labels) == 1]
    assert total == [sum(seen.values())]
    buckets = [(float(s.labels["le"]), s.value) for s in found if s.name == "envoy_cluster_upstream_rq_time_bucket"]
    assert buckets[-1] == (math.inf, sum(seen.values()))
    assert [n for _, n in buckets] == sorted(n for _, n in buckets)  # cumulative
    assert [s.value for s in found if s.name == "envoy_cluster_upstream_rq_time_count"] == [sum(seen.values())]
    assert next(s.value for s in found if s.name == "envoy_cluster_upstream_rq_time_sum") > 0


def test_gloo_and_each_gateway_serve_their_own_stats(petstore_lab: Lab, lab_home: Path) -> None:
    lab = petstore_lab
    token = (lab_home / "token").read_text().strip()
    lab.apply(MANIFESTS / "gloo" / "1-route-to-v1.yaml")
    lab.install("kgateway")
    lab.apply(MANIFESTS / "gateway-api" / "0-gateway.yaml", MANIFESTS / "gateway-api" / "1-route-to-v1.yaml")
    lab.wait(60)
    gloo_seen = traffic(lab.proxy_url(), 7)
    kgw_seen = traffic(lab.proxy_url(gateway=GATEWAY), 5)
    assert len(gloo_seen) >= 2  # more than one status code to tell apart

    gloo_url, kgw_url = lab.stats_url(), lab.stats_url(gateway=GATEWAY)
    assert gloo_url != kgw_url and gloo_url.startswith("http://127.0.0.1:") and gloo_url.endswith("/stats/prometheus")
    assert lab.status()["stats_urls"] == {"gloo-system/gateway-proxy": gloo_url, GATEWAY: kgw_url}
    assert coalmine(lab_home, "proxy", "stats-url").stdout.strip() == gloo_url
    assert coalmine(lab_home, "proxy", "stats-url", "--gateway", GATEWAY).stdout.strip() == kgw_url

    for url in (gloo_url, kgw_url):
        assert scrape(url, None)[0] == 401
        assert scrape(url, "not-the-token")[0] == 401
    status, gloo_text = scrape(gloo_url, token)
    assert status == 200
    # Gloo names the cluster <upstream>_<namespace>; kgateway kube_<namespace>_<service>_<port>.
    check_scrape(gloo_text, "default-petstore-v1-8080_gloo-system", gloo_seen)
    status, kgw_text = scrape(kgw_url, token)
    assert status == 200
    check_scrape(kgw_text, "kube_default_petstore-v1_8080", kgw_seen)
    # Each Envoy counts only its own traffic.
    assert samples(gloo_text, "kube_default_petstore-v1_8080") == []
    assert samples(kgw_text, "default-petstore-v1-8080_gloo-system") == []
    # /v1/stats adds every gateway's up, under the runtime's names.
    merged = lab.stats()
    assert merged["default-petstore-v1-8080"]["requests"] == sum(gloo_seen.values())
    assert merged["kube-svc:default-petstore-v1-8080"]["requests"] == sum(kgw_seen.values())


def test_stats_url_names_the_choices_and_survives_a_restart(petstore_lab: Lab, lab_home: Path) -> None:
    lab = petstore_lab
    url = lab.stats_url()
    missing = coalmine(lab_home, "proxy", "stats-url", "--gateway", "default/nope", check=False)
    assert missing.returncode != 0 and "gloo-system/gateway-proxy" in missing.stderr
    assert "Traceback" not in missing.stderr
    lab.down()
    lab.up()
    assert lab.stats_url() == url  # the scrape target stays where it was
    token = (lab_home / "token").read_text().strip()
    assert scrape(url, token)[0] == 200
