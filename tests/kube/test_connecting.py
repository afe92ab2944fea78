"""Connecting: each way it can fail gives an error that says what to do, never a traceback
from deep inside the client."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from helpers.backends.kube import KubernetesBackend
from helpers.errors import ClusterUnreachable, Forbidden, NoKubeconfig, Unauthorized
from helpers.loading import load_manifests

from .conftest import MANIFESTS, write_kubeconfig
from .fake_apiserver import FakeApiServer


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
