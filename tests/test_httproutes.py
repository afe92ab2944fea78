"""Gateway API route builders: equal to manifests/gateway-api/, valid, and pure."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers import httproutes
from helpers.runtime.gatewayapi.schema import validate

GATEWAY_API = Path(__file__).resolve().parents[1] / "manifests" / "gateway-api"
STEPS = [
    (httproutes.gateway, "0-gateway.yaml"),
    (httproutes.route_to_v1, "1-route-to-v1.yaml"),
    (httproutes.header_canary, "2-header-canary.yaml"),
    (lambda: httproutes.weighted(10), "3-weighted-10-90.yaml"),
    (lambda: httproutes.weighted(50), "4-weighted-50-50.yaml"),
    (httproutes.all_to_v2, "5-all-to-v2.yaml"),
]


def test_every_file_has_a_builder() -> None:
    assert sorted(p.name for p in GATEWAY_API.glob("*.yaml")) == [name for _, name in STEPS]


@pytest.mark.parametrize("build,manifest", STEPS, ids=[name for _, name in STEPS])
def test_builders_equal_the_manifest_files_and_are_valid(build, manifest: str) -> None:
    obj = build()
    assert obj == yaml.safe_load((GATEWAY_API / manifest).read_text())
    assert validate(obj) == []


@pytest.mark.parametrize("p", [0, 10, 50, 100])
def test_weighted_keeps_the_canary_rule_and_splits_the_others(p: int) -> None:
    rules = httproutes.weighted(p)["spec"]["rules"]
    assert rules[-1]["matches"][0]["headers"] == [{"name": "x-canary", "value": "true"}]
    for rule in rules[:-1]:
        assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == [("petstore-v2", p), ("petstore-v1", 100 - p)]


@pytest.mark.parametrize("bad", [-1, 101, 2.5, True, "10"])
def test_weighted_refuses_what_is_not_a_percentage(bad: object) -> None:
    with pytest.raises(ValueError, match="v2_percent must be a whole number from 0 to 100"):
        httproutes.weighted(bad)  # type: ignore[arg-type]


def test_builders_return_fresh_objects_and_rollback_is_step_1() -> None:
    first = httproutes.route_to_v1()
    first["spec"]["rules"].clear()
    assert len(httproutes.route_to_v1()["spec"]["rules"]) == 3
    assert httproutes.rollback() == httproutes.route_to_v1()
    with pytest.raises(ValueError, match="from 0 to 1000000"):
        httproutes.backend_refs({"v1": -1})
