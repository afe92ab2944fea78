"""The lab at the start of each lesson, and each exercise's reset and reference answer.

``start(n)`` makes the lab exactly what lesson ``n`` starts from, whatever ran before,
forward or backward: it installs and applies what the lesson needs, and removes what
later lessons and exercises added. A gateway that the backend cannot uninstall (the
local lab has no ``uninstall``) is removed by starting from an empty lab
(``lab.down(forget=True)``); on a cluster ``lab.uninstall`` does it. What is removed:

- the petstore's objects, when the lesson starts without them;
- every VirtualService and UpstreamGroup in ``gloo-system``, every HTTPRoute in
  ``default`` and every Gateway in ``kgateway-system`` that the lesson does not start
  with (the routes the lessons and their exercises write).

Lessons 1-6 build on each other (Gloo Edge); lesson 7 adds kgateway beside them
(``gatewayapi``); lesson 8 (``progressive``) starts again from a petstore with one
Deployment, the loadtester and the canary controller; lesson 9 (``promql``) from the
same on kgateway, with the lab's Prometheus where the machine has one. Everything here
goes through ``Lab``, so it works on both backends.

``start``, ``reset`` and ``solve`` end when the gateway serves the state's routes
(``served``'s tables, through ``lab.wait_in_force``): on a cluster Envoy gets a route
change a moment after ``apply`` returns; the local lab needs no wait and gets none.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from helpers.builders import httproutes
from helpers.builders.routing import (
    GLOO_NAMESPACE,
    add_route,
    all_to_v2,
    function_route,
    header_canary,
    header_route,
    prefix_route,
    route_to_v1,
    weighted,
)
from helpers.errors import CoalmineError, NotFound, Unsupported
from helpers.lab import Lab
from helpers.lessons import gatewayapi, progressive, promql, served
from helpers.lessons.inforce import wait_served
from helpers.loading import load_manifests, manifests_dir

MANIFESTS = manifests_dir()
V1_MANIFEST = MANIFESTS / "petstore-v1.yaml"
V2_MANIFEST = MANIFESTS / "petstore-v2.yaml"
WAIT_S = 120.0
COMPONENTS = ("gloo", "kgateway", "flagger", "prometheus")

PET_ROUTE = function_route({"prefix": "/pet/"}, "findPetById", "v1", {":path": "/pet/{id}"})
PETSTORE_CANARY = header_route(prefix_route("/petstore", "/api/pets", "v2"))

# The routing objects a lesson or an exercise may have written: (kind, namespace).
ROUTING = (
    ("VirtualService", GLOO_NAMESPACE),
    ("UpstreamGroup", GLOO_NAMESPACE),
    ("HTTPRoute", httproutes.ROUTE_NAMESPACE),
    ("Gateway", httproutes.GATEWAY_NAMESPACE),
)
_BUILT_IN = {"Namespace", "ConfigMap", "Service", "Deployment"}

Ref = tuple[str, str, str]  # kind, namespace, name


def lesson_start(lesson: int) -> tuple[set[str], list[dict[str, Any]]]:
    """The gateways installed and the objects applied when lesson ``lesson`` starts."""
    if lesson == 8:
        return {"gloo", "flagger"}, progressive.start_objects()
    if lesson == 9:
        return {"kgateway", "flagger", "prometheus"}, promql.start_objects()
    components = {"gloo"} if lesson >= 3 else set()
    objects = load_manifests([V1_MANIFEST, V2_MANIFEST]) if lesson >= 2 else []
    routes = {4: route_to_v1(), 5: header_canary(), 6: weighted(50), 7: header_canary()}
    if lesson in routes:
        objects.append(routes[lesson])
    if lesson == 7:
        components.add("kgateway")
        objects.append(httproutes.gateway())
    return components, objects


def exercise_start(lesson: int) -> tuple[set[str], list[dict[str, Any]]]:
    """The lab at the start of lesson ``lesson``'s exercise (what ``reset`` restores)."""
    components, objects = lesson_start(lesson)
    extra = {
        1: load_manifests(V1_MANIFEST),
        3: [route_to_v1()],
        4: [header_canary()],
        5: [weighted(10)],
        7: [gatewayapi.exercise_start()],
    }.get(lesson, [])
    return components, _last_wins([*objects, *extra])


def start(lesson: int, lab: Lab) -> list[str]:
    """Put the lab in the state lesson ``lesson`` starts from, its routes in force;
    returns what was applied or deleted."""
    lines = _start(lesson, lab)
    wait_served(lab, served.STARTS.get(lesson, ()), WAIT_S)
    return lines


def _start(lesson: int, lab: Lab) -> list[str]:
    if lesson in (8, 9) and progressive.has_canary(lab):
        lab.down(forget=True)  # a Canary ran: start from nothing (see lessons.progressive)
    components, objects = lesson_start(lesson)
    if "prometheus" in components:
        lab.up()  # the lab says whether this machine has a Prometheus once it runs
        if not promql.prometheus_available(lab):
            components.discard("prometheus")  # the lesson says so and goes on without it
    return converge(lab, components, objects)


def reset(lesson: int, lab: Lab) -> list[str]:
    """Back to the start of lesson ``lesson``'s exercise, its routes in force; returns
    what was applied or deleted."""
    lines = _reset(lesson, lab)
    wait_served(lab, served.EXERCISES.get(lesson, ()), WAIT_S)
    return lines


def _reset(lesson: int, lab: Lab) -> list[str]:
    if lesson == 8:
        return _start(8, lab) + progressive.exercise_start(lab)
    if lesson == 9:
        return _start(9, lab) + promql.exercise_start(lab)
    return converge(lab, *exercise_start(lesson))


def solve(lesson: int, lab: Lab) -> list[str]:
    """Apply lesson ``lesson``'s reference answer on top of the exercise's start, its
    routes in force; returns what the answer applied or deleted."""
    lines = _solve(lesson, lab)
    wait_served(lab, served.ANSWERS.get(lesson, ()), WAIT_S)
    return lines


def _solve(lesson: int, lab: Lab) -> list[str]:
    _reset(lesson, lab)  # so that "skip" works from any state
    if lesson == 1:
        lines = list(lab.apply(V2_MANIFEST))
        lab.wait(WAIT_S)
    elif lesson == 2:
        lines = list(lab.apply(scaled(load_manifests(V1_MANIFEST), "petstore-v1", 2)))
        lab.wait(WAIT_S)
    elif lesson == 3:
        lines = list(lab.apply(add_route(route_to_v1(), PET_ROUTE)))
    elif lesson == 4:
        lines = list(lab.apply(add_route(header_canary(), PETSTORE_CANARY)))
    elif lesson == 5:
        lines = list(lab.apply(weighted(25)))
    elif lesson == 7:
        lines = gatewayapi.solve(lab)
    elif lesson == 8:
        lines = progressive.solve(lab)
    elif lesson == 9:
        lines = promql.solve(lab)
    else:
        # Promote first, then delete: the other order would fail requests in between.
        lines = list(lab.apply(all_to_v2()))
        wait_served(lab, served.ANSWERS[6], WAIT_S)  # on a cluster v1 serves until Envoy has the change
        lines += lab.delete(V1_MANIFEST)
    return lines


def scaled(objects: list[dict[str, Any]], deployment: str, replicas: int) -> list[dict[str, Any]]:
    """``objects`` with the Deployment ``deployment`` set to ``replicas`` replicas."""
    for obj in objects:
        if obj.get("kind") == "Deployment" and obj["metadata"]["name"] == deployment:
            obj["spec"]["replicas"] = replicas
    return objects


# ── making the lab what a lesson needs ───────────────────────────────────────


def converge(lab: Lab, components: set[str], objects: list[dict[str, Any]]) -> list[str]:
    """Make the lab hold exactly ``components`` and ``objects`` (of what lessons
    touch); returns what was applied or deleted."""
    lab.up()
    lines: list[str] = []
    if installed(lab) - components:
        try:
            for component in sorted(installed(lab) - components):
                lines += lab.uninstall(component)
        except Unsupported:
            # The local lab cannot uninstall a gateway: start again from an empty lab.
            lab.down(forget=True)
            lab.up()
    wanted = {_ref(o) for o in objects}
    lines += _delete(lab, [r for r in _present(lab) if r not in wanted])
    for component in COMPONENTS:
        if component in components:
            lab.install(component)
    workloads = [o for o in objects if o.get("kind") in _BUILT_IN]
    if workloads:
        lines += lab.apply(workloads)
    if workloads or components:
        # Before any route is applied: discovery must have found the REST functions,
        # or a route that calls one would be applied with a warning.
        lab.wait(WAIT_S)
    routing = [o for o in objects if o.get("kind") not in _BUILT_IN]
    if routing:
        lines += lab.apply(routing)
        lab.wait(WAIT_S)  # a Gateway's listeners serve
    _wait_for_terminating_pods(lab)
    return lines


def installed(lab: Lab) -> set[str]:
    """The components installed in the lab: ``gloo``, ``kgateway``, ``flagger``, ``prometheus``."""
    status = lab.status()
    found: set[str] = set()
    if (status.get("prometheus") or {}).get("installed"):
        found.add("prometheus")
    gateway = status.get("gateway") or {}
    if gateway.get("installed"):
        found.add(str(gateway.get("component") or "gloo"))
    if (status.get("flagger") or {}).get("installed") or progressive.touched(lab):
        found.add("flagger")  # a cluster's status does not say; lesson 8's objects do
    api = status.get("gatewayApi")
    if api is not None:
        if api.get("installed"):
            found.add("kgateway")
    else:  # a cluster says which gateway it serves; kgateway's GatewayClass tells the rest
        try:
            if lab.objects("gatewayclasses", "kgateway"):
                found.add("kgateway")
        except CoalmineError:
            pass
    return found


def _present(lab: Lab) -> list[Ref]:
    """What lessons touch and the lab holds: routing objects first, then the petstore's
    objects (each Deployment before its Service and ConfigMap, as kubectl deletes)."""
    found: list[Ref] = []
    for kind, namespace in ROUTING:
        try:
            found += [_ref(o) for o in lab.objects(kind, namespace=namespace)]
        except CoalmineError:
            continue  # that gateway is not installed: nothing of the kind exists
    for obj in reversed(load_manifests([V1_MANIFEST, V2_MANIFEST])):
        kind, namespace, name = _ref(obj)
        if lab.objects(kind, name, namespace):
            found.append((kind, namespace, name))
    return found


def _delete(lab: Lab, refs: Iterable[Ref]) -> list[str]:
    lines: list[str] = []
    for kind, namespace, name in refs:
        try:
            lines += lab.delete(kind=kind, name=name, namespace=namespace)
        except NotFound:
            pass  # gone already (a Service's upstream goes with it)
    return lines


def _wait_for_terminating_pods(lab: Lab, timeout: float = WAIT_S) -> None:
    """Until no pod of the lessons' namespace is on its way out, so that tables and
    helpers that pick a pod see only the pods the lesson starts with."""
    deadline = time.monotonic() + timeout
    while any((p.get("metadata") or {}).get("deletionTimestamp") for p in lab.objects("pods")):
        if time.monotonic() >= deadline:
            return  # a slow pod is no reason to fail the set-up: lab.get("pods") shows it
        time.sleep(0.1)


def _ref(obj: dict[str, Any]) -> Ref:
    meta = obj.get("metadata") or {}
    return str(obj.get("kind")), str(meta.get("namespace") or "default"), str(meta.get("name"))


def _last_wins(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``objects`` with one object per reference: a later one replaces an earlier one, in its place."""
    chosen: dict[Ref, dict[str, Any]] = {}
    for obj in objects:
        chosen[_ref(obj)] = obj
    return list(chosen.values())
