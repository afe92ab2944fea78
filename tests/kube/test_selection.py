"""Picking the backend: the argument, COALMINE_BACKEND, or --backend before or after
the subcommand; the rest of the CLI then works on the cluster unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import Lab
from helpers.backends.kube import KubernetesBackend
from helpers.cli import main
from helpers.errors import CoalmineError
from helpers.lab import make_backend

from .conftest import MANIFESTS
from .fake_apiserver import FakeApiServer


def test_make_backend_by_name_and_by_environment(kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert isinstance(make_backend("kubernetes", tmp_path), KubernetesBackend)
    monkeypatch.setenv("COALMINE_BACKEND", "kubernetes")
    assert isinstance(Lab(home=tmp_path).backend, KubernetesBackend)
    with pytest.raises(ValueError, match='use "local" or "kubernetes"'):
        make_backend("minikube")


@pytest.mark.parametrize(
    "argv",
    [
        ["--backend", "kubernetes", "apply", "-f", str(MANIFESTS / "petstore-v1.yaml")],
        ["apply", "-f", str(MANIFESTS / "petstore-v1.yaml"), "--backend", "kubernetes"],
        ["apply", "--context", "fake", "-f", str(MANIFESTS / "petstore-v1.yaml"), "--backend", "kubernetes"],
    ],
)
def test_backend_option_before_or_after_the_subcommand(
    argv: list[str], kubeconfig: Path, apiserver: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(["--home", str(tmp_path / "lab"), *argv]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "configmap/petstore-v1-app created",
        "service/petstore-v1 created",
        "deployment.apps/petstore-v1 created",
    ]
    assert "/apis/apps/v1/namespaces/default/deployments/petstore-v1" in apiserver.objects


def test_environment_variable_selects_it_for_the_cli(
    kubeconfig: Path,
    apiserver: FakeApiServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    monkeypatch.setenv("COALMINE_BACKEND", "kubernetes")
    assert main(["--home", str(tmp_path / "lab"), "get", "deployments"]) == 0
    assert "No resources found in default namespace." in capsys.readouterr().err
    assert "GET /apis/apps/v1/namespaces/default/deployments" in apiserver.requests


def test_cli_error_without_a_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["up", "--backend", "kubernetes"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no kubeconfig at $KUBECONFIG") and "Traceback" not in err


def test_reset_and_uninstall_are_for_a_cluster(tmp_path: Path):
    lab = Lab("local", home=tmp_path / "lab")
    with pytest.raises(CoalmineError, match="reset is for a cluster"):
        lab.reset()


def test_cluster_check_says_there_is_no_cluster(tmp_path: Path):
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "none")}
    done = subprocess.run(
        [sys.executable, str(MANIFESTS.parent / "scripts" / "cluster_check.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("no cluster to check: no kubeconfig at $KUBECONFIG")
    assert done.stdout == ""
