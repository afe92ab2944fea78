"""The gateway's URL: a LoadBalancer address when there is one, else a port-forward
process on 127.0.0.1 that carries real HTTP through the API server's port-forward
websocket to a ready proxy pod, and that ``down`` stops."""

from __future__ import annotations

import http.client
import json
import threading

import psutil
import pytest

from helpers.backends.kube import KubernetesBackend
from helpers.errors import NotFound
from helpers.loading import load_manifests
from tests.conftest import wait_for

from .conftest import MANIFESTS
from .fake_apiserver import FakeApiServer

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "gateway-proxy", "namespace": "gloo-system"},
    "spec": {
        "type": "LoadBalancer",
        "selector": {"gateway-proxy-id": "gateway-proxy"},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443, "targetPort": 8443}],
    },
    "status": {"loadBalancer": {}},
}


def proxy_pod(name: str, ready: bool) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "gloo-system", "labels": {"gateway-proxy-id": "gateway-proxy"}},
        "spec": {"containers": [{"name": "gateway-proxy", "ports": [{"containerPort": 8080}]}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}]},
    }


@pytest.fixture
def gloo(backend: KubernetesBackend, apiserver: FakeApiServer) -> KubernetesBackend:
    with backend.ledger.change() as entry:
        entry["installed"]["gloo"] = {"ours": True, "via": "helm", "discovery": True}
    apiserver.put(SERVICE)
    apiserver.put(proxy_pod("gateway-proxy-old", ready=False))
    apiserver.put(proxy_pod("gateway-proxy-5c9d", ready=True))
    return backend


def get(url: str, path: str) -> tuple[int, dict]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_load_balancer_address_when_there_is_one(gloo: KubernetesBackend, apiserver: FakeApiServer):
    apiserver.get(SERVICE)["status"] = {"loadBalancer": {"ingress": [{"ip": "172.18.255.200"}]}}
    assert gloo.proxy_url() == "http://172.18.255.200"
    assert not list(gloo.home.root.glob("forward-*.json"))


def test_port_forward_to_a_ready_proxy_pod_until_down(gloo: KubernetesBackend, apiserver: FakeApiServer):
    url = gloo.proxy_url()
    assert url.startswith("http://127.0.0.1:")
    state = json.loads((gloo.home.root / "forward-gloo.json").read_text())
    forwarder = psutil.Process(state["pid"])
    try:
        for _ in range(2):  # each connection is carried separately
            assert get(url, "/findPets") == (200, {"pod": "gateway-proxy-5c9d", "port": 8080, "path": "/findPets"})
        assert "GET /api/v1/namespaces/gloo-system/pods/gateway-proxy-5c9d/portforward?ports=8080" in apiserver.requests
        assert gloo.proxy_url() == url  # the same forward, kept for the lab's lifetime
        assert gloo.status()["gateway"]["url"] == url
    finally:
        gloo.down()
    assert not psutil.pid_exists(forwarder.pid)  # stopped and reaped by down()
    assert not (gloo.home.root / "forward-gloo.json").exists()


def test_no_gateway_installed(backend: KubernetesBackend):
    with pytest.raises(NotFound, match="no gateway is installed by this lab: run `coalmine install gloo`"):
        backend.proxy_url()


def test_only_the_labs_gateway_api_gateway_is_reachable(backend: KubernetesBackend):
    with pytest.raises(NotFound, match=r'Gateway "shop/edge": .* `install kgateway` makes, kgateway-system/http'):
        backend.proxy_url(gateway="shop/edge")


def test_the_forward_listens_on_loopback_only(gloo: KubernetesBackend):
    gloo.proxy_url()
    pid = json.loads((gloo.home.root / "forward-gloo.json").read_text())["pid"]
    try:
        addresses = {c.laddr.ip for c in psutil.Process(pid).net_connections() if c.status == psutil.CONN_LISTEN}
        assert addresses == {"127.0.0.1"}
    finally:
        gloo.down()
    assert not psutil.pid_exists(pid)


def test_a_ready_pod_gets_a_local_port_like_the_local_runtimes(backend: KubernetesBackend, apiserver: FakeApiServer):
    """Lesson 1 calls a pod directly at ``status.localPort``; on a cluster that is a port-forward."""
    pod = proxy_pod("petstore-v1-abc", ready=True)
    pod["metadata"]["namespace"] = "default"
    apiserver.put(pod)
    apiserver.put(
        {**proxy_pod("petstore-v1-new", ready=False), "metadata": {"name": "petstore-v1-new", "namespace": "default"}}
    )
    found = {p["metadata"]["name"]: p["status"].get("localPort") for p in backend.get("Pod", "default")}
    assert found["petstore-v1-new"] is None
    url = f"http://127.0.0.1:{found['petstore-v1-abc']}"
    assert get(url, "/api/pets") == (200, {"pod": "petstore-v1-abc", "port": 8080, "path": "/api/pets"})
    again = {p["metadata"]["name"]: p["status"].get("localPort") for p in backend.get("Pod", "default")}
    assert again == found  # one forward per pod, reused
    backend.down()
    with pytest.raises(OSError):
        get(url, "/api/pets")


def test_other_threads_use_the_api_while_a_port_forward_connects(backend: KubernetesBackend, apiserver: FakeApiServer):
    """kubernetes.stream.portforward swaps call_api on the ApiClient it is given while it
    connects: the traffic generator, the dashboard or another forward must not notice."""
    pod = proxy_pod("petstore-v1-abc", ready=True)
    pod["metadata"]["namespace"] = "default"
    apiserver.put(pod)
    backend.apply(load_manifests([MANIFESTS / "petstore-v1.yaml"]))
    [found] = [p for p in backend.get("Pod", "default") if p["metadata"]["name"] == "petstore-v1-abc"]
    url = f"http://127.0.0.1:{found['status']['localPort']}"
    apiserver.hold_portforwards = threading.Event()
    answers: list[tuple[int, dict]] = []
    client = threading.Thread(target=lambda: answers.append(get(url, "/api/pets")))
    client.start()
    try:
        wait_for(lambda: apiserver.portforwards_held == 1, 10, "the port-forward to be connecting")
        names = [d["metadata"]["name"] for d in backend.get("Deployment", "default")]  # meanwhile, on this thread
        assert names == ["petstore-v1"]
    finally:
        apiserver.hold_portforwards.set()
        client.join(10)
    assert not client.is_alive()
    assert answers == [(200, {"pod": "petstore-v1-abc", "port": 8080, "path": "/api/pets"})]
