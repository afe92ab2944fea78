"""The lab's Prometheus (``helpers.runtime.prometheus``): its configuration, checked by
Prometheus's own ``promtool``, and the real process scraping a stand-in gateway stats
endpoint (``/stats/prometheus`` behind the lab's bearer token), reloaded as gateways come
and go, restarted when killed, stopped by ``close``.

The process tests need Debian's ``prometheus`` (``make prometheus`` installs it, as
``make test`` does); without it they skip, saying so. Every test waits on conditions with
a deadline and stops what it started.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import psutil
import pytest
from aiohttp import web

from helpers.errors import Unsupported
from helpers.runtime import prometheus
from helpers.runtime.home import LabHome
from helpers.runtime.prometheus import PrometheusServer, render_config, scrape_jobs
from helpers.runtime.store import Store
from tests.conftest import until

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]
DEADLINE_S = 30.0
NO_PROMETHEUS = "no `prometheus` on PATH: `make prometheus` (or `sudo apt-get install prometheus`) installs it"
needs_prometheus = pytest.mark.skipif(prometheus.find_binary() is None, reason=NO_PROMETHEUS)

EXPOSITION = """\
# TYPE envoy_cluster_upstream_rq_total counter
envoy_cluster_upstream_rq_total{envoy_cluster_name="default-petstore-v1-8080"} %d
"""


# ── configuration ────────────────────────────────────────────────────────────


def test_one_job_per_gateway_with_the_token_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    jobs = scrape_jobs(
        {
            "gloo-system/gateway-proxy": "http://127.0.0.1:4001/stats/prometheus",
            "kgateway-system/http": {"http": "http://127.0.0.1:4002/stats/prometheus"},
        }
    )
    assert jobs == {
        "gloo-system/gateway-proxy": "http://127.0.0.1:4001/stats/prometheus",
        "kgateway-system/http/http": "http://127.0.0.1:4002/stats/prometheus",
    }
    import yaml

    config = yaml.safe_load(render_config(jobs, token))
    assert config["global"] == {"scrape_interval": "1s", "scrape_timeout": "1s"}
    first = config["scrape_configs"][0]
    assert first["job_name"] == "gloo-system/gateway-proxy"
    assert first["metrics_path"] == "/stats/prometheus"
    assert first["static_configs"] == [{"targets": ["127.0.0.1:4001"]}]
    assert first["authorization"] == {"type": "Bearer", "credentials_file": str(token)}


def test_a_list_of_urls_and_nothing_at_all() -> None:
    assert scrape_jobs(["http://127.0.0.1:1/stats/prometheus"]) == {"gateway-0": "http://127.0.0.1:1/stats/prometheus"}
    assert scrape_jobs(None) == {}
    assert scrape_jobs({}) == {}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="no `promtool` on PATH (it comes with prometheus)")
@pytest.mark.parametrize("gateways", [0, 2])
def test_promtool_accepts_the_configuration(tmp_path: Path, gateways: int) -> None:
    token = tmp_path / "token"
    token.write_text("x" * 43 + "\n")
    jobs = {f"ns/gw{i}": f"http://127.0.0.1:{4000 + i}/stats/prometheus" for i in range(gateways)}
    (tmp_path / "prometheus.yml").write_text(render_config(jobs, token))
    checked = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout + checked.stderr


# ── the real process ─────────────────────────────────────────────────────────


class StandIn:
    """A gateway's stats endpoint: ``/stats/prometheus`` for the right bearer token only."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.scrapes = 0
        self.refused = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> StandIn:
        app = web.Application()
        app.router.add_get("/stats/prometheus", self._stats)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/stats/prometheus"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _stats(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self.refused += 1
            return web.Response(status=401)
        self.scrapes += 1
        return web.Response(text=EXPOSITION % (self.scrapes * 10), content_type="text/plain")


@asynccontextmanager
async def server(home: Path, targets: dict[str, str]) -> AsyncIterator[PrometheusServer]:
    lab = LabHome(home)
    lab.ensure()
    lab.token(create=True)
    store = Store(home / "store.json")
    prom = PrometheusServer(store, lab, lambda: dict(targets))
    try:
        yield prom
    finally:
        await prom.close()


async def api(prom: PrometheusServer, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(f"{prom.url}{path}") as resp:
        return json.loads(await resp.text())


async def query(prom: PrometheusServer, promql: str) -> list[Any]:
    answer = await api(prom, f"/api/v1/query?query={promql}")
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


async def active_jobs(prom: PrometheusServer) -> set[str]:
    answer = await api(prom, "/api/v1/targets")
    return {t["labels"]["job"] for t in answer["data"]["activeTargets"]}


async def polled(check: Callable[[], Coroutine[Any, Any, T]], what: str) -> T:
    """``until`` for an async check: the value once truthy; fails naming ``what``."""
    box: list[T] = []

    async def step() -> None:
        box[:] = [await check()]

    async def loop() -> T:
        while True:
            await step()
            if box[0]:
                return box[0]
            await asyncio.sleep(0.1)

    try:
        return await asyncio.wait_for(loop(), DEADLINE_S)
    except TimeoutError:
        pytest.fail(f"timed out after {DEADLINE_S:g}s waiting for {what} (last: {box[:1]})")


@needs_prometheus
def test_scrapes_with_the_token_reloads_and_stops(run: Run[None], tmp_path: Path) -> None:
    async def scenario() -> None:
        token = LabHome(tmp_path)
        token.ensure()
        async with StandIn(token.token(create=True)) as first, StandIn(token.token()) as second:
            targets = {"gloo-system/gateway-proxy": first.url}
            async with server(tmp_path, targets) as prom:
                installed = await prom.install()
                assert installed["url"].startswith("http://127.0.0.1:") and installed["ready"]
                assert prom.store.extra["prometheus"] == {"port": prom.port}
                assert (tmp_path / "prometheus" / "data").is_dir()
                samples = await polled(lambda: query(prom, "envoy_cluster_upstream_rq_total"), "a scraped sample")
                assert samples[0]["metric"]["job"] == "gloo-system/gateway-proxy"
                assert samples[0]["metric"]["envoy_cluster_name"] == "default-petstore-v1-8080"
                assert first.refused == 0  # the token was sent, read from the token file

                # A second gateway comes: the configuration is rewritten and reloaded.
                targets["kgateway-system/http"] = second.url
                prom.update()
                await polled(
                    lambda: query(prom, 'envoy_cluster_upstream_rq_total{job="kgateway-system/http"}'),
                    "the second gateway's samples",
                )
                # The first goes away: no longer scraped.
                del targets["gloo-system/gateway-proxy"]
                prom.update()
                await polled(
                    lambda: _without(active_jobs(prom), "gloo-system/gateway-proxy"), "the first job to be dropped"
                )
                pid = prom.process.pid if prom.process else 0
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            assert prom.url is None

    run(scenario())


async def _without(jobs: Coroutine[Any, Any, set[str]], job: str) -> bool:
    found = await jobs
    return bool(found) and job not in found


@needs_prometheus
def test_restarted_when_killed(run: Run[None], tmp_path: Path) -> None:
    async def scenario() -> None:
        stale = tmp_path / "prometheus" / "data" / "01-an-older-labs-block"
        stale.mkdir(parents=True)
        async with server(tmp_path, {}) as prom:
            await prom.install()
            assert not stale.exists()  # a fresh install starts with no samples
            first = prom.process
            assert first is not None
            os.kill(first.pid, signal.SIGKILL)
            await until(lambda: prom.restarts == 1 and prom.ready, "Prometheus restarted and ready", DEADLINE_S)
            assert prom.process is not None and prom.process.pid != first.pid
            assert prom.status()["url"] == prom.url and "exited with code" not in prom.status()["message"]

    run(scenario())


def test_refused_with_the_install_command_when_missing(
    run: Run[None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    async def scenario() -> None:
        async with server(tmp_path, {}) as prom:
            with pytest.raises(Unsupported, match=r"make prometheus.*sudo apt-get install prometheus"):
                await prom.install()
            assert not prom.installed and prom.url is None
            assert prom.status()["available"] is False

    run(scenario())
