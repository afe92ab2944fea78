"""Self-paced exercises: one per lesson, with check, solve and reset.

    from helpers.exercises import ensure, check, solve, reset
    lab = ensure(3)      # the lab as it is at the start of lesson 3
    check(3)             # PASS: ... or FAIL: ... with a hint
    reset(3)             # back to the start of the exercise, if you are stuck
    solve(3)             # apply the reference answer

Each check looks at the lab's objects AND sends real requests, so it passes only
when the lab really does what the exercise asks.

    1  deploy petstore v2 yourself        4  header canary on /petstore too
    2  scale petstore v1 to 2 replicas    5  a 25% v2 / 75% v1 split
    3  a /pet/{id} route to findPetById   6  promote v2 and decommission v1
                                          7  the header canary as an HTTPRoute (kgateway)
"""

from __future__ import annotations

import http.client
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import LabNotRunning, NotFound
from .lab import Lab
from .loading import load_manifests
from .routing import (
    add_route,
    all_to_v2,
    destination_weights,
    function_route,
    header_canary,
    header_route,
    prefix_route,
    route_to_v1,
    version_of_destination,
    weighted,
)
from .sampling import sample

MANIFESTS = Path(__file__).resolve().parents[1] / "manifests"
V1_MANIFEST = MANIFESTS / "petstore-v1.yaml"
V2_MANIFEST = MANIFESTS / "petstore-v2.yaml"
LESSONS = (1, 2, 3, 4, 5, 6, 7)
WAIT_S = 120.0

V1_PETS = [{"id": 1, "name": "Dog", "status": "available"}, {"id": 2, "name": "Cat", "status": "pending"}]
V2_PETS = [{"id": 1, "name": "Dog", "status": "v2"}, {"id": 2, "name": "Cat", "status": "v2"},
           {"id": 3, "name": "Parrot", "status": "v2"}]
PET_ROUTE = function_route({"prefix": "/pet/"}, "findPetById", "v1", {":path": "/pet/{id}"})
PETSTORE_CANARY = header_route(prefix_route("/petstore", "/api/pets", "v2"))


@dataclass(frozen=True)
class CheckResult:
    """The verdict of ``check(n)``: ``passed``, what was found, and a hint if it failed."""

    passed: bool
    message: str
    hint: str = ""

    def __str__(self) -> str:
        if self.passed:
            return f"PASS: {self.message}"
        return f"FAIL: {self.message}\nHint: {self.hint}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return str(self)

    def __bool__(self) -> bool:
        return self.passed


class _Fail(Exception):
    """Raised inside a check: the first problem found is the one reported."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


# ── lab states ───────────────────────────────────────────────────────────────


def _lesson(lesson: int) -> int:
    if lesson not in LESSONS:
        raise ValueError(f"lesson must be one of {', '.join(map(str, LESSONS))}, not {lesson!r}")
    return lesson


def _ensure(lesson: int, lab: Lab) -> list[str]:
    lines: list[str] = []
    lab.up()
    if lesson >= 2:
        lines += lab.apply(V1_MANIFEST, V2_MANIFEST)
        if lesson >= 3:
            lab.install("gloo")
        # Before any route is applied: discovery must have found the REST functions,
        # or a route that calls one would be applied with a warning.
        lab.wait(WAIT_S)
    start_routes = {4: route_to_v1, 5: header_canary, 6: lambda: weighted(50)}
    if 4 <= lesson <= 6:
        lines += lab.apply(start_routes[lesson]())
    if lesson == 7:
        lines += exercises_gatewayapi.ensure(lab)
    return lines


def ensure(lesson: int, lab: Lab | None = None) -> Lab:
    """Make the lab what it is at the START of ``lesson`` (1-7), as if you had done
    the lessons before it: started (1), petstore v1 and v2 deployed (2), the gateway
    installed (3), all routes to v1 (4), the header canary (5), a 50/50 split (6),
    kgateway with its Gateway beside Gloo's header canary (7).
    Safe to run again. Returns the lab."""
    lab = lab or Lab()
    _ensure(_lesson(lesson), lab)
    return lab


def reset(lesson: int, lab: Lab | None = None) -> list[str]:
    """Put the lab back to the start of lesson ``lesson``'s exercise, undoing your
    attempt. Returns what was applied or deleted."""
    lab = lab or Lab()
    lesson = _lesson(lesson)
    lines = _ensure(lesson, lab)
    # ensure() already re-applies what lessons 2 and 6 start from.
    if lesson == 1:
        lines += lab.apply(V1_MANIFEST)
        for obj in reversed(load_manifests([V2_MANIFEST])):  # Deployment first, like kubectl
            meta = obj["metadata"]
            try:
                lines += lab.delete(kind=obj["kind"], name=meta["name"], namespace=meta.get("namespace"))
            except NotFound:
                pass
        lab.wait(WAIT_S)
    elif lesson == 3:
        lines += lab.apply(route_to_v1())
    elif lesson == 4:
        lines += lab.apply(header_canary())
    elif lesson == 5:
        lines += lab.apply(weighted(10))
    elif lesson == 7:
        lines += exercises_gatewayapi.reset(lab)
    return lines


def solve(lesson: int, lab: Lab | None = None) -> list[str]:
    """Apply the reference answer of lesson ``lesson``'s exercise. Returns what was
    applied or deleted."""
    lab = lab or Lab()
    lesson = _lesson(lesson)
    _ensure(lesson, lab)  # so that "skip" works from any state
    if lesson == 1:
        lines = lab.apply(V2_MANIFEST)
        lab.wait(WAIT_S)
    elif lesson == 2:
        lines = lab.apply(*_scaled(V1_MANIFEST, "petstore-v1", 2))
        lab.wait(WAIT_S)
    elif lesson == 3:
        lines = lab.apply(add_route(route_to_v1(), PET_ROUTE))
    elif lesson == 4:
        lines = lab.apply(add_route(header_canary(), PETSTORE_CANARY))
    elif lesson == 5:
        lines = lab.apply(weighted(25))
    elif lesson == 7:
        lines = exercises_gatewayapi.solve(lab)
    else:
        # Promote first, then delete: the other order would fail requests in between.
        lines = lab.apply(all_to_v2())
        lines += lab.delete(V1_MANIFEST)
    return lines


def _scaled(path: Path, deployment: str, replicas: int) -> list[dict[str, Any]]:
    objects = load_manifests([path])
    for obj in objects:
        if obj.get("kind") == "Deployment" and obj["metadata"]["name"] == deployment:
            obj["spec"]["replicas"] = replicas
    return objects


# ── checks ───────────────────────────────────────────────────────────────────


def check(lesson: int, lab: Lab | None = None) -> CheckResult:
    """Check lesson ``lesson``'s exercise: PASS, or FAIL with a hint for the next step.
    Changes nothing in the lab."""
    lab = lab or Lab()
    checker = _CHECKS[_lesson(lesson)]
    try:
        message = checker(lab)
    except _Fail as failed:
        return CheckResult(False, failed.message, failed.hint)
    except LabNotRunning:
        return CheckResult(False, "the lab is not running",
                           f"start it with lab.up(), or run reset({lesson}) to set up this lesson")
    return CheckResult(True, message)


def _deployment(lab: Lab, name: str) -> dict[str, Any]:
    found = lab.objects("deployments", name, "default")
    if not found:
        raise _Fail(f"there is no deployment {name}", f"apply manifests/{name}.yaml with lab.apply(...), "
                    "then wait with lab.wait()")
    return found[0]


def _ready(dep: Mapping[str, Any], want: int | None = None) -> None:
    name = dep["metadata"]["name"]
    replicas = int(dep["spec"].get("replicas", 1))
    ready = int((dep.get("status") or {}).get("readyReplicas", 0))
    if want is not None and replicas != want:
        raise _Fail(f"deployment {name} asks for {replicas} replica{'s' * (replicas != 1)}, not {want}",
                    f"set spec.replicas to {want} in the Deployment of manifests/{name}.yaml and "
                    "lab.apply(...) it (a dict or a copy of the file), then lab.wait()")
    if ready != replicas:
        raise _Fail(f"deployment {name} has {ready} of {replicas} replicas ready",
                    "wait for the pods with lab.wait(), then check again")


def _http(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One GET; the body parsed as JSON (None when it is not JSON)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
    except OSError as e:
        raise _Fail(f"GET {path} got no answer ({type(e).__name__})",
                    "check that the lab runs with lab.status(); lab.up() starts it") from None
    finally:
        conn.close()
    try:
        return resp.status, json.loads(body)
    except ValueError:
        return resp.status, None


def _gateway(lab: Lab) -> str:
    try:
        return lab.proxy_url()
    except NotFound:
        raise _Fail("the gateway is not installed", 'install it with lab.install("gloo"), then lab.wait()') from None


def _describe(data: Any) -> str:
    if data == V1_PETS:
        return "the v1 pets"
    if data == V2_PETS:
        return "the v2 pets"
    if isinstance(data, list) and data and all(isinstance(p, dict) and p.get("status") == "v2" for p in data):
        return "v2 pets"
    if isinstance(data, list) and data and all(isinstance(p, dict) for p in data):
        return "v1 pets"
    return "something else"


def _expect(base: str, path: str, want: Any, what: str, hint: str, headers: dict[str, str] | None = None) -> None:
    status, data = _http(base, path, headers)
    if status == 200 and data == want:
        return
    sent = f" with {', '.join(f'{k}: {v}' for k, v in headers.items())}" if headers else ""
    got = f"answered {status}" if status != 200 else f"answered {_describe(data)}"
    raise _Fail(f"GET {path}{sent} through the gateway {got}, not {what}", hint)


def _check_1(lab: Lab) -> str:
    _ready(_deployment(lab, "petstore-v2"))
    pods = [p for p in lab.objects("pods", namespace="default")
            if (p["metadata"].get("labels") or {}).get("app") == "petstore-v2"
            and all(c.get("ready") for c in (p.get("status") or {}).get("containerStatuses") or [{}])]
    if not pods:
        raise _Fail("no ready pod of petstore-v2", "wait for it with lab.wait(), then check again")
    for pod in pods:
        port = (pod.get("status") or {}).get("localPort")
        if port is None:
            continue  # a cluster's pod is not on loopback: its readiness is the check
        status, data = _http(f"http://127.0.0.1:{port}", "/api/pets")
        if status != 200 or data != V2_PETS:
            raise _Fail(f"a petstore-v2 pod answers GET /api/pets with {_describe(data)}, not the three v2 pets",
                        "its container needs VERSION=v2, as in manifests/petstore-v2.yaml: apply that file")
    return "petstore-v2 is ready and its pod answers with the three v2 pets"


def _check_2(lab: Lab) -> str:
    _ready(_deployment(lab, "petstore-v1"), want=2)
    services = lab.objects("services", "petstore-v1", "default")
    if not services:
        raise _Fail("there is no service petstore-v1", "apply manifests/petstore-v1.yaml with lab.apply(...)")
    endpoints = (services[0].get("status") or {}).get("localEndpoints")
    if endpoints is not None:
        count = len({e for eps in endpoints.values() for e in eps})
        if count != 2:
            raise _Fail(f"service petstore-v1 has {count} endpoint{'s' * (count != 1)}, not 2",
                        "wait for both pods with lab.wait(), then check again")
    return "petstore-v1 runs 2 ready replicas behind its service"


_SEED_ROUTES_HINT = "keep the three routes of route_to_v1() and add yours with add_route(...)"


def _check_3(lab: Lab) -> str:
    base = _gateway(lab)
    _expect(base, "/pet/2", {"id": 2, "name": "Cat", "status": "pending"}, "pet 2 (Cat)",
            "add a route matching prefix /pet/ that calls findPetById on v1 with parameters "
            "{':path': '/pet/{id}'}: function_route(...), add_route(route_to_v1(), ...), then lab.apply(...)")
    _expect(base, "/findPets", V1_PETS, "the v1 pets", _SEED_ROUTES_HINT)
    _expect(base, "/petstore", V1_PETS, "the v1 pets", _SEED_ROUTES_HINT)
    _expect(base, "/findPetWithId/1", V1_PETS[0], "pet 1 (Dog)", _SEED_ROUTES_HINT)
    return "GET /pet/2 answers Cat and the three earlier routes still work"


def _check_4(lab: Lab) -> str:
    base = _gateway(lab)
    canary = {"x-canary": "true"}
    hint = ("add a header route for prefix /petstore (prefixRewrite /api/pets) to v2 at index 0: "
            "add_route(header_canary(), header_route(prefix_route(...)))")
    _expect(base, "/petstore", V2_PETS, "the v2 pets", hint, canary)
    _expect(base, "/petstore", V1_PETS, "the v1 pets",
            "the /petstore canary route must match only requests with the header x-canary: true")
    _expect(base, "/findPets", V2_PETS, "the v2 pets", "keep the /findPets canary route of header_canary()", canary)
    _expect(base, "/findPets", V1_PETS, "the v1 pets", "keep the /findPets route to v1 of header_canary()")
    return "x-canary: true sends /petstore and /findPets to v2; other requests go to v1"


def _virtual_service(lab: Lab) -> dict[str, Any]:
    found = lab.objects("virtualservices", "coalmine", "gloo-system")
    if not found:
        raise _Fail("there is no virtual service coalmine", "apply one with lab.apply(...), e.g. weighted(10)")
    return found[0]


def _route_name(route: Mapping[str, Any]) -> str:
    matcher = (route.get("matchers") or [{}])[0]
    path = next((str(matcher[k]) for k in ("exact", "prefix", "regex") if k in matcher), "/")
    return path + (" (with a header)" if matcher.get("headers") else "")


def _weights(lab: Lab, route: Mapping[str, Any]) -> dict[str | None, int]:
    """Total weight per version on a route; an UpstreamGroup is looked up."""
    totals: dict[str | None, int] = {}
    for dest, weight in destination_weights(route):
        if "upstreamGroup" in dest:
            ref = dest["upstreamGroup"]
            groups = lab.objects("upstreamgroups", ref.get("name"), ref.get("namespace") or "gloo-system")
            inner = [(d.get("destination") or {}, int(d.get("weight", 0) or 0))
                     for g in groups for d in (g.get("spec") or {}).get("destinations") or []]
        else:
            inner = [(dest, weight)]
        for d, w in inner:
            totals[version_of_destination(d)] = totals.get(version_of_destination(d), 0) + w
    return totals


def _check_5(lab: Lab) -> str:
    base = _gateway(lab)
    routes = _virtual_service(lab)["spec"]["virtualHost"].get("routes") or []
    split = [r for r in routes if "multi" in (r.get("routeAction") or {})]
    if not split:
        raise _Fail("no route of the virtual service has weighted destinations",
                    "use routeAction.multi with weights 25 (v2) and 75 (v1), as weighted() builds them")
    for route in split:
        w = _weights(lab, route)
        v1, v2 = w.get("v1", 0), w.get("v2", 0)
        # Weights are relative (Gloo divides by their sum): 1 and 3 are 25/75 too.
        if v1 + v2 == 0 or v2 * 3 != v1 or set(w) - {"v1", "v2"}:
            raise _Fail(f"the weighted route {_route_name(route)} has v2 weight {v2} and v1 weight {v1}, not 25 and 75",
                        "apply a VirtualService whose weighted routes give v2 25 and v1 75, e.g. from weighted(...)")
    n, p = 400, 0.25
    try:
        df = sample(base, "/findPets", n=n)
    except ConnectionError:
        raise _Fail("requests to /findPets got no answer", "check that the lab runs with lab.status()") from None
    v2 = int((df["version"] == "v2").sum())
    errors = int(df["version"].isna().sum())
    if errors:
        raise _Fail(f"{errors} of {n} requests to /findPets failed",
                    "look at lab.get('vs') and lab.get('upstreams'): every destination must be Accepted")
    # 5 sigma: a correct 25/75 split fails this about once in 1.7 million checks.
    if abs(v2 - n * p) > 5 * math.sqrt(n * p * (1 - p)):
        raise _Fail(f"{v2} of {n} requests to /findPets went to v2, far from 25%",
                    "the /findPets route without the header must carry the 25/75 split")
    return "every weighted route sends 25% to v2 and 75% to v1, and so does the traffic"


def _check_6(lab: Lab) -> str:
    base = _gateway(lab)
    routes = _virtual_service(lab)["spec"]["virtualHost"].get("routes") or []
    for route in routes:
        w = {v: weight for v, weight in _weights(lab, route).items() if weight > 0}
        if set(w) != {"v2"}:
            raise _Fail(f"the route {_route_name(route)} still sends traffic to {'v1' if 'v1' in w else 'something else'}",
                        "promote first: lab.apply(all_to_v2()), so that every route goes to v2 only")
    if lab.objects("deployments", "petstore-v1", "default"):
        raise _Fail("deployment petstore-v1 still exists",
                    "decommission it: lab.delete(...) with manifests/petstore-v1.yaml")
    _expect(base, "/petstore", V2_PETS, "the v2 pets", "apply all_to_v2() and check again")
    return "every route goes to v2, petstore-v1 is gone and /petstore answers with the v2 pets"


_CHECKS: dict[int, Callable[[Lab], str]] = {1: _check_1, 2: _check_2, 3: _check_3, 4: _check_4, 5: _check_5, 6: _check_6,
                                            7: lambda lab: exercises_gatewayapi.check(lab)}

from . import exercises_gatewayapi  # noqa: E402 - lesson 7 lives there and reads the helpers above
