"""Connecting: each way it can fail gives an error that says what to do, never a traceback
from deep inside the client."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.backends.kube import KubernetesBackend
from helpers.backends.kube.forwarding import Forwarder
from helpers.errors import ClusterUnreachable, Forbidden, NoKubeconfig, Unauthorized
from helpers.loading import load_manifests
from tests.conftest import wait_for

from .conftest import MANIFESTS, write_kubeconfig
from .fake_apiserver import CERTIFICATE, FakeApiServer


def test_no_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(
        NoKubeconfig, match=r"no kubeconfig at \$KUBECONFIG: create a cluster with `kind create cluster`"
    ):
        KubernetesBackend(home=tmp_path / "lab")


def test_unknown_context_lists_the_known_ones(kubeconfig: Path, tmp_path: Path):
    with pytest.raises(NoKubeconfig, match=r'context "prod" is not in the kubeconfig \(it has: fake\)'):
        KubernetesBackend(home=tmp_path / "lab", context="prod")


def test_context_from_the_environment(kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COALMINE_CONTEXT", "nope")
    with pytest.raises(NoKubeconfig, match='context "nope"'):
        KubernetesBackend(home=tmp_path / "lab")


def test_unreachable_api_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{port}")))
    backend = KubernetesBackend(home=tmp_path / "lab")
    with pytest.raises(ClusterUnreachable) as e:
        backend.up()
    assert f'the API server http://127.0.0.1:{port} (context "fake") does not answer' in str(e.value)
    assert "kind get clusters" in str(e.value)


def test_wrong_credentials(apiserver: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", apiserver.url, token="stale")))
    backend = KubernetesBackend(home=tmp_path / "lab")
    with pytest.raises(Unauthorized, match=r"refused the credentials of context \"fake\" \(401 Unauthorized\)"):
        backend.up()
    assert apiserver.requests == ["GET /version"]


def test_forbidden_names_the_verb_resource_and_namespace(backend: KubernetesBackend, apiserver: FakeApiServer):
    apiserver.forbid.add("/apis/apps/v1/namespaces/default/deployments")
    with pytest.raises(Forbidden) as e:
        backend.apply(load_manifests([MANIFESTS / "petstore-v1.yaml"]))
    message = str(e.value)
    assert 'context "fake" may not get deployment.apps/petstore-v1 (403 Forbidden' in message
    assert "kubectl auth can-i get deployments.apps -n default" in message


@pytest.fixture
def tls_apiserver() -> Iterator[FakeApiServer]:
    server = FakeApiServer(tls=True)
    server.start()
    yield server
    server.stop()


def test_a_certificate_the_kubeconfig_does_not_trust_is_named_with_the_fix(
    tls_apiserver: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """As after `kind delete cluster && kind create cluster` with a kubeconfig kept from before."""
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", tls_apiserver.url)))
    backend = KubernetesBackend(home=tmp_path / "lab")
    with pytest.raises(ClusterUnreachable) as e:
        backend.up()
    message = str(e.value)
    assert f'the API server {tls_apiserver.url} (context "fake") failed the TLS check: ' in message
    assert "CERTIFICATE_VERIFY_FAILED" in message and "kind export kubeconfig --name NAME" in message


def test_a_tls_error_the_client_raises_as_api_exception_is_named_too(
    tls_apiserver: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """With its retries off, the client turns urllib3's SSLError into ApiException(status=0)."""
    from kubernetes import client

    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", tls_apiserver.url)))
    backend = KubernetesBackend(home=tmp_path / "lab")
    configuration = backend.api.connection.client.configuration
    configuration.retries = False
    backend.api.connection.client = client.ApiClient(configuration)
    with pytest.raises(ClusterUnreachable, match=r"failed the TLS check: SSLError .*CERTIFICATE_VERIFY_FAILED"):
        backend.up()


def test_with_the_clusters_certificate_authority_requests_and_port_forwards_work(
    tls_apiserver: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    kubeconfig = write_kubeconfig(tmp_path / "kc", tls_apiserver.url, ca=CERTIFICATE)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    backend = KubernetesBackend(home=tmp_path / "lab")
    try:
        assert backend.up()["server"] == tls_apiserver.url
        forwarder = Forwarder(backend.api, "default", None, 8080, pod="petstore-v1-abc")
        tls_apiserver.put(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "petstore-v1-abc", "namespace": "default"}}
        )
        port = forwarder.start()
        try:
            assert http_get(port, "/api/pets") == b'{"pod": "petstore-v1-abc", "port": 8080, "path": "/api/pets"}'
        finally:
            forwarder.close()
    finally:
        backend.down()


def test_a_port_forward_that_fails_the_tls_check_says_why(
    tls_apiserver: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", tls_apiserver.url)))
    backend = KubernetesBackend(home=tmp_path / "lab")
    forwarder = Forwarder(backend.api, "default", None, 8080, pod="petstore-v1-abc")
    port = forwarder.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert closed_by_peer(conn)  # the forward could not be made
        error = wait_for(lambda: forwarder.last_error, 10, "the forward's error")
        assert "failed the TLS check" in error and "CERTIFICATE_VERIFY_FAILED" in error
        assert "kind export kubeconfig" in error
    finally:
        forwarder.close()


def http_get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def closed_by_peer(conn: socket.socket) -> bool:
    """Whether the other end closed ``conn`` (with unread data it resets instead)."""
    try:
        return conn.recv(100) == b""
    except ConnectionResetError:
        return True
