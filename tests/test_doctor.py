"""doctor(): each problem is reported with its fix; OK lines are the same on every machine.

No lab is started and no cluster is contacted: the local check gets a fake Lab, and
the kubernetes checks read a kubeconfig and PATH that the tests set up.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from helpers import doctor as doc
from helpers.doctor import DoctorReport, DoctorRow, doctor

ROOT = Path(__file__).resolve().parents[1]
GOOD = {
    "aiohttp": "3.10.11",
    "httptools": "0.6.4",
    "pyyaml": "6.0.2",
    "pandas": "2.2.3",
    "ipywidgets": "8.1.5",
    "jupyterlab_widgets": "3.0.13",
    "ipympl": "0.9.6",
    "matplotlib": "3.10.8",
}
STABLE_LOCAL = """\
OK   python >= 3.11
OK   aiohttp
OK   httptools
OK   pyyaml
OK   pandas
OK   ipywidgets
OK   jupyterlab_widgets
OK   ipympl
OK   matplotlib
OK   ipywidgets 8 with jupyterlab_widgets 3
OK   local lab starts"""


class FakeLab:
    def __init__(self, backend: str = "local") -> None:
        assert backend == "local"

    def up(self) -> dict[str, Any]:
        return {"home": "/somewhere/.lab"}

    def status(self) -> dict[str, Any]:
        return {"home": "/somewhere/.lab"}


class BrokenLab(FakeLab):
    def up(self) -> dict[str, Any]:
        raise RuntimeError("the control plane exited with code 1; its log /x/control-plane.log ends with:\nboom")


@pytest.fixture
def versions(monkeypatch: pytest.MonkeyPatch) -> dict[str, str | None]:
    """Fake installed versions: edit the dict in a test to break a package."""
    found: dict[str, str | None] = dict(GOOD)
    monkeypatch.setattr(doc, "installed_version", lambda name: found.get(name))
    monkeypatch.setattr(doc, "Lab", FakeLab)
    monkeypatch.delenv("COALMINE_BACKEND", raising=False)
    return found


def fixes(report: DoctorReport) -> dict[str, str]:
    return {row.check: row.line() for row in report.problems()}


def test_all_good_prints_stable_lines(versions: dict[str, str | None]) -> None:
    report = doctor()
    assert report.ok and bool(report)
    assert str(report) == STABLE_LOCAL == repr(report)
    assert report._repr_markdown_() == f"```text\n{STABLE_LOCAL}\n```"
    frame = report.to_frame()
    assert list(frame.columns) == ["check", "ok", "detail", "fix"] and frame["ok"].all()
    assert frame.set_index("check").loc["pandas", "detail"] == "2.2.3"  # versions live in the table


def test_this_machines_ok_lines_are_the_stored_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real installed packages (make test installs .[lab,test]): what the notebook stores.
    monkeypatch.setattr(doc, "Lab", FakeLab)
    assert str(doctor("local")) == STABLE_LOCAL


@pytest.mark.parametrize(
    "ipywidgets,labwidgets,fix",
    [
        ("8.1.5", "1.1.7", "pip install 'jupyterlab_widgets>=3,<4', then restart JupyterLab"),
        ("8.1.5", "2.0.0", "pip install 'jupyterlab_widgets>=3,<4', then restart JupyterLab"),
        (
            "7.7.5",
            "3.0.13",
            "pip install 'ipywidgets>=8.1,<9' 'jupyterlab_widgets>=3.0.10,<4', then restart JupyterLab",
        ),
    ],
)
def test_mismatched_widget_pair_is_reported_with_the_fix(
    versions: dict[str, str | None], ipywidgets: str, labwidgets: str, fix: str
) -> None:
    versions.update(ipywidgets=ipywidgets, jupyterlab_widgets=labwidgets)
    report = doctor()
    assert not report.ok
    (line,) = [row.line() for row in report.problems() if "with jupyterlab_widgets" in row.check]
    major = ipywidgets.split(".")[0]
    assert line == (
        f"FIX  ipywidgets {major} with jupyterlab_widgets {doc.WIDGET_PAIRS[int(major)]}: "
        f'ipywidgets {ipywidgets} with jupyterlab_widgets {labwidgets}: widgets would show "model not found" '
        f"-> {fix}"
    )


def test_matching_old_pair_passes_the_pair_check_but_not_the_version(versions: dict[str, str | None]) -> None:
    versions.update(ipywidgets="7.8.1", jupyterlab_widgets="1.1.7")
    found = fixes(doctor())
    assert "ipywidgets 7 with jupyterlab_widgets 1" not in found
    assert found["ipywidgets"] == (
        "FIX  ipywidgets: version 7.8.1, the lab needs >=8.1,<9 -> pip install 'ipywidgets>=8.1,<9'"
    )


def test_missing_and_too_old_packages(versions: dict[str, str | None]) -> None:
    versions.update(ipympl=None, pandas="2.1.4", jupyterlab_widgets=None)
    found = fixes(doctor())
    assert found["ipympl"] == "FIX  ipympl: not installed -> pip install 'ipympl>=0.9.4,<1'"
    assert found["pandas"] == "FIX  pandas: version 2.1.4, the lab needs >=2.2,<4 -> pip install 'pandas>=2.2,<4'"
    assert found["ipywidgets with jupyterlab_widgets"] == (
        "FIX  ipywidgets with jupyterlab_widgets: jupyterlab_widgets not installed "
        "-> pip install 'ipywidgets>=8.1,<9' 'jupyterlab_widgets>=3.0.10,<4'"
    )


def test_old_python() -> None:
    assert doc.check_python((3, 11, 0)).line() == "OK   python >= 3.11"
    row = doc.check_python((3, 10, 12))
    assert not row.ok and row.line().startswith("FIX  python >= 3.11: this is Python 3.10.12 -> install Python 3.11")


def test_local_lab_that_does_not_start(versions: dict[str, str | None], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doc, "Lab", BrokenLab)
    found = fixes(doctor())
    assert list(found) == ["local lab starts"]
    assert found["local lab starts"] == (
        "FIX  local lab starts: the control plane exited with code 1; its log /x/control-plane.log ends with: "
        "-> run `coalmine down` then `coalmine up` in a terminal and read the log it names"
    )


def test_requirements_match_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {}
    for spec in project["dependencies"] + project["optional-dependencies"]["lab"]:
        name, _, rest = spec.partition(">=")
        low, _, high = rest.split(";")[0].partition(",<")
        declared[name.strip().lower()] = (low.strip(), high.strip())
    for name, bounds in doc.REQUIREMENTS.items():
        assert declared[name] == bounds, name


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match='unknown backend "docker"'):
        doctor("docker")


# ── kubernetes: kubeconfig and tools, no cluster ──────────────────────────────


@pytest.fixture
def kube(versions: dict[str, str | None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty HOME and PATH, no KUBECONFIG; the local lab must not be touched."""
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    home.mkdir()
    bin_dir.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setattr(doc, "Lab", BrokenLab)  # proves doctor("kubernetes") never starts a lab
    return tmp_path


def tool(bin_dir: Path, name: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: kind-coalmine, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: kind-coalmine, context: {cluster: kind-coalmine, user: kind-coalmine}}]
users: [{name: kind-coalmine, user: {}}]
"""


def test_kubernetes_with_nothing_reports_every_fix(kube: Path) -> None:
    report = doctor("kubernetes")
    found = fixes(report)
    assert list(found) == ["kubeconfig", "helm on PATH", "glooctl on PATH", "kubectl on PATH"]
    assert found["kubeconfig"] == (
        "FIX  kubeconfig: no kubeconfig at ~/.kube/config -> create a cluster with `kind create cluster` "
        "(it writes ~/.kube/config) or `export KUBECONFIG=/path/to/kubeconfig`"
    )
    assert (
        found["helm on PATH"]
        == "FIX  helm on PATH: not found -> brew install helm (or https://helm.sh/docs/intro/install/)"
    )
    assert "run.solo.io/gloo/install" in found["glooctl on PATH"]
    assert "brew install kubectl" in found["kubectl on PATH"]
    assert "local lab starts" not in str(report)


def test_kubernetes_missing_kubeconfig_named_by_env(kube: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kube / "nowhere.yaml"))
    assert fixes(doctor("kubernetes"))["kubeconfig"].startswith("FIX  kubeconfig: no kubeconfig at $KUBECONFIG -> ")


def test_kubernetes_without_current_context(kube: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = kube / "config.yaml"
    config.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(config))
    found = fixes(doctor("kubernetes"))
    assert found["kubeconfig current context"] == (
        "FIX  kubeconfig current context: no current context is set -> `kubectl config use-context kind-coalmine`"
    )


def test_kubernetes_ready(kube: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kube_dir = kube / "home" / ".kube"
    kube_dir.mkdir()
    (kube_dir / "config").write_text(KUBECONFIG + "current-context: kind-coalmine\n")
    for name in ("helm", "glooctl", "kubectl"):
        tool(kube / "bin", name)
    monkeypatch.setenv("COALMINE_BACKEND", "kubernetes")
    report = doctor()
    assert report.ok
    assert str(report).splitlines()[-5:] == [
        "OK   kubeconfig",
        "OK   kubeconfig current context",
        "OK   helm on PATH",
        "OK   glooctl on PATH",
        "OK   kubectl on PATH",
    ]
    assert report.to_frame().set_index("check").loc["kubeconfig current context", "detail"] == "kind-coalmine"


def test_row_lines() -> None:
    assert DoctorRow("x", True, "detail", "fix").line() == "OK   x"
    assert DoctorRow("x", False, "broken", "mend it").line() == "FIX  x: broken -> mend it"
