"""The workshop benchmark's building blocks at K=1: a real kernel runs lesson 5's set-up
against a lab in its own home, sends traffic, changes the route; another runs lesson 8's
Canary and a rollout; the figures the benchmark reports come out as positive numbers and
nothing is left running."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

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


def test_lesson_8_measured_idle_and_in_a_rollout_and_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_benchmark()  # puts benchmarks/ on sys.path, as the script does
    progressive = importlib.import_module("workshop_progressive")
    samplers: list[Any] = []

    class Recording(progressive.Sampler):  # type: ignore[name-defined,misc]
        """The benchmark's sampler, also keeping the command lines of the lab's processes."""

        def __init__(self, participant: Any) -> None:
            super().__init__(participant)
            self.seen: set[str] = set()
            samplers.append(self)

        def sample(self) -> None:
            super().sample()
            for proc in self.participant.processes()[0]:
                with contextlib.suppress(psutil.Error):
                    self.seen.add(" ".join(proc.cmdline()))

    monkeypatch.setattr(progressive, "Sampler", Recording)
    found = progressive.measure_lesson(8, tmp_path, argparse.Namespace(rate=0.0, window=1.0))

    assert found.error is None and found.phase == "Succeeded" and found.rollout_s > 0
    assert found.setup_s > 0 and min(*found.idle_pss, *found.rollout_pss) > 0
    assert found.rollout_cpu[0] > 0  # the load tester's traffic through the gateway to both sides
    assert found.prometheus is None  # lesson 8 runs none
    idle, busy = samplers
    assert any("flagger-loadtester" in line for line in idle.seen), idle.seen
    assert busy.pids["lab"] - idle.pids["lab"]  # the rollout's new pods, counted from their start
    assert found.mib() >= sum(found.idle_pss)
    assert lab_processes(tmp_path / "lab-800") == []
    assert not any(psutil.pid_exists(pid) for pid in busy.pids["kernel"])
