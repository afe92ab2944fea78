"""Route builders for the Gateway API: the canary steps as HTTPRoutes, plain dicts.

    from helpers.builders.httproutes import gateway, route_to_v1, header_canary, weighted, all_to_v2
    from helpers.builders.routing import to_yaml
    print(to_yaml(weighted(25)))      # an HTTPRoute with a 25% v2 / 75% v1 split
    lab.apply(gateway(), weighted(25))

These are the Gateway API twins of ``helpers.builders.routing`` (VirtualServices): the same
steps, as ``manifests/gateway-api/0-gateway.yaml`` ... ``5-all-to-v2.yaml`` (a test
keeps builders and files equal). One HTTPRoute ``petstore`` in namespace
``default`` (beside the Services it routes to) attaches to the Gateway ``http`` in
``kgateway-system``, as in kgateway's documentation.

Two differences from the VirtualService steps:
- Rules are not tried in order. The Gateway API ranks them (exact path, longest
  prefix, method, most headers, ...), so the x-canary rule wins wherever it is.
- There are no REST functions. ``/findPets`` reaches the petstore's ``/api/pets``
  through a URLRewrite filter instead of the findPets function.
Builders return new dicts and never change what you pass them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from helpers import kinds
from helpers.builders.routing import CANARY_HEADER, Destination
from helpers.errors import InvalidArgument

API_VERSION = kinds.GATEWAY_NETWORKING_V1
GATEWAY_NAMESPACE = kinds.KGATEWAY_NAMESPACE
GATEWAY_NAME = "http"
ROUTE_NAME = "petstore"
ROUTE_NAMESPACE = "default"
PORT = 8080


def gateway(
    name: str = GATEWAY_NAME, namespace: str = GATEWAY_NAMESPACE, port: int = PORT, class_name: str = "kgateway"
) -> dict[str, Any]:
    """The Gateway the routes attach to: one HTTP listener ``http`` that accepts
    routes from every namespace (``allowedRoutes.namespaces.from: All``)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "gatewayClassName": class_name,
            "listeners": [
                {"name": "http", "protocol": "HTTP", "port": port, "allowedRoutes": {"namespaces": {"from": "All"}}}
            ],
        },
    }


def http_route(
    rules: Sequence[Mapping[str, Any]],
    name: str = ROUTE_NAME,
    namespace: str = ROUTE_NAMESPACE,
    parent: tuple[str, str] = (GATEWAY_NAMESPACE, GATEWAY_NAME),
    hostnames: Sequence[str] = (),
) -> dict[str, Any]:
    """An HTTPRoute with these ``rules``, attached to the Gateway ``parent``
    (namespace, name). The order of the rules does not decide which one wins."""
    spec: dict[str, Any] = {"parentRefs": [{"name": parent[1], "namespace": parent[0]}]}
    if hostnames:
        spec["hostnames"] = list(hostnames)
    spec["rules"] = copy.deepcopy(list(rules))
    return {
        "apiVersion": API_VERSION,
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def backend_refs(destination: Destination) -> list[dict[str, Any]]:
    """``backendRefs`` for one version (``"v1"``) or weights (``{"v2": 10, "v1": 90}``):
    the Services ``petstore-v1`` / ``petstore-v2`` on port 8080. Weights are relative."""
    if isinstance(destination, str):
        return [{"name": f"petstore-{destination}", "port": PORT}]
    if not destination:
        raise InvalidArgument("a weighted destination needs at least one version, e.g. {'v2': 10, 'v1': 90}")
    refs = []
    for version, weight in destination.items():
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 1_000_000:
            raise InvalidArgument(f"the weight of {version} must be a whole number from 0 to 1000000, not {weight!r}")
        refs.append({"name": f"petstore-{version}", "port": PORT, "weight": weight})
    return refs


def path_match(kind: str, value: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A match on the path (``Exact``, ``PathPrefix`` or ``RegularExpression``),
    and optionally on exact header values."""
    match: dict[str, Any] = {"path": {"type": kind, "value": value}}
    if headers:
        match["headers"] = [{"name": n, "value": v} for n, v in headers.items()]
    return match


def rewrite(kind: str, value: str) -> dict[str, Any]:
    """A URLRewrite filter: ``ReplacePrefixMatch`` (the matched prefix) or
    ``ReplaceFullPath`` (the whole path) becomes ``value``."""
    field = {"ReplacePrefixMatch": "replacePrefixMatch", "ReplaceFullPath": "replaceFullPath"}[kind]
    return {"type": "URLRewrite", "urlRewrite": {"path": {"type": kind, field: value}}}


def rule(match: Mapping[str, Any], destination: Destination, *filters: Mapping[str, Any]) -> dict[str, Any]:
    """One rule: requests that ``match`` go to ``destination`` through ``filters``."""
    found: dict[str, Any] = {"matches": [copy.deepcopy(dict(match))]}
    if filters:
        found["filters"] = [copy.deepcopy(dict(f)) for f in filters]
    found["backendRefs"] = backend_refs(destination)
    return found


def seed_rules(destination: Destination) -> list[dict[str, Any]]:
    """The seed's three routes, all to ``destination``: ``/findPetWithId/{id}``,
    ``/findPets`` and ``/petstore``, each rewritten to the petstore's ``/api/pets``."""
    return [
        rule(path_match("PathPrefix", "/findPetWithId"), destination, rewrite("ReplacePrefixMatch", "/api/pets")),
        rule(path_match("Exact", "/findPets"), destination, rewrite("ReplaceFullPath", "/api/pets")),
        rule(path_match("PathPrefix", "/petstore"), destination, rewrite("ReplacePrefixMatch", "/api/pets")),
    ]


def canary_rule(header: str = CANARY_HEADER, value: str = "true") -> dict[str, Any]:
    """``/findPets`` with ``x-canary: true`` goes to v2. It has one header match more
    than the plain ``/findPets`` rule, so it wins wherever it stands in the list."""
    return rule(path_match("Exact", "/findPets", {header: value}), "v2", rewrite("ReplaceFullPath", "/api/pets"))


def route_to_v1() -> dict[str, Any]:
    """Step 1: every rule goes to petstore v1 (manifests/gateway-api/1-route-to-v1.yaml)."""
    return http_route(seed_rules("v1"))


def header_canary() -> dict[str, Any]:
    """Step 2: ``x-canary: true`` on /findPets goes to v2, the rest to v1
    (manifests/gateway-api/2-header-canary.yaml). The canary rule is LAST: order does not matter."""
    return http_route([*seed_rules("v1"), canary_rule()])


def weighted(v2_percent: int) -> dict[str, Any]:
    """Step 3: ``v2_percent`` % of the traffic to v2, the rest to v1, on every rule;
    the x-canary rule stays. ``weighted(10)`` and ``weighted(50)`` are the files 3 and 4."""
    if isinstance(v2_percent, bool) or not isinstance(v2_percent, int) or not 0 <= v2_percent <= 100:
        raise InvalidArgument(f"v2_percent must be a whole number from 0 to 100, not {v2_percent!r}")
    return http_route([*seed_rules({"v2": v2_percent, "v1": 100 - v2_percent}), canary_rule()])


def all_to_v2() -> dict[str, Any]:
    """Step 4, promote: every rule goes to petstore v2 (manifests/gateway-api/5-all-to-v2.yaml)."""
    return http_route(seed_rules("v2"))


def rollback() -> dict[str, Any]:
    """Roll back: every rule goes to v1 again (the same object as ``route_to_v1()``)."""
    return route_to_v1()
