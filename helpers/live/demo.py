"""The seed's whole canary rollout, run headless on a fresh lab with traffic flowing.

    coalmine demo --rate 200 --seconds 3 --output demo.png
    coalmine demo --progressive --output canary.png    # lesson 8: Flagger's analysis

deploys petstore v1 and v2, installs the gateway, then walks the rollout (all to v1,
header canary, 10%, 50%, all to v2) while ``Traffic`` sends requests, prints the
distribution measured after each step, and saves the plot the dashboard draws live.
``run_progressive_demo`` ships a good and a bad version to a Flagger Canary instead and
saves the plot of the progressive-delivery view.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.builders.routing import CANARY_HEADER
from helpers.lab import Lab
from helpers.live.control import SEED_STEPS, CanaryControl, Step
from helpers.live.plotting import DistributionPlot
from helpers.live.progressive import CanaryWatch, Rollout, follow_rollout, prepare
from helpers.live.traffic import Traffic, cell, summarize
from helpers.loading import manifests_dir

if TYPE_CHECKING:
    import pandas as pd

MANIFESTS = manifests_dir()


def expected_v2_share(step: Step, header_share: float) -> float:
    """The share of /findPets requests v2 should answer in ``step`` when
    ``header_share`` of them carry the canary header."""
    if step.v2_percent == 100:
        return 1.0
    canary = header_share if step.header else 0.0
    return canary + (1 - canary) * step.v2_percent / 100


def run_demo(
    rate: float = 200,
    seconds: float = 3.0,
    header_share: float = 0.2,
    output: str | Path | None = None,
    steps: Sequence[Step] = SEED_STEPS,
    say: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Run the rollout on a new lab in a temporary home and stop it afterwards.

    Each step holds for ``seconds`` with ``rate`` requests a second to /findPets, of
    which ``header_share`` carry ``x-canary: true``. Returns one row per step with the
    measured shares; ``output`` is where the plot is saved (PNG).
    """
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="coalmine-demo-") as home:
        lab = Lab(home=home)
        try:
            say(f"starting a fresh lab in {home}")
            lab.up()
            for line in lab.apply(MANIFESTS / "petstore-v1.yaml", MANIFESTS / "petstore-v2.yaml"):
                say(line)
            lab.install("gloo")
            lab.wait(120)
            say(f"gateway ready at {lab.proxy_url()}")
            traffic = Traffic(lab, rate=rate, headers={CANARY_HEADER: "true"}, header_share=header_share)
            control = CanaryControl(lab, clock=lambda: traffic.elapsed, header_share=header_share)
            control.step(steps[0])  # a route exists before the first request
            traffic.start()
            control.changes.clear()
            rows = []
            for step in steps:
                control.step(step)
                applied = control.last_apply["applied_s"]
                time.sleep(seconds)
                window = traffic.frame()
                window = window[(window["sent_s"] >= applied) & (window["sent_s"] < traffic.elapsed - 0.1)]
                rows.append(_step_row(step, window, header_share))
                say(_step_line(rows[-1]))
            frame = traffic.stop()
        finally:
            lab.down()
    table = pd.DataFrame(rows).set_index("step")
    if output is not None:
        plot = DistributionPlot(window=None)
        plot.update(frame, traffic.elapsed, control.changes, marks=True)
        plot.save(str(output))
        say(f"wrote {output}")
    return table


def _step_row(step: Step, frame: pd.DataFrame, header_share: float) -> dict[str, object]:
    table = summarize(frame)
    share = {v: cell(table, v, "share") for v in ("v1", "v2", "errors")}
    return {
        "step": step.label,
        "requests": len(frame),
        "v1": share["v1"],
        "v2": share["v2"],
        "errors": int(cell(table, "errors", "requests")),
        "expected_v2": expected_v2_share(step, header_share),
        "p50_ms": float(frame["latency_ms"].median()) if len(frame) else float("nan"),
    }


def _step_line(row: dict[str, object]) -> str:
    return (
        f"{row['step']:<14} {row['requests']:>5} requests   v1 {row['v1']:>4.0%}   v2 {row['v2']:>4.0%}"
        f"   (expected v2 {row['expected_v2']:.0%})   errors {row['errors']}   p50 {row['p50_ms']:.1f} ms"
    )


def run_progressive_demo(
    output: str | Path | None = None, say: Callable[[str], None] = print, timeout: float = 180.0
) -> dict[str, Rollout]:
    """Lesson 8's two rollouts on a new lab in a temporary home, stopped afterwards:
    ``rollout-good.yaml`` promoted step by step, then ``rollout-bad.yaml`` (30% of its
    answers are 500) rolled back. Returns what each rollout did; ``output`` is where the
    plot of both is saved (PNG)."""
    from helpers.live.progressive_view import RolloutPlot

    results: dict[str, Rollout] = {}
    with tempfile.TemporaryDirectory(prefix="coalmine-demo-") as home:
        lab = Lab(home=home)
        try:
            say(f"starting a fresh lab in {home}")
            lab.up()
            prepare(lab)
            watch = CanaryWatch(lab)
            for label in ("good", "bad"):
                say(f"applying manifests/flagger/rollout-{label}.yaml")
                began = watch.poll().t
                lab.apply(MANIFESTS / "flagger" / f"rollout-{label}.yaml")
                results[label] = follow_rollout(lab, timeout, say=say, watch=watch)
                result = results[label]
                primary, primary_errors = watch.requests("primary", began)
                say(
                    f"the {label} version: {result.phase} {result.seconds:.1f} s after it was applied; it answered "
                    f"{result.canary_requests} requests ({result.canary_errors} with 5xx), the primary "
                    f"{primary} ({primary_errors} with 5xx)"
                )
        finally:
            lab.down()
    if output is not None:
        plot = RolloutPlot()
        plot.update(watch, marks=True)
        plot.save(str(output))
        say(f"wrote {output}")
    return results
