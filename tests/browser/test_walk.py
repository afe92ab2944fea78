"""Every lesson in JupyterLab + Debian's Chromium, as a workshop participant walks them.

Run All on each lesson in order, then back to lesson 1 and lesson 3 and Run All again:
no cell may show an error or write to stderr, and the cells that used to go wrong
(going back, the exercise traps, the first minutes) show what the lesson says. Lesson
0's kernel stays up the whole walk, so lesson 6's ``lab.down()`` stops a lab that
another, living kernel started. The seconds each Run All took are written to
``test-output/browser/walk-times.json``.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING

import pytest

from .conftest import SCREENSHOTS, save_screenshot
from .jupyterlab import FIRST_LESSON, ROOT, JupyterLab
from .notebook import Notebook, open_notebook

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(1800)]

LESSONS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
WALK = [*LESSONS, "01-deploy-the-petstore.ipynb", "03-route-to-v1.ipynb"]
FAIL = re.compile(r"FAIL: not done yet\nfound: .+\nhint: .+")

# What some cells show after Run All: (lesson, a piece of the cell's source, a piece of its output).
EXPECTED = [
    ("00", "doctor.doctor()", "OK   "),
    ("00", "exercises.check(1)", "FAIL: not done yet\nfound: there is no deployment petstore-v2\nhint: apply"),
    ("01", 'lab.apply("../manifests/petstore-v1.yaml")', "deployment.apps/petstore-v1 created\npetstore-v1 is ready"),
    ("01", "v1_url = pod_url", '[{"id":1,"name":"Dog","status":"available"},{"id":2,"name":"Cat"'),
    ("02", 'print(curl(gateway + "/petstore"))', "no answer: [Errno 111] Connection refused"),
    ("03", "lab.apply(vs)", "virtualservice.gateway.solo.io/coalmine created"),
    ("04", "print(routing.header_route(plain) == canary)", "True"),
    ("05", "dash.sync()", "30% to v2, header canary on\nslider: 30 · header canary: True"),
    ("06", "deleted = lab.delete", "not 200: 0"),
    ("06", "print(lab.down())", "stopped the lab at "),
    ("07", "lab.apply(httproutes.header_canary())", "with:    [{"),
    ("08", "print(held.phase", "WaitingPromotion · insiders: ['v3'] · everyone else: ['v2']"),
    ("09", "every failed check was latency-regression", "Failed · weight back on the primary: True"),
]


def check_outputs(notebook: Notebook, lesson: str) -> None:
    assert notebook.problems() == [], f"{lesson}: an error or a warning"
    for number, source, shown in EXPECTED:
        if lesson.startswith(number):
            text = notebook.output_text(notebook.code_cell(source))
            assert shown in text, f"{lesson}, the cell {source!r} shows:\n{text}"
    number = max(1, int(lesson[:2]))  # lesson 0 shows lesson 1's check
    check = notebook.output_text(notebook.code_cell(f"exercises.check({number})"))
    assert FAIL.fullmatch(check.strip()), f"{lesson}: Run All leaves the exercise to the learner:\n{check}"


def test_every_lesson_in_order_then_back_to_lessons_1_and_3(page: Page, jupyter: JupyterLab) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    times: list[tuple[str, float]] = []
    began = time.monotonic()
    for step, lesson in enumerate(WALK):
        notebook = open_notebook(page, jupyter, lesson)
        times.append((lesson, round(notebook.run_all(timeout=600), 1)))
        check_outputs(notebook, lesson)
        if step == 2:  # lesson 2: the exercise, with the calls a learner makes
            do_lesson_2_as_a_learner(notebook)
        if step == len(WALK) - 1:  # lesson 3 again: what a refusal and a warning look like
            refusal_and_warning(notebook)
        save_screenshot(page, f"walk-{step:02d}-{lesson.removesuffix('.ipynb')}")
        notebook.save()
        jupyter.shut_down_kernels(keep=FIRST_LESSON)  # lesson 0's kernel started the lab: it stays
    total = time.monotonic() - began
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "walk-times.json").write_text(json.dumps({"run_all_s": times, "walk_s": round(total, 1)}))
    print(f"\nRun All per lesson (s): {times}; the whole walk: {total:.0f} s")
    assert not errors, f"the page raised: {errors}"
    assert "is not trusted" not in jupyter.log_tail(100_000), "the shipped lessons are trusted"


def do_lesson_2_as_a_learner(notebook: Notebook) -> None:
    """The exact calls that used to fail: a path as a string, the returned list applied."""
    answer = notebook.add_cell(
        "from helpers import load_manifests\n"
        'docs = load_manifests("../manifests/petstore-v1.yaml")\n'
        'docs[2]["spec"]["replicas"] = 2\n'
        "lab.apply(docs)\n"
        "lab.wait()\n"
        "exercises.check(2)",
        after=notebook.code_cell("exercises.check(2)"),
    )
    notebook.run_cell(answer, timeout=120)
    shown = notebook.output_text(answer)
    assert shown.strip() == "PASS\nfound: petstore-v1 runs 2 ready replicas behind its service", shown


def refusal_and_warning(notebook: Notebook) -> None:
    refused = notebook.add_cell(
        "bad = routing.route_to_v1()\n"
        'bad["spec"]["virtualHost"]["routes"][0]["matchers"][0] = {"regex": "/find(Pets"}\n'
        "lab.apply(bad)"
    )
    notebook.run_cell(refused)
    shown = notebook.output_text(refused)
    assert shown.startswith("ApplyRefused: error: virtualservice.gateway.solo.io/coalmine: "), shown
    assert "Traceback" not in shown and "helpers/lab.py" not in shown, "a short error, without the stack"
    assert shown.splitlines()[-1] == "(raised by line 3: lab.apply(bad))", shown

    warned = notebook.add_cell(
        "missing = routing.route_to_v1()\n"
        'missing["spec"]["virtualHost"]["routes"][2]["routeAction"]["single"]["upstream"]["name"] = "nowhere"\n'
        "lab.apply(missing)\n"
        'print("applied")'
    )
    notebook.run_cell(warned)
    shown = notebook.output_text(warned)
    assert "warning: virtualservice.gateway.solo.io/coalmine: " in shown and "nowhere" in shown, shown
    assert "applied" in shown.splitlines(), "a warning, not an error: the cell went on"
