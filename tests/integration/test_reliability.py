"""Issue 12 on real labs: no input freezes, spins or unlocks a lab.

Each test starts a real control plane (the ``lab`` fixtures, or the CLI), sends real
HTTP on 127.0.0.1, and stops everything it started.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import ApplyRefused, Lab, ManifestError
from tests.conftest import wait_for

from .conftest import (
    MANIFESTS,
    V1_PETS,
    Client,
    Hammer,
    env_without_coalmine,
    lab_processes,
    version_of,
    weighted,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EVIL = "(a+)+$"  # 6.5 s for 29 bytes with Python's re, about 4x per two more
BOMB = "kind: ConfigMap\na: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
)


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def direct_vs(name: str, domain: str, routes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "gloo-system"},
        "spec": {"virtualHost": {"domains": [domain], "routes": routes}},
    }


def answer(route_prefix: str, body: str) -> dict[str, Any]:
    return {"matchers": [{"prefix": route_prefix}], "directResponseAction": {"status": 200, "body": body}}


def refusal(lab: Lab, obj: Any) -> str:
    [result] = lab.apply_each(obj)
    assert "error" in result, result
    return str(result["error"])


def raw_admin(lab: Lab, authorization: bytes | None) -> bytes:
    state = json.loads((lab.backend.home.state_file).read_text())  # type: ignore[attr-defined]
    with socket.create_connection(("127.0.0.1", state["adminPort"]), timeout=10) as s:
        auth = b"Authorization: " + authorization + b"\r\n" if authorization is not None else b""
        s.sendall(b"POST /v1/shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + b"Content-Length: 0\r\n\r\n")
        return s.recv(65536)


def test_hostile_input_does_not_freeze_spin_or_unlock_a_running_lab(lab: Lab) -> None:
    lab.install("gloo")
    lab.apply(
        direct_vs(
            "evil",
            "*",
            [
                {
                    **answer("/", "canary"),
                    "matchers": [{"prefix": "/", "headers": [{"name": "x-canary", "value": EVIL, "regex": True}]}],
                },
                answer("/", "stable"),
            ],
        )
    )
    gateway = Client(lab.proxy_url())
    try:
        # A header that would take Python's re years answers at once (RE2), and so does the admin API.
        assert gateway.get("/", x_canary="a" * 40 + "b") == (200, "stable")
        assert gateway.get("/", x_canary="a" * 29) == (200, "canary")
        assert lab.status()["objects"] >= 1

        # Objects over 1 MiB: refused when read (nothing is sent), and by the lab if sent anyway.
        big, huge = (
            configmap("big", blob="x" * (10 * 1024 * 1024)),
            direct_vs("huge", "huge.example", [answer(f"/r{i}", "x") for i in range(100_000)]),
        )
        for obj in (big, huge):
            with pytest.raises(ManifestError, match=r"bytes as JSON: an object may be at most 1,048,576 \(1 MiB"):
                lab.apply(obj)
            [result] = lab.backend.apply([obj])
            assert "at most 1,048,576 (1 MiB) are accepted" in result["error"], result
        backref = direct_vs("backref", "b.example", [{**answer("/", "x"), "matchers": [{"regex": r"/(a)\1"}]}])
        said = refusal(lab, backref)
        assert "matchers[0].regex: invalid regex" in said and "RE2 refuses it" in said
        dep = yaml.safe_load((MANIFESTS / "petstore-v1.yaml").read_text().split("\n---\n")[-1])
        assert dep["kind"] == "Deployment"
        container = dep["spec"]["template"]["spec"]["containers"][0]
        for change, field in (
            ({"env": [{"value": "x"}]}, "containers[0].env[0].name is required"),
            ({"ports": [{"containerPort": 70000}]}, "containers[0].ports[0].containerPort"),
            ({"readinessProbe": {"periodSeconds": -5}}, "readinessProbe.periodSeconds"),
        ):
            bad = copy.deepcopy(dep)
            bad["spec"]["template"]["spec"]["containers"][0] = {**container, **change}
            assert field in refusal(lab, bad)
        host = copy.deepcopy(dep)
        host["spec"]["template"]["spec"]["volumes"] = [{"name": "app", "hostPath": {"path": "/"}}]
        assert "hostPath: volumes from the host are forbidden" in refusal(lab, host)
        with pytest.raises(ManifestError, match="excessive aliasing"):
            lab.apply(BOMB)
        with pytest.raises(ApplyRefused):
            lab.apply(configmap("bad-keys", a="1", **{"a/b": "2"}))

        # No credential, an empty one, or one that is not UTF-8: 401, and the lab keeps running.
        for auth in (None, b"Bearer ", b"Bearer \xff\xfe\xfd"):
            assert raw_admin(lab, auth).startswith(b"HTTP/1.1 401"), auth
        assert gateway.get("/", x_canary="a" * 29) == (200, "canary")
        assert lab.status()["pods"] == {"total": 0, "ready": 0}  # nothing refused got to run
    finally:
        gateway.close()


@pytest.mark.timeout(120)
def test_a_killed_pod_serves_again_within_2s(petstore_lab: Lab) -> None:
    petstore_lab.apply(MANIFESTS / "gloo" / "1-route-to-v1.yaml")
    gateway = Client(petstore_lab.proxy_url())
    home = petstore_lab.backend.home.root  # type: ignore[attr-defined]
    try:
        for _kill in range(2):
            [pod] = [p for p in petstore_lab.objects("pods") if p["metadata"]["labels"]["app"] == "petstore-v1"]
            os.kill(pod["status"]["localPid"], signal.SIGKILL)
            wait_for(lambda n=pod["metadata"]["name"]: not _ready(petstore_lab, n), 10, "the kill to be seen")
            wait_for(lambda: _serves(gateway, V1_PETS), 2.0, "the killed pod to serve again")
        names = {p["metadata"]["name"] for p in petstore_lab.objects("pods")}
        assert {p.name for p in (home / "pods").iterdir()} == names  # no folder of a dead pod is left
    finally:
        gateway.close()


def _ready(lab: Lab, name: str) -> bool:
    pods = [p for p in lab.objects("pods") if p["metadata"]["name"] == name]
    return bool(pods) and pods[0]["status"]["containerStatuses"][0]["ready"]


def _serves(gateway: Client, body: str) -> bool:
    try:
        return gateway.get("/petstore") == (200, body)
    except OSError:
        gateway.close()
        gateway.conn.connect()
        return False


def test_flips_under_load_with_a_big_store_fail_no_request(petstore_lab: Lab) -> None:
    """Megabytes in the store and a legal VirtualService of thousands of routes: each
    flip translates and saves all of it, off the loop that serves traffic."""
    lab = petstore_lab
    lab.apply([configmap(f"bulk-{i}", blob=f"{i}" * (900 * 1024)) for i in range(6)])
    lab.apply(direct_vs("bulk", "bulk.example", [answer(f"/bulk/{i}", "x") for i in range(6000)]))
    lab.apply(weighted(100, 0))
    url, followed, flips = lab.proxy_url(), 0, 0
    with Hammer(url, workers=4) as load, closing(Client(url)) as probe:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            target = "v2" if flips % 2 == 0 else "v1"
            lab.apply(weighted(0, 100) if target == "v2" else weighted(100, 0))
            status, body = probe.get("/petstore")  # the very next request follows the flip
            followed += status == 200 and version_of(body) == target
            flips += 1
    assert load.failures == [] and load.requests > 50
    assert flips >= 3 and followed == flips


def coalmine(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helpers", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env_without_coalmine(),
    )


def test_up_says_one_line_for_a_damaged_store_and_two_ups_share_one_lab(lab_home: Path) -> None:
    lab_home.mkdir(mode=0o755)
    os.chmod(lab_home, 0o755)
    (lab_home / "token").write_text("")  # an empty token must not open the lab
    (lab_home / "store.json").write_text('{"objects": [')
    damaged = coalmine(lab_home, "up")
    assert damaged.returncode == 1 and "Traceback" not in damaged.stderr
    assert damaged.stderr.count("\n") == 1 and "store.json is damaged" in damaged.stderr
    assert f"mv {lab_home / 'store.json'}" in damaged.stderr
    assert lab_processes(lab_home) == []

    (lab_home / "store.json").unlink()
    ups = [
        subprocess.Popen(
            [sys.executable, "-m", "helpers", "--home", str(lab_home), "up"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env_without_coalmine(),
        )
        for _ in range(2)
    ]
    outcomes = [(p.wait(60), *p.communicate()) for p in ups]
    assert [code for code, _, _ in outcomes] == [0, 0], outcomes
    assert all("Traceback" not in err for _, _, err in outcomes)
    assert stat.S_IMODE(lab_home.stat().st_mode) == 0o700
    assert stat.S_IMODE((lab_home / "token").stat().st_mode) == 0o600
    assert len((lab_home / "token").read_text().strip()) >= 32
    lab = Lab(home=lab_home)
    assert lab.status()["home"] == str(lab_home)
    assert raw_admin(lab, None).startswith(b"HTTP/1.1 401")
    control_planes = [p for p in lab_processes(lab_home) if "helpers.runtime.admin" in " ".join(p.cmdline())]
    assert len(control_planes) == 1
