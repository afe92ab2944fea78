"""Gateway API status: conditions as the controller writes them.

A condition is ``{type, status, reason, message, observedGeneration,
lastTransitionTime}``. The translator makes them without times; ``stamp`` gives
each the time it last changed, keeping the old time while a condition stays the
same, as Kubernetes controllers do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from helpers.kinds import GATEWAY_NETWORKING_GROUP
from helpers.runtime.gatewayapi.delegating import Problem, Report, ResourceKey
from helpers.runtime.gatewayapi.listeners import SERVED_PROTOCOLS, ListenerState
from helpers.runtime.gatewayapi.schema import CONTROLLER


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True", "False" or "Unknown"
    reason: str
    message: str = ""

    def to_dict(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        generation = int((obj.get("metadata") or {}).get("generation") or 1)
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "observedGeneration": generation,
        }


def parent_status(ref: Mapping[str, Any], conditions: list[Condition], route: Mapping[str, Any]) -> dict[str, Any]:
    """One entry of an HTTPRoute's ``status.parents``."""
    shown = {k: ref[k] for k in ("group", "kind", "namespace", "name", "sectionName", "port") if k in ref}
    return {"parentRef": shown, "controllerName": CONTROLLER, "conditions": [c.to_dict(route) for c in conditions]}


def resolved(problems: list[Problem]) -> Condition:
    """ResolvedRefs from the problems of a route's refs: the first one's reason."""
    if not problems:
        return Condition("ResolvedRefs", "True", "ResolvedRefs", "all references resolved")
    return Condition("ResolvedRefs", "False", problems[0][0], "; ".join(m for _, m in problems))


def delegated_status(parent: ResourceKey, report: Report, child: Mapping[str, Any]) -> dict[str, Any]:
    """A delegation child's ``status.parents`` entry for the HTTPRoute that delegated to it."""
    ref = {"group": GATEWAY_NETWORKING_GROUP, "kind": "HTTPRoute", "namespace": parent[1], "name": parent[2]}
    accepted = (
        Condition("Accepted", "False", "UnsupportedValue", report.refused)
        if report.refused
        else Condition("Accepted", "True", "Accepted", f"delegated by {parent[1]}/{parent[2]}")
    )
    return parent_status(ref, [accepted, resolved(report.problems)], child)


def gateway_status(gateway: Mapping[str, Any], states: Mapping[str, ListenerState]) -> dict[str, Any]:
    """A Gateway's status: Accepted and Programmed, and one entry per listener with
    its conditions, ``supportedKinds`` and ``attachedRoutes``."""
    listeners = []
    for li in gateway["spec"]["listeners"]:
        state = states[li["name"]]
        listeners.append(
            {
                "name": state.name,
                "supportedKinds": [{"group": GATEWAY_NETWORKING_GROUP, "kind": k} for k in state.kinds],
                "attachedRoutes": state.attached,
                "conditions": [c.to_dict(gateway) for c in listener_conditions(state)],
            }
        )
    serving = any(st.served for st in states.values())
    top = [
        Condition("Accepted", "True", "Accepted", "handled by the local runtime"),
        Condition(
            "Programmed",
            "True" if serving else "False",
            "Programmed" if serving else "Invalid",
            "listeners served on 127.0.0.1" if serving else "no listener can be served",
        ),
    ]
    return {
        "addresses": [{"type": "IPAddress", "value": "127.0.0.1"}],
        "conditions": [c.to_dict(gateway) for c in top],
        "listeners": listeners,
    }


def listener_conditions(state: ListenerState) -> list[Condition]:
    """Accepted, Programmed, ResolvedRefs and Conflicted of one listener."""
    if state.conflict:
        return [
            Condition("Accepted", "False", state.conflict, f"another listener on port {state.port} came first"),
            Condition("Programmed", "False", "Invalid", "listener not accepted"),
            Condition("ResolvedRefs", "True", "ResolvedRefs", "all references resolved"),
            Condition("Conflicted", "True", state.conflict, f"another listener on port {state.port} came first"),
        ]
    if state.protocol not in SERVED_PROTOCOLS:
        accepted = Condition(
            "Accepted",
            "False",
            "UnsupportedProtocol",
            f"protocol {state.protocol} is not served by the local runtime (HTTP and HTTPS only)",
        )
    else:
        accepted = Condition("Accepted", "True", "Accepted", "listener accepted")
    problems = list(state.tls.problems) if state.tls is not None else []
    if state.invalid_kinds:
        problems.append(("InvalidRouteKinds", f"route kinds {', '.join(state.invalid_kinds)} cannot attach here"))
    refs = (
        Condition("ResolvedRefs", "False", problems[0][0], "; ".join(m for _, m in problems))
        if problems
        else Condition("ResolvedRefs", "True", "ResolvedRefs", "all references resolved")
    )
    programmed = (
        Condition("Programmed", "True", "Programmed", "served on 127.0.0.1")
        if state.served
        else Condition("Programmed", "False", "Invalid", "not served: see Accepted and ResolvedRefs")
    )
    return [accepted, programmed, refs, Condition("Conflicted", "False", "NoConflicts", "")]


def stamp(status: dict[str, Any], previous: Mapping[str, Any] | None, now: str) -> dict[str, Any]:
    """``status`` with ``lastTransitionTime`` on every condition: the previous time
    where the condition's status is unchanged, else ``now``. Changes ``status``."""

    def walk(new: Any, old: Any) -> None:
        if isinstance(new, dict):
            if "conditions" in new:
                before = (
                    {c.get("type"): c for c in (old or {}).get("conditions") or []} if isinstance(old, dict) else {}
                )
                for c in new["conditions"]:
                    prior = before.get(c["type"])
                    unchanged = prior is not None and prior.get("status") == c["status"]
                    c["lastTransitionTime"] = prior["lastTransitionTime"] if prior is not None and unchanged else now
            for field in ("parents", "listeners"):
                olds: list[Any] = (old.get(field) or []) if isinstance(old, dict) else []
                for i, item in enumerate(new.get(field) or []):
                    walk(item, olds[i] if i < len(olds) else None)

    walk(status, previous)
    return status
