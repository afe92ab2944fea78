"""Fixtures for the kubernetes backend: a fake API server on 127.0.0.1, a kubeconfig
pointing at it, and a fake for the helm/glooctl/kubectl seam (with ``chart``, a fake
``helm upgrade --install`` that creates a chart's objects and waits as Helm 3 does)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers.backends.kube import KubernetesBackend
from helpers.backends.kube.tools import Ran
from helpers.errors import ClusterError, MissingTool

from .fake_apiserver import FakeApiServer, ready_for_helm

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"


def write_kubeconfig(
    path: Path, server: str, token: str = "test-token", context: str = "fake", ca: Path | None = None
) -> Path:
    cluster: dict[str, Any] = {"server": server}
    if ca is not None:
        cluster["certificate-authority"] = str(ca)
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": context,
                "clusters": [{"name": "fake", "cluster": cluster}],
                "users": [{"name": "learner", "user": {"token": token}}],
                "contexts": [{"name": context, "context": {"cluster": "fake", "user": "learner"}}],
            }
        )
    )
    return path


class FakeTools:
    """Stands in for helm, glooctl and kubectl: records each argv (and the values file
    it names, read while it exists) and answers ``which`` from ``present``."""

    def __init__(self, present: tuple[str, ...] = ("helm", "glooctl", "kubectl"), on_run: Any = None) -> None:
        self.present = set(present)
        self.calls: list[list[str]] = []
        self.values: list[dict[str, Any]] = []
        self.on_run = on_run or (lambda argv: "")
        self.fail: str | None = None

    def which(self, name: str) -> str | None:
        return f"/usr/local/bin/{name}" if name in self.present else None

    def run(self, argv: list[str], timeout: float = 900.0) -> Ran:
        if argv[0] not in self.present:
            raise MissingTool(f"{argv[0]} is not on PATH")
        self.calls.append(list(argv))
        if "--values" in argv:
            self.values.append(yaml.safe_load(Path(argv[argv.index("--values") + 1]).read_text()))
        if self.fail and self.fail in argv:
            raise ClusterError(f"`{' '.join(argv)}` failed (exit 1)")
        return Ran(tuple(argv), self.on_run(argv) or "")


def chart(apiserver: FakeApiServer, *objects: dict[str, Any], fail: str | None = None) -> Any:
    """An ``on_run`` for ``FakeTools``: ``helm upgrade --install`` creates the chart's
    ``objects`` (and its namespace, with ``--create-namespace``) through the API server;
    then it fails with ``fail``, or, given ``--wait``, fails as Helm 3 does when its
    timeout passes while a Service is not ready by Helm's rule (``ready_for_helm``)."""

    def run(argv: list[str]) -> str:
        if argv[:3] != ["helm", "upgrade", "--install"]:
            return ""
        namespace = argv[argv.index("--namespace") + 1]
        if "--create-namespace" in argv and apiserver.get(f"/api/v1/namespaces/{namespace}") is None:
            apiserver.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        for obj in objects:
            if apiserver.get(obj) is None:
                apiserver.put(obj)
        if fail:
            raise ClusterError(f"`{' '.join(argv)}` failed (exit 1):\nError: INSTALLATION FAILED: {fail}")
        waiting = [o for o in objects if o["kind"] == "Service" and not ready_for_helm(apiserver.get(o) or o)]
        if "--wait" in argv and waiting:
            raise ClusterError(
                f"`{' '.join(argv)}` failed (exit 1):\nError: INSTALLATION FAILED: context deadline exceeded"
            )
        return ""

    return run


def crd(name: str) -> dict[str, Any]:
    """A CustomResourceDefinition named ``<plural>.<group>``."""
    plural, group = name.split(".", 1)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {"group": group, "names": {"plural": plural}},
    }


@pytest.fixture
def apiserver() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def kubeconfig(apiserver: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write_kubeconfig(tmp_path / "kubeconfig", apiserver.url)
    monkeypatch.setenv("KUBECONFIG", str(path))
    for name in ("COALMINE_CONTEXT", "COALMINE_NAMESPACE", "COALMINE_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def tools() -> FakeTools:
    return FakeTools()


@pytest.fixture
def backend(kubeconfig: Path, tools: FakeTools, tmp_path: Path) -> Iterator[KubernetesBackend]:
    b = KubernetesBackend(home=tmp_path / "lab", tools=tools)  # type: ignore[arg-type]
    yield b
    b.down()
