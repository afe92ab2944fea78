"""Route builders: the seed's canary steps as plain dicts you can read, change and apply.

    from helpers.builders.routing import route_to_v1, header_canary, weighted, all_to_v2, to_yaml
    print(to_yaml(weighted(25)))      # the YAML of a 25% v2 / 75% v1 split
    lab.apply(weighted(25))           # apply it, like kubectl apply -f

Every builder returns a complete ``VirtualService`` (``gateway.solo.io/v1``) named
``coalmine``: the same objects as ``manifests/gloo/1-route-to-v1.yaml`` ...
``5-all-to-v2.yaml`` (a test keeps builders and files equal). Builders never change
what you pass them: they return new dicts.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from helpers import kinds
from helpers.errors import InvalidArgument

# A destination is one version ("v1") or weights per version ({"v2": 10, "v1": 90}).
Destination = str | Mapping[str, int]

GLOO_NAMESPACE = kinds.GLOO_NAMESPACE
CANARY_HEADER = "x-canary"


def upstream(version: str) -> dict[str, str]:
    """The Upstream that Gloo's discovery made for petstore ``version`` ("v1" or "v2"):
    ``default-petstore-v1-8080`` is namespace ``default``, service ``petstore-v1``, port 8080."""
    return {"name": f"default-petstore-{version}-8080", "namespace": GLOO_NAMESPACE}


def virtual_service(
    routes: list[dict[str, Any]],
    name: str = "coalmine",
    namespace: str = GLOO_NAMESPACE,
    domains: Sequence[str] = ("*",),
) -> dict[str, Any]:
    """A VirtualService with these ``routes``, tried in list order: the first match wins."""
    return {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "displayName": name,
            "virtualHost": {"domains": list(domains), "routes": copy.deepcopy(list(routes))},
        },
    }


def _route_action(destination: Destination, spec: dict[str, Any] | None) -> dict[str, Any]:
    """``single`` for one version, ``multi`` (weighted destinations) for several."""

    def target(version: str) -> dict[str, Any]:
        found: dict[str, Any] = {"upstream": upstream(version)}
        if spec is not None:
            found["destinationSpec"] = copy.deepcopy(spec)
        return found

    if isinstance(destination, str):
        return {"single": target(destination)}
    if not destination:
        raise InvalidArgument("a weighted destination needs at least one version, e.g. {'v2': 10, 'v1': 90}")
    for version, weight in destination.items():
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise InvalidArgument(f"the weight of {version} must be a whole number >= 0, not {weight!r}")
    return {
        "multi": {
            "destinations": [
                {"weight": weight, "destination": target(version)} for version, weight in destination.items()
            ]
        }
    }


def function_route(
    matcher: dict[str, Any], function: str, destination: Destination, parameters: dict[str, str] | None = None
) -> dict[str, Any]:
    """A route that calls the REST function ``function`` (found by discovery in /swagger.json).

    ``matcher`` is a Gloo matcher such as ``{"exact": "/findPets"}`` or
    ``{"prefix": "/pet/"}``; ``destination`` is a version (``"v1"``) or weights
    (``{"v2": 10, "v1": 90}``); ``parameters`` are header templates that take the
    function's parameters from the request, e.g. ``{":path": "/pet/{id}"}``.
    """
    rest: dict[str, Any] = {"functionName": function}
    if parameters:
        rest["parameters"] = {"headers": dict(parameters)}
    return {"matchers": [copy.deepcopy(matcher)], "routeAction": _route_action(destination, {"rest": rest})}


def prefix_route(prefix: str, rewrite: str, destination: Destination) -> dict[str, Any]:
    """A plain route: requests whose path starts with ``prefix`` go to ``destination``
    with that prefix replaced by ``rewrite`` (``/petstore`` -> ``/api/pets``)."""
    return {
        "matchers": [{"prefix": prefix}],
        "routeAction": _route_action(destination, None),
        "options": {"prefixRewrite": rewrite},
    }


def header_route(route: dict[str, Any], header: str = CANARY_HEADER, value: str = "true") -> dict[str, Any]:
    """A copy of ``route`` that only matches requests carrying ``header: value``
    (by default ``x-canary: true``). Put it BEFORE the route without the header."""
    found = copy.deepcopy(route)
    # Every matcher gets the header: a route matches when ANY of its matchers does.
    matchers = found.get("matchers") or [{}]
    for matcher in matchers:
        matcher.setdefault("headers", []).append({"name": header, "value": value})
    found["matchers"] = matchers
    return found


def canary_route() -> dict[str, Any]:
    """The seed's header canary: ``/findPets`` with ``x-canary: true`` goes to v2."""
    return header_route(function_route({"exact": "/findPets"}, "findPets", "v2"))


def seed_routes(destination: Destination) -> list[dict[str, Any]]:
    """The seed's three routes, all to ``destination``: ``/findPetWithId/{id}``
    (findPetById), ``/findPets`` (findPets) and ``/petstore`` (rewritten to ``/api/pets``)."""
    return [
        function_route({"prefix": "/findPetWithId/"}, "findPetById", destination, {":path": "/findPetWithId/{id}"}),
        function_route({"exact": "/findPets"}, "findPets", destination),
        prefix_route("/petstore", "/api/pets", destination),
    ]


def route_to_v1() -> dict[str, Any]:
    """Step 1: every route goes to petstore v1 (manifests/gloo/1-route-to-v1.yaml)."""
    return virtual_service(seed_routes("v1"))


def header_canary() -> dict[str, Any]:
    """Step 2: ``x-canary: true`` on /findPets goes to v2, everything else to v1
    (manifests/gloo/2-header-canary.yaml). The canary route is first: first match wins."""
    return virtual_service([canary_route(), *seed_routes("v1")])


def weighted(v2_percent: int) -> dict[str, Any]:
    """Step 3: send ``v2_percent`` % of the traffic to v2 and the rest to v1, on every
    route; the x-canary route stays first. ``weighted(10)`` is
    manifests/gloo/3-weighted-10-90.yaml, ``weighted(50)`` is 4-weighted-50-50.yaml."""
    if isinstance(v2_percent, bool) or not isinstance(v2_percent, int) or not 0 <= v2_percent <= 100:
        raise InvalidArgument(f"v2_percent must be a whole number from 0 to 100, not {v2_percent!r}")
    return virtual_service([canary_route(), *seed_routes({"v2": v2_percent, "v1": 100 - v2_percent})])


def all_to_v2() -> dict[str, Any]:
    """Step 4, promote: every route goes to petstore v2 (manifests/gloo/5-all-to-v2.yaml)."""
    return virtual_service(seed_routes("v2"))


def rollback() -> dict[str, Any]:
    """Roll back: every route goes to v1 again (the same object as ``route_to_v1()``)."""
    return route_to_v1()


def canary(v2_percent: int, header: bool = True) -> dict[str, Any]:
    """The VirtualService for any canary state: ``v2_percent`` % of traffic to v2 and,
    with ``header``, the x-canary route first. The seed's states come out as the seed's
    files: ``canary(0, header=False)`` is step 1, ``canary(0)`` step 2, ``canary(10)``
    step 3 and ``canary(100)`` (promoted; the header no longer matters) step 5."""
    if v2_percent == 100:
        return all_to_v2()
    if header:
        return header_canary() if v2_percent == 0 else weighted(v2_percent)
    if v2_percent == 0:
        return route_to_v1()
    weighted(v2_percent)  # the same checks on v2_percent
    return virtual_service(seed_routes({"v2": v2_percent, "v1": 100 - v2_percent}))


def add_route(vs: dict[str, Any], route: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """A NEW VirtualService: ``vs`` with ``route`` inserted at ``index``.

    Index 0 (the default, as ``glooctl add route``) puts it first, where it wins over
    every route below it. ``vs`` itself is not changed.
    """
    found = copy.deepcopy(vs)
    routes = found.setdefault("spec", {}).setdefault("virtualHost", {}).setdefault("routes", [])
    routes.insert(index, copy.deepcopy(route))
    return found


def remove_route(vs: dict[str, Any], index: int) -> dict[str, Any]:
    """A NEW VirtualService: ``vs`` without the route at ``index`` (0 is the first)."""
    found = copy.deepcopy(vs)
    routes = ((found.get("spec") or {}).get("virtualHost") or {}).get("routes") or []
    if not -len(routes) <= index < len(routes):
        raise IndexError(f"route index {index} is out of range: the virtual service has {len(routes)} routes")
    del routes[index]
    return found


class _Dumper(yaml.SafeDumper):
    """Writes YAML the way the files in manifests/ are written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # List items indented under their key, as kubectl and the manifests write them.
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # ':path' is valid YAML unquoted, but reads like a typo: quote it as the manifests do.
    style = "'" if value.startswith(":") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def to_yaml(obj: dict[str, Any]) -> str:
    """The YAML text of ``obj``, keys in the order written (what ``lab.apply`` would get)."""
    # width: long header templates stay on one line, as in the manifest files.
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)


def destination_weights(route: Mapping[str, Any]) -> list[tuple[dict[str, Any], int]]:
    """``(destination, weight)`` pairs of a route's action: a ``single`` destination
    has weight 1; an ``upstreamGroup`` is returned as one destination (look it up)."""
    action = route.get("routeAction") or {}
    if "single" in action:
        return [(dict(action["single"]), 1)]
    if "multi" in action:
        return [
            (dict(d.get("destination") or {}), int(d.get("weight", 0) or 0))
            for d in (action["multi"].get("destinations") or [])
        ]
    if "upstreamGroup" in action:
        return [({"upstreamGroup": dict(action["upstreamGroup"])}, 1)]
    return []


def version_of_destination(destination: Mapping[str, Any]) -> str | None:
    """``"v1"`` or ``"v2"`` from a destination's upstream name (default-petstore-v2-8080)
    or kube service ref; None for anything else."""
    name = (
        (destination.get("upstream") or {}).get("name")
        or ((destination.get("kube") or {}).get("ref") or {}).get("name")
        or ""
    )
    match = re.search(r"petstore-(v\d+)", str(name))
    return match.group(1) if match else None
