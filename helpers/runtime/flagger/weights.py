"""How far each step moves the traffic: Flagger's weights, strategies and routes.

``max_weight`` and ``next_step_weight`` are Flagger's (``maxWeight``, ``stepWeight``
or ``stepWeights``); ``strategy`` tells a weighted canary from A/B testing
(``iterations`` with ``match``) and Blue/Green (``iterations`` alone);
``routed_weights`` the (primary, canary) weights the RouteTable holds in a given
status. The two weights always add up to ``TOTAL``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from helpers.runtime.flagger.status import FAILED, PROGRESSING, PROMOTING, WAITING_PROMOTION, CanaryStatus

TOTAL = 100  # Flagger's total weight


def max_weight(analysis: Mapping[str, Any]) -> int:
    """The canary weight at which promotion starts: the last of ``stepWeights``,
    else ``maxWeight``, else 100."""
    steps = analysis.get("stepWeights") or []
    if steps:
        return min(TOTAL, int(steps[-1]))
    return int(analysis.get("maxWeight") or 0) or TOTAL


def next_step_weight(analysis: Mapping[str, Any], canary_weight: int) -> int:
    """How much weight the next step adds (0: ``stepWeight`` and ``stepWeights``
    both unset, the canary never moves)."""
    steps = [int(s) for s in analysis.get("stepWeights") or []]
    step = int(analysis.get("stepWeight") or 0)
    if step > 0 or not steps:
        return step
    room = TOTAL - canary_weight
    if room == 0:
        return 1  # any positive step: promotion is next
    if canary_weight == 0:
        return min(room, steps[0])
    for here, there in itertools.pairwise(steps):
        if here == canary_weight:
            return min(room, there - canary_weight)
    return room


def strategy(analysis: Mapping[str, Any]) -> str:
    """``ab-testing`` (iterations and match), ``blue-green`` (iterations) or ``canary``."""
    if int(analysis.get("iterations") or 0) > 0:
        return "ab-testing" if analysis.get("match") else "blue-green"
    return "canary"


def routed_weights(analysis: Mapping[str, Any], status: CanaryStatus) -> tuple[int, int]:
    """The (primary, canary) weights the RouteTable holds now.

    Flagger reads them back from the router each tick; here they follow from the
    status and the spec, which determine them: A/B testing routes the matched
    requests all to the canary from its first iteration, Blue/Green only after the
    last one, and a canary waiting for (or starting) promotion sits at the weight
    where its steps crossed ``maxWeight`` (WaitingPromotion zeroes the status weight)."""
    phase, kind = status.phase, strategy(analysis)
    canary = 0
    if phase in (FAILED, PROGRESSING, PROMOTING, WAITING_PROMOTION):
        canary = status.canary_weight
    if phase in (PROGRESSING, WAITING_PROMOTION) and kind == "ab-testing":
        canary = TOTAL if status.iterations > 0 or phase == WAITING_PROMOTION else 0
    elif phase == PROGRESSING and kind == "blue-green":
        canary = TOTAL if status.iterations > int(analysis.get("iterations") or 0) else 0
    elif (phase == PROMOTING and canary == 0) or (phase == WAITING_PROMOTION and kind == "canary"):
        canary = TOTAL if kind != "canary" else _promotion_weight(analysis)
    return TOTAL - canary, canary


def _promotion_weight(analysis: Mapping[str, Any]) -> int:
    weight, top = 0, max_weight(analysis)
    while weight < top and (step := next_step_weight(analysis, weight)) > 0:
        weight = min(TOTAL, weight + step)
    return weight
