"""Lesson 8 over a real lab: `coalmine demo --progressive` promotes the good version and
rolls the bad one back with real traffic, and lesson 8's exercise fails at its start,
passes after solve, and fails again after reset; the live view draws and gates."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import Lab
from helpers.lessons.exercises import check, ensure, reset, solve
from helpers.live.progressive import CanaryWatch, gate, loadtester_url

from .conftest import ROOT, lab_processes

pytestmark = pytest.mark.integration

FAILS_AT_START = (
    "FAIL: the Canary has no request-duration check\n"
    "Hint: add progressive.duration(...) with a maximum in milliseconds to the metrics: "
    "lab.apply(progressive.canary(metrics=[progressive.success_rate(), progressive.duration(...)]))"
)
PASSES = "PASS: a 500 ms request-duration check rolled the 1000 ms version back; the primary still serves"


def test_the_progressive_demo_promotes_the_good_version_and_rolls_the_bad_one_back(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "helpers", "demo", "--progressive", "--output", "canary.png"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    good = re.search(r"the good version: (\w+) .*the primary \d+ \((\d+) with 5xx\)", out)
    bad = re.search(
        r"the bad version: (\w+) .*it answered (\d+) requests \((\d+) with 5xx\), the primary \d+ \((\d+)", out
    )
    assert good and good.groups() == ("Succeeded", "0"), out
    assert bad and bad.group(1) == "Failed", out
    assert int(bad.group(2)) > 0 and int(bad.group(3)) > 0, "the bad version answered, and failed, some requests"
    assert bad.group(4) == "0", "no failed request on the primary"
    weights = [int(w) for w in re.findall(r"^Progressing +canary weight +(\d+)%", out, re.MULTILINE)]
    assert {10, 20, 30, 40, 50} <= set(weights), "the good version went through every step"
    assert (tmp_path / "canary.png").read_bytes()[:4] == b"\x89PNG"
    home = re.search(r"starting a fresh lab in (\S+)", out).group(1)  # type: ignore[union-attr]
    assert not Path(home).exists() and not lab_processes(Path(home))


def test_lesson_8_exercise_fails_at_its_start_and_passes_after_solve(lab: Lab) -> None:
    reset(8, lab)
    assert str(check(8, lab)) == FAILS_AT_START
    solve(8, lab)
    assert str(check(8, lab)) == PASSES
    watch = CanaryWatch(lab)
    assert watch.poll().phase == "Failed"
    assert watch.thresholds()["request-duration"] == (500, "15s")
    reset(8, lab)
    assert str(check(8, lab)) == FAILS_AT_START, "reset undoes the answer"
    ensure(5, lab)  # back to an earlier lesson: nothing of lesson 8 is left
    assert lab.objects("canaries", all_namespaces=True) == []
    assert sorted(d["metadata"]["name"] for d in lab.objects("deployments")) == ["petstore-v1", "petstore-v2"]


def test_the_view_shows_the_canary_and_its_buttons_reach_the_loadtester(lab: Lab) -> None:
    from helpers.live.progressive_view import ProgressiveView

    reset(8, lab)
    assert loadtester_url(lab) is not None
    assert gate(lab, "open") == "gate open: HTTP 202"
    view = ProgressiveView(lab, refresh=60)  # the test redraws; the loop's first pass is enough
    try:
        view.update()
        assert view.status.value.startswith("Initialized · weight 0% · failed checks 0")
        assert "Initialization done! petstore.default" in view.events.value
        view.buttons["close gate"].click()
        assert view.message.value == "close gate: gate close: HTTP 202"
        view.buttons["ship good (v2)"].click()
        assert view.message.value == "ship good (v2): deployment.apps/petstore configured"
    finally:
        view.stop()


def test_the_lesson_source_names_what_the_checks_print() -> None:
    """The stored check output of lesson 8 is the one the exercise prints at its start."""
    import nbformat

    nb = nbformat.read(ROOT / "notebooks" / "08-automated-canary-analysis.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source.strip() == "exercises.check(8)"]
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in cell.outputs)
    assert text == FAILS_AT_START
