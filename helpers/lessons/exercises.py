"""Self-paced exercises: one per lesson, with check, solve and reset.

    from helpers.lessons.exercises import ensure, check, solve, reset
    lab = ensure(3)      # the lab as it is at the start of lesson 3
    check(3)             # PASS, or FAIL: what it found and a hint
    reset(3)             # back to the start of the exercise, if you are stuck
    solve(3)             # apply the reference answer (the lessons keep it commented out)

Each check looks at the lab's objects AND sends real requests, so it passes only
when the lab really does what the exercise asks.

    1  deploy petstore v2 yourself        4  header canary on /petstore too
    2  scale petstore v1 to 2 replicas    5  a 25% v2 / 75% v1 split
    3  a /pet/{id} route to findPetById   6  promote v2 and decommission v1
                                          7  the header canary as an HTTPRoute (kgateway)
                                          8  a Canary that catches a slow version
                                          9  a PromQL error-rate check (MetricTemplate)
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from helpers.errors import CheckFailed, InvalidArgument, LabNotRunning
from helpers.lab import Lab
from helpers.lessons import gatewayapi, progressive, promql, states
from helpers.lessons.checks import CHECKS

LESSONS = (1, 2, 3, 4, 5, 6, 7, 8, 9)


@dataclass(frozen=True)
class CheckResult:
    """The verdict of ``check(n)``: ``passed``, what was found, and a hint if it failed.

    A notebook shows it as three lines: the verdict, what was found, the hint."""

    passed: bool
    message: str
    hint: str = ""

    def __str__(self) -> str:
        if self.passed:
            return f"PASS: {self.message}"
        return f"FAIL: {self.message}\nHint: {self.hint}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        color, verdict = ("#2E7D32", "PASS") if self.passed else ("#C44E52", "FAIL: not done yet")
        rows = [f'<b style="color:{color}">{verdict}</b>', f"<b>found:</b> {html.escape(self.message)}"]
        if not self.passed:
            rows.append(f"<b>hint:</b> {html.escape(self.hint)}")
        return f'<div class="coalmine-check">{"<br>".join(rows)}</div>'

    def __bool__(self) -> bool:
        return self.passed


def _lesson(lesson: int) -> int:
    if lesson not in LESSONS:
        raise InvalidArgument(f"lesson must be one of {', '.join(map(str, LESSONS))}, not {lesson!r}")
    return lesson


def ensure(lesson: int, lab: Lab | None = None) -> Lab:
    """Make the lab exactly what it is at the START of ``lesson`` (1-9), as if you had
    just done the lessons before it: started (1), petstore v1 and v2 deployed (2), the
    gateway installed (3), all routes to v1 (4), the header canary (5), a 50/50 split
    (6), kgateway with its Gateway beside Gloo's header canary (7), the petstore, the
    loadtester, Gloo and the canary controller without a Canary (8), the same on
    kgateway with its Gateway and the lab's Prometheus where there is one (9). What later lessons
    added is removed, so you can go back. On a cluster it returns once the gateway
    serves the lesson's routes. Safe to run again. Returns the lab."""
    lab = lab or Lab()
    states.start(_lesson(lesson), lab)
    return lab


def reset(lesson: int, lab: Lab | None = None) -> list[str]:
    """Put the lab back to the start of lesson ``lesson``'s exercise, undoing your
    attempt. Returns what was applied or deleted."""
    return states.reset(_lesson(lesson), lab or Lab())


def solve(lesson: int, lab: Lab | None = None) -> list[str]:
    """Apply the reference answer of lesson ``lesson``'s exercise. Returns what was
    applied or deleted."""
    return states.solve(_lesson(lesson), lab or Lab())


def check(lesson: int, lab: Lab | None = None) -> CheckResult:
    """Check lesson ``lesson``'s exercise: PASS, or FAIL with a hint for the next step.
    Changes nothing in the lab."""
    lab = lab or Lab()
    lesson = _lesson(lesson)
    checker = {7: gatewayapi.check, 8: progressive.check, 9: promql.check}.get(lesson) or CHECKS[lesson]
    try:
        message = checker(lab)
    except CheckFailed as failed:
        return CheckResult(False, failed.message, failed.hint)
    except LabNotRunning:
        return CheckResult(
            False, "the lab is not running", f"start it with lab.up(), or run reset({lesson}) to set up this lesson"
        )
    return CheckResult(True, message)
