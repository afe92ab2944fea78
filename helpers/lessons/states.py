"""The lab at the start of each lesson, and each exercise's reset and reference answer.

Lessons 1-6 build on each other (Gloo Edge); lesson 7 adds kgateway beside them
(``gatewayapi``). Everything here goes through ``Lab``, so it works on both backends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers.builders.routing import (
    add_route,
    all_to_v2,
    function_route,
    header_canary,
    header_route,
    prefix_route,
    route_to_v1,
    weighted,
)
from helpers.errors import NotFound
from helpers.lab import Lab
from helpers.lessons import gatewayapi
from helpers.loading import load_manifests, manifests_dir

MANIFESTS = manifests_dir()
V1_MANIFEST = MANIFESTS / "petstore-v1.yaml"
V2_MANIFEST = MANIFESTS / "petstore-v2.yaml"
WAIT_S = 120.0

PET_ROUTE = function_route({"prefix": "/pet/"}, "findPetById", "v1", {":path": "/pet/{id}"})
PETSTORE_CANARY = header_route(prefix_route("/petstore", "/api/pets", "v2"))


def start(lesson: int, lab: Lab) -> list[str]:
    """Put the lab in the state lesson ``lesson`` starts from; returns what was applied."""
    lines: list[str] = []
    lab.up()
    if lesson >= 2:
        lines += lab.apply(V1_MANIFEST, V2_MANIFEST)
        if lesson >= 3:
            lab.install("gloo")
        # Before any route is applied: discovery must have found the REST functions,
        # or a route that calls one would be applied with a warning.
        lab.wait(WAIT_S)
    start_routes = {4: route_to_v1(), 5: header_canary(), 6: weighted(50)}
    if lesson in start_routes:
        lines += lab.apply(start_routes[lesson])
    if lesson == 7:
        lines += gatewayapi.ensure(lab)
    return lines


def reset(lesson: int, lab: Lab) -> list[str]:
    """Back to the start of lesson ``lesson``'s exercise; returns what was applied or deleted."""
    lines = start(lesson, lab)
    # start() already re-applies what lessons 2 and 6 start from.
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
        lines += gatewayapi.reset(lab)
    return lines


def solve(lesson: int, lab: Lab) -> list[str]:
    """Apply lesson ``lesson``'s reference answer; returns what was applied or deleted."""
    start(lesson, lab)  # so that "skip" works from any state
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
        lines = gatewayapi.solve(lab)
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
