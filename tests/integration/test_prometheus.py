"""A real Prometheus scraping a real lab's gateways (``coalmine install prometheus``).

Real processes over loopback: the lab's control plane and pods, Gloo's gateway proxy,
its stats endpoint, and Debian's ``prometheus``, queried through its HTTP API
(``/api/v1/query``) as Flagger's prometheus provider queries it. Without Prometheus on
the machine (``make prometheus`` installs it, as ``make test`` does) the tests that need
it skip, saying so; the refusal itself is tested everywhere. The ``lab_home`` fixture
fails a test that leaves any process of the lab running after ``down``.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from helpers import Lab
from helpers.errors import Unsupported
from helpers.runtime import prometheus
from tests.conftest import wait_for

from .conftest import MANIFESTS, Client, lab_processes
from .test_cli import coalmine

pytestmark = pytest.mark.integration
needs_prometheus = pytest.mark.skipif(
    prometheus.find_binary() is None,
    reason="no `prometheus` on PATH: `make prometheus` (or `sudo apt-get install prometheus`) installs it",
)
DEADLINE_S = 60.0


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """The result vector of an instant query, as Flagger's prometheus provider reads it."""
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}", timeout=10) as r:
        answer = json.loads(r.read())
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def scraped_jobs(url: str) -> set[str]:
    with urllib.request.urlopen(f"{url}/api/v1/targets", timeout=10) as r:
        targets = json.loads(r.read())["data"]["activeTargets"]
    return {t["labels"]["job"] for t in targets if t["health"] == "up"}


def prometheus_processes(home: Path) -> list[Any]:
    return [p for p in lab_processes(home) if "--storage.tsdb.path" in " ".join(p.cmdline())]


@needs_prometheus
def test_scrapes_the_gateway_follows_gateways_and_stops_with_down(petstore_lab: Lab, lab_home: Path) -> None:
    lab = petstore_lab
    lab.apply(MANIFESTS / "gloo" / "1-route-to-v1.yaml")
    installed = lab.install("prometheus")
    url = installed["url"]
    assert url.startswith("http://127.0.0.1:") and installed["ready"]
    assert lab.status()["prometheus"]["url"] == url
    assert len(prometheus_processes(lab_home)) == 1
    assert (lab_home / "prometheus" / "data").is_dir()

    client = Client(lab.proxy_url())
    try:
        for _ in range(20):
            assert client.get("/petstore")[0] == 200
    finally:
        client.close()
    total = 'sum(envoy_cluster_upstream_rq_total{envoy_cluster_name=~".*petstore-v1.*"})'
    wait_for(
        lambda: (found := query(url, total)) and float(found[0]["value"][1]) >= 20,
        DEADLINE_S,
        "Prometheus to have scraped the 20 requests",
    )
    assert query(url, "up") and all(s["value"][1] == "1" for s in query(url, "up"))

    # A Gateway API Gateway comes: its stats endpoint is scraped too (the config is reloaded).
    lab.install("kgateway")
    lab.apply(MANIFESTS / "gateway-api" / "0-gateway.yaml")
    gateways = set(lab.status()["stats_urls"])
    assert len(gateways) == 2
    wait_for(lambda: scraped_jobs(url) == gateways, DEADLINE_S, f"Prometheus to scrape {sorted(gateways)}")

    # A restart of the lab brings it back where it was; `down` stops it.
    lab.down()
    assert not prometheus_processes(lab_home)
    lab.up()
    assert lab.status()["prometheus"]["url"] == url
    wait_for(lambda: lab.status()["prometheus"]["ready"], DEADLINE_S, "Prometheus ready again after up")
    assert float(query(url, total)[0]["value"][1]) >= 20  # its data survived under the lab home
    lab.down()
    assert not prometheus_processes(lab_home)


@needs_prometheus
def test_cli_install_and_status(lab_home: Path) -> None:
    out = coalmine(lab_home, "install", "prometheus").stdout
    assert out.startswith("prometheus serving on http://127.0.0.1:")
    assert "scraping every 1s: each gateway once there is one" in out
    url = out.split()[3].rstrip(",")
    assert f"prometheus: {url}\n" in coalmine(lab_home, "status").stdout
    assert query(url, "vector(1)")[0]["value"][1] == "1"


def test_refused_in_one_line_without_prometheus(
    lab_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # the control plane started below inherits it
    result = coalmine(lab_home, "install", "prometheus", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "make prometheus" in result.stderr and "sudo apt-get install prometheus" in result.stderr
    lab = Lab(home=lab_home)
    assert lab.status()["prometheus"] == {**lab.status()["prometheus"], "installed": False, "available": False}
    with pytest.raises(Unsupported, match="no Prometheus on this machine"):
        lab.install("prometheus")
    assert lab.status()["pods"] == {"total": 0, "ready": 0}  # the lab keeps running


@needs_prometheus
def test_dies_with_a_killed_control_plane(lab: Lab, lab_home: Path) -> None:
    lab.install("prometheus")
    (server,) = prometheus_processes(lab_home)
    state = json.loads((lab_home / "state.json").read_text())
    os.kill(int(state["pid"]), signal.SIGKILL)  # no `down`: the kernel tells Prometheus
    wait_for(lambda: not server.is_running() or server.status() == psutil.STATUS_ZOMBIE, DEADLINE_S, "Prometheus gone")
