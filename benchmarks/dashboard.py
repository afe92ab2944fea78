"""How the live dashboard keeps up, measured in a real browser, and how exact the
traffic generator is.

Starts a lab in a temporary home, then:

(d) generator accuracy (no browser): ``helpers.live.traffic.Traffic`` at 50, 200 and 500
    req/s against the lab's gateway; requested vs achieved rate.
Then JupyterLab + headless Chromium (the harness of ``tests/browser``) runs the
weighted-canary lesson (Run All) and drives its dashboard from the page at 200 req/s:
(a) the plot's refresh interval and the figure draws per second the browser got
    (``dash.stats()``);
(b) how long a trivial cell (``1+1``) takes, from Ctrl+Enter in the page to its new
    execution count, and as a round trip from a second kernel client, with the
    dashboard's traffic off (baseline) and on;
(c) the time from a slider move (End: 0 → 100%) to the first request routed by the
    new weights, from ``dash.control.last_apply`` and ``dash.traffic.frame()``.

    .venv/bin/python benchmarks/dashboard.py [--rate 200] [--window 15] [--runs 20] [--moves 5]

Everything shares this machine's cores (browser, server, kernel, gateway, pods):
read the figures as this machine's, not as limits. Nothing here is a pass/fail.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from helpers import Lab, exercises  # noqa: E402
from helpers.live.traffic import Traffic  # noqa: E402
from tests.browser.dashboard_view import DashboardView  # noqa: E402
from tests.browser.jupyterlab import (  # noqa: E402
    LESSON,
    chromium_page,
    find_chromium,
    leftover_lab_processes,
    lesson_server,
)
from tests.browser.notebook import Notebook, open_notebook  # noqa: E402

if TYPE_CHECKING:
    from jupyter_client import BlockingKernelClient
    from playwright.sync_api import Locator

ACCURACY_RATES = (50, 200, 500)


def row(label: str, values: list[float]) -> str:
    """A table row: ``label``, then p50, p95 and max of ``values``."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"    {label:<48}{statistics.median(ordered):>8.1f}{p95:>8.1f}{ordered[-1]:>8.1f}"


def header(title: str) -> str:
    return f"{title:<52}{'p50':>8}{'p95':>8}{'max':>8}"


# ── (d) the generator, no browser ────────────────────────────────────────────


def generator_accuracy(lab: Lab, seconds: float) -> list[str]:
    """Run the generator at each rate for ``seconds``; answers per second are counted
    by when they *completed* (due time + latency), after a 1 s warm-up."""
    rows = []
    for rate in ACCURACY_RATES:
        traffic = Traffic(lab, rate=rate)
        frame = traffic.run(seconds=seconds)
        done_s = frame["sent_s"] + frame["latency_ms"] / 1000
        steady = frame[(done_s >= 1.0) & (done_s < seconds)]
        ok = steady[steady["status"] == 200]
        due = math.ceil(seconds * rate)  # requests due at 0, 1/rate, ... before `seconds`
        rows.append(
            f"{rate:>9} | {len(ok) / (seconds - 1):>10.1f} | {f'{traffic.sent}/{due}':>11} | "
            f"{len(steady) - len(ok):>6} | {traffic.skipped:>7} | "
            f"{frame['latency_ms'].median():>6.2f} {frame['latency_ms'].quantile(0.99):>7.2f}"
        )
    return rows


# ── code run in the lesson's kernel, through a second client ────────────────


class Kernel:
    """Runs code in the notebook's kernel and returns what it printed."""

    def __init__(self, client: BlockingKernelClient) -> None:
        self.client = client

    def run(self, code: str, timeout: float = 60.0) -> str:
        out: list[str] = []

        def collect(msg: dict) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))

        reply = self.client.execute_interactive(code, store_history=False, output_hook=collect, timeout=timeout)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"the kernel raised running {code!r}:\n{''.join(out)}")
        return "".join(out)

    def json(self, expression: str) -> object:
        return json.loads(self.run(f"import json as _json; print(_json.dumps({expression}))"))

    def round_trip(self) -> float:
        """Seconds for ``1+1`` from this client: the kernel's own responsiveness."""
        began = time.perf_counter()
        self.run("1+1")
        return time.perf_counter() - began


# ── (a), (b), (c) in the browser ─────────────────────────────────────────────


def cell_times(notebook: Notebook, cell: Locator, kernel: Kernel, runs: int) -> tuple[list[float], list[float]]:
    """``runs`` runs of the ``1+1`` cell from the page, and as many round trips of a
    second kernel client (ms)."""
    page_ms = [notebook.run_cell(cell) * 1000 for _ in range(runs)]
    kernel_ms = [kernel.round_trip() * 1000 for _ in range(runs)]
    return page_ms, kernel_ms


def refresh_figures(kernel: Kernel, window: float) -> dict[str, float]:
    """Refreshes and draws during ``window`` seconds of running dashboard."""
    before = kernel.json("dict(dash.stats(), now=__import__('time').monotonic())")
    time.sleep(window)  # the measurement window itself, not a wait for something
    after = kernel.json("dict(dash.stats(), now=__import__('time').monotonic())")
    elapsed = after["now"] - before["now"]
    # stats() has no gaps; the refresh times it keeps are private, but this is a benchmark.
    gaps = kernel.json(f"[b - a for a, b in zip(dash._refreshes, dash._refreshes[1:]) if a >= {before['now']}]")
    refreshes = after["refreshes"] - before["refreshes"]
    return {
        "interval_s": elapsed / refreshes if refreshes else float("nan"),
        "gap_max_s": max(gaps) if gaps else float("nan"),
        "draws_per_s": (after["draws"] - before["draws"]) / elapsed,
        "sent_per_s": (after["requests_sent"] - before["requests_sent"]) / elapsed,
        "stats_mean_s": after["mean_refresh_interval_s"] or float("nan"),
    }


# Run in the kernel after a move: the requests due after the change began, without
# the x-canary header (those go to v2 whatever the weights).
FIRST_ROUTED = """
_la = dash.control.last_apply
_f = dash.traffic.frame()
_plain = _f[~_f["canary"] & (_f["sent_s"] >= _la["started_s"])]
_v2 = _plain[_plain["version"] == "v2"]["sent_s"]
_late = _plain[(_plain["sent_s"] > _la["applied_s"]) & (_plain["version"] == "v1")]
_r = dict(_la, origin=__import__("time").monotonic() - dash.traffic.elapsed,
          first_v2=float(_v2.min()) if len(_v2) else None, late_v1=len(_late))
"""


def slider_to_routing(view: DashboardView, kernel: Kernel, moves: int) -> list[dict[str, float]]:
    """Move the slider 0 → 100 ``moves`` times; for each, the time from the key press
    to the change being applied and to the first request the new weights routed."""
    results = []
    for _ in range(moves):
        view.set_weight_key("Home", expected=0)
        kernel.run("dash.traffic.wait_for_answers(200)")  # a second of all-v1 traffic before the move
        handle = view.part("weight").locator(".noUi-handle")
        handle.focus()
        pressed = time.monotonic()  # CLOCK_MONOTONIC: the same clock as the kernel's time.monotonic()
        handle.press("End")
        view.wait_for_message("now 100% to v2")
        kernel.run("dash.traffic.wait_for_answers(200)")
        kernel.run(FIRST_ROUTED)
        r = kernel.json("_r")
        origin = r["origin"]  # the traffic clock's zero, on CLOCK_MONOTONIC
        results.append(
            {
                "press_to_apply_ms": (origin + r["started_s"] - pressed) * 1000,
                "apply_ms": r["apply_ms"],
                "started_to_first_ms": (r["first_v2"] - r["started_s"]) * 1000,
                "press_to_first_ms": (origin + r["first_v2"] - pressed) * 1000,
                "late_v1": r["late_v1"],
            }
        )
    return results


def browser_figures(home: Path, scratch: Path, args: argparse.Namespace, chromium: str) -> list[str]:
    """(a), (b), (c): JupyterLab + Chromium on the lesson, its dashboard at ``args.rate``."""
    lines = []
    with lesson_server(scratch, home) as server, chromium_page(chromium, height=1400) as page:
        notebook = open_notebook(page, server, LESSON)
        took = notebook.run_all()
        lines.append(f"lesson Run All: {took:.1f} s")
        view = DashboardView(notebook)
        client = server.kernel_client(LESSON)
        try:
            kernel = Kernel(client)
            # Just below the dashboard, so that the page shows both while the cell runs.
            cell = notebook.add_cell("1+1", after=notebook.cell_with_output(".coalmine-readout"))
            base_page, base_kernel = cell_times(notebook, cell, kernel, args.runs)  # the lesson stopped the traffic

            view.show()
            view.type_into("rate", args.rate)
            view.start_traffic()
            view.set_header_canary(False)
            kernel.run(f"assert dash.traffic.rate == {args.rate}; dash.traffic.wait_for_answers({args.rate})")
            refresh = refresh_figures(kernel, args.window)
            busy_page, busy_kernel = cell_times(notebook, cell, kernel, args.runs)
            # The lesson's exercise applied a 25% split behind the dashboard's back (its
            # slider still shows 0): move it once, so the lab is at the slider's 0.
            view.set_weight_key("End", expected=100)
            moves = slider_to_routing(view, kernel, args.moves)
            view.stop_traffic()
        finally:
            client.stop_channels()

    lines += [
        "",
        f"(a) dashboard at {args.rate} req/s, {args.window:g} s window (the refresher aims at 0.5 s)",
        f"    refresh interval {refresh['interval_s'] * 1000:.0f} ms "
        f"(longest gap {refresh['gap_max_s'] * 1000:.0f} ms); dash.stats() mean interval since the "
        f"dashboard was made {refresh['stats_mean_s'] * 1000:.0f} ms",
        f"    figure draws sent to the browser {refresh['draws_per_s']:.2f} /s; "
        f"requests sent {refresh['sent_per_s']:.0f} /s",
        "",
        header(f"(b) trivial cell 1+1, {args.runs} runs each (ms)"),
        row("page: Ctrl+Enter -> new count, traffic off", base_page),
        row(f"page: Ctrl+Enter -> new count, {args.rate} req/s", busy_page),
        row("second kernel client, traffic off", base_kernel),
        row(f"second kernel client, {args.rate} req/s", busy_kernel),
        "",
        header(f"(c) slider 0 -> 100 (End key), {len(moves)} moves (ms)"),
    ]
    for key, label in (
        ("press_to_apply_ms", "key press -> apply starts"),
        ("apply_ms", "apply (the route change itself)"),
        ("started_to_first_ms", "apply starts -> first request routed to v2"),
        ("press_to_first_ms", "key press -> first request routed to v2"),
    ):
        lines.append(row(label, [m[key] for m in moves]))
    late = sum(m["late_v1"] for m in moves)
    lines.append(f"    plain requests due after an apply returned yet answered by v1: {late}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=200, help="the dashboard's traffic, req/s")
    parser.add_argument("--window", type=float, default=15.0, help="seconds to watch the refreshes")
    parser.add_argument("--runs", type=int, default=20, help="runs of the 1+1 cell, each way")
    parser.add_argument("--moves", type=int, default=5, help="slider moves 0 -> 100")
    parser.add_argument("--accuracy-seconds", type=float, default=6.0, help="seconds per generator rate")
    parser.add_argument("--no-browser", action="store_true", help="only the generator's accuracy")
    args = parser.parse_args()
    chromium = None if args.no_browser else find_chromium()

    with tempfile.TemporaryDirectory(prefix="coalmine-bench-dash-") as tmp:
        scratch = Path(tmp)
        home = scratch / "lab"
        try:
            lab = exercises.ensure(5, Lab(home=home))  # the lab lesson 5 starts from
            accuracy = generator_accuracy(lab, args.accuracy_seconds)
            browser = (
                browser_figures(home, scratch, args, chromium)
                if chromium
                else ["(a)-(c) skipped: " + ("--no-browser" if args.no_browser else "no Chromium (make chromium)")]
            )
        finally:
            Lab(home=home).down()
            left = leftover_lab_processes(home)
    if left:
        print(f"warning: processes of the lab were left running and were killed: {left}")

    print(
        f"coalmine dashboard benchmark: python {sys.version.split()[0]}, {os.cpu_count()} CPUs shared by "
        "browser, JupyterLab, kernel, gateway and pods"
    )
    for line in browser:
        print(line)
    print()
    print(
        f"(d) generator accuracy, {args.accuracy_seconds:g} s per rate (answers counted by completion time, "
        "after 1 s); latency from the time each request was due"
    )
    print("requested | answered/s | sent/due    | failed | skipped | p50 ms  p99 ms")
    for row in accuracy:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
