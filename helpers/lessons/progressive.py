"""Lesson 8's set-up and exercise: a Canary that lets a slow version through.

The lesson starts from an empty lab with the petstore (one Deployment ``petstore``,
v1) and the loadtester deployed, Gloo and the canary controller installed. A lab that
ran a Canary before is emptied first (``lab.down(forget=True)``): a rollout leaves the
petstore's Deployment on whatever version it last shipped and the primary on what it
last promoted, and starting from nothing is the one state every run reaches alike.

The exercise starts with a Canary that checks only the success rate, so a version that
answers every request, slowly, is promoted. The learner adds a ``request-duration``
check that a slow version fails and a healthy one passes, then ships the slow version
and watches the analysis roll it back.
"""

from __future__ import annotations

import time
from typing import Any

from helpers.builders import progressive
from helpers.errors import CheckFailed, CoalmineError
from helpers.lab import Lab
from helpers.lessons.inforce import settle
from helpers.lessons.probing import gateway, http_get
from helpers.lessons.served import primary
from helpers.live.progressive import DONE, CanaryWatch, Sample, apply_canary, duration_seconds, follow_rollout, prepare
from helpers.loading import load_manifests, manifests_dir

SLOW_MS = 1000  # the slow version's LATENCY_MS (manifests/flagger/rollout-slow.yaml)
FLOOR_MS = 50  # below this, a healthy version's p99 on a busy laptop can fail the check
ROLLOUT_TIMEOUT_S = 180.0


def start_objects() -> list[dict[str, Any]]:
    """What lesson 8 applies before its first step: the petstore and the loadtester."""
    folder = manifests_dir() / "flagger"
    return load_manifests([folder / "petstore.yaml", folder / "loadtester.yaml"])


def exercise_canary() -> dict[str, Any]:
    """The exercise's Canary: the lesson's, checking the success rate only."""
    return progressive.canary(metrics=[progressive.success_rate()])


def slow_rollout() -> dict[str, Any]:
    """The version the exercise must catch: v3 answering every request after ``SLOW_MS`` ms."""
    return progressive.rollout("v3", latency_ms=SLOW_MS)


def has_canary(lab: Lab) -> bool:
    """Whether a Canary exists (then the lesson starts again from an empty lab)."""
    try:
        return bool(lab.objects("canaries", all_namespaces=True))
    except CoalmineError:
        return False  # the canary controller is not installed: no Canary can exist


def touched(lab: Lab) -> bool:
    """Whether lesson 8 ran in this lab (its load tester or a Canary exists): then the
    canary controller is installed too, and an earlier lesson starts from an empty lab."""
    if has_canary(lab):
        return True
    try:
        return bool(lab.objects("deployments", "flagger-loadtester", progressive.NAMESPACE))
    except CoalmineError:
        return False


def wait_for_clean_window(lab: Lab, timeout: float = 90.0) -> float:
    """Wait until the canary has answered no request for as long as the Canary's
    longest metric interval, so that the next analysis judges only the next version
    (a check looks back over its interval, on a cluster too). Returns the seconds waited."""
    watch = CanaryWatch(lab)
    began = time.monotonic()
    window = max((duration_seconds(i) for _, i in watch.thresholds().values()), default=0.0)
    last, changed = None, began
    while True:
        totals = watch.poll().totals.get("canary")
        window = max((duration_seconds(i) for _, i in watch.thresholds().values()), default=window)
        now = time.monotonic()
        if totals != last:
            last, changed = totals, now
        if now - changed >= window:
            return now - began
        if now - began >= timeout:
            raise TimeoutError(f"the canary still answered requests in the last {window:g} s after {timeout:g} s")
        time.sleep(0.25)


def exercise_start(lab: Lab) -> list[str]:
    """From an empty lab: the lesson's start, the exercise's Canary initialized and the
    VirtualService that delegates to its RouteTable."""
    return prepare(lab, exercise_canary())


def solve(lab: Lab) -> list[str]:
    """The reference answer: a 500 ms request-duration check, then the slow version
    shipped and followed until the analysis ends."""
    answer = progressive.canary(metrics=[progressive.success_rate(), progressive.duration(500)])
    lines = apply_canary(lab, answer)
    lines += lab.apply(slow_rollout())
    follow_rollout(lab, ROLLOUT_TIMEOUT_S, say=None)
    return lines


def watched(lab: Lab, lesson: int) -> tuple[CanaryWatch, Sample]:
    """The exercise's Canary as it is now; ``CheckFailed`` when there is none."""
    watch = CanaryWatch(lab)
    try:
        return watch, watch.poll()
    except CoalmineError:
        raise CheckFailed(
            "there is no Canary petstore", f"run exercises.reset({lesson}) to set the exercise up again"
        ) from None


def shipped_and_rolled_back(sample: Sample, lab: Lab, lesson: int, which: str, manifest: str, env: str) -> None:
    """``CheckFailed`` unless the ``which`` version (its Deployment's ``env``, "KEY=value")
    was shipped from ``manifest`` after the check was added, and its analysis failed."""
    key, _, value = env.partition("=")
    ship = f'now ship it: lab.apply("../manifests/flagger/{manifest}"), then follow_rollout(lab)'
    if target_env(lab).get(key) != value:
        raise CheckFailed(f"the check is right, but the {which} version was not shipped since", ship)
    if sample.phase not in DONE:
        raise CheckFailed(
            f"the {which} version's analysis is still running (phase {sample.phase})",
            "wait for it: follow_rollout(lab), then check again",
        )
    if sample.phase != "Failed":
        raise CheckFailed(
            f"the {which} version was promoted: it was shipped before the check was added",
            f"run exercises.reset({lesson}), add the check first, then ship the {which} version",
        )


def check(lab: Lab) -> str:
    watch, sample = watched(lab, 8)
    limits = watch.thresholds()
    maximum = limits.get("request-duration", (None, ""))[0]
    add = (
        "add progressive.duration(...) with a maximum in milliseconds to the metrics: "
        "lab.apply(progressive.canary(metrics=[progressive.success_rate(), progressive.duration(...)]))"
    )
    if maximum is None:
        raise CheckFailed("the Canary has no request-duration check", add)
    if maximum >= SLOW_MS:
        raise CheckFailed(
            f"the request-duration check allows a p99 of {maximum:g} ms: the slow version ({SLOW_MS} ms) passes it",
            f"choose a maximum below {SLOW_MS} ms",
        )
    if maximum < FLOOR_MS:
        raise CheckFailed(
            f"the request-duration check allows only {maximum:g} ms: a healthy version can fail it on a busy machine",
            f"choose a maximum from {FLOOR_MS} ms up to below {SLOW_MS} ms",
        )
    shipped_and_rolled_back(sample, lab, 8, "slow", "rollout-slow.yaml", f"LATENCY_MS={SLOW_MS}")
    settle(lab, primary(primary_version(lab)))  # the rollback's routes, all to the primary
    status, data = http_get(gateway(lab), "/api/pets")
    if status != 200 or not isinstance(data, list):
        raise CheckFailed(f"GET /api/pets through the gateway answered {status}", "look at lab.get('canaries')")
    return f"a {maximum:g} ms request-duration check rolled the {SLOW_MS} ms version back; the primary still serves"


def primary_version(lab: Lab) -> str:
    """The version the Canary's primary runs (its ``VERSION``): what the gateway serves after a rollback."""
    return target_env(lab, f"{progressive.NAME}-primary").get("VERSION", "v1")


def target_env(lab: Lab, name: str = progressive.NAME) -> dict[str, str]:
    """The environment of the Deployment ``name`` (``petstore``: the version being shipped)."""
    found = lab.objects("deployments", name, progressive.NAMESPACE)
    containers = ((((found[0] if found else {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers"
    ) or [{}]
    return {str(e.get("name")): str(e.get("value")) for e in containers[0].get("env") or []}
