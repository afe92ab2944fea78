"""How many workshop participants one machine holds, measured.

Each participant is one lab in a temporary home (``COALMINE_HOME``) driven from a real
Jupyter kernel (ipykernel, started with jupyter_client), doing what lesson 5 does: start
the lab, deploy petstore v1 and v2, install Gloo, apply a 90/10 weighted route, then run
the dashboard's traffic generator (``helpers.live.traffic.Traffic``, open-loop, 20% of
the requests with ``x-canary: true``) at ``--rate`` req/s in the kernel's background.

Labs are added one at a time (the earlier ones keep running). For each K it measures:
the new lab's start (kernel start -> first routed request), its CPU before its traffic
starts (idle), then over a ``--window`` with every lab sending: each lab's achieved rate
(answers completed in the window), errors, CPU (process CPU time, % of one core) and
PSS (``memory_full_info().pss`` of the control plane + pods, and of the kernel), then one
route change per lab (all-v1 -> all-v2, timed in the kernel from the start of the apply
to the first answer v2 gave a request without the header). It stops when a lab achieves
less than 95% of its rate or has errors, when a route change takes over 1 s, at
``--k-max`` labs, when the next step would pass ``--minutes``, or when less than 1 GiB of
memory is left; then it stops every kernel and lab (also on Ctrl-C). It measures once the
PSS of an idle ``jupyter lab`` server (a participant's single-user server on a hub), and
before the sweep lessons 8 and 9 (a Canary, idle and in a rollout) for one participant
(``benchmarks/workshop_progressive.py``; ``--no-progressive`` leaves them out). The
per-participant memory of the sizing is the largest lab + kernel of lessons 5, 8 and 9.

    .venv/bin/python benchmarks/workshop.py                       # the full run: K up to 40, at most 12 min
    .venv/bin/python benchmarks/workshop.py --k-max 2 --window 5  # a quick look (+ about a minute: lessons 8, 9)
    .venv/bin/python benchmarks/workshop.py --markdown docs/workshop-sizing.md

K=1 is the baseline of the same run. All processes share this machine's cores: the
figures are this machine's, not limits of the lab.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
# workshop_progressive imports this module by name: let it find this one, not load a second copy.
sys.modules.setdefault("workshop", sys.modules[__name__])
from dashboard import Kernel  # noqa: E402  (benchmarks/dashboard.py: code run in a kernel)
from jupyter_client import KernelManager  # noqa: E402

from helpers import Lab  # noqa: E402
from tests.browser.jupyterlab import JupyterLab, copy_lessons  # noqa: E402
from tests.integration.conftest import lab_processes  # noqa: E402

if TYPE_CHECKING:
    from workshop_progressive import LessonRun

MIB = 2**20
MISSED_RATE = 0.95  # a lab below 95% of its rate has missed it
SLOW_CHANGE_MS = 1000.0
MEMORY_RESERVE = 2**30  # stop adding labs when less than this is available
USERS = (20, 50, 100)  # the sizing table's rows

# What a learner's kernel runs: lesson 5's set-up, then the dashboard's traffic (not
# started yet). The figures it prints are on CLOCK_MONOTONIC, shared with this process.
SETUP = """
import json, time, urllib.request
_began = time.monotonic()
from helpers import Lab, manifests_dir, routing
from helpers.builders.routing import CANARY_HEADER
from helpers.lessons.inforce import serves
from helpers.live.traffic import Record, Traffic

lab = Lab()
lab.up()
lab.install("gloo")
lab.apply(manifests_dir() / "petstore-v1.yaml", manifests_dir() / "petstore-v2.yaml")
lab.wait(120)
lab.apply(routing.weighted(10))
gateway = lab.proxy_url()


def _first_routed(url, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return time.monotonic()
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.01)


_routed = _first_routed(gateway + "/findPets")
lab.wait_in_force(serves(gateway + "/findPets", {"v1", "v2"}))
traffic = Traffic(lab, rate=RATE, headers={CANARY_HEADER: "true"}, header_share=0.2)
print(json.dumps({"began": _began, "routed": _routed}))
"""

# The achieved rate: answers with status 200 that completed in the window [a, b).
WINDOW = """
def _window(a, skipped):
    b = traffic.elapsed
    done = [(r, r.sent_s + r.latency_ms / 1000) for r in traffic.records(last=b - a + traffic.timeout + 1)]
    ok = [r for r, t in done if r.status == 200 and a <= t < b]
    errors = sum(1 for r, _ in done if r.status != 200 and a <= r.sent_s < b)
    lat = sorted(r.latency_ms for r in ok) or [float("nan")]
    return {"rate": len(ok) / (b - a), "errors": errors, "skipped": traffic.skipped - skipped,
            "p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))]}
"""

# One route change, as the learner sees it: all traffic to v1 first, then the timed
# change of the weights to all-v2, until v2 answers a request without the header; then
# back to 90/10.
ROUTE_CHANGE = """
def _route_change(timeout=10.0):
    lab.apply(routing.weighted(0))
    lab.wait_in_force(serves(gateway + "/findPets", "v1"))
    started = traffic.elapsed
    lab.apply(routing.weighted(100))
    applied = traffic.elapsed
    first = None
    while first is None and traffic.elapsed < started + timeout:
        done = [r.sent_s + r.latency_ms / 1000 for r in traffic.records(last=traffic.elapsed - started + 1)
                if r.version == "v2" and not r.canary and r.sent_s >= started]
        first = min(done) if done else None
        time.sleep(0.005)
    lab.apply(routing.weighted(10))
    lab.wait_in_force(serves(gateway + "/findPets", {"v1", "v2"}))
    return {"apply_ms": (applied - started) * 1000, "change_ms": (first - started) * 1000 if first else None}
"""


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    """User + system CPU seconds of each process still alive."""
    found = {}
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = proc.cpu_times()
            found[proc.pid] = times.user + times.system
    return found


def pss_mib(procs: list[psutil.Process]) -> float:
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += proc.memory_full_info().pss
    return total / MIB


class Participant:
    """One participant: a kernel running lesson 5 against a lab in its own home."""

    def __init__(self, number: int, scratch: Path, rate: float) -> None:
        self.number, self.rate = number, rate
        self.home = scratch / f"lab-{number:03d}"  # fixed width: no home's path is a prefix of another's
        self.home.mkdir()
        self.manager = KernelManager(kernel_name="python3")
        self.manager.connection_file = str(scratch / f"kernel-{number:03d}.json")
        self.kernel: Kernel | None = None

    def start_kernel(self) -> Kernel:
        """Start the kernel, its lab's home in ``COALMINE_HOME``, in the notebooks' folder."""
        env = {**os.environ, "COALMINE_HOME": str(self.home)}
        # Its stderr only says the kernel's TCP is unencrypted (it is loopback), K times over.
        self.manager.start_kernel(env=env, cwd=str(ROOT / "notebooks"), stderr=subprocess.DEVNULL)
        client = self.manager.blocking_client()
        # No heartbeat channel: stopping it can hang forever in a blocked zmq call
        # (seen with 20 kernels); wait_for_ready and the cell timeouts notice a dead kernel.
        client.start_channels(hb=False)
        client.wait_for_ready(timeout=60)
        self.kernel = Kernel(client)
        return self.kernel

    def start(self) -> dict[str, float]:
        """Start the kernel and the lab; seconds from kernel start to ready and to the first routed request."""
        began = time.monotonic()
        kernel = self.start_kernel()
        ready = time.monotonic()
        setup = SETUP.replace("RATE", repr(float(self.rate)))
        marks = json.loads(kernel.run(setup, timeout=180).strip().splitlines()[-1])
        kernel.run(WINDOW + ROUTE_CHANGE)
        return {
            "kernel_s": ready - began,
            "lab_s": marks["routed"] - marks["began"],
            "start_s": marks["routed"] - began,
        }

    def processes(self) -> tuple[list[psutil.Process], list[psutil.Process]]:
        """(the lab's processes: control plane and pods, [the kernel])."""
        kernel = [psutil.Process(self.manager.provisioner.pid)]  # type: ignore[union-attr]
        return lab_processes(self.home), kernel

    def run(self, expression: str, timeout: float = 120.0) -> Any:
        """The value of ``expression`` in the kernel, through JSON."""
        assert self.kernel is not None
        return json.loads(self.kernel.run(f"print(json.dumps({expression}))", timeout=timeout))

    def stop(self) -> list[int]:
        """Stop its traffic, its lab and its kernel; returns the pids that had to be killed."""
        if self.kernel is not None:
            with contextlib.suppress(Exception):
                self.kernel.run("if 'traffic' in globals(): traffic.stop()\nlab.down()", timeout=60)
            self.kernel.client.stop_channels()
        with contextlib.suppress(Exception):
            self.manager.shutdown_kernel(now=True)
        Lab(home=self.home).down()  # in case the kernel could not
        left = lab_processes(self.home)
        for proc in left:
            proc.kill()
        psutil.wait_procs(left, timeout=10)
        return [p.pid for p in left]


@dataclass
class Step:
    """What was measured with ``k`` labs running."""

    k: int
    start: dict[str, float]
    idle_cpu: tuple[float, float]  # the new lab's (lab %, kernel %) of one core, traffic not started
    rates: list[dict[str, float]] = field(default_factory=list)  # per lab
    cpu: list[tuple[float, float]] = field(default_factory=list)  # per lab: (lab %, kernel %) at the rate
    pss: list[tuple[float, float]] = field(default_factory=list)  # per lab: (lab MiB, kernel MiB)
    changes: list[dict[str, float | None]] = field(default_factory=list)  # per lab
    seconds: float = 0.0

    def slowest_rate(self) -> float:
        return min(r["rate"] for r in self.rates)

    def slowest_change_ms(self) -> float:
        return max(c["change_ms"] or float("inf") for c in self.changes)

    def errors(self) -> int:
        return sum(int(r["errors"]) for r in self.rates)

    def missed(self, rate: float) -> str | None:
        """Why this step is the last one (every lab that missed, and how), or None."""
        why = []
        for i, r in enumerate(self.rates, 1):
            if r["rate"] < MISSED_RATE * rate or r["errors"]:
                errors = f", {r['errors']} failed" if r["errors"] else ""
                why.append(f"lab {i} answered {r['rate']:.1f} of {rate:g} req/s{errors}")
        for i, c in enumerate(self.changes, 1):
            if c["change_ms"] is None or c["change_ms"] > SLOW_CHANGE_MS:
                took = "no v2 answer within 10 s" if c["change_ms"] is None else f"{c['change_ms']:.0f} ms"
                why.append(f"a route change in lab {i} took {took}")
        return "; ".join(why) or None


def cpu_window(participants: list[Participant], seconds: float) -> list[tuple[float, float]]:
    """Each participant's (lab, kernel) CPU over ``seconds``, % of one core."""
    procs = [p.processes() for p in participants]
    before = [(cpu_seconds(lab), cpu_seconds(kernel)) for lab, kernel in procs]
    began = time.monotonic()
    time.sleep(seconds)  # the measurement window itself
    elapsed = time.monotonic() - began
    found = []
    for (lab, kernel), (lab0, kernel0) in zip(procs, before, strict=True):
        # Processes that came up during the window (a restarted pod) count from zero.
        shares = [
            sum(t - start.get(pid, 0.0) for pid, t in cpu_seconds(group).items()) / elapsed * 100
            for group, start in ((lab, lab0), (kernel, kernel0))
        ]
        found.append((shares[0], shares[1]))
    return found


def step(participants: list[Participant], new: Participant, args: argparse.Namespace) -> Step:
    """Add ``new`` to the running ``participants`` and measure all of them."""
    began = time.monotonic()
    participants.append(new)
    start = new.start()
    idle = cpu_window([new], args.idle_window)[0]
    new.run("traffic.start().wait_for_answers(int(traffic.rate)) or True")  # a second of traffic first
    marks = [p.run("(traffic.elapsed, traffic.skipped)") for p in participants]
    cpu = cpu_window(participants, args.window)
    rates = [p.run(f"_window({a!r}, {s!r})") for p, (a, s) in zip(participants, marks, strict=True)]
    pss = [(pss_mib(lab), pss_mib(kernel)) for lab, kernel in (p.processes() for p in participants)]
    changes = [p.run("_route_change()") for p in participants]
    return Step(len(participants), start, idle, rates, cpu, pss, changes, time.monotonic() - began)


def idle_server_pss(scratch: Path) -> float:
    """PSS (MiB) of an idle ``jupyter lab`` on the lessons, no kernel running."""
    with JupyterLab(copy_lessons(scratch / "lessons"), scratch / "jupyter") as server:
        assert server._proc is not None  # a benchmark may look inside
        return pss_mib([psutil.Process(server._proc.pid)])


def history_mib(participant: Participant) -> float:
    """What a full traffic history (100,000 records, the generator's default capacity)
    adds to a kernel's PSS: the most a long-running dashboard keeps."""
    _, kernel = participant.processes()
    before = pss_mib(kernel)
    participant.run(
        "(globals().__setitem__('_full', [Record(i, i / 100, 'v1', 200, 1.5 + i % 7, False, None)"
        " for i in range(100_000)]), True)[1]"
    )
    after = pss_mib(kernel)
    participant.run("(globals().pop('_full'), True)[1]")
    return after - before


def run(args: argparse.Namespace) -> tuple[list[Step], str, dict[str, float], list[LessonRun]]:
    """Lessons 8 and 9 once, then add labs until one misses; returns the steps, why it
    stopped, one-off figures and the lessons' figures."""
    steps: list[Step] = []
    extras: dict[str, float] = {}
    lessons: list[LessonRun] = []
    participants: list[Participant] = []
    with tempfile.TemporaryDirectory(prefix="coalmine-workshop-") as tmp:
        scratch = Path(tmp)
        try:
            extras["server_mib"] = idle_server_pss(scratch / "server")
            if args.progressive:
                from workshop_progressive import measure_lessons

                lessons = measure_lessons(scratch, args)  # each participant stopped before the sweep
            deadline = time.monotonic() + args.minutes * 60  # --minutes bounds the sweep
            reason = f"reached --k-max {args.k_max}"
            while len(participants) < args.k_max:
                estimate = steps[-1].seconds * 1.3 if steps else 0.0
                if time.monotonic() + estimate > deadline:
                    reason = f"the next step would pass --minutes {args.minutes:g}"
                    break
                if psutil.virtual_memory().available < MEMORY_RESERVE:
                    reason = "less than 1 GiB of memory left"
                    break
                steps.append(step(participants, Participant(len(participants) + 1, scratch, args.rate), args))
                print(progress(steps[-1]), flush=True)
                if len(steps) == 1:
                    extras["history_mib"] = history_mib(participants[0])
                missed = steps[-1].missed(args.rate)
                if missed:
                    reason = missed
                    break
        finally:
            # Ctrl-C again while stopping must not leave the rest running: shield each stop.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            left = [pid for p in reversed(participants) for pid in p.stop()]
            if left:
                print(f"warning: lab processes left running were killed: {left}", file=sys.stderr)
    return steps, reason, extras, lessons


def progress(s: Step) -> str:
    return (
        f"K={s.k}: new lab started in {s.start['start_s']:.1f} s; slowest lab {s.slowest_rate():.1f} req/s, "
        f"errors {s.errors()}, slowest route change {s.slowest_change_ms():.0f} ms, "
        f"CPU {sum(a + b for a, b in s.cpu):.0f}% of a core in all ({s.seconds:.0f} s)"
    )


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def report(
    steps: list[Step], reason: str, extras: dict[str, float], args: argparse.Namespace, lessons: list[LessonRun]
) -> str:
    """The figures as markdown: per K, lessons 8 and 9, then the per-participant figures and the sizing."""
    from workshop_progressive import largest, lessons_table

    cores, memory = os.cpu_count(), psutil.virtual_memory().total / 2**30
    held = [s for s in steps if not s.missed(args.rate)]
    verdict = f"**{len(held)} labs** met their rate side by side" + (
        f"; with {steps[-1].k}: {reason}." if len(held) < len(steps) else f"; it stopped because {reason}."
    )
    lines = [
        "# Workshop sizing",
        "",
        f"Measured by `benchmarks/workshop.py` on {time.strftime('%Y-%m-%d')}: {cores} cores, {memory:.0f} GiB, "
        f"python {platform.python_version()}; {args.rate:g} req/s per lab, {args.window:g} s windows. {verdict}",
        "",
        "| K | new lab start (s) | slowest lab (req/s) | errors | slowest route change (ms) "
        "| PSS per lab: lab + kernel (MiB) | CPU per lab at the rate (% of a core) | CPU all labs (%) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        lines.append(
            f"| {s.k} | {s.start['start_s']:.1f} | {s.slowest_rate():.1f} | {s.errors()} "
            f"| {s.slowest_change_ms():.0f} "
            f"| {mean([a for a, _ in s.pss]):.0f} + {mean([b for _, b in s.pss]):.0f} "
            f"| {mean([a + b for a, b in s.cpu]):.0f} | {sum(a + b for a, b in s.cpu):.0f} |"
        )
    if lessons:
        lines += lessons_table(lessons, args.window)
    if not steps:
        return "\n".join(lines)
    base = steps[0]
    lab_mib = max(a for s in steps for a, _ in s.pss)
    kernel_mib = max(b for s in steps for _, b in s.pss) + extras.get("history_mib", 0.0)
    server_mib = extras.get("server_mib", float("nan"))
    which, most = largest(lab_mib + kernel_mib, lessons)  # the lesson whose lab + kernel used the most
    per_user = most + server_mib
    measured = "; ".join(f"{r.lesson}: {r.mib():.0f} MiB" for r in lessons if not r.error)
    lesson_rows = [f"| lessons 8 and 9: lab (incl. load tester; in 9 Prometheus) + kernel, PSS | {measured} |"]
    lesson_rows = lesson_rows if measured else []
    idle = mean([sum(s.idle_cpu) for s in steps])
    # One lab's CPU at the rate: the median over the K that held of each K's mean per lab
    # (a K whose window overlapped a start reads high; contention adds a little over K=1's).
    busy = statistics.median(mean([a + b for a, b in s.cpu]) for s in held or steps[:1])
    lines += [
        "",
        "Per participant (K=1 is the baseline; memory is the largest seen at any K):",
        "",
        "| figure | measured |",
        "|---|---|",
        f"| lab: control plane + 2 petstore pods, PSS | {lab_mib:.0f} MiB |",
        f"| kernel running lesson 5 + traffic, PSS (incl. a full 100,000-request history: "
        f"{extras.get('history_mib', float('nan')):.0f} MiB) | {kernel_mib:.0f} MiB |",
        *lesson_rows,
        f"| idle `jupyter lab` server, PSS | {server_mib:.0f} MiB |",
        f"| **per participant, PSS** (the largest lab + kernel: {which}; + the server) | **{per_user:.0f} MiB** |",
        f"| CPU at 0 req/s (lab + kernel, before the traffic starts) | {idle:.1f}% of a core |",
        f"| CPU at {args.rate:g} req/s (lab + kernel: K=1; the median per lab over the K that held) "
        f"| {sum(base.cpu[0]):.0f}%; {busy:.0f}% of a core |",
        f"| start: kernel -> first routed request (K=1 / K={steps[-1].k}) "
        f"| {base.start['start_s']:.1f} s / {steps[-1].start['start_s']:.1f} s |",
        "",
        "Sizing (The Littlest JupyterHub: memory = concurrent users x per-user maximum + 128 MB; "
        "CPU = users x CPU per user at the dashboard's rate). The per-user limit adds 30% headroom.",
        "",
        f"| concurrent users | memory (GiB) | cores at {args.rate:g} req/s each | cores with the traffic stopped |",
        "|---|---|---|---|",
    ]
    for users in USERS:
        memory_gib = (users * per_user * 1.3 + 128) / 1024
        lines.append(f"| {users} | {memory_gib:.1f} | {users * busy / 100:.1f} | {users * idle / 100:.1f} |")
    lines.append("")
    limit_mib = math.ceil(per_user * 1.3 / 64) * 64  # whole 64 MiB steps, rounded up
    limit_cpu = max(math.ceil(busy / 5) * 5, 5) / 100  # whole 5% steps of a core, rounded up
    lines.append(f"Per-user limits for `tljh-config`: `limits.memory {limit_mib}M`, `limits.cpu {limit_cpu:.2f}`.")
    return "\n".join(lines)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k-max", type=int, default=40, help="most labs side by side (default 40)")
    parser.add_argument("--minutes", type=float, default=12.0, help="stop adding labs after this long (default 12)")
    parser.add_argument("--rate", type=float, default=100.0, help="each lab's traffic, req/s (default 100)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of the rate/CPU window (default 10)")
    parser.add_argument("--idle-window", type=float, default=3.0, help="seconds of the idle CPU window (default 3)")
    parser.add_argument(
        "--progressive",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure lessons 8 and 9 once, one participant, before the K sweep (default on)",
    )
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    # SIGTERM as Ctrl-C: the finally blocks stop every kernel and lab.
    signal.signal(signal.SIGTERM, _interrupt)
    steps, reason, extras, lessons = run(args)
    text = report(steps, reason, extras, args, lessons)
    print()
    print(text)
    if args.markdown:
        args.markdown.write_text(
            "<!-- written by benchmarks/workshop.py --markdown; do not edit by hand -->\n\n" + text + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
