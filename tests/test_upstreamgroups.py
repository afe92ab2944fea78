"""UpstreamGroups as Gloo 1.22.1 treats them: no webhook checks them, so a group the CRD
lets through is stored; Gloo reports what it cannot use in the group's status, and the
routes that use the group get the error (Rejected) or warning Gloo gives them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers.runtime.gloo.translating import validate

from .test_controlplane import actions, control_plane, run
from .test_proxying import fetch
from .test_routetables_admission import front, static, status
from .test_translating import NS, V1, V2, VS_KEY, req, route, served, state, to, vs
from .test_translating import run as translate_with_petstore

GROUP_KEY = ("UpstreamGroup", NS, "petstore")
USES_GROUP = route(action={"routeAction": {"upstreamGroup": {"name": "petstore", "namespace": NS}}})
WHERE = f"spec.virtualHost.routes[0].routeAction.upstreamGroup: UpstreamGroup {NS}.petstore"


def group(*destinations: dict[str, Any], ns: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "UpstreamGroup",
        "metadata": {"name": "petstore", "namespace": ns},
        "spec": {"destinations": list(destinations)},
    }


def up(name: str, weight: int = 1, **ref: str) -> dict[str, Any]:
    return {"destination": {"upstream": {"name": name, **ref}}, "weight": weight}


def test_a_destination_gloo_cannot_find_rejects_the_group_and_warns_the_routes() -> None:
    broken = group(up(V1, 0), up("nope", 1))
    assert validate(broken) == []
    elsewhere = vs(route(action=to(V2)), name="other", domains=["other.example.com"])
    table, reports = translate_with_petstore(broken, vs(USES_GROUP), elsewhere)
    assert reports[GROUP_KEY].errors == [
        "spec.destinations[1].destination: destination # 2: upstream not found: "
        "list did not find upstream gloo-system.nope"
    ]
    assert state(reports, GROUP_KEY) == "Rejected"
    assert state(reports) == "Warning" and reports[VS_KEY].warnings == [
        f"{WHERE}: spec.destinations[1].destination.upstream: InvalidDestinationWarning: "
        "*v1.Upstream { gloo-system.nope } not found"
    ]
    found = table.select(req("/"))
    assert found is not None
    assert [(d.destination.cluster, d.weight) for d in found[0].action.destinations] == [(V1, 0), ("nope", 1)]
    assert "nope" not in table.clusters, "the group is used all the same; Envoy answers 503: no such cluster"
    assert served(table, req("/", host="other.example.com")) == V2


def test_an_upstream_without_namespace_is_looked_for_in_the_groups_namespace() -> None:
    _, reports = translate_with_petstore(group(up(V1)), vs(USES_GROUP))
    assert state(reports, GROUP_KEY) == state(reports) == "Accepted"


@pytest.mark.parametrize(
    "entry, group_error",
    [
        ({"weight": 1}, "spec.destinations[1]: destination # 2: destination is nil"),
        ({"destination": {}, "weight": 1}, "spec.destinations[1].destination: no destination type specified"),
    ],
)
def test_a_destination_without_a_type_rejects_the_group_and_the_routes_using_it(
    entry: dict[str, Any], group_error: str
) -> None:
    broken = group(up(V1), entry)
    assert validate(broken) == []
    table, reports = translate_with_petstore(broken, vs(USES_GROUP))
    assert reports[GROUP_KEY].errors == [group_error]
    assert reports[VS_KEY].errors == [f"{WHERE}: no destination type specified"]
    assert table.virtual_hosts == ()


@pytest.mark.parametrize(
    "kube, looked_up",
    [
        ({"ref": {"name": "petstore-v1", "namespace": "default"}}, "default.kube-svc:default-petstore-v1-0"),
        (
            {"ref": {"name": "petstore-v1", "namespace": "default"}, "port": 70000},
            "default.kube-svc:default-petstore-v1-70000",
        ),
        ({"port": 8080}, "gloo-system.kube-svc:gloo-system--8080"),
    ],
)
def test_a_kube_destination_without_its_service_port_is_not_found(kube: dict[str, Any], looked_up: str) -> None:
    broken = group({"destination": {"kube": kube}, "weight": 1})
    assert validate(broken) == []
    _, reports = translate_with_petstore(broken, vs(USES_GROUP))
    assert reports[GROUP_KEY].errors == [
        f"spec.destinations[0].destination: destination # 1: upstream not found: list did not find upstream {looked_up}"
    ]
    assert state(reports) == "Warning"


def test_a_rest_destination_without_a_function_name_is_stored_and_warned_on_the_route() -> None:
    rest = {"upstream": {"name": V1}, "destinationSpec": {"rest": {}}}
    broken = group({"destination": rest, "weight": 1})
    assert validate(broken) == []
    _, reports = translate_with_petstore(broken, vs(USES_GROUP))
    assert state(reports, GROUP_KEY) == "Accepted"
    (warning,) = reports[VS_KEY].warnings
    assert warning.startswith(f"{WHERE}: spec.destinations[0].destination.destinationSpec.rest.functionName:")


def test_apply_stores_a_broken_group_and_says_what_its_status_says(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with control_plane(tmp_path) as cp:
            await cp.install("gloo")
            uses = {"matchers": [{"prefix": "/"}], "routeAction": {"upstreamGroup": {"name": "petstore"}}}
            applied = cp.apply([static("petstore-0"), group(up("petstore-0", 0), up("gone", 1), ns="default")])
            assert actions(applied)[1] == ("upstreamgroup.gloo.solo.io/petstore", "created")
            error = (
                "spec.destinations[1].destination: destination # 2: upstream not found: "
                "list did not find upstream default.gone"
            )
            assert applied[1]["warnings"] == [f"upstreamgroup.gloo.solo.io/petstore is Rejected: {error}"]
            assert status(cp, "UpstreamGroup", "petstore") == {
                "state": "Rejected",
                "reportedBy": "gloo",
                "reason": error,
            }

            (result,) = cp.apply([front(uses)])  # strict mode: a warning does not refuse it
            assert result["action"] == "created" and "*v1.Upstream { default.gone } not found" in result["warnings"][0]
            assert status(cp, "VirtualService", "front")["state"] == "Warning"
            await cp.settle()
            port = cp.proxy_port
            assert port is not None
            answer = await fetch(port, "/")
            assert answer.status == 503 and 'upstream "gone" not found' in answer.text

    run(scenario())
