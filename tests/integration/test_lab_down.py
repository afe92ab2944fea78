"""``lab.down()`` from another process: what lesson 6 does to the lab lesson 0 started.

The control plane is a child of the process that ran ``lab.up()`` (a notebook kernel).
Once it exits it is a zombie until that process reaps it, and an idle kernel never
did: ``down`` from another kernel used to wait out its timeouts (45 s). Now the
starting process reaps it from a thread, and ``down`` counts a zombie as gone.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from tests.conftest import wait_for

from .conftest import MANIFESTS, ROOT, lab_processes

pytestmark = pytest.mark.integration

# The kernel of lesson 0: starts the lab with two pods and a gateway, then idles.
# With "stop" it stops itself (SIGSTOP): alive, but it reaps nothing, not even from a thread.
STARTER = """
import os, signal, sys
from helpers import Lab
lab = Lab(home=sys.argv[1])
lab.up()
lab.apply(sys.argv[2] + "/petstore-v1.yaml", sys.argv[2] + "/petstore-v2.yaml")
lab.install("gloo")
lab.wait(120)
print(lab.status()["pods"]["total"], flush=True)
if sys.argv[3] == "stop":
    os.kill(os.getpid(), signal.SIGSTOP)
sys.stdin.read()
"""
DOWN = """
import sys, time
from helpers import Lab
lab = Lab(home=sys.argv[1])
began = time.monotonic()
said = lab.down()
print(f"{time.monotonic() - began:.3f}")
print(said)
"""
DOWN_DEADLINE_S = 15.0  # the whole process; waiting out the old timeouts took 45 s


@contextmanager
def lesson_0_kernel(home: Path, stop: bool) -> Iterator[tuple[psutil.Process, int]]:
    """A process that started the lab and keeps running (or stopped); yields it and the
    control plane's pid. It is resumed and ended afterwards."""
    argv = [sys.executable, "-c", STARTER, str(home), str(MANIFESTS), "stop" if stop else "run"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "2", "the lab runs two pods"
        control_plane = int(json.loads((home / "state.json").read_text())["pid"])
        assert psutil.Process(control_plane).ppid() == proc.pid, "the control plane is the starter's child"
        yield psutil.Process(proc.pid), control_plane
    finally:
        proc.send_signal(signal.SIGCONT)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        proc.stdout.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def down_from_another_process(home: Path) -> tuple[str, float]:
    """Run ``Lab(home).down()`` in a new process; what it said and the seconds it took."""
    done = subprocess.run(
        [sys.executable, "-c", DOWN, str(home)],
        capture_output=True,
        text=True,
        timeout=DOWN_DEADLINE_S,
        check=True,
        cwd=ROOT,
    )
    took, said = done.stdout.strip().split("\n", 1)
    return said, float(took)


def others(home: Path, kernel: psutil.Process) -> list[psutil.Process]:
    """The lab's processes but the starter (whose command line names the home too)."""
    return [p for p in lab_processes(home) if p.pid != kernel.pid]


def state_of(pid: int) -> str | None:
    try:
        return psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return None


def test_down_from_another_process_while_the_starter_is_stopped(lab_home: Path) -> None:
    with lesson_0_kernel(lab_home, stop=True) as (kernel, control_plane):
        wait_for(lambda: kernel.status() == psutil.STATUS_STOPPED, 30, "the starter to stop itself")
        said, took = down_from_another_process(lab_home)
        assert said == f"stopped the lab at {lab_home}"
        # The control plane has exited, and nobody reaps it: a zombie, which down counted as gone.
        assert state_of(control_plane) == psutil.STATUS_ZOMBIE
        assert others(lab_home, kernel) == [], "the pods went with it"
        print(f"\ndown from another process, the starter stopped: {took:.2f} s in down()")
    wait_for(lambda: state_of(control_plane) is None, 30, "the resumed starter to reap its control plane")


def test_down_from_another_process_while_the_starter_idles(lab_home: Path) -> None:
    with lesson_0_kernel(lab_home, stop=False) as (kernel, control_plane):
        said, took = down_from_another_process(lab_home)
        assert said == f"stopped the lab at {lab_home}"
        # The idle starter reaped its child at once: no zombie is left behind.
        wait_for(lambda: state_of(control_plane) is None, 10, "the starter's reaper thread to reap the control plane")
        assert others(lab_home, kernel) == []
        print(f"\ndown from another process, the starter idle: {took:.2f} s in down()")
    said, _ = down_from_another_process(lab_home)
    assert said == f"the lab at {lab_home} was not running"
