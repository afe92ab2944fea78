"""Binder (repo2docker) builds the lab from the root files: environment.yml, apt.txt and
postBuild. These tests check what this machine can without Docker: the files repo2docker
reads and how it reads them, a postBuild with no root-only step, and the lab run as an
unprivileged user in a fresh home, the way a Binder user runs it.

How repo2docker reads them (jupyterhub/repo2docker at 808ae6b, mamba 2.8.1 at 03564bf):
- a ``binder/`` or ``.binder/`` folder, when present, is the only place it looks
  (``buildpacks/base.py``, ``binder_path``), so the root files need no such folder;
- the Python version comes from the first dependency matching ``python\\s*=+\\s*([\\d.]*)``
  (``buildpacks/conda/__init__.py``, ``PYTHON_REGEX``): ``python>=3.11`` does not match,
  and the image then starts from its default frozen Python 3.10 environment;
- the pip section is written to a requirements file beside environment.yml and run with
  ``pip install -U -r`` from that folder (mamba ``libmamba/src/api/utils.cpp``,
  ``install_for_other_pkgmgr``), so every line must be one pip accepts in such a file
  and ``-e .`` names environment.yml's folder.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from packaging.specifiers import SpecifierSet
from pip._internal.req import req_file

from helpers.runtime.pods import free_port
from tests.conftest import wait_for
from tests.integration.conftest import lab_processes
from tests.test_packaging import test_environment_yml_matches_pyproject as environment_matches_pyproject

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
POST_BUILD = ROOT / "postBuild"
ENVIRONMENT = ROOT / "environment.yml"
LESSON_0 = "notebooks/00-start-here.ipynb"
HIDDEN = {"src", "conftest.py", "sanitize.cfg"}  # notebooks/.jupyter-lab.json's plumbing
V1_PETS = [{"id": 1, "name": "Dog", "status": "available"}, {"id": 2, "name": "Cat", "status": "pending"}]

# repo2docker's facts (paths in the module docstring).
PYTHON_PIN = re.compile(r"python\s*=+\s*([\d\.]*)")
FROZEN_PYTHONS = {"3.10", "3.11", "3.12", "3.13", "3.14"}  # conda/environment.py-X.Y-linux-64.lock
APT_PACKAGE = re.compile(r"^[a-z0-9.+-]+")
# Words that need root or the network, which postBuild (run as the notebook user) must not use.
ROOT_ONLY = {"sudo", "su", "doas", "apt", "apt-get", "dpkg", "chown", "chgrp", "useradd", "mount", "systemctl"}
NETWORK = {"curl", "wget", "git", "pip", "conda", "mamba", "micromamba", "npm"}

USER = "nobody"
STEP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


def _script_words(script: Path) -> list[list[str]]:
    """Each command line of a shell script, split into words (comments and the shebang dropped)."""
    lines = []
    for line in script.read_text().splitlines():
        words = shlex.split(line, comments=True, posix=True)
        if words:
            lines.append(words)
    return lines


def test_repo2docker_reads_the_root_files() -> None:
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists(), (
        "a binder/ folder makes repo2docker ignore the root environment.yml, apt.txt and postBuild"
    )
    assert ENVIRONMENT.is_file()
    assert POST_BUILD.is_file() and os.access(POST_BUILD, os.X_OK), "postBuild must be executable"
    assert POST_BUILD.read_text().startswith("#!/usr/bin/env bash\n")
    assert ["set", "-euo", "pipefail"] in _script_words(POST_BUILD)
    packages = [line.partition("#")[0].strip() for line in (ROOT / "apt.txt").read_text().splitlines()]
    packages = [p for p in packages if p]
    assert all(APT_PACKAGE.fullmatch(p) for p in packages), packages
    assert "prometheus" in packages  # lesson 9's real Prometheus


def test_post_build_has_no_root_only_or_network_step() -> None:
    for words in _script_words(POST_BUILD):
        used = {Path(w).name for w in words}
        assert not used & ROOT_ONLY, f"root-only step in postBuild: {' '.join(words)}"
        assert not used & NETWORK, f"download in postBuild: {' '.join(words)}"
        outside = [w for w in words if w.startswith("/") or w.startswith(">/")]
        assert not outside, f"postBuild names a path outside the repository and $HOME: {' '.join(words)}"


def test_the_environment_file_lists_what_pyproject_lists() -> None:
    environment_matches_pyproject()


def test_repo2docker_builds_the_python_that_pyproject_requires() -> None:
    dependencies = yaml.safe_load(ENVIRONMENT.read_text())["dependencies"]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    pins = [m.group(1) for d in dependencies if isinstance(d, str) and (m := PYTHON_PIN.match(d))]
    assert pins, (
        "repo2docker finds no Python version in environment.yml (it reads only `python=X.Y`) and starts "
        "from Python 3.10, which pyproject's requires-python refuses: pin it, e.g. `python=3.11`"
    )
    version = ".".join(pins[0].split(".")[:2])
    assert version in FROZEN_PYTHONS, f"repo2docker has no base environment for Python {version}"
    assert version in SpecifierSet(requires), f"python={version} does not satisfy requires-python {requires}"


def test_every_pip_line_is_one_pip_accepts_in_a_requirements_file() -> None:
    dependencies = yaml.safe_load(ENVIRONMENT.read_text())["dependencies"]
    lines = next(d["pip"] for d in dependencies if isinstance(d, dict) and "pip" in d)
    accepted = {name for make in req_file.SUPPORTED_OPTIONS for name in (*make()._short_opts, *make()._long_opts)}
    for line in lines:
        if line.startswith("-"):
            option = re.split(r"[=\s]", line, maxsplit=1)[0]
            assert option in accepted, (
                f"pip refuses `{line}` in a requirements file (mamba writes the pip section to one)"
            )
        if line.split()[-1].startswith("."):
            assert (ENVIRONMENT.parent / line.split()[-1] / "pyproject.toml").is_file(), line
    assert "-e ." in lines  # the lab's own package, from the checkout repo2docker copied


# --- the lab as an unprivileged user -------------------------------------------------


class User:
    """Runs commands as ``USER`` with a fresh home and the lab's environment on PATH."""

    def __init__(self, home: Path, bin_dir: Path) -> None:
        entry = pwd.getpwnam(USER)
        self.uid, self.gid, self.home, self.bin = entry.pw_uid, entry.pw_gid, home, bin_dir
        # What a Binder user has: the environment on PATH, their HOME; no COALMINE_HOME, so
        # the lab picks its per-user default under that HOME.
        self.env = {
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "SHELL": "/bin/bash",
        }

    def popen_kwargs(self) -> dict[str, Any]:
        return {"user": self.uid, "group": self.gid, "extra_groups": [], "env": self.env, "cwd": ROOT}

    def run(self, *argv: str | Path, timeout: float = STEP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **self.popen_kwargs()
        )

    def check(self, *argv: str | Path) -> str:
        done = self.run(*argv)
        assert done.returncode == 0, f"{' '.join(map(str, argv))} as {USER}: {done.stdout}{done.stderr}"
        return done.stdout

    def cannot_run_the_lab(self) -> str | None:
        """Why this user cannot import the lab with this environment, or None."""
        try:
            done = self.run(self.bin / "python", "-c", "import helpers, jupyterlab")
        except OSError as e:
            return f"{e.strerror}: {e.filename}"
        return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["no output"])[-1]

    def processes(self) -> list[psutil.Process]:
        """This user's processes started from this home (they carry it in HOME or their command line)."""
        found = {p.pid: p for p in lab_processes(self.home)}
        for proc in psutil.process_iter(["uids", "environ"]):
            try:
                if proc.info["uids"].real == self.uid and (proc.info["environ"] or {}).get("HOME") == str(self.home):
                    found[proc.pid] = proc
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return list(found.values())


def _borrowed_environment(folder: Path) -> Path | None:
    """The checkout's .venv behind an interpreter anyone can run, for when the .venv's own
    sits in a private folder (a pyenv under /root): a venv of the system Python of the same
    minor version (same ABI) that borrows .venv's site-packages, share/ and etc/, with
    .venv's console scripts pointing at it. The packages are the same; only the
    interpreter binary differs. None when there is no such Python."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(f"python{version}", path="/usr/local/bin:/usr/bin:/bin")
    if system is None:
        return None
    venv = folder / "venv"
    subprocess.run([system, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True, timeout=60)
    ours = ROOT / ".venv"
    site = venv / "lib" / f"python{version}" / "site-packages"
    # addsitedir, not a plain path: it also runs .venv's .pth files (the editable install).
    borrowed = ours / "lib" / f"python{version}" / "site-packages"
    (site / "coalmine-borrowed.pth").write_text(f"import site; site.addsitedir({str(borrowed)!r})\n")
    for name in ("share", "etc"):  # jupyter's data and config paths under sys.prefix
        if (ours / name).is_dir():
            (venv / name).symlink_to(ours / name)
    shebang = f"#!{VENV_BIN / 'python'}\n".encode()
    for script in VENV_BIN.iterdir():
        target = venv / "bin" / script.name
        if script.is_file() and not script.is_symlink() and not target.exists():
            text = script.read_bytes()
            if text.startswith(shebang):
                target.write_bytes(f"#!{venv / 'bin' / 'python'}\n".encode() + text[len(shebang) :])
                target.chmod(0o755)
    folder.chmod(0o755)
    return venv / "bin"


def _root_or_skip() -> None:
    if os.geteuid() != 0:
        pytest.skip(f"running commands as {USER} needs root (this run is uid {os.geteuid()})")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        pytest.skip(f"no user {USER} on this machine")
    if not (VENV_BIN / "python").exists():
        pytest.skip("no .venv in the checkout (make test creates it)")


@pytest.fixture(scope="module")
def binder_user() -> Iterator[User]:
    """``USER`` in a fresh home, after postBuild ran as them from the repository's folder
    (as repo2docker runs it: ``./postBuild`` in REPO_DIR)."""
    _root_or_skip()
    home = Path(tempfile.mkdtemp(prefix="coalmine-binder-home-"))
    borrowed: Path | None = None
    try:
        user = User(home, VENV_BIN)
        os.chown(home, user.uid, user.gid)
        why = user.cannot_run_the_lab()
        if why:
            borrowed = Path(tempfile.mkdtemp(prefix="coalmine-binder-env-"))
            bin_dir = _borrowed_environment(borrowed)
            if bin_dir is None:
                pytest.skip(
                    f"{USER} cannot run the .venv's Python ({why}) and this machine has no other of its version"
                )
            user = User(home, bin_dir)
            why = user.cannot_run_the_lab()
            if why:
                pytest.skip(f"{USER} cannot read the checkout or its .venv: {why}")
        done = user.run("./postBuild")
        assert done.returncode == 0, f"postBuild as {USER}: {done.stdout}{done.stderr}"
        yield user
        left = user.processes()
        for proc in left:
            proc.kill()
        assert not left, f"processes of {USER} left running: {[p.pid for p in left]}"
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if borrowed is not None:
            shutil.rmtree(borrowed, ignore_errors=True)


@pytest.mark.integration
def test_post_build_trusts_the_lessons_and_installs_the_lab_settings(binder_user: User) -> None:
    signed = binder_user.check(
        binder_user.bin / "python",
        "-c",
        "import glob, nbformat; from nbformat.sign import NotebookNotary; n = NotebookNotary(); "
        "print(*(p for p in sorted(glob.glob('notebooks/[0-9][0-9]-*.ipynb')) "
        "if n.check_signature(nbformat.read(p, as_version=4))))",
    ).split()
    assert LESSON_0 in signed and len(signed) == len(list((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")))
    config = binder_user.home / ".jupyter" / "jupyter_server_config.json"
    assert config.resolve() == (ROOT / "notebooks" / ".jupyter-lab.json").resolve()
    again = binder_user.run("./postBuild")  # repo2docker asks for a script that can run twice
    assert again.returncode == 0, again.stderr


@pytest.mark.integration
def test_the_local_backend_runs_as_the_user_in_their_home(binder_user: User) -> None:
    lab_home = binder_user.home / ".local" / "state" / "coalmine" / "default"
    coalmine = binder_user.bin / "coalmine"
    try:
        binder_user.check(coalmine, "up")
        assert (lab_home / "state.json").is_file() and lab_home.stat().st_uid == binder_user.uid
        for manifest in ("petstore-v1.yaml", "petstore-v2.yaml"):
            assert "created" in binder_user.check(coalmine, "apply", "-f", ROOT / "manifests" / manifest)
        assert "gateway-proxy at http://127.0.0.1:" in binder_user.check(coalmine, "install", "gloo")
        binder_user.check(coalmine, "wait", "--timeout", "60")
        binder_user.check(coalmine, "apply", "-f", ROOT / "manifests" / "gloo" / "1-route-to-v1.yaml")
        proxy = binder_user.check(coalmine, "proxy", "url").strip()
        with urllib.request.urlopen(proxy + "/petstore", timeout=10) as answer:
            assert json.loads(answer.read()) == V1_PETS
    finally:
        down = binder_user.run(coalmine, "down")
    assert down.returncode == 0, down.stderr
    assert binder_user.processes() == []


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.mark.integration
def test_jupyterlab_opens_lesson_0_as_the_user(binder_user: User, tmp_path: Path) -> None:
    port, token = free_port(), secrets.token_hex(24)
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "jupyter.log").open("w") as log:
        server = subprocess.Popen(
            [
                str(binder_user.bin / "jupyter"),
                "lab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            **binder_user.popen_kwargs(),
        )
    try:

        def ready() -> bool:
            assert server.poll() is None, f"jupyter lab exited: {(tmp_path / 'jupyter.log').read_text()[-2000:]}"
            return _get(f"{base}/api/status?token={token}")[0] == 200

        wait_for(ready, timeout=STEP_TIMEOUT_S, what="jupyter lab to answer")
        status, page = _get(f"{base}/lab/tree/{LESSON_0}?token={token}")
        assert status == 200 and b"JupyterLab" in page
        status, body = _get(f"{base}/api/contents/{LESSON_0}?content=0&token={token}")
        assert status == 200 and json.loads(body)["type"] == "notebook"
        status, body = _get(f"{base}/api/contents/notebooks?token={token}")
        names = {item["name"] for item in json.loads(body)["content"]}
        assert status == 200 and "00-start-here.ipynb" in names
        assert not names & HIDDEN, f"postBuild's lab settings not applied: {sorted(names & HIDDEN)} shown"
    finally:
        server.terminate()
        try:
            server.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=STOP_TIMEOUT_S)
    assert server.returncode is not None
    wait_for(lambda: not binder_user.processes(), timeout=STOP_TIMEOUT_S, what=f"{USER}'s processes to end")
