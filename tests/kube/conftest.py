"""Fixtures for the kubernetes backend: a fake API server on 127.0.0.1, a kubeconfig
pointing at it, and a fake for the helm/glooctl/kubectl seam."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers.backends.kube import KubernetesBackend
from helpers.backends.kube.tools import Ran
from helpers.errors import ClusterError, MissingTool

from .fake_apiserver import FakeApiServer

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"


def write_kubeconfig(path: Path, server: str, token: str = "test-token", context: str = "fake") -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": context,
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
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
