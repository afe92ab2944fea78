"""The load tester (helpers/apps/loadtester.py) as a real process on loopback, driving
real petstore processes through a services.json, the way a lab pod runs it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.test_petstore import free_port, stop

pytestmark = pytest.mark.integration

APPS = Path(__file__).resolve().parents[2] / "helpers" / "apps"
TIMEOUT_S = 30.0
SETTINGS = ("HOST", "PORT", "VERSION", "ERROR_RATE", "LATENCY_MS", "COALMINE_SERVICES", "POD_NAMESPACE")


@dataclass
class App:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text()

    def call(self, path: str, body: Mapping[str, object] | None = None, method: str = "POST") -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT_S)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
            answer = conn.getresponse()
            return answer.status, answer.read().decode()
        finally:
            conn.close()


def listening(app: str, proc: subprocess.Popen[bytes], port: int, log: Path) -> bool:
    if proc.poll() is not None:
        pytest.fail(f"{app} exited with {proc.returncode}: {log.read_text()}")
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., App]]:
    """Start helpers/apps/<app>.py with the given settings; every one is stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def _start(app: str, **settings: str) -> App:
        port = free_port()
        log = tmp_path / f"{app}-{port}.log"
        env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
        env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1", HOST="127.0.0.1", PORT=str(port), **settings)
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, str(APPS / f"{app}.py")], env=env, stdout=out, stderr=out)
        started.append(proc)
        wait_for(lambda: listening(app, proc, port, log), timeout=TIMEOUT_S, what=f"{app} listening on {port}")
        return App(proc, port, log)

    try:
        yield _start
    finally:
        for proc in started:
            stop(proc)


def pets(store: App) -> list[dict[str, object]]:
    status, body = store.call("/api/pets", method="GET")
    assert status == 200
    result: list[dict[str, object]] = json.loads(body)
    return result


def test_a_load_test_reaches_the_service_endpoints_in_turn(start: Callable[..., App], tmp_path: Path) -> None:
    stores = [start("petstore", VERSION="v1"), start("petstore", VERSION="v1")]
    services = tmp_path / "services.json"
    endpoints = [f"127.0.0.1:{store.port}" for store in stores]
    services.write_text(json.dumps({"version": 1, "services": {"petstore.default": {"80": endpoints}}}))
    tester = start("loadtester", COALMINE_SERVICES=str(services), POD_NAMESPACE="default")
    # 2 s at 2 requests a second: exactly 4 POSTs, open-loop, to the bare Service name.
    cmd = 'hey -z 2s -q 2 -c 1 -m POST -T application/json -d \'{"name": "Rex"}\' http://petstore/api/pets'
    hook = {
        "name": "petstore",
        "namespace": "default",
        "phase": "Progressing",
        "metadata": {"cmd": cmd, "logCmdOutput": "true"},
    }

    assert tester.call("/", hook) == (202, "")
    assert tester.call("/", hook) == (202, "")  # already running: skipped, as Flagger does
    wait_for(lambda: f"command finished {cmd}" in tester.output(), timeout=TIMEOUT_S, what="the load test to finish")

    log = tester.output()
    assert f"petstore.default command skipped {cmd} is already running" in log
    assert log.count("task starting") == 1
    assert "summary: 4 requests in" in log and "responses 4 (201: 4), errors 0, skipped 0, p50" in log
    for store in stores:  # round-robin: each endpoint got two of the four
        assert [pet["name"] for pet in pets(store)] == ["Dog", "Cat", "Rex", "Rex"]


def test_gates_over_http(start: Callable[..., App]) -> None:
    tester = start("loadtester")
    canary = {"name": "petstore", "namespace": "default"}
    assert tester.call("/healthz", method="GET") == (200, "OK")
    assert tester.call("/gate/check", canary) == (403, "Forbidden")
    assert tester.call("/gate/open", canary) == (202, "")
    assert tester.call("/gate/check", canary) == (200, "Approved")
    assert tester.call("/rollback/check", canary) == (403, "Forbidden")
    assert tester.call("/gate/close", canary) == (202, "")
    assert tester.call("/gate/check", canary) == (403, "Forbidden")
    assert tester.call("/gate/approve", canary) == (200, "OK")
    assert tester.call("/gate/halt", canary) == (403, "Forbidden")
    assert "petstore.default gate check: approved true" in tester.output()


def test_a_refused_cmd_gets_400_and_the_message(start: Callable[..., App]) -> None:
    tester = start("loadtester")
    curl = {"name": "petstore", "namespace": "default", "metadata": {"cmd": "curl -s http://petstore-canary/"}}
    status, text = tester.call("/", curl)
    assert status == 400 and text.startswith("'curl' is not run by the local load tester: it runs hey commands only")
    helm = {"name": "petstore", "namespace": "default", "metadata": {"type": "helmv3", "cmd": "test podinfo"}}
    assert tester.call("/", helm) == (
        400,
        "task type helmv3 is not run by the local load tester: it runs type cmd (hey) only",
    )
    assert tester.call("/", None, method="GET")[0] == 400
    assert "command refused curl -s http://petstore-canary/" in tester.output()
    assert tester.call("/healthz", method="GET") == (200, "OK")  # still serving


def test_sigterm_stops_a_running_load_test_and_exits_zero(start: Callable[..., App]) -> None:
    store = start("petstore", VERSION="v1")
    tester = start("loadtester")
    cmd = f"hey -z 10m -q 5 -c 1 http://127.0.0.1:{store.port}/api/pets"
    hook = {"name": "petstore", "namespace": "default", "metadata": {"cmd": cmd, "logCmdOutput": "true"}}
    assert tester.call("/", hook) == (202, "")
    wait_for(lambda: "task starting" in tester.output(), timeout=TIMEOUT_S, what="the load test to start")
    tester.proc.send_signal(signal.SIGTERM)
    assert tester.proc.wait(timeout=TIMEOUT_S) == 0
    log = tester.output()
    assert f"command stopped {cmd}: the load tester is stopping" in log
    assert "summary: " in log and "load tester stopped" in log


def test_bad_settings_exit_with_a_message() -> None:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    result = subprocess.run(
        [sys.executable, str(APPS / "loadtester.py")], env={**env, "PORT": "http"}, capture_output=True, timeout=30
    )
    assert result.returncode == 2
    assert "loadtester: invalid setting: PORT='http'" in result.stderr.decode()
