"""What Gloo reports about each resource: a ``Report`` while translating, and the
``status`` it writes on the resource (Accepted, Warning or Rejected, with the reason)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from helpers.kinds import GLOO_NAMESPACE

STATUS_NAMESPACE = GLOO_NAMESPACE  # Gloo writes statuses under the namespace it runs in


@dataclass
class Report:
    """Problems found on one input resource: errors reject it, warnings do not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        """``Rejected`` if there are errors, ``Warning`` if warnings, else ``Accepted``."""
        return "Rejected" if self.errors else "Warning" if self.warnings else "Accepted"


def gloo_status(report: Report, reported_by: str = "gateway") -> dict[str, Any]:
    """The ``status`` Gloo writes on a resource, e.g.
    ``{"statuses": {"gloo-system": {"state": "Warning", "reportedBy": "gateway", "reason": "..."}}}``.

    >>> gloo_status(Report())
    {'statuses': {'gloo-system': {'state': 'Accepted', 'reportedBy': 'gateway'}}}
    """
    status: dict[str, Any] = {"state": report.state, "reportedBy": reported_by}
    if report.state != "Accepted":
        status["reason"] = "; ".join(report.errors + report.warnings)
    return {"statuses": {STATUS_NAMESPACE: status}}
