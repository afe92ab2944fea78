"""Flagger's routers in the local runtime: what a Canary's provider makes and steers.

- ``gloo`` (``GlooRouter``): two Upstreams and the RouteTable ``<apex>`` (``objects``),
  which a VirtualService delegates to;
- ``gatewayapi:v1`` (``GatewayApiRouter``): the HTTPRoute ``<apex>`` attached to the
  Gateways of ``service.gatewayRefs`` (``httproutes``).

Both come on top of the primary Deployment and the three ClusterIP Services every
provider gets. A refresh keeps the route's current weights, as Flagger's routers do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from helpers.runtime.flagger import httproutes, objects

Lookup = Callable[[str, str], "dict[str, Any] | None"]  # (kind, name) in the Canary's namespace


class Router(Protocol):
    """What the controller asks of a provider's router."""

    kind: str  # the kind of the route it steers

    def refresh(self, canary: Mapping[str, Any], target: Mapping[str, Any], get: Lookup) -> list[dict[str, Any]]:
        """The router's objects to write on every tick (``Reconcile``)."""

    def route(self, canary: Mapping[str, Any], primary: int, canary_weight: int, get: Lookup) -> dict[str, Any]:
        """The route with these weights (``SetRoutes``)."""


class GlooRouter:
    kind = "RouteTable"

    def refresh(self, canary: Mapping[str, Any], target: Mapping[str, Any], get: Lookup) -> list[dict[str, Any]]:
        writes = [us for us in objects.upstreams(canary, target) if get("Upstream", us["metadata"]["name"]) is None]
        current = get(self.kind, objects.Names.of(canary).apex)
        split = objects.weights(current, canary) if current is not None else None
        return [*writes, objects.route_table(canary, *(split or (100, 0)))]

    def route(self, canary: Mapping[str, Any], primary: int, canary_weight: int, get: Lookup) -> dict[str, Any]:
        return objects.route_table(canary, primary, canary_weight)


class GatewayApiRouter:
    kind = "HTTPRoute"

    def refresh(self, canary: Mapping[str, Any], target: Mapping[str, Any], get: Lookup) -> list[dict[str, Any]]:
        return [httproutes.reconciled(canary, get(self.kind, objects.Names.of(canary).apex))]

    def route(self, canary: Mapping[str, Any], primary: int, canary_weight: int, get: Lookup) -> dict[str, Any]:
        existing = get(self.kind, objects.Names.of(canary).apex)
        return httproutes.http_route(canary, primary, canary_weight, existing=existing)


def provider(canary: Mapping[str, Any]) -> str:
    """The Canary's provider; the local runtime's default is gloo."""
    return str((canary.get("spec") or {}).get("provider") or "gloo")


def router_for(canary: Mapping[str, Any]) -> Router:
    """The router of the Canary's provider (the schema admits gloo and gatewayapi:v1)."""
    if provider(canary).startswith("gatewayapi:"):
        return GatewayApiRouter()
    return GlooRouter()
