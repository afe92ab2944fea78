"""The operations every backend offers, in the words of kubectl and glooctl."""

from __future__ import annotations

from typing import Any, Protocol


class Backend(Protocol):
    """What the Lab API and the CLI need from a backend."""

    name: str

    def up(self) -> dict[str, Any]:
        """Start the lab (idempotent); returns its status."""

    def down(self) -> None:
        """Stop the lab and everything it started."""

    def status(self) -> dict[str, Any]:
        """The lab at a glance."""

    def apply(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Apply objects; one result per object: ``{ref, action, warnings}`` or ``{ref, error}``."""

    def delete(self, refs: list[dict[str, str]]) -> list[dict[str, Any]]:
        """Delete objects named by ``{kind, namespace, name}``."""

    def get(self, kind: str, namespace: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        """Objects of a kind with their status; ``namespace`` None means every namespace."""

    def install(self, component: str, port: int | None = None) -> dict[str, Any]:
        """Install a gateway (``gloo``, or ``kgateway`` for the Gateway API)."""

    def ready(self) -> dict[str, Any]:
        """Whether deployments are ready and the gateway serves, with details."""

    def proxy_url(self, gateway: str | None = None) -> str:
        """The gateway's base URL, like ``glooctl proxy url``; with ``gateway``
        ("namespace/name"), that Gateway API Gateway's first listener."""

    def stats(self) -> dict[str, Any]:
        """Per-upstream request counts and latency."""
