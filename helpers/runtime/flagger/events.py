"""Events: what the canary controller did and why, as Kubernetes core/v1 Events.

Flagger records every phase change, weight step and failed check as an Event on the
Canary (reason ``Synced``; type ``Normal`` or ``Warning``), which ``kubectl describe
canary`` and ``kubectl get events`` show. The log here keeps the same objects, in
memory and bounded; a repeat of the same event (same object, type, reason and
message) bumps its ``count`` and ``lastTimestamp`` instead of adding a row, as the
Kubernetes event recorder aggregates them.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from helpers.kinds import FLAGGER_V1BETA1
from helpers.runtime.store import now_rfc3339

MAX_EVENTS = 1000  # the oldest go first
_Key = tuple[str, str, str, str, str]


class EventLog:
    """Events of the lab's controllers, newest last."""

    def __init__(self, limit: int = MAX_EVENTS, clock: Callable[[], str] = now_rfc3339) -> None:
        self.limit, self.clock = limit, clock
        self._events: OrderedDict[_Key, dict[str, Any]] = OrderedDict()
        self._serial = itertools.count(1)

    def record(
        self,
        involved: dict[str, Any],
        message: str,
        warning: bool = False,
        reason: str = "Synced",
        component: str = "flagger",
    ) -> dict[str, Any]:
        """Record one event about ``involved`` (an object's apiVersion, kind, metadata)."""
        meta = involved.get("metadata") or {}
        ns, name = str(meta.get("namespace") or "default"), str(meta.get("name"))
        kind = str(involved.get("kind") or "Canary")
        kind_type = "Warning" if warning else "Normal"
        k = (ns, f"{kind}/{name}", kind_type, reason, message)
        now = self.clock()
        event = self._events.pop(k, None)
        if event is not None:
            event["count"] += 1
            event["lastTimestamp"] = now
        else:
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"{name}.{next(self._serial):016x}",
                    "namespace": ns,
                    "creationTimestamp": now,
                },
                "involvedObject": {
                    "apiVersion": str(involved.get("apiVersion") or FLAGGER_V1BETA1),
                    "kind": kind,
                    "name": name,
                    "namespace": ns,
                    "uid": meta.get("uid", ""),
                },
                "reason": reason,
                "message": message,
                "type": kind_type,
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": component},
            }
        self._events[k] = event
        while len(self._events) > self.limit:
            self._events.popitem(last=False)
        return event

    def list(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Events oldest first (by ``lastTimestamp``); ``namespace`` None means all."""
        found = [dict(e) for e in self._events.values() if namespace is None or e["metadata"]["namespace"] == namespace]
        return sorted(found, key=lambda e: str(e["lastTimestamp"]))
