"""pyproject.toml and environment.yml list the same packages; the README's two
commands and .ci/run agree; an installed package (not a checkout) runs the lab."""

import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.integration.conftest import lab_processes

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's.
CONDA_NAMES = {"python-kubernetes": "kubernetes"}


def _norm(spec: str) -> tuple[str, str]:
    spec = spec.split(";")[0].replace(" ", "")
    m = re.match(r"([A-Za-z0-9_.\-]+)(.*)", spec)
    assert m, spec
    name = m.group(1).lower().replace("_", "-")
    return CONDA_NAMES.get(name, name), m.group(2)


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = {_norm(s) for s in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        pip |= {_norm(s) for s in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {
        _norm(d)
        for d in env["dependencies"]
        if isinstance(d, str) and not (d.startswith("pip") or (d.startswith("python") and d[6:7] in "<>=!"))
    }
    assert conda == pip
    # Binder's repo2docker needs an exact python=X.Y; it must meet requires-python.
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert Version(python.removeprefix("python=")) in SpecifierSet(project["requires-python"])


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert "exec make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.integration
def test_an_installed_package_runs_the_lab_outside_the_checkout(tmp_path: Path) -> None:
    """`pip install .` into a fresh venv, then, from another folder, the lab runs from
    the installed package alone: its control plane, its pods and its manifests.

    Offline, as every test here: the wheel is built with this environment's setuptools
    (no build isolation), installed without dependencies, and the new venv borrows
    this environment's site-packages for them through a ``.pth`` path (which does not
    carry this checkout's editable install along).
    """
    wheels, venv, elsewhere = tmp_path / "wheels", tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    run = {"capture_output": True, "text": True, "timeout": 300}
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels), str(ROOT)], **run
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("coalmine-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, **run)
    python = venv / "bin" / "python"
    installed = subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], **run)
    assert installed.returncode == 0, installed.stderr
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], check=True, **run
    ).stdout.strip()
    ours = subprocess.run(
        [sys.executable, "-c", "import aiohttp, pathlib; print(pathlib.Path(aiohttp.__file__).parents[1])"],
        check=True,
        **run,
    ).stdout.strip()
    (Path(site) / "coalmine-test-deps.pth").write_text(ours + "\n")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("COALMINE_", "PYTHON"))}
    env["COALMINE_HOME"] = str(tmp_path / "home")
    coalmine = str(venv / "bin" / "coalmine")

    def cli(*args: str) -> str:
        done = subprocess.run([coalmine, *args], cwd=elsewhere, env=env, **run)
        assert done.returncode == 0, f"coalmine {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    where = subprocess.run(
        [str(python), "-c", "import helpers; print(helpers.__file__)"], cwd=elsewhere, env=env, check=True, **run
    ).stdout.strip()
    assert where.startswith(site) and not where.startswith(str(ROOT))
    manifests = Path(cli("manifests").strip())
    assert manifests.is_relative_to(site) and (manifests / "petstore-v1.yaml").is_file()
    try:
        cli("up")
        assert "created" in cli("apply", "-f", str(manifests / "petstore-v1.yaml"))
        assert "gateway-proxy at http://127.0.0.1:" in cli("install", "gloo")
        cli("wait", "--timeout", "60")
        cli("apply", "-f", str(manifests / "gloo" / "1-route-to-v1.yaml"))
        with urllib.request.urlopen(cli("proxy", "url").strip() + "/petstore", timeout=10) as answer:
            assert json.loads(answer.read()) == [
                {"id": 1, "name": "Dog", "status": "available"},
                {"id": 2, "name": "Cat", "status": "pending"},
            ]
    finally:
        subprocess.run([coalmine, "down"], cwd=elsewhere, env=env, **run)
    assert lab_processes(tmp_path / "home") == []
