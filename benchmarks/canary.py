"""What a canary analysis costs the gateway: latency while the controller is idle vs
while it runs an analysis, in one run.

Starts a lab in a temporary home with lesson 8's set-up (manifests/flagger: the
petstore, the loadtester, Gloo, the canary controller, the delegating VirtualService)
and a Canary whose analysis ticks every second and steps 2% at a time up to 50% (about
25 ticks per rollout), without a load-test webhook: the benchmark's own steady
open-loop traffic (``--rate`` requests a second to /api/pets through the gateway) is
what the checks measure. It then alternates two kinds of window of ``--seconds``:

- idle: the Canary is Succeeded; the controller only looks at it every interval;
- analysing: a new revision was applied; every second the controller reads the stats
  windows of both upstreams and moves the weight, which rewrites the RouteTable and
  makes the gateway swap its route table.

and prints p50/p99 (ms, from the time each request was due) and errors per window,
then the median of each per kind.

    .venv/bin/python benchmarks/canary.py [--rate 200] [--seconds 8] [--rounds 3]

Client, gateway, controller and pods share this machine's cores: compare the two
kinds of window of one run, not runs of different machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import Lab
from helpers.builders import progressive
from helpers.live.progressive import CanaryWatch, prepare, wait_for_phase
from helpers.live.traffic import Traffic

VERSIONS = ("v2", "v3")  # each round ships the other one: a new pod template each time


def summary(frame: Any, start: float, end: float) -> tuple[float, float, int, int]:
    """p50 and p99 (ms), requests and errors of the requests due from ``start`` to ``end``."""
    window = frame[(frame["sent_s"] >= start) & (frame["sent_s"] < end)]
    latency = window["latency_ms"]
    errors = int((window["status"] != 200).sum())
    return float(latency.quantile(0.5)), float(latency.quantile(0.99)), len(window), errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per window (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="idle + analysing windows (default 3)")
    args = parser.parse_args()
    canary = progressive.canary(interval="1s", threshold=5, step_weight=2, max_weight=50, webhooks=[])
    windows: list[tuple[str, float, float, int]] = []  # kind, start, end (traffic clock), weight moved

    with tempfile.TemporaryDirectory(prefix="coalmine-bench-") as home:
        lab = Lab(home=home)
        try:
            lab.up()
            prepare(lab, canary)
            watch = CanaryWatch(lab)
            # One steady stream the whole time: it is also what the analysis measures.
            traffic = Traffic(lab, rate=args.rate, path="/api/pets").start()
            for i in range(args.rounds):
                began = traffic.elapsed
                time.sleep(args.seconds)
                windows.append(("idle", began, traffic.elapsed, 0))
                lab.apply(progressive.rollout(VERSIONS[i % 2]))
                first = wait_for_phase(lab, ("Progressing",), 60, watch, iterations=0)
                began = traffic.elapsed
                time.sleep(args.seconds)
                windows.append(("analysing", began, traffic.elapsed, watch.poll().weight - first.weight))
                done = wait_for_phase(lab, ("Succeeded", "Failed"), 180, watch)
                if done.phase != "Succeeded":
                    print(f"round {i + 1}: the rollout ended {done.phase}", file=sys.stderr)
            frame = traffic.stop()
        finally:
            lab.down()
    rows = [(kind, *summary(frame, start, end), moved) for kind, start, end, moved in windows]

    print(
        f"coalmine canary benchmark: {args.rate:g} req/s open-loop to /api/pets through the gateway, "
        f"{args.seconds:g} s windows, analysis interval 1 s, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs (client, gateway, controller and pods share them)"
    )
    print(f"{'window':<10} {'requests':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}  weight moved")
    for kind, p50, p99, n, errors, moved in rows:
        print(f"{kind:<10} {n:>8} {p50:>7.2f} {p99:>7.2f} {errors:>6}  {moved if kind == 'analysing' else '':>3}")
    for kind in ("idle", "analysing"):
        mine = [r for r in rows if r[0] == kind]
        print(
            f"median of {kind:<9}: p50 {statistics.median(r[1] for r in mine):.2f} ms, "
            f"p99 {statistics.median(r[2] for r in mine):.2f} ms, errors {sum(r[4] for r in mine)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
