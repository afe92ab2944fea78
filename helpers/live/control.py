"""The canary's state (how much traffic v2 gets, whether the header canary is on) and
the route change that puts the lab in a state.

    control = CanaryControl(lab)
    control.set(v2_percent=25)        # applies routing.canary(25): the VirtualService
    control.promote()                 # everything to v2
    control.rollback()                # everything to v1

The dashboard's slider and buttons and ``coalmine demo`` both go through
``CanaryControl``, so they apply exactly the VirtualServices you can read with
``control.yaml()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from helpers.builders.routing import CANARY_HEADER, canary, destination_weights, to_yaml, version_of_destination
from helpers.errors import NotFound

if TYPE_CHECKING:
    from helpers.lab import Lab

VIRTUAL_SERVICE = "coalmine"


class Change(NamedTuple):
    """A route change: when (seconds on the traffic clock), the v2 weight set, a label."""

    at_s: float
    v2_percent: int
    label: str


class Step(NamedTuple):
    """One step of a rollout: a label, the v2 weight (%) and whether the header canary is on."""

    label: str
    v2_percent: int
    header: bool


# The seed blog post's rollout, step by step (manifests/gloo/1..5).
SEED_STEPS = [
    Step("all to v1", 0, False),
    Step("header canary", 0, True),
    Step("10% to v2", 10, True),
    Step("50% to v2", 50, True),
    Step("all to v2", 100, True),
]


def state_of(vs: Mapping[str, Any]) -> tuple[int, bool]:
    """``(v2_percent, header)`` of a VirtualService built like ``routing.canary``: the
    v2 weight on the plain ``/findPets`` route, and whether an x-canary route exists."""
    routes = (vs.get("spec") or {}).get("virtualHost", {}).get("routes") or []
    header = False
    for route in routes:
        matchers = route.get("matchers") or [{}]
        if any(h.get("name") == CANARY_HEADER for m in matchers for h in m.get("headers") or []):
            header = True
            continue
        if any(m.get("exact") == "/findPets" for m in matchers):
            weights: dict[str | None, int] = {}
            for destination, weight in destination_weights(route):
                version = version_of_destination(destination)
                weights[version] = weights.get(version, 0) + weight
            total = sum(weights.values())
            percent = round(100 * weights.get("v2", 0) / total) if total else 0
            return percent, header
    return 0, header


class CanaryControl:
    """Puts the lab's VirtualService in a canary state and remembers each change.

    ``clock`` gives the time of a change (e.g. a ``Traffic``'s ``elapsed``, so changes
    line up with the requests); by default, seconds since this object was made.
    """

    def __init__(self, lab: Lab, clock: Callable[[], float] | None = None) -> None:
        self.lab = lab
        made = time.monotonic()
        self.clock = clock or (lambda: time.monotonic() - made)
        self.v2_percent, self.header = 0, False
        self.refresh()
        self.changes: list[Change] = []
        self.last_apply: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"<CanaryControl v2 {self.v2_percent}%, header canary {'on' if self.header else 'off'}>"

    def refresh(self) -> tuple[int, bool]:
        """Read the state from the VirtualService the lab serves now (someone else may have
        applied one since); returns ``(v2_percent, header)``."""
        try:
            found = self.lab.objects("virtualservices", VIRTUAL_SERVICE)
        except NotFound:
            found = []
        if found:
            self.v2_percent, self.header = state_of(found[0])
        return self.v2_percent, self.header

    def virtual_service(self) -> dict[str, Any]:
        """The VirtualService of the current state (``routing.canary``)."""
        return canary(self.v2_percent, self.header)

    def yaml(self) -> str:
        """The current VirtualService as YAML."""
        return to_yaml(self.virtual_service())

    def set(self, v2_percent: int | None = None, header: bool | None = None, label: str | None = None) -> list[str]:
        """Change the state and apply the VirtualService; returns ``lab.apply``'s lines.
        If the gateway refuses it, the state stays as it was and the error is raised."""
        new_percent = self.v2_percent if v2_percent is None else v2_percent
        new_header = self.header if header is None else bool(header)
        vs = canary(new_percent, new_header)  # checks v2_percent before anything changes
        started = self.clock()
        lines = self.lab.apply(vs)
        applied = self.clock()
        self.v2_percent, self.header = new_percent, new_header
        self.last_apply = {"started_s": started, "applied_s": applied, "apply_ms": (applied - started) * 1000}
        self.changes.append(Change(started, new_percent, label or self.describe()))
        return lines

    def step(self, step: Step) -> list[str]:
        """Apply one rollout ``Step``."""
        return self.set(step.v2_percent, step.header, step.label)

    def promote(self) -> list[str]:
        """Send everything to v2 (the seed's last step)."""
        return self.set(100, self.header, "promote: all to v2")

    def rollback(self) -> list[str]:
        """Send everything back to v1 and turn the header canary off."""
        return self.set(0, False, "roll back: all to v1")

    def describe(self) -> str:
        """The state in words, e.g. ``"10% to v2, header canary on"``."""
        return f"{self.v2_percent}% to v2, header canary {'on' if self.header else 'off'}"
