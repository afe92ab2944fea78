"""Lessons 8 and 9 for the workshop benchmark: one participant's Canary, idle and in a rollout.

``benchmarks/workshop.py`` runs this once, before its K sweep (``--no-progressive``
leaves it out). For each lesson a new participant (a lab in its own home, a real kernel)
runs the lesson's set-up in the kernel: ``exercises.ensure(8)``, the lesson's Canary
initialized and the VirtualService that delegates to its RouteTable; for lesson 9
``exercises.ensure(9)`` (kgateway, and the lab's Prometheus where this machine has one)
and, with Prometheus, the lesson's Canary with the latency-regression PromQL check
(its MetricTemplate applied first), else the built-in checks only. Then it measures
the lab (control plane and every pod, the load tester included, and Prometheus) and
the kernel separately: PSS and CPU over ``--window`` seconds with the Canary
initialized (idle), then CPU and peak PSS while the kernel ships the good version
(``progressive.rollout("v2")``) and follows the rollout until it ends, as the lesson's
cell does. The processes are listed again at each sample: a rollout starts and stops
pods. Each participant is stopped before the next one starts, also on error.
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from workshop import Participant, cpu_seconds, pss_mib

SAMPLE_S = 0.5
SETUP_TIMEOUT_S = 300.0
ROLLOUT_TIMEOUT_S = 180.0  # follow_rollout's own limit, as helpers.lessons.progressive's
MARGIN_S = 30.0  # past it, the kernel is interrupted
GROUPS = ("lab", "kernel", "prometheus")  # prometheus: the part of the lab that is its server

IMPORTS = """
import json, time
from helpers import exercises, progressive
from helpers.lessons import promql
from helpers.lessons.inforce import serves
from helpers.live.progressive import apply_canary, follow_rollout, wait_for_phase
"""

# Lesson 8's set-up cell, Step 2 (the Canary, initialized) and Step 3 (the delegating VirtualService).
LESSON_8 = """
lab = exercises.ensure(8)
apply_canary(lab, progressive.canary())
wait_for_phase(lab, ["Initialized"])
lab.apply(progressive.delegating_virtual_service())
lab.wait_in_force(serves(lab.proxy_url() + "/api/pets", "v1"))
_prometheus = False
"""

# Lesson 9's set-up cell and its Canary on kgateway; with Prometheus, the one with
# the latency-regression check (Step 4), which queries it at every check.
LESSON_9 = """
lab = exercises.ensure(9)
_prometheus = bool((lab.status().get("prometheus") or {}).get("installed"))
if _prometheus:
    lab.apply(progressive.latency_regression())
apply_canary(lab, promql.latency_checked_canary() if _prometheus else promql.lesson_canary())
wait_for_phase(lab, ["Initialized"])
"""

ROLLOUT = f"""
lab.apply(progressive.rollout("v2"))
_rollout = follow_rollout(lab, {ROLLOUT_TIMEOUT_S!r}, say=None)
"""


class Sampler:
    """PSS (the peak) and CPU of one participant's lab, kernel and Prometheus over the
    samples taken. A process first seen after the first sample counts from its start;
    one that ends between two samples loses at most ``SAMPLE_S`` of its CPU."""

    def __init__(self, participant: Participant) -> None:
        self.participant = participant
        self.peak = dict.fromkeys(GROUPS, 0.0)
        self.pids: dict[str, set[int]] = {group: set() for group in GROUPS}
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.began = self.ended = 0.0

    def sample(self) -> None:
        lab, kernel = self.participant.processes()
        groups = {"lab": lab, "kernel": kernel, "prometheus": [p for p in lab if _name(p) == "prometheus"]}
        now = time.monotonic()
        for group, procs in groups.items():
            self.peak[group] = max(self.peak[group], pss_mib(procs))
            for pid, seconds in cpu_seconds(procs).items():
                self.first.setdefault(pid, seconds if not self.began else 0.0)
                self.last[pid] = seconds
                self.pids[group].add(pid)
        self.began, self.ended = self.began or now, now

    def cpu(self, group: str) -> float:
        """CPU of ``group`` between the first and the last sample, % of one core."""
        spent = sum(self.last[pid] - self.first[pid] for pid in self.pids[group])
        return spent / max(self.ended - self.began, 1e-9) * 100

    def during(self, seconds: float) -> Sampler:
        """Sample for ``seconds``."""
        end = time.monotonic() + seconds
        self.sample()
        while time.monotonic() < end:
            time.sleep(min(SAMPLE_S, max(end - time.monotonic(), 0.0)))
            self.sample()
        return self


def _name(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return str(proc.name())
    return ""


def run_sampled(participant: Participant, code: str, sampler: Sampler, timeout: float) -> None:
    """Run ``code`` in the participant's kernel, sampling until it has run (the kernel
    is interrupted after ``timeout`` s)."""
    assert participant.kernel is not None
    client = participant.kernel.client
    msg_id = client.execute(code, store_history=False)
    deadline = time.monotonic() + timeout
    sampler.sample()
    while True:
        with contextlib.suppress(queue.Empty):
            reply = client.get_shell_msg(timeout=SAMPLE_S)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        sampler.sample()
        if time.monotonic() > deadline:
            participant.manager.interrupt_kernel()
            raise TimeoutError(f"the kernel still ran {code.strip().splitlines()[-1]!r} after {timeout:g} s")
    sampler.sample()
    content = reply["content"]
    if content["status"] != "ok":
        raise RuntimeError(f"the kernel raised {content.get('ename')}: {content.get('evalue')}")


@dataclass
class LessonRun:
    """What one participant's lesson 8 or 9 measured: PSS in MiB and CPU in % of a core,
    each as (lab, kernel); ``prometheus``: its share of the lab's (peak PSS, idle CPU,
    rollout CPU), or None when the lab ran none; ``error``: why it was not measured."""

    lesson: int
    setup_s: float = 0.0
    idle_pss: tuple[float, float] = (0.0, 0.0)
    idle_cpu: tuple[float, float] = (0.0, 0.0)
    rollout_pss: tuple[float, float] = (0.0, 0.0)  # the peak
    rollout_cpu: tuple[float, float] = (0.0, 0.0)
    phase: str = ""
    rollout_s: float = 0.0
    prometheus: tuple[float, float, float] | None = None
    error: str | None = None

    def mib(self) -> float:
        """The most a participant's lab and kernel used in this lesson (PSS, MiB)."""
        return max(self.idle_pss[0], self.rollout_pss[0]) + max(self.idle_pss[1], self.rollout_pss[1])


def measure_lesson(lesson: int, scratch: Path, args: argparse.Namespace) -> LessonRun:
    """Lesson ``lesson`` (8 or 9) for one new participant, stopped afterwards."""
    participant = Participant(100 * lesson, scratch, args.rate)
    found = LessonRun(lesson)
    try:
        began = time.monotonic()
        kernel = participant.start_kernel()
        kernel.run(IMPORTS + (LESSON_8 if lesson == 8 else LESSON_9), timeout=SETUP_TIMEOUT_S)
        found.setup_s = time.monotonic() - began
        idle = Sampler(participant).during(args.window)
        found.idle_pss = (idle.peak["lab"], idle.peak["kernel"])
        found.idle_cpu = (idle.cpu("lab"), idle.cpu("kernel"))
        busy = Sampler(participant)
        run_sampled(participant, ROLLOUT, busy, ROLLOUT_TIMEOUT_S + MARGIN_S)
        found.rollout_pss = (busy.peak["lab"], busy.peak["kernel"])
        found.rollout_cpu = (busy.cpu("lab"), busy.cpu("kernel"))
        rollout = participant.run('{"phase": _rollout.phase, "seconds": _rollout.seconds, "prom": _prometheus}')
        found.phase, found.rollout_s = rollout["phase"], rollout["seconds"]
        if rollout["prom"]:
            peak = max(idle.peak["prometheus"], busy.peak["prometheus"])
            found.prometheus = (peak, idle.cpu("prometheus"), busy.cpu("prometheus"))
    except Exception as error:  # the report says what failed, and the sweep goes on
        said = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()  # a kernel's traceback is coloured
        found.error = f"{type(error).__name__}: {said[-1] if said else ''}"
        print(f"warning: lesson {lesson} not measured: {found.error}", file=sys.stderr)
    finally:
        left = participant.stop()
        if left:
            print(f"warning: lesson {lesson}'s lab processes left running were killed: {left}", file=sys.stderr)
    return found


def measure_lessons(scratch: Path, args: argparse.Namespace) -> list[LessonRun]:
    """Lessons 8 and 9, one participant at a time."""
    found = []
    for lesson in (8, 9):
        found.append(measure_lesson(lesson, scratch, args))
        print(progress(found[-1]), flush=True)
    return found


def progress(run: LessonRun) -> str:
    if run.error:
        return f"lesson {run.lesson}: not measured ({run.error})"
    return (
        f"lesson {run.lesson}: set up in {run.setup_s:.0f} s; rollout {run.phase} in {run.rollout_s:.0f} s, "
        f"CPU {sum(run.rollout_cpu):.0f}% of a core, peak PSS {sum(run.rollout_pss):.0f} MiB"
    )


def lessons_table(runs: list[LessonRun], window: float) -> list[str]:
    """The markdown table "lessons 8 and 9, one participant", with what its lab holds."""
    lines = [
        "",
        "Lessons 8 and 9, one participant (measured once, before the K sweep, no other lab running):",
        "",
        "| lesson | set-up: kernel start -> Canary initialized (s) | idle PSS: lab + kernel (MiB) "
        "| idle CPU: lab + kernel (% of a core) | rollout of v2 | CPU in the rollout: lab + kernel (%) "
        "| peak PSS in the rollout: lab + kernel (MiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        if r.error:
            lines.append(f"| {r.lesson} | not measured: {r.error} | | | | | |")
            continue
        lines.append(
            f"| {r.lesson} | {r.setup_s:.0f} | {r.idle_pss[0]:.0f} + {r.idle_pss[1]:.0f} "
            f"| {r.idle_cpu[0]:.1f} + {r.idle_cpu[1]:.1f} | {r.phase} in {r.rollout_s:.0f} s "
            f"| {r.rollout_cpu[0]:.0f} + {r.rollout_cpu[1]:.0f} | {r.rollout_pss[0]:.0f} + {r.rollout_pss[1]:.0f} |"
        )
    nine = next((r for r in runs if r.lesson == 9 and not r.error), None)
    if nine is None:
        said = ""
    elif nine.prometheus:
        peak, idle, busy = nine.prometheus
        said = (
            "; in lesson 9 also the lab's Prometheus (scraping every second, queried at every check by the "
            f"Canary's latency-regression PromQL check): {peak:.0f} MiB PSS at its peak, {idle:.1f}% of a core "
            f"idle, {busy:.1f}% in the rollout"
        )
    else:
        said = "; lesson 9 ran without Prometheus (not installed), with the built-in checks only"
    lines += [
        "",
        "The lab is its control plane and every pod (petstore, petstore-primary, the Flagger load tester)"
        f"{said}. Idle: the Canary initialized, no rollout, over {window:g} s. The rollout: the lesson's "
        '`lab.apply(progressive.rollout("v2"))` and `follow_rollout(lab)` in the kernel, from the apply to '
        "the end of the analysis (2 s steps of 10% up to 50%, the load tester's traffic).",
    ]
    return lines


def largest(lesson5_mib: float, runs: list[LessonRun]) -> tuple[str, float]:
    """Which lesson's lab + kernel used the most memory (PSS, MiB), and how much."""
    found = {"lesson 5 (with the dashboard's traffic)": lesson5_mib}
    found.update({f"lesson {r.lesson} (a rollout)": r.mib() for r in runs if not r.error})
    which = max(found, key=lambda name: found[name])
    return which, found[which]
