"""pyproject.toml and environment.yml list the same packages; the README's two
commands and .ci/run agree."""

import re
import tomllib
from pathlib import Path

import yaml

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
    conda = {_norm(d) for d in env["dependencies"]
             if isinstance(d, str) and not (d.startswith("pip") or d.startswith("python") and d[6:7] in "<>=!")}
    assert conda == pip
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python") and d[6:7] in "<>=")
    assert python.replace("python", "") == project["requires-python"]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert "exec make test" in (ROOT / ".ci" / "run").read_text()
