"""The checks of lessons 1-6 (Gloo Edge): each looks at the lab's objects and sends
real requests, and returns what it found or raises ``CheckFailed`` with a hint.

Before a check sends requests through the gateway it waits, briefly, until the answer
its exercise wants is in force (``inforce.settle``, with ``served.JUDGED``): on a
cluster the learner's change reaches Envoy a moment after ``apply``; locally at once."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from helpers.builders.routing import destination_weights, version_of_destination
from helpers.errors import CheckFailed, GatewayUnreachable
from helpers.kinds import GLOO_NAMESPACE
from helpers.lab import Lab
from helpers.lessons.inforce import settle
from helpers.lessons.probing import V1_PETS, V2_PETS, deployment, describe, expect, gateway, http_get, ready
from helpers.lessons.served import JUDGED
from helpers.live.sampling import sample


def check_1(lab: Lab) -> str:
    ready(deployment(lab, "petstore-v2"))
    pods = [p for p in lab.objects("pods", namespace="default") if serving(p, "petstore-v2")]
    if not pods:
        raise CheckFailed("no ready pod of petstore-v2", "wait for it with lab.wait(), then check again")
    for pod in pods:
        port = (pod.get("status") or {}).get("localPort")
        if port is None:
            continue  # a cluster's pod is not on loopback: its readiness is the check
        status, data = http_get(f"http://127.0.0.1:{port}", "/api/pets")
        if status != 200 or data != V2_PETS:
            raise CheckFailed(
                f"a petstore-v2 pod answers GET /api/pets with {describe(data)}, not the three v2 pets",
                "its container needs VERSION=v2, as in manifests/petstore-v2.yaml: apply that file",
            )
    return "petstore-v2 is ready and its pod answers with the three v2 pets"


def serving(pod: Mapping[str, Any], app: str) -> bool:
    """Whether ``pod`` belongs to ``app``, runs, is ready and is not shutting down."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    return (
        (meta.get("labels") or {}).get("app") == app
        and "deletionTimestamp" not in meta
        and status.get("phase") == "Running"
        and all(c.get("ready") for c in status.get("containerStatuses") or [{}])
    )


def check_2(lab: Lab) -> str:
    ready(deployment(lab, "petstore-v1"), want=2)
    services = lab.objects("services", "petstore-v1", "default")
    if not services:
        raise CheckFailed("there is no service petstore-v1", "apply manifests/petstore-v1.yaml with lab.apply(...)")
    endpoints = (services[0].get("status") or {}).get("localEndpoints")
    if endpoints is not None:
        count = len({e for eps in endpoints.values() for e in eps})
        if count != 2:
            raise CheckFailed(
                f"service petstore-v1 has {count} endpoint{'s' * (count != 1)}, not 2",
                "wait for both pods with lab.wait(), then check again",
            )
    return "petstore-v1 runs 2 ready replicas behind its service"


_SEED_ROUTES_HINT = "keep the three routes of routing.route_to_v1() and add yours with routing.add_route(...)"


def check_3(lab: Lab) -> str:
    base = gateway(lab)
    settle(lab, JUDGED[3])
    expect(
        base,
        "/pet/2",
        {"id": 2, "name": "Cat", "status": "pending"},
        "pet 2 (Cat)",
        "add a route matching prefix /pet/ that calls findPetById on v1 with parameters "
        "{':path': '/pet/{id}'}: routing.function_route(...), routing.add_route(routing.route_to_v1(), ...), "
        "then lab.apply(...)",
    )
    expect(base, "/findPets", V1_PETS, "the v1 pets", _SEED_ROUTES_HINT)
    expect(base, "/petstore", V1_PETS, "the v1 pets", _SEED_ROUTES_HINT)
    expect(base, "/findPetWithId/1", V1_PETS[0], "pet 1 (Dog)", _SEED_ROUTES_HINT)
    return "GET /pet/2 answers Cat and the three earlier routes still work"


def check_4(lab: Lab) -> str:
    base = gateway(lab)
    settle(lab, JUDGED[4])
    canary = {"x-canary": "true"}
    hint = (
        'put routing.header_route(routing.prefix_route("/petstore", "/api/pets", "v2")) first: '
        "routing.add_route(routing.header_canary(), ...), then lab.apply(...)"
    )
    expect(base, "/petstore", V2_PETS, "the v2 pets", hint, canary)
    expect(
        base,
        "/petstore",
        V1_PETS,
        "the v1 pets",
        "the /petstore canary route must match only requests with the header x-canary: true",
    )
    keep = "start from routing.header_canary(), whose /findPets routes must stay"
    expect(base, "/findPets", V2_PETS, "the v2 pets", keep, canary)
    expect(base, "/findPets", V1_PETS, "the v1 pets", keep)
    return "x-canary: true sends /petstore and /findPets to v2; other requests go to v1"


def virtual_service(lab: Lab) -> dict[str, Any]:
    found = lab.objects("virtualservices", "coalmine", GLOO_NAMESPACE)
    if not found:
        raise CheckFailed(
            "there is no virtual service coalmine", "apply one with lab.apply(...), e.g. routing.weighted(10)"
        )
    return found[0]


def virtual_host_routes(lab: Lab) -> list[Mapping[str, Any]]:
    """The routes of the virtual service coalmine; a clear failure if it has no virtualHost."""
    virtual_host = (virtual_service(lab).get("spec") or {}).get("virtualHost")
    if not isinstance(virtual_host, Mapping):
        # Gloo accepts a VirtualService without one (with a warning) and serves nothing for it.
        raise CheckFailed(
            "the virtual service coalmine has no spec.virtualHost, so it serves no routes",
            "apply one with its domains and routes, e.g. lab.apply(routing.weighted(10))",
        )
    return list(virtual_host.get("routes") or [])


def route_name(route: Mapping[str, Any]) -> str:
    matcher = (route.get("matchers") or [{}])[0]
    path = next((str(matcher[k]) for k in ("exact", "prefix", "regex") if k in matcher), "/")
    return path + (" (with a header)" if matcher.get("headers") else "")


def weights(lab: Lab, route: Mapping[str, Any]) -> dict[str | None, int]:
    """Total weight per version on a route; an UpstreamGroup is looked up."""
    totals: dict[str | None, int] = {}
    for dest, weight in destination_weights(route):
        if "upstreamGroup" in dest:
            ref = dest["upstreamGroup"]
            groups = lab.objects("upstreamgroups", ref.get("name"), ref.get("namespace") or GLOO_NAMESPACE)
            inner = [
                (d.get("destination") or {}, int(d.get("weight", 0) or 0))
                for g in groups
                for d in (g.get("spec") or {}).get("destinations") or []
            ]
        else:
            inner = [(dest, weight)]
        for d, w in inner:
            totals[version_of_destination(d)] = totals.get(version_of_destination(d), 0) + w
    return totals


def check_5(lab: Lab) -> str:
    base = gateway(lab)
    routes = virtual_host_routes(lab)
    split = [r for r in routes if "multi" in (r.get("routeAction") or {})]
    if not split:
        raise CheckFailed(
            "no route of the virtual service has weighted destinations",
            "use routeAction.multi with weights 25 (v2) and 75 (v1), as routing.weighted(...) builds them",
        )
    for route in split:
        w = weights(lab, route)
        v1, v2 = w.get("v1", 0), w.get("v2", 0)
        # Weights are relative (Gloo divides by their sum): 1 and 3 are 25/75 too.
        if v1 + v2 == 0 or v2 * 3 != v1 or set(w) - {"v1", "v2"}:
            raise CheckFailed(
                f"the weighted route {route_name(route)} has v2 weight {v2} and v1 weight {v1}, not 25 and 75",
                "apply a VirtualService whose weighted routes give v2 25 and v1 75, e.g. routing.weighted(...)",
            )
    n, p = 400, 0.25
    settle(lab, JUDGED[5])
    try:
        df = sample(base, "/findPets", n=n)
    except GatewayUnreachable:
        raise CheckFailed("requests to /findPets got no answer", "check that the lab runs with lab.status()") from None
    v2 = int((df["version"] == "v2").sum())
    errors = int(df["version"].isna().sum())
    if errors:
        raise CheckFailed(
            f"{errors} of {n} requests to /findPets failed",
            "look at lab.get('vs') and lab.get('upstreams'): every destination must be Accepted",
        )
    # 5 sigma: a correct 25/75 split fails this about once in 1.7 million checks.
    if abs(v2 - n * p) > 5 * math.sqrt(n * p * (1 - p)):
        raise CheckFailed(
            f"{v2} of {n} requests to /findPets went to v2, far from 25%",
            "the /findPets route without the header must carry the 25/75 split",
        )
    return "every weighted route sends 25% to v2 and 75% to v1, and so does the traffic"


def check_6(lab: Lab) -> str:
    base = gateway(lab)
    routes = virtual_host_routes(lab)
    for route in routes:
        w = {v: weight for v, weight in weights(lab, route).items() if weight > 0}
        if set(w) != {"v2"}:
            raise CheckFailed(
                f"the route {route_name(route)} still sends traffic to {'v1' if 'v1' in w else 'something else'}",
                "promote first: lab.apply(routing.all_to_v2()), so that every route goes to v2 only",
            )
    left = [
        f"{kind.lower()} {name}"
        for kind, name in (("Deployment", "petstore-v1"), ("Service", "petstore-v1"), ("ConfigMap", "petstore-v1-app"))
        if lab.objects(kind, name, "default")
    ]
    if left:
        raise CheckFailed(
            f"petstore v1 is not decommissioned: {', '.join(left)} still exist{'s' * (len(left) == 1)}",
            'delete all of v1, as kubectl delete -f does: lab.delete("../manifests/petstore-v1.yaml")',
        )
    settle(lab, JUDGED[6])
    expect(base, "/petstore", V2_PETS, "the v2 pets", "apply routing.all_to_v2() and check again")
    return "every route goes to v2, all of petstore v1 is gone and /petstore answers with the v2 pets"


CHECKS: dict[int, Callable[[Lab], str]] = {1: check_1, 2: check_2, 3: check_3, 4: check_4, 5: check_5, 6: check_6}
