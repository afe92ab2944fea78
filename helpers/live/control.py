"""The canary's state (how much traffic v2 gets, whether the header canary is on) and
the route change that puts the lab in a state.

    control = CanaryControl(lab)
    control.set(v2_percent=25)        # applies routing.canary(25): the VirtualService
    control.promote()                 # everything to v2
    control.rollback()                # everything to v1

The dashboard's slider and buttons and ``coalmine demo`` both go through
``CanaryControl``, so they apply exactly the VirtualServices you can read with
``control.yaml()``. ``control.follow()`` takes up a VirtualService applied elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from helpers.builders.routing import GLOO_NAMESPACE, canary, to_yaml
from helpers.errors import NotFound
from helpers.live.following import expected_v2, header_canary_on, v2_percent

if TYPE_CHECKING:
    from helpers.lab import Lab

VIRTUAL_SERVICE = "coalmine"


class Change(NamedTuple):
    """A route change: when (seconds on the traffic clock), the v2 weight set, a label,
    and the share of requests (%) v2 should then answer (None: the weight)."""

    at_s: float
    v2_percent: int
    label: str
    expected: float | None = None


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


def state_of(vs: Mapping[str, Any], path: str = "/findPets") -> tuple[int, bool]:
    """``(v2_percent, header)`` of a VirtualService, as the gateway reads it: the v2
    weight of the route a plain request to ``path`` takes, and whether requests with
    ``x-canary: true`` take a header route of their own."""
    return v2_percent(vs, path), header_canary_on(vs, path)


class CanaryControl:
    """Puts the lab's VirtualService in a canary state, remembers each change, and
    follows the changes made elsewhere (a cell's ``lab.apply``, ``exercises.solve``).

    ``clock`` gives the time of a change (e.g. a ``Traffic``'s ``elapsed``, so changes
    line up with the requests); by default, seconds since this object was made.
    ``header_share`` is the share of the traffic to ``path`` that carries
    ``x-canary: true``: with it, each change records the share v2 should answer.
    """

    def __init__(
        self,
        lab: Lab,
        clock: Callable[[], float] | None = None,
        header_share: float = 0.0,
        path: str = "/findPets",
    ) -> None:
        self.lab = lab
        made = time.monotonic()
        self.clock = clock or (lambda: time.monotonic() - made)
        self.header_share, self.path = header_share, path
        self.v2_percent, self.header = 0, False
        self.applied: dict[str, Any] | None = None  # the VirtualService as the lab serves it
        self.refresh()
        self.changes: list[Change] = []
        self.last_apply: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"<CanaryControl v2 {self.v2_percent}%, header canary {'on' if self.header else 'off'}>"

    def refresh(self) -> bool:
        """Read the VirtualService the lab serves now (someone else may have applied one
        since) and take its state; True when it differs from the last one read."""
        try:
            found = self.lab.objects("virtualservices", VIRTUAL_SERVICE, GLOO_NAMESPACE)
        except NotFound:
            found = []
        applied = _without_status(found[0]) if found else None
        if applied == self.applied:
            return False
        self.applied = applied
        self.v2_percent, self.header = state_of(applied, self.path) if applied else (0, False)
        return True

    def follow(self) -> Change | None:
        """If the applied VirtualService changed behind our back, take its state and
        record the change (returned); None when nothing changed."""
        if not self.refresh():
            return None
        change = Change(self.clock(), self.v2_percent, f"applied elsewhere: {self.describe()}", self.expected())
        self.changes.append(change)
        return change

    def expected(self) -> float:
        """The share (%) of the traffic v2 should answer now, header requests included."""
        return 100 * expected_v2(self.applied, self.path, self.header_share, self._group)

    def built_here(self) -> bool:
        """Whether the applied VirtualService is one this control builds (``routing.canary``);
        if not, moving a control replaces it with one that is."""
        return self.applied is not None and self.applied.get("spec") == self.virtual_service()["spec"]

    def virtual_service(self) -> dict[str, Any]:
        """The VirtualService of the current state (``routing.canary``)."""
        return canary(self.v2_percent, self.header)

    def yaml(self) -> str:
        """The applied VirtualService as YAML (as ``lab.apply`` got it, without status)."""
        if self.applied is None:
            return f"# no VirtualService {VIRTUAL_SERVICE} is applied: move a control to apply one\n"
        return to_yaml(self.applied)

    def set(self, v2_percent: int | None = None, header: bool | None = None, label: str | None = None) -> list[str]:
        """Change the state and apply the VirtualService; returns ``lab.apply``'s lines.
        If the gateway refuses it, the state stays as it was and the error is raised."""
        new_percent = self.v2_percent if v2_percent is None else v2_percent
        new_header = self.header if header is None else bool(header)
        vs = canary(new_percent, new_header)  # checks v2_percent before anything changes
        started = self.clock()
        lines = self.lab.apply(vs)
        applied = self.clock()
        self.refresh()  # what the lab now serves
        self.v2_percent, self.header = new_percent, new_header
        self.last_apply = {"started_s": started, "applied_s": applied, "apply_ms": (applied - started) * 1000}
        self.changes.append(Change(started, new_percent, label or self.describe(), self.expected()))
        return list(lines)

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

    def _group(self, namespace: str, name: str) -> list[tuple[dict[str, Any], int]]:
        found = self.lab.objects("upstreamgroups", name, namespace or GLOO_NAMESPACE)
        return [
            (dict(d.get("destination") or {}), int(d.get("weight", 0) or 0))
            for g in found
            for d in (g.get("spec") or {}).get("destinations") or []
        ]


def _without_status(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object as applied: apiVersion, kind, name and namespace, spec."""
    meta = obj.get("metadata") or {}
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
        "spec": obj.get("spec") or {},
    }
