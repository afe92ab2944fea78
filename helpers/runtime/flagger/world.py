"""What the analysis core asks of the I/O side, and what a tick gives back.

``World`` is the interface ``analysis`` drives: the controller shell implements it
over the store, the stats and HTTP; tests with a fake. A tick returns a ``Tick``: the
new status and its ``Event``s. ``webhook_outcomes`` matches the failures
``World.run_webhooks`` reports to the webhooks of the Canary's spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from helpers.runtime.flagger.status import CanaryStatus


class World(Protocol):
    """What one tick reads and changes; the controller does the I/O, tests use a fake.

    Any method may raise: the tick records the error as a warning event and stops
    there, as Flagger does when a Kubernetes call fails."""

    async def target_revision(self) -> str | None:
        """Hash of the target Deployment's pod template; None when there is no target."""

    async def target_ready(self) -> tuple[bool, str]:
        """Whether the target (canary) Deployment is rolled out, and the reason if not."""

    async def primary_ready(self) -> tuple[bool, str]:
        """Whether ``<target>-primary`` is rolled out, and the reason if not."""

    async def initialize(self) -> None:
        """Create or refresh the primary, the Services and the provider's route: gloo's
        Upstreams and RouteTable, or gatewayapi:v1's HTTPRoute (keeping its current
        weights, as Flagger's routers do)."""

    async def set_weights(self, primary: int, canary: int) -> None:
        """Route ``primary``/``canary`` percent (always adding up to 100)."""

    async def scale_target(self, replicas: int) -> None:
        """0: scale the target down. More: scale it up from zero, to its own replicas
        if set, else the primary's, else 1 (Flagger's ScaleFromZero); ticks pass 1."""

    async def promote(self) -> None:
        """Copy the target's pod template into the primary."""

    async def run_webhooks(self, hook_type: str, phase: str) -> list[str]:
        """Call the webhooks of ``hook_type`` (``rollout`` includes those without a type)
        in order, ``phase`` in the payload: one message per failing webhook, in order,
        best "<name> failed <error>" (a bare error is matched to the webhooks in
        order). For gates a failure means closed; for ``rollback`` a pass rolls back."""

    async def check_metrics(self) -> list[str]:
        """Run the metric checks: the warning event of each failing one, as Flagger words
        it ("Halt advancement no values found for gloo metric request-success-rate
        probably petstore.default is not receiving traffic: ..."); the tick records the
        first, as Flagger stops there."""

    def event(self, message: str, warning: bool = False) -> None:
        """Record an event on the Canary (reason ``Synced``, as Flagger's)."""


@dataclass(frozen=True)
class Event:
    """One event of a tick; ``phase`` is the Canary's phase it reports (the
    ``phase`` an event webhook receives)."""

    message: str
    warning: bool
    phase: str


@dataclass(frozen=True)
class Tick:
    """What one tick did: the new status and its events, in order."""

    status: CanaryStatus
    events: tuple[Event, ...]


def hook_names(analysis: Mapping[str, Any], hook_type: str) -> list[str]:
    """The names of the webhooks of one type, in order (no type means ``rollout``)."""
    hooks = [h for h in analysis.get("webhooks") or [] if isinstance(h, Mapping)]
    return [str(h.get("name") or "") for h in hooks if (h.get("type") or "rollout") == hook_type]


def webhook_outcomes(names: list[str], failures: list[str]) -> list[tuple[str, str | None]]:
    """Each webhook with its error (None: passed), in order. A failure that starts
    with a webhook's name ("<name> failed <error>") is that webhook's; the others go,
    in order, to the first webhooks not failed yet (the World keeps webhook order)."""
    failed: dict[int, str] = {}
    unnamed = []
    for failure in failures:
        owners = [i for i, n in enumerate(names) if i not in failed and n and failure.startswith((n + " ", n + ":"))]
        if owners:
            i = max(owners, key=lambda i: len(names[i]))
            failed[i] = failure[len(names[i]) :].removeprefix(":").strip().removeprefix("failed ").strip()
        else:
            unnamed.append(failure)
    for failure in unnamed:
        free = [i for i in range(len(names)) if i not in failed]
        failed[free[0] if free else len(failed)] = failure
    return [(names[i] if i < len(names) else "", failed.get(i)) for i in range(max(len(names), len(failed)))]
