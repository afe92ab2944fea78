"""The `coalmine` command as tests and other tools rely on it, run as a real process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from helpers import Lab

from .conftest import MANIFESTS, V1_PETS, Client, env_without_coalmine, lab_processes

pytestmark = pytest.mark.integration


def coalmine(home: Path, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**env_without_coalmine(), "COALMINE_HOME": str(home)}
    result = subprocess.run(
        [sys.executable, "-m", "helpers", *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
    )
    if check:
        assert result.returncode == 0, f"coalmine {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_cli_runs_the_seed_flow_and_down_leaves_no_process(lab_home: Path):
    assert "lab running" in coalmine(lab_home, "up").stdout
    assert coalmine(lab_home, "up").returncode == 0  # idempotent
    out = coalmine(
        lab_home, "apply", "-f", str(MANIFESTS / "petstore-v1.yaml"), "-f", str(MANIFESTS / "petstore-v2.yaml")
    ).stdout
    assert out.splitlines() == [
        "configmap/petstore-v1-app created",
        "service/petstore-v1 created",
        "deployment.apps/petstore-v1 created",
        "configmap/petstore-v2-app created",
        "service/petstore-v2 created",
        "deployment.apps/petstore-v2 created",
    ]
    coalmine(lab_home, "install", "gloo")
    coalmine(lab_home, "wait", "--timeout", "60")
    upstreams = coalmine(lab_home, "get", "upstreams").stdout
    assert "default-petstore-v1-8080" in upstreams and "- findPetById" in upstreams
    assert upstreams.splitlines()[1].split() == ["|", "UPSTREAM", "|", "TYPE", "|", "STATUS", "|", "DETAILS", "|"]

    vs_text = (MANIFESTS / "gloo" / "1-route-to-v1.yaml").read_text()
    assert (
        coalmine(lab_home, "apply", "-f", "-", stdin=vs_text).stdout.strip()
        == "virtualservice.gateway.solo.io/coalmine created"
    )
    assert (
        coalmine(lab_home, "apply", "-f", "-", stdin=vs_text).stdout.strip()
        == "virtualservice.gateway.solo.io/coalmine unchanged"
    )
    status = yaml.safe_load(coalmine(lab_home, "get", "vs", "coalmine", "-o", "yaml").stdout)["status"]
    assert status["statuses"]["gloo-system"]["state"] == "Accepted"
    listed = json.loads(coalmine(lab_home, "get", "virtualservices", "-o", "json").stdout)
    assert listed["metadata"]["name"] == "coalmine"

    url = coalmine(lab_home, "proxy", "url").stdout.strip()
    assert url.startswith("http://127.0.0.1:")
    client = Client(url)
    try:
        assert client.get("/petstore") == (200, V1_PETS)
    finally:
        client.close()
    pods = coalmine(lab_home, "get", "pods").stdout.splitlines()
    assert pods[0].split()[:4] == ["NAME", "READY", "STATUS", "RESTARTS"] and len(pods) == 3

    assert lab_processes(lab_home), "the lab should be running"
    coalmine(lab_home, "down")
    assert lab_processes(lab_home) == []


def test_refusal_exits_non_zero_and_names_the_field(lab_home: Path, tmp_path: Path):
    coalmine(lab_home, "up")
    coalmine(lab_home, "install", "gloo")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "gateway.solo.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": "coalmine", "namespace": "gloo-system"},
                "spec": {
                    "virtualHost": {
                        "domains": ["*"],
                        "routes": [
                            {
                                "matchers": [{"prefix": "/"}],
                                "routeAction": {
                                    "multi": {
                                        "destinations": [
                                            {
                                                "weight": 0,
                                                "destination": {"upstream": {"name": "a", "namespace": "gloo-system"}},
                                            }
                                        ]
                                    }
                                },
                            }
                        ],
                    }
                },
            }
        )
    )
    result = coalmine(lab_home, "apply", "-f", str(bad), check=False)
    assert result.returncode != 0
    assert "routes[0].routeAction.multi" in result.stderr
    assert coalmine(lab_home, "get", "vs").stderr.startswith("No resources found")
    unknown = coalmine(lab_home, "get", "gadgets", check=False)
    assert unknown.returncode != 0 and "doesn't have a resource type" in unknown.stderr


def test_gloo_kinds_need_gloo_installed_first(lab: Lab):
    from helpers import ApplyRefused

    with pytest.raises(ApplyRefused, match="coalmine install gloo"):
        lab.apply(MANIFESTS / "gloo" / "1-route-to-v1.yaml")


def test_gateway_port_in_use_is_a_clear_error(lab_home: Path):
    coalmine(lab_home, "up")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = coalmine(lab_home, "install", "gloo", "--port", str(port), check=False)
    assert result.returncode != 0
    assert f"127.0.0.1:{port}" in result.stderr and "--port" in result.stderr


def test_admin_api_requires_the_token(lab: Lab, lab_home: Path):
    state = json.loads((lab_home / "state.json").read_text())
    url = f"http://127.0.0.1:{state['adminPort']}/v1/status"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    refused.value.close()
    assert refused.value.code == 401
    wrong = urllib.request.Request(url, headers={"Authorization": "Bearer nope"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(wrong, timeout=10)
    refused.value.close()
    assert refused.value.code == 401
    assert (lab_home / "token").stat().st_mode & 0o777 == 0o600


def test_everything_the_lab_opens_listens_on_loopback_only(petstore_lab: Lab, lab_home: Path):
    import psutil

    petstore_lab.apply(MANIFESTS / "gloo" / "1-route-to-v1.yaml")  # the gateway listens once a VS exists
    listening, bound = [], []
    for proc in lab_processes(lab_home):
        for conn in proc.net_connections(kind="inet"):
            (listening if conn.status == psutil.CONN_LISTEN else bound).append(conn.laddr)
    assert len(listening) >= 4  # admin API, gateway proxy, two pods
    assert {addr.ip for addr in listening + bound if addr} == {"127.0.0.1"}


def test_objects_survive_a_restart_of_the_lab(lab: Lab):
    lab.apply(MANIFESTS / "petstore-v1.yaml")
    lab.install("gloo")
    lab.wait(60)
    url = lab.proxy_url()
    lab.apply(MANIFESTS / "gloo" / "1-route-to-v1.yaml")
    lab.down()
    lab.up()
    lab.wait(60)
    assert lab.proxy_url() == url or lab.proxy_url().startswith("http://127.0.0.1:")
    client = Client(lab.proxy_url())
    try:
        assert client.get("/petstore") == (200, V1_PETS)
    finally:
        client.close()
