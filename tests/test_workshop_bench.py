"""The workshop benchmark's building blocks at K=1: a real kernel runs lesson 5's set-up
against a lab in its own home, sends traffic, changes the route; the figures the
benchmark reports come out as positive numbers and nothing is left running."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import psutil
import pytest

from tests.integration.conftest import lab_processes

pytestmark = pytest.mark.integration
BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "workshop.py"


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("workshop_bench", BENCHMARK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_one_participant_measured_and_stopped(tmp_path: Path) -> None:
    bench = load_benchmark()
    participant = bench.Participant(1, tmp_path, rate=20)
    kernel_pid = None
    try:
        start = participant.start()
        assert start["kernel_s"] > 0 and start["lab_s"] > 0 and start["start_s"] >= start["lab_s"]
        lab, kernel = participant.processes()
        kernel_pid = kernel[0].pid
        assert len(lab) >= 3, [p.cmdline() for p in lab]  # the control plane and two petstore pods
        assert bench.pss_mib(lab) > 0 and bench.pss_mib(kernel) > 0

        mark = participant.run("traffic.start().wait_for_answers(40) or (traffic.elapsed, traffic.skipped)")
        busy = bench.cpu_window([participant], 1.0)[0]
        window = participant.run(f"_window({mark[0]!r}, {mark[1]!r})")
        assert window["rate"] > 0 and window["errors"] == 0
        assert busy[0] > 0 and busy[1] > 0  # the gateway and pods answered; the kernel sent

        change = participant.run("_route_change()")
        assert change["change_ms"] is not None and change["change_ms"] > 0
        assert participant.run("lab.objects('virtualservices', 'coalmine')[0]['spec'] == routing.weighted(10)['spec']")
    finally:
        killed = participant.stop()
    assert killed == []  # the kernel's lab.down() stopped the lab by itself
    assert lab_processes(participant.home) == []
    assert kernel_pid is not None and not psutil.pid_exists(kernel_pid)


def test_idle_server_pss_is_measured_and_stopped(tmp_path: Path) -> None:
    bench = load_benchmark()
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    assert bench.idle_server_pss(tmp_path) > 0
    after = {p.pid for p in psutil.Process().children(recursive=True) if p.is_running() and p.status() != "zombie"}
    assert after <= before
