"""Route builders: equal to the manifest files, pure, and round-trip through YAML."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from helpers.builders.routing import (
    add_route,
    all_to_v2,
    destination_weights,
    function_route,
    header_canary,
    header_route,
    prefix_route,
    remove_route,
    rollback,
    route_to_v1,
    to_yaml,
    upstream,
    virtual_service,
    weighted,
)

GLOO = Path(__file__).resolve().parents[1] / "manifests" / "gloo"


@pytest.mark.parametrize(
    "build,manifest",
    [
        (route_to_v1, "1-route-to-v1.yaml"),
        (header_canary, "2-header-canary.yaml"),
        (lambda: weighted(10), "3-weighted-10-90.yaml"),
        (lambda: weighted(50), "4-weighted-50-50.yaml"),
        (all_to_v2, "5-all-to-v2.yaml"),
    ],
)
def test_builders_equal_the_manifest_files(build, manifest: str) -> None:
    assert build() == yaml.safe_load((GLOO / manifest).read_text())


def test_rollback_is_route_to_v1_and_builders_return_fresh_objects() -> None:
    assert rollback() == route_to_v1()
    first = route_to_v1()
    first["spec"]["virtualHost"]["routes"].clear()
    assert len(route_to_v1()["spec"]["virtualHost"]["routes"]) == 3


def test_upstream_and_virtual_service() -> None:
    assert upstream("v2") == {"name": "default-petstore-v2-8080", "namespace": "gloo-system"}
    vs = virtual_service([], name="shop", domains=["shop.example.com"])
    assert vs["metadata"] == {"name": "shop", "namespace": "gloo-system"}
    assert vs["spec"] == {"displayName": "shop", "virtualHost": {"domains": ["shop.example.com"], "routes": []}}


@pytest.mark.parametrize("p", [0, 1, 25, 99, 100])
def test_weighted_weights(p: int) -> None:
    routes = weighted(p)["spec"]["virtualHost"]["routes"]
    assert routes[0]["matchers"][0]["headers"] == [{"name": "x-canary", "value": "true"}]
    assert "single" in routes[0]["routeAction"]
    for route in routes[1:]:
        dests = route["routeAction"]["multi"]["destinations"]
        assert [(d["weight"], d["destination"]["upstream"]["name"]) for d in dests] == [
            (p, "default-petstore-v2-8080"),
            (100 - p, "default-petstore-v1-8080"),
        ]
    # Same shape as the 10/90 file, only the weights differ.
    text = (
        to_yaml(weighted(p)).replace(f"weight: {p}\n", "weight: V2\n").replace(f"weight: {100 - p}\n", "weight: V1\n")
    )
    ten = to_yaml(weighted(10)).replace("weight: 10\n", "weight: V2\n").replace("weight: 90\n", "weight: V1\n")
    assert text == ten


@pytest.mark.parametrize("bad", [-1, 101, 10.5, True, "10"])
def test_weighted_refuses_bad_percentages(bad) -> None:
    with pytest.raises(ValueError, match="v2_percent"):
        weighted(bad)


def test_function_route_single_and_weighted() -> None:
    route = function_route({"prefix": "/pet/"}, "findPetById", "v1", {":path": "/pet/{id}"})
    assert route == {
        "matchers": [{"prefix": "/pet/"}],
        "routeAction": {
            "single": {
                "upstream": upstream("v1"),
                "destinationSpec": {
                    "rest": {"functionName": "findPetById", "parameters": {"headers": {":path": "/pet/{id}"}}}
                },
            }
        },
    }
    split = function_route({"exact": "/findPets"}, "findPets", {"v2": 1, "v1": 3})
    assert [d["weight"] for d in split["routeAction"]["multi"]["destinations"]] == [1, 3]
    assert destination_weights(split) == [
        ({"upstream": upstream("v2"), "destinationSpec": {"rest": {"functionName": "findPets"}}}, 1),
        ({"upstream": upstream("v1"), "destinationSpec": {"rest": {"functionName": "findPets"}}}, 3),
    ]
    with pytest.raises(ValueError, match="weight of v1"):
        function_route({"exact": "/x"}, "findPets", {"v2": 1, "v1": -1})


def test_header_route_adds_the_header_and_leaves_its_input_alone() -> None:
    plain = prefix_route("/petstore", "/api/pets", "v2")
    before = copy.deepcopy(plain)
    canary = header_route(plain)
    assert plain == before
    assert canary["matchers"] == [{"prefix": "/petstore", "headers": [{"name": "x-canary", "value": "true"}]}]
    assert canary["options"] == {"prefixRewrite": "/api/pets"}
    assert header_route(plain, "x-user", "tester")["matchers"][0]["headers"] == [{"name": "x-user", "value": "tester"}]


def test_add_route_inserts_first_by_default_and_does_not_mutate() -> None:
    vs = route_to_v1()
    before = copy.deepcopy(vs)
    route = function_route({"prefix": "/pet/"}, "findPetById", "v1", {":path": "/pet/{id}"})
    added = add_route(vs, route)
    assert vs == before
    routes = added["spec"]["virtualHost"]["routes"]
    assert routes[0] == route and routes[1:] == before["spec"]["virtualHost"]["routes"]
    assert routes[0] is not route  # a copy: changing the result never changes the input
    last = add_route(vs, route, index=len(before["spec"]["virtualHost"]["routes"]))
    assert last["spec"]["virtualHost"]["routes"][-1] == route


def test_add_then_remove_route_is_the_original() -> None:
    vs = header_canary()
    route = header_route(prefix_route("/petstore", "/api/pets", "v2"))
    assert remove_route(add_route(vs, route), 0) == vs
    assert remove_route(vs, 0) == route_to_v1()  # header_canary = the canary route + route_to_v1
    assert header_canary() == vs
    with pytest.raises(IndexError, match="has 4 routes"):
        remove_route(vs, 4)


@pytest.mark.parametrize("build", [route_to_v1, header_canary, lambda: weighted(25), all_to_v2])
def test_to_yaml_round_trips_and_keeps_key_order(build) -> None:
    obj = build()
    text = to_yaml(obj)
    assert yaml.safe_load(text) == obj
    assert text.startswith("apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:")
    assert "':path': /findPetWithId/{id}" in text
    assert to_yaml(obj) == text  # stable


@pytest.mark.parametrize(
    "build,manifest",
    [
        (route_to_v1, "1-route-to-v1.yaml"),
        (header_canary, "2-header-canary.yaml"),
        (lambda: weighted(10), "3-weighted-10-90.yaml"),
        (all_to_v2, "5-all-to-v2.yaml"),
    ],
)
def test_to_yaml_writes_what_the_manifest_files_say(build, manifest: str) -> None:
    lines = (GLOO / manifest).read_text().splitlines(keepends=True)
    file_text = "".join(line for line in lines if not line.startswith("#")).replace('"true"', "'true'")
    assert to_yaml(build()) == file_text
