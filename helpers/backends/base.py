"""The operations every backend offers, in the words of kubectl and glooctl.

Both backends implement all of them; where one cannot do a thing (``reset`` on the
local lab, per-upstream ``stats`` on a cluster) it raises ``Unsupported`` saying
what does that job there. ``Lab`` calls these and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Backend(Protocol):
    """What the Lab API and the CLI need from a backend."""

    name: str

    def up(self) -> dict[str, Any]:
        """Start the lab (idempotent); returns its status."""
        ...

    def down(self, forget: bool = False) -> str:
        """Stop the lab and everything it started; with ``forget``, also remove what it
        applied and installed. Returns one line saying what was done."""
        ...

    def status(self) -> dict[str, Any]:
        """The lab at a glance."""
        ...

    def apply(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Apply objects; one result per object: ``{ref, action, warnings}`` or ``{ref, error}``."""
        ...

    def delete(self, refs: list[dict[str, str]]) -> list[dict[str, Any]]:
        """Delete objects named by ``{kind, namespace, name}``."""
        ...

    def get(self, kind: str, namespace: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        """Objects of a kind with their status; ``namespace`` None means every namespace."""
        ...

    def install(self, component: str, port: int | None = None, channel: str | None = None) -> dict[str, Any]:
        """Install a gateway (``gloo``, or ``kgateway`` for the Gateway API, with the CRDs
        of ``channel``: ``standard``, the default, or ``experimental``), or ``flagger``."""
        ...

    def uninstall(self, component: str) -> list[str]:
        """Remove a gateway the lab installed; one line per thing removed."""
        ...

    def reset(self) -> list[str]:
        """Undo everything the lab did; one line per thing undone."""
        ...

    def ready(self) -> dict[str, Any]:
        """Whether deployments are ready and the gateway serves, with details."""
        ...

    def wait(self, timeout: float) -> dict[str, Any]:
        """Block until ``ready()`` says ready; raise ``WaitTimeout`` naming what is not."""
        ...

    def wait_in_force(self, served: Callable[[], bool], timeout: float) -> bool:
        """Block until a route change just applied is in force: ``served()`` asks the
        gateway. True if it had to wait, False if the change was in force when ``apply``
        returned; ``WaitTimeout`` (naming ``str(served)``) past ``timeout`` seconds."""
        ...

    def proxy_url(self, gateway: str | None = None) -> str:
        """The gateway's base URL, like ``glooctl proxy url``; with ``gateway``
        ("namespace/name"), that Gateway API Gateway's first listener."""
        ...

    def routes(self) -> list[dict[str, Any]]:
        """The route table the gateway serves, one row per route."""
        ...

    def stats(self) -> dict[str, Any]:
        """Per-upstream request counts and latency."""
        ...

    def stats_url(self, gateway: str | None = None) -> str:
        """Where ``gateway`` (default: Gloo's proxy) serves its stats in Prometheus's format."""
        ...

    def events(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Events as core/v1 Event objects (the canary controller's, locally), oldest
        first; ``namespace`` None means every namespace."""
        ...


def describe_not_ready(state: dict[str, Any]) -> str:
    """One line naming what ``wait`` is still waiting for, from a ``ready()`` answer."""
    parts = [f"deployment {d['name']} {d['ready']}/{d['desired']} ready" for d in state["deployments"] if not d["done"]]
    if state.get("discoveryPending"):
        parts.append("function discovery pending for " + ", ".join(state["discoveryPending"]))
    gw = state.get("gateway", {})
    if gw.get("installed") and not gw.get("serving"):
        parts.append("gateway not serving")
    if state.get("listenersPending"):
        parts.append("listeners not serving yet: " + ", ".join(state["listenersPending"]))
    return "; ".join(parts) or "unknown"
