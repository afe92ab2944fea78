"""RouteTable's schema (Gloo's CRD and webhook), its kind names and its table row."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import kinds
from helpers.runtime.gloo.translating import validate
from helpers.tables import rows

from .test_routetables import by_ref, delegate, direct, rt
from .test_translating import vs


def test_the_kind_answers_to_kubectls_names() -> None:
    for word in ("rt", "grt", "routetable", "routetables", "RouteTable", "routetables.gateway.solo.io"):
        assert kinds.lookup(word).name == "RouteTable"
    kind = kinds.BY_NAME["RouteTable"]
    assert (kind.api_version, kind.plural, kind.gloo, kind.ref_prefix) == (
        "gateway.solo.io/v1",
        "routetables",
        True,
        "routetable.gateway.solo.io",
    )


def test_kubectl_get_rt_shows_name_and_age() -> None:
    table = rt("pets", direct(200))
    table["metadata"]["creationTimestamp"] = "2026-11-30T10:00:00Z"
    (row,) = rows("RouteTable", [table], with_age=True)
    assert list(row) == ["NAME", "AGE"] and row["NAME"] == "pets"


def test_a_route_table_and_delegating_routes_are_valid() -> None:
    assert validate(rt("pets", direct(200), by_ref("inner", prefix="/x"), weight=-3)) == []
    assert validate(rt("empty")) == []
    selector = {"namespaces": ["*"], "labels": {"a": "b"}}
    expressions = {"expressions": [{"key": "a", "operator": "In", "values": ["b"]}, {"key": "c", "operator": 5}]}
    for action in ({"ref": {"name": "x", "namespace": "y"}}, {"name": "x", "namespace": "y"}, {"selector": selector}):
        assert validate(vs(delegate(**action))) == []
    assert validate(vs(delegate(selector=expressions))) == []


@pytest.mark.parametrize(
    "spec, error",
    [
        ({"routes": [], "weight": 2**31}, "spec.weight: 2147483648 is out of range"),
        ({"routes": [], "weight": "1"}, "spec.weight: expected a number"),
        ({"routes": [{"matchers": [{"prefix": "/"}]}]}, "spec.routes[0]: route has no action"),
        ({"routes": [], "virtualHost": {}}, "spec.virtualHost: unknown field (known here: namespacedStatuses, routes"),
        (
            {"routes": [{"delegateAction": {"ref": {"name": "a"}, "selector": {}}}]},
            "spec.routes[0].delegateAction: only one of ref, selector may be set",
        ),
        (
            {"routes": [{"delegateAction": {"selector": {"expressions": [{"key": "a", "operator": "!="}]}}}]},
            "spec.routes[0].delegateAction.selector.expressions[0].operator: expected one of Equals",
        ),
        (
            {"routes": [{"delegateAction": {"selector": {"labels": ["a"]}}}]},
            "spec.routes[0].delegateAction.selector.labels: expected an object",
        ),
    ],
)
def test_what_the_crd_and_webhook_refuse(spec: dict[str, Any], error: str) -> None:
    table = rt("pets")
    table["spec"] = spec
    errors = validate(table)
    assert any(e.startswith(error) for e in errors), errors


def test_the_api_version_is_gateway_solo_io_v1() -> None:
    table = rt("pets")
    table["apiVersion"] = "gloo.solo.io/v1"
    assert validate(table) == ['apiVersion: RouteTable is "gateway.solo.io/v1", not "gloo.solo.io/v1"']
