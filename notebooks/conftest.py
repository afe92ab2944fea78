"""nbval runs each notebook in a fresh lab of its own.

Before nbval starts a notebook's kernel (at the setup of the notebook's first cell),
``COALMINE_HOME`` is set to a new temporary directory, so the kernel, and every lab it
starts, uses that home. The first cell then checks that the kernel really sees it.
After the notebook's last cell, the lab is stopped, no process of it may be left, and
the directory is removed. Notebooks therefore never share state, whatever their order.
"""

from __future__ import annotations

import ast
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from nbval.plugin import IPyNbCell

from helpers import Lab

HOME_PREFIX = "coalmine-nb-"  # notebooks/sanitize.cfg replaces paths with this prefix


@dataclass
class _Run:
    home: Path
    previous: str | None
    checked: bool = False


_runs: dict[str, _Run] = {}


def _notebook_key(item: IPyNbCell) -> str:
    return str(item.parent.path)


def _resolve_sanitize_file(config: pytest.Config) -> None:
    """``--nbval-sanitize-with notebooks/sanitize.cfg`` (pyproject) is relative to the
    repository root; make it work when pytest runs from another directory."""
    name = config.option.nbval_sanitize_with
    if name and not os.path.isabs(name) and not os.path.exists(name):
        candidate = config.rootpath / name
        if candidate.exists():
            config.option.nbval_sanitize_with = str(candidate)


def _warm_up() -> None:
    """Build matplotlib's font cache here, once, so that no kernel prints
    "Matplotlib is building the font cache" into a cell's output."""
    try:
        import matplotlib.font_manager  # noqa: F401
    except ImportError:
        pass


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Runs before pytest sets up the notebook, i.e. before nbval starts its kernel."""
    if not isinstance(item, IPyNbCell) or _notebook_key(item) in _runs:
        return
    _resolve_sanitize_file(item.config)
    _warm_up()
    stem = Path(item.parent.path).stem
    home = Path(tempfile.mkdtemp(prefix=f"{HOME_PREFIX}{stem[:2]}-"))
    _runs[_notebook_key(item)] = _Run(home, os.environ.get("COALMINE_HOME"))
    os.environ["COALMINE_HOME"] = str(home)  # the kernel inherits this environment


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Before the notebook's first cell runs: ask its kernel which lab home it sees."""
    if not isinstance(item, IPyNbCell):
        return
    run = _runs.get(_notebook_key(item))
    if run is None or run.checked:
        return
    run.checked = True
    seen = _kernel_environ(item.parent.kernel, "COALMINE_HOME")
    if seen != str(run.home):
        pytest.fail(f"the notebook's kernel sees COALMINE_HOME={seen!r}, not its fresh lab home {run.home}")


def _kernel_environ(kernel: Any, name: str, timeout: float = 30) -> str | None:
    """A variable of the kernel's environment, read without output or history
    (nbval ignores messages that answer requests other than its own)."""
    kc = kernel.kc
    msg_id = kc.execute(
        "", silent=True, store_history=False, user_expressions={"value": f"__import__('os').environ.get({name!r})"}
    )
    deadline = time.monotonic() + timeout
    while True:
        reply = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    result = reply["content"]["user_expressions"]["value"]
    if result.get("status") != "ok":
        pytest.fail(f"could not read {name} in the notebook's kernel: {result}")
    value = ast.literal_eval(result["data"]["text/plain"])  # the repr of a str, or None
    return value if isinstance(value, str) else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """After the notebook's last cell (and after nbval stopped its kernel): stop its lab."""
    try:
        return (yield)
    finally:
        if isinstance(item, IPyNbCell) and (nextitem is None or nextitem.parent is not item.parent):
            run = _runs.pop(_notebook_key(item), None)
            if run is not None:
                _finish(run)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A run stopped early (``-x``, Ctrl-C) still stops every lab it started."""
    while _runs:
        _finish(_runs.popitem()[1], strict=False)


def _lab_processes(home: Path) -> list[psutil.Process]:
    """The processes whose command line mentions the lab home: control plane and pods."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(home) in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _finish(run: _Run, strict: bool = True) -> None:
    left: list[psutil.Process] = []
    try:
        Lab(home=run.home).down()
        left = _lab_processes(run.home)
        for proc in left:
            proc.kill()
    finally:
        if run.previous is None:
            os.environ.pop("COALMINE_HOME", None)
        else:
            os.environ["COALMINE_HOME"] = run.previous
        shutil.rmtree(run.home, ignore_errors=True)
    if left and strict:
        pytest.fail(f"processes of the lab {run.home} were left running: {[p.pid for p in left]}")
