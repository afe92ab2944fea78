"""A Canary's status, shaped and written as Flagger writes it.

``CanaryStatus`` holds what ``kubectl get canary -o yaml`` shows under ``status``
(``phase``, ``canaryWeight``, ``failedChecks``, ``iterations``, ``lastAppliedSpec``,
``lastPromotedSpec``, ``lastTransitionTime`` and one ``Promoted`` condition). Its
methods are Flagger's three ways of writing it (pkg/canary/status.go): ``sync`` (the
whole status, recording the target revision), ``set_phase`` (the phase, with the
resets Flagger makes) and ``touch`` (after a single counter changed). Every write
stamps ``lastTransitionTime`` with the clock passed in, never the wall clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

INITIALIZING, INITIALIZED, WAITING = "Initializing", "Initialized", "Waiting"
PROGRESSING, WAITING_PROMOTION, PROMOTING = "Progressing", "WaitingPromotion", "Promoting"
FINALISING, SUCCEEDED, FAILED = "Finalising", "Succeeded", "Failed"
PHASES = (
    "",
    INITIALIZING,
    INITIALIZED,
    WAITING,
    PROGRESSING,
    WAITING_PROMOTION,
    PROMOTING,
    FINALISING,
    SUCCEEDED,
    FAILED,
)

# The Promoted condition per phase: (status, message); the reason is the phase itself.
_PROMOTED = {
    INITIALIZING: ("Unknown", "New {kind} detected, starting initialization."),
    INITIALIZED: ("True", "{kind} initialization completed."),
    WAITING: ("Unknown", "Waiting for approval."),
    WAITING_PROMOTION: ("Unknown", "Waiting for approval."),
    PROGRESSING: ("Unknown", "New revision detected, progressing canary analysis."),
    PROMOTING: ("Unknown", "Canary analysis completed, starting primary rolling update."),
    FINALISING: ("Unknown", "Canary analysis completed, routing all traffic to primary."),
    SUCCEEDED: ("True", "Canary analysis completed successfully, promotion finished."),
    FAILED: ("False", "Canary analysis failed, {kind} scaled to zero."),
}


def rfc3339(now: datetime) -> str:
    """``now`` as Kubernetes writes a timestamp: UTC, whole seconds (naive means UTC)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime | None:
    """The instant a status timestamp names; None when empty or unreadable."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class CanaryStatus:
    """Flagger's ``Canary.status``; ``to_dict``/``from_dict`` use its camelCase names."""

    phase: str = ""
    canary_weight: int = 0
    failed_checks: int = 0
    iterations: int = 0
    last_applied_spec: str = ""  # the target's pod-template hash last analysed
    last_promoted_spec: str = ""  # the hash the primary runs
    last_transition_time: str = ""  # RFC 3339, rewritten on every status write
    conditions: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The status as the API shows it (empty optional fields left out, as Flagger's JSON tags do)."""
        out: dict[str, Any] = {
            "phase": self.phase,
            "failedChecks": self.failed_checks,
            "canaryWeight": self.canary_weight,
            "iterations": self.iterations,
        }
        optional = {
            "lastAppliedSpec": self.last_applied_spec,
            "lastPromotedSpec": self.last_promoted_spec,
            "lastTransitionTime": self.last_transition_time,
        }
        out.update({k: v for k, v in optional.items() if v})
        if self.conditions:
            out["conditions"] = [dict(c) for c in self.conditions]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> CanaryStatus:
        """A status read back from ``to_dict`` (or from a real cluster: unknown keys are skipped)."""
        d = d or {}
        return cls(
            phase=str(d.get("phase") or ""),
            canary_weight=int(d.get("canaryWeight") or 0),
            failed_checks=int(d.get("failedChecks") or 0),
            iterations=int(d.get("iterations") or 0),
            last_applied_spec=str(d.get("lastAppliedSpec") or ""),
            last_promoted_spec=str(d.get("lastPromotedSpec") or ""),
            last_transition_time=str(d.get("lastTransitionTime") or ""),
            conditions=[
                {str(k): str(v) for k, v in c.items()} for c in d.get("conditions") or [] if isinstance(c, Mapping)
            ],
        )

    def copy(self) -> CanaryStatus:
        """An independent copy (the conditions too)."""
        return CanaryStatus.from_dict(self.to_dict())

    @property
    def promoted(self) -> dict[str, str] | None:
        """The ``Promoted`` condition, if written yet."""
        return next((c for c in self.conditions if c.get("type") == "Promoted"), None)

    # ── Flagger's writes ─────────────────────────────────────────────────────

    def touch(self, now: datetime) -> None:
        """One counter (weight, failed checks, iterations) changed: stamp the write."""
        self.last_transition_time = rfc3339(now)

    def sync(
        self,
        phase: str,
        revision: str,
        now: datetime,
        *,
        canary_weight: int = 0,
        failed_checks: int = 0,
        iterations: int = 0,
        kind: str = "Deployment",
    ) -> None:
        """Flagger's SyncStatus: the whole status at once, recording ``revision`` (the
        target's template hash) as the last applied one; Initialized also records it
        as promoted, as the primary was just copied from it."""
        self.phase = phase
        self.canary_weight, self.failed_checks, self.iterations = canary_weight, failed_checks, iterations
        self.last_applied_spec = revision
        if phase == INITIALIZED:
            self.last_promoted_spec = revision
        self.touch(now)
        self._condition(phase, now, kind)

    def set_phase(self, phase: str, now: datetime, *, analysis_iterations: int = 0, kind: str = "Deployment") -> None:
        """Flagger's SetStatusPhase: besides Progressing, Waiting and Promoting, a phase
        resets the weight and iterations (WaitingPromotion keeps one iteration short
        of the end, so the last one runs again once approved); Initialized and
        Succeeded record the last applied revision as promoted."""
        self.phase = phase
        if phase not in (PROGRESSING, WAITING, PROMOTING):
            self.canary_weight = 0
            self.iterations = analysis_iterations - 1 if phase == WAITING_PROMOTION else 0
        if phase in (INITIALIZED, SUCCEEDED):
            self.last_promoted_spec = self.last_applied_spec
        self.touch(now)
        self._condition(phase, now, kind)

    def _condition(self, phase: str, now: datetime, kind: str) -> None:
        # Flagger's MakeStatusConditions: one Promoted condition, rewritten only when its
        # status or reason changes; the transition time moves only when the status does.
        if phase not in _PROMOTED:
            return
        status, message = _PROMOTED[phase]
        current = self.promoted
        if current and current.get("status") == status and current.get("reason") == phase:
            return
        stamp = rfc3339(now)
        since = current.get("lastTransitionTime", stamp) if current and current.get("status") == status else stamp
        self.conditions = [
            {
                "type": "Promoted",
                "status": status,
                "lastUpdateTime": stamp,
                "lastTransitionTime": since,
                "reason": phase,
                "message": message.format(kind=kind),
            }
        ]
