"""The translator: Gloo resources → RouteTable + per-resource reports.

Most tests build a tiny VirtualService, translate it next to two petstore upstreams,
and ask the translated table which destination a request reaches (``served``), so
they check matching end to end through ``RouteTable.select``.
"""

from __future__ import annotations

import copy
import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers.runtime.gloo import discovering
from helpers.runtime.gloo.functions import transformations_from_swagger
from helpers.runtime.gloo.translating import Report, gloo_status, translate, validate
from helpers.runtime.matching import RequestView
from helpers.runtime.routes import DirectResponse, Endpoint, Faults, HeaderOps, Redirect, RetryPolicy, RouteAction

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "translating"
NS = "gloo-system"
V1, V2 = "default-petstore-v1-8080", "default-petstore-v2-8080"
VS_KEY = ("VirtualService", NS, "coalmine")
ENDPOINTS = {
    ("default", "petstore-v1", 8080): [Endpoint("127.0.0.1", 9001)],
    ("default", "petstore-v2", 8080): [Endpoint("127.0.0.1", 9002), Endpoint("127.0.0.1", 9003)],
}
TRANSFORMATIONS = {
    "findPets": {"headers": {":method": {"text": "GET"}, ":path": {"text": "/api/pets"}}},
    "findPetById": {"headers": {":method": {"text": "GET"}, ":path": {"text": '/api/pets/{{ default(id, "") }}'}}},
}


# ── builders ─────────────────────────────────────────────────────────────────


def service(name: str, port: int = 8080, ns: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"ports": [{"port": port}], "selector": {"app": name}},
    }


def upstream(name: str, spec: dict[str, Any], ns: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Upstream",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def petstore_upstream(version: str, functions: bool = True) -> dict[str, Any]:
    kube: dict[str, Any] = {"serviceName": f"petstore-{version}", "serviceNamespace": "default", "servicePort": 8080}
    if functions:
        kube["serviceSpec"] = {"rest": {"transformations": TRANSFORMATIONS}}
    return upstream(f"default-petstore-{version}-8080", {"kube": kube})


BASE = [service("petstore-v1"), service("petstore-v2"), petstore_upstream("v1"), petstore_upstream("v2")]


def to(name: str, **dest: Any) -> dict[str, Any]:
    """A routeAction.single to upstream ``name`` (in gloo-system)."""
    return {"routeAction": {"single": {"upstream": {"name": name, "namespace": NS}, **dest}}}


def route(
    matchers: list[dict[str, Any]] | None = None, action: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    r: dict[str, Any] = {"matchers": matchers} if matchers is not None else {}
    return {**r, **(action if action is not None else to(V1)), **extra}


def vs(
    *routes: dict[str, Any], name: str = "coalmine", ns: str = NS, domains: list[str] | None = None, **vhost: Any
) -> dict[str, Any]:
    vh: dict[str, Any] = {"routes": list(routes), **vhost}
    if domains is not None:
        vh["domains"] = domains
    return {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"virtualHost": vh},
    }


def run(*resources: Any) -> tuple[Any, dict[tuple[str, str, str], Report]]:
    return translate([*copy.deepcopy(BASE), *resources], ENDPOINTS, version=7)


def req(
    path: str = "/",
    method: str = "GET",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    host: str = "localhost:8080",
) -> RequestView:
    return RequestView(method, host, path, query or {}, headers or {})


def served(table: Any, request: RequestView) -> str | None:
    """Where ``request`` goes: the first destination's cluster, ``direct 503``,
    ``redirect 301``, or None for a 404."""
    found = table.select(request)
    if found is None:
        return None
    action = found[0].action
    if isinstance(action, DirectResponse):
        return f"direct {action.status}"
    if isinstance(action, Redirect):
        return f"redirect {action.status}"
    return action.destinations[0].destination.cluster


def only_action(table: Any) -> Any:
    [vh] = table.virtual_hosts
    return vh.routes[0].action


def state(reports: dict[Any, Report], k: Any = VS_KEY) -> str:
    return reports[k].state


# ── matching, end to end through the translated table ────────────────────────


CANARY = route([{"exact": "/findPets", "headers": [{"name": "x-canary", "value": "true"}]}], to(V2))
PLAIN = route([{"exact": "/findPets"}], to(V1))


@pytest.mark.parametrize(
    "routes, canary_goes_to",
    [
        ([CANARY, PLAIN], V2),  # canary first: the header decides
        ([PLAIN, CANARY], V1),  # canary last: the plain route matches first, always
    ],
)
def test_first_match_wins_in_list_order(routes: list[dict[str, Any]], canary_goes_to: str) -> None:
    table, reports = run(vs(*routes))
    assert state(reports) == "Accepted"
    assert served(table, req("/findPets", headers={"x-canary": "true"})) == canary_goes_to
    assert served(table, req("/findPets")) == V1
    assert [r.source for r in table.virtual_hosts[0].routes] == [f"{NS}/coalmine routes[0]", f"{NS}/coalmine routes[1]"]


@pytest.mark.parametrize(
    "matcher, path, matches",
    [
        ({"prefix": "/api"}, "/api/pets", True),
        ({"prefix": "/api"}, "/ap", False),
        ({"exact": "/findPets"}, "/findPets", True),
        ({"exact": "/findPets"}, "/findPets/1", False),
        ({"regex": "/pets/[0-9]+"}, "/pets/12", True),
        ({"regex": "/pets/[0-9]+"}, "/pets/12/photo", False),  # a regex must match the whole path
        ({"exact": "/API"}, "/api", False),  # case-sensitive by default
        ({"exact": "/API", "caseSensitive": False}, "/api", True),
        ({"prefix": "/API", "caseSensitive": False}, "/api/x", True),
        ({"regex": "/API/.*", "caseSensitive": False}, "/api/x", True),
        ({}, "/anything", True),  # no path matcher means prefix /
    ],
)
def test_path_matchers(matcher: dict[str, Any], path: str, matches: bool) -> None:
    table, reports = run(vs(route([matcher])))
    assert state(reports) == "Accepted"
    assert served(table, req(path)) == (V1 if matches else None)


def test_no_matchers_behave_like_prefix_slash() -> None:
    table, _ = run(vs(route()))
    assert table.virtual_hosts[0].routes[0].matchers == ()
    assert served(table, req("/whatever/at/all")) == V1


@pytest.mark.parametrize(
    "headers, sent, matches",
    [
        ([{"name": "x-canary", "value": "true"}], {"x-canary": "true"}, True),
        ([{"name": "x-canary", "value": "true"}], {"x-canary": "false"}, False),
        ([{"name": "x-canary", "value": "true"}], {}, False),
        ([{"name": "X-Canary", "value": "true"}], {"x-canary": "true"}, True),  # names are case-insensitive
        ([{"name": "x-v", "value": "v[0-9]+", "regex": True}], {"x-v": "v12"}, True),
        ([{"name": "x-v", "value": "v[0-9]+", "regex": True}], {"x-v": "v12b"}, False),  # whole value
        ([{"name": "x-v", "value": "v[0-9]+"}], {"x-v": "v1"}, False),  # without regex: literal
        ([{"name": "x-debug"}], {"x-debug": "anything"}, True),  # no value: presence
        ([{"name": "x-debug"}], {}, False),
        ([{"name": "x-debug", "value": ""}], {"x-debug": "yes"}, True),  # empty value: presence too
        ([{"name": "x-debug", "invertMatch": True}], {}, True),
        ([{"name": "x-debug", "invertMatch": True}], {"x-debug": "1"}, False),
        ([{"name": "x", "value": "bar", "invertMatch": True}], {"x": "baz"}, True),
        ([{"name": "x", "value": "bar", "invertMatch": True}], {"x": "bar"}, False),
        ([{"name": "a", "value": "1"}, {"name": "b"}], {"a": "1", "b": "2"}, True),  # ANDed
        ([{"name": "a", "value": "1"}, {"name": "b"}], {"a": "1"}, False),
    ],
)
def test_header_matchers(headers: list[dict[str, Any]], sent: dict[str, str], matches: bool) -> None:
    table, reports = run(vs(route([{"prefix": "/", "headers": headers}])))
    assert state(reports) == "Accepted"
    assert served(table, req("/x", headers=sent)) == (V1 if matches else None)


@pytest.mark.parametrize(
    "matcher, request_, matches",
    [
        ({"queryParameters": [{"name": "v", "value": "2"}]}, req("/", query={"v": "2"}), True),
        ({"queryParameters": [{"name": "v", "value": "2"}]}, req("/", query={"v": "3"}), False),
        ({"queryParameters": [{"name": "v", "value": "[0-9]", "regex": True}]}, req("/", query={"v": "7"}), True),
        ({"queryParameters": [{"name": "v", "value": "[0-9]", "regex": True}]}, req("/", query={"v": "77"}), False),
        ({"queryParameters": [{"name": "v"}]}, req("/", query={"v": ""}), True),
        ({"queryParameters": [{"name": "v"}]}, req("/"), False),
        ({"methods": ["POST", "PUT"]}, req("/", method="PUT"), True),
        ({"methods": ["POST", "PUT"]}, req("/", method="GET"), False),
    ],
)
def test_query_and_method_matchers(matcher: dict[str, Any], request_: RequestView, matches: bool) -> None:
    table, reports = run(vs(route([matcher])))
    assert state(reports) == "Accepted"
    assert served(table, request_) == (V1 if matches else None)


def test_any_of_several_matchers_selects_the_route() -> None:
    table, _ = run(vs(route([{"exact": "/a"}, {"exact": "/b"}])))
    assert served(table, req("/a")) == V1 and served(table, req("/b")) == V1
    assert served(table, req("/c")) is None


def test_lower_case_method_warns() -> None:
    _, reports = run(vs(route([{"methods": ["get"]}])))
    assert reports[VS_KEY].warnings == [
        "spec.virtualHost.routes[0].matchers[0].methods[0]: "
        'HTTP methods are case-sensitive: "get" never matches; write "GET"'
    ]


# ── destinations ─────────────────────────────────────────────────────────────


def multi(*weights: int | None) -> dict[str, Any]:
    dests = []
    for name, w in zip((V2, V1), weights, strict=False):
        d: dict[str, Any] = {"destination": {"upstream": {"name": name, "namespace": NS}}}
        if w is not None:
            d["weight"] = w
        dests.append(d)
    return {"routeAction": {"multi": {"destinations": dests}}}


def test_single_destination() -> None:
    table, _ = run(vs(route(action=to(V2))))
    action = only_action(table)
    assert [(d.destination.cluster, d.weight) for d in action.destinations] == [(V2, 1)]
    assert table.clusters[V2].endpoints == (Endpoint("127.0.0.1", 9002), Endpoint("127.0.0.1", 9003))
    assert table.version == 7


@pytest.mark.parametrize(
    "weights, expected",
    [
        ((10, 90), [(V2, 10), (V1, 90)]),
        ((2, 6), [(V2, 2), (V1, 6)]),  # relative: need not sum to 100
        ((0, 5), [(V2, 0), (V1, 5)]),  # 0 is allowed per destination
        ((None, 1), [(V2, 0), (V1, 1)]),  # a missing weight is 0
    ],
)
def test_multi_weights_are_relative(weights: tuple[int | None, ...], expected: list[tuple[str, int]]) -> None:
    table, reports = run(vs(route(action=multi(*weights))))
    assert state(reports) == "Accepted"
    action = only_action(table)
    assert [(d.destination.cluster, d.weight) for d in action.destinations] == expected
    if expected[0][1] == 0:
        assert all(action.pick(i / 100).cluster == V1 for i in range(100))


@pytest.mark.parametrize(
    "action, message",
    [
        (
            multi(0, 0),
            "spec.virtualHost.routes[0].routeAction.multi.destinations: Weighted Destinations "
            "require a total weight that is greater than or equal to 1",
        ),
        (
            multi(None, None),
            "spec.virtualHost.routes[0].routeAction.multi.destinations: Weighted Destinations "
            "require a total weight that is greater than or equal to 1",
        ),
        (
            {"routeAction": {"multi": {"destinations": []}}},
            "spec.virtualHost.routes[0].routeAction.multi.destinations: at least one weighted destination is required",
        ),
    ],
)
def test_bad_weights_reject_the_virtual_service(action: dict[str, Any], message: str) -> None:
    table, reports = run(vs(route(action=action)))
    assert reports[VS_KEY].errors == [message]
    assert table.virtual_hosts == ()


def group(name: str, *weights: int) -> dict[str, Any]:
    return {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "UpstreamGroup",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "destinations": [
                {"destination": {"upstream": {"name": n, "namespace": NS}}, "weight": w}
                for n, w in zip((V2, V1), weights, strict=False)
            ]
        },
    }


def test_upstream_group_destinations() -> None:
    table, reports = run(
        group("petstore", 1, 3), vs(route(action={"routeAction": {"upstreamGroup": {"name": "petstore"}}}))
    )
    assert state(reports) == "Accepted" and state(reports, ("UpstreamGroup", NS, "petstore")) == "Accepted"
    assert [(d.destination.cluster, d.weight) for d in only_action(table).destinations] == [(V2, 1), (V1, 3)]


def test_missing_upstream_group_is_a_warning_and_a_503() -> None:
    table, reports = run(vs(route(action={"routeAction": {"upstreamGroup": {"name": "nope", "namespace": NS}}})))
    assert state(reports) == "Warning"
    assert "*v1.UpstreamGroup { gloo-system.nope } not found" in reports[VS_KEY].warnings[0]
    action = only_action(table)
    assert isinstance(action, DirectResponse) and action.status == 503 and "gloo-system.nope" in action.body


@pytest.mark.parametrize(
    "weights, problem",
    [
        ((0, 0), "Weighted Destinations require a total weight that is greater than or equal to 1"),
        ((), "at least one weighted destination is required"),
    ],
)
def test_a_group_without_weight_is_accepted_and_the_routes_using_it_are_rejected(
    weights: tuple[int, ...], problem: str
) -> None:
    # Gloo 1.22.1 accepts every UpstreamGroup; the route that uses one whose weights
    # add up to less than 1 gets the error, so its VirtualService is Rejected.
    uses_it = vs(route(action={"routeAction": {"upstreamGroup": {"name": "petstore"}}}))
    elsewhere = vs(route(action=to(V2)), name="other", domains=["other.example.com"])
    unweighted = group("petstore", *weights)
    if not weights:
        del unweighted["spec"]["destinations"]  # absent is empty, as protobuf reads it
    table, reports = run(unweighted, uses_it, elsewhere)
    assert validate(unweighted) == []
    assert state(reports, ("UpstreamGroup", NS, "petstore")) == "Accepted"
    assert reports[VS_KEY].errors == [
        f"spec.virtualHost.routes[0].routeAction.upstreamGroup: UpstreamGroup {NS}.petstore: {problem}"
    ]
    assert [vh.name for vh in table.virtual_hosts] == [f"{NS}.other"]
    assert served(table, req("/", host="other.example.com")) == V2


def test_a_route_table_using_a_group_without_weight_is_rejected_with_its_virtual_service() -> None:
    table_ = {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "RouteTable",
        "metadata": {"name": "rt", "namespace": NS},
        "spec": {"routes": [route([{"prefix": "/"}], {"routeAction": {"upstreamGroup": {"name": "petstore"}}})]},
    }
    front = vs(route([{"prefix": "/"}], {"delegateAction": {"ref": {"name": "rt", "namespace": NS}}}))
    table, reports = run(group("petstore", 0), table_, front)
    assert state(reports, ("UpstreamGroup", NS, "petstore")) == "Accepted"
    assert state(reports, ("RouteTable", NS, "rt")) == "Rejected"
    assert "Weighted Destinations require a total weight" in reports[("RouteTable", NS, "rt")].errors[0]
    assert state(reports) == "Rejected" and "on sub route table gloo-system.rt" in reports[VS_KEY].errors[0]
    assert table.virtual_hosts == ()


def kube(name: str, port: int = 8080) -> dict[str, Any]:
    return {"routeAction": {"single": {"kube": {"ref": {"name": name, "namespace": "default"}, "port": port}}}}


def test_kube_destination_builds_an_in_memory_upstream() -> None:
    table, reports = run(vs(route(action=kube("petstore-v2"))))
    assert state(reports) == "Accepted"
    assert served(table, req("/")) == "kube-svc:default-petstore-v2-8080"
    assert len(table.clusters["kube-svc:default-petstore-v2-8080"].endpoints) == 2


@pytest.mark.parametrize(
    "action, warning",
    [
        (kube("nope"), "*v1.Service { default.nope } not found"),
        (kube("petstore-v1", 9090), "Service default/petstore-v1 has no port 9090 (its ports: 8080)"),
    ],
)
def test_kube_destination_problems_are_warnings(action: dict[str, Any], warning: str) -> None:
    table, reports = run(vs(route(action=action)))
    assert state(reports) == "Warning" and warning in reports[VS_KEY].warnings[0]
    assert served(table, req("/")) not in table.clusters  # the proxy answers 503


def test_missing_upstream_is_a_warning_and_the_route_is_kept() -> None:
    table, reports = run(vs(route(action=to("does-not-exist")), route([{"prefix": "/ok"}])))
    assert reports[VS_KEY].errors == []
    assert reports[VS_KEY].warnings == [
        "spec.virtualHost.routes[0].routeAction.single.upstream: InvalidDestinationWarning: "
        "*v1.Upstream { gloo-system.does-not-exist } not found"
    ]
    assert served(table, req("/")) == "does-not-exist"
    assert "does-not-exist" not in table.clusters
    assert gloo_status(reports[VS_KEY])["statuses"][NS]["state"] == "Warning"


def test_missing_upstream_never_falls_onto_a_same_named_one() -> None:
    table, reports = run(
        vs(route(action={"routeAction": {"single": {"upstream": {"name": V1, "namespace": "other"}}}}))
    )
    assert "*v1.Upstream { other.default-petstore-v1-8080 } not found" in reports[VS_KEY].warnings[0]
    assert served(table, req("/")) == f"other.{V1}" and f"other.{V1}" not in table.clusters


def test_destination_namespace_defaults_to_the_virtual_service_namespace() -> None:
    table, reports = run(vs(route(action={"routeAction": {"single": {"upstream": {"name": V2}}}})))
    assert state(reports) == "Accepted" and served(table, req("/")) == V2


@pytest.mark.parametrize(
    "action, warning",
    [
        (
            {"routeAction": {"single": {"upstream": {"namespace": NS}}}},
            "spec.virtualHost.routes[0].routeAction.single.upstream: InvalidDestinationWarning: "
            "*v1.Upstream { gloo-system. } not found",
        ),
        (
            {"routeAction": {"single": {"upstream": {}}}},
            "spec.virtualHost.routes[0].routeAction.single.upstream: InvalidDestinationWarning: "
            "*v1.Upstream { gloo-system. } not found",
        ),
        (
            {
                "routeAction": {
                    "multi": {"destinations": [{"destination": {"upstream": {"namespace": NS}}, "weight": 1}]}
                }
            },
            "spec.virtualHost.routes[0].routeAction.multi.destinations[0].destination.upstream: "
            "InvalidDestinationWarning: *v1.Upstream { gloo-system. } not found",
        ),
        (
            {"routeAction": {"single": {"kube": {"ref": {"namespace": "default"}, "port": 8080}}}},
            "spec.virtualHost.routes[0].routeAction.single.kube: InvalidDestinationWarning: "
            "*v1.Service { default. } not found",
        ),
        (
            {"routeAction": {"upstreamGroup": {"namespace": NS}}},
            "spec.virtualHost.routes[0].routeAction.upstreamGroup: InvalidDestinationWarning: "
            "*v1.UpstreamGroup { gloo-system. } not found",
        ),
    ],
)
def test_a_destination_without_a_name_is_a_warning_and_serves_nothing(action: dict[str, Any], warning: str) -> None:
    # Gloo's CRD does not require the name: Gloo warns the upstream is not found and
    # Envoy answers 503 (no such cluster), while the other routes keep serving.
    assert validate(vs(route(action=action))) == []
    table, reports = run(vs(route([{"prefix": "/broken"}], action), route(action=to(V2))))
    assert state(reports) == "Warning" and reports[VS_KEY].warnings == [warning]
    where = served(table, req("/broken"))
    assert where == "direct 503" or where not in table.clusters
    assert served(table, req("/")) == V2


def test_a_group_destination_without_a_name_is_a_warning_on_the_route() -> None:
    nameless = {
        **group("petstore", 1),
        "spec": {"destinations": [{"destination": {"upstream": {"namespace": NS}}, "weight": 1}]},
    }
    assert validate(nameless) == []
    table, reports = run(nameless, vs(route(action={"routeAction": {"upstreamGroup": {"name": "petstore"}}})))
    assert reports[VS_KEY].errors == []
    assert served(table, req("/")) not in table.clusters  # the proxy answers 503


# ── upstreams ────────────────────────────────────────────────────────────────


def test_kube_upstream_has_endpoints_and_functions() -> None:
    table, reports = run()
    cluster = table.clusters[V1]
    assert cluster.endpoints == (Endpoint("127.0.0.1", 9001),)
    assert sorted(cluster.functions) == ["findPetById", "findPets"]
    assert dict(cluster.functions["findPets"].headers)[":path"] == "/api/pets"
    assert {k: r.state for k, r in reports.items()} == {
        ("Service", "default", "petstore-v1"): "Accepted",
        ("Service", "default", "petstore-v2"): "Accepted",
        ("Upstream", NS, V1): "Accepted",
        ("Upstream", NS, V2): "Accepted",
    }


def test_discovered_upstreams_validate_and_carry_functions() -> None:
    swagger = {
        "swagger": "2.0",
        "basePath": "/api",
        "paths": {
            "/pets": {
                "get": {"operationId": "findPets"},
                "post": {"operationId": "addPet", "parameters": [{"in": "body", "name": "pet"}]},
            },
            "/pets/{id}": {"get": {"operationId": "findPetById", "parameters": [{"in": "path", "name": "id"}]}},
        },
    }
    [found] = discovering.upstreams_for(service("petstore-v1"))
    found = discovering.with_functions(
        found, discovering.swagger_url(found, "/swagger.json"), transformations_from_swagger(swagger)
    )
    assert validate(found) == []
    table, reports = translate([service("petstore-v1"), found], ENDPOINTS)
    assert state(reports, ("Upstream", NS, V1)) == "Accepted"
    assert sorted(table.clusters[V1].functions) == ["addPet", "findPetById", "findPets"]
    assert table.clusters[V1].functions["addPet"].body is None  # a body parameter passes the body through


def test_static_upstream_and_name_collisions() -> None:
    static = {"static": {"hosts": [{"addr": "127.0.0.1", "port": 7000}]}}
    table, reports = run(upstream("echo", static, ns="default"), upstream("echo", static, ns="team"))
    assert table.clusters["echo"].endpoints == (Endpoint("127.0.0.1", 7000),)
    assert "team.echo" in table.clusters  # the later namespace gets a qualified name
    assert state(reports, ("Upstream", "team", "echo")) == "Accepted"


@pytest.mark.parametrize(
    "spec, error",
    [
        ({"aws": {"region": "us-east-1"}}, "spec.aws: not supported by the local runtime"),
        ({}, "spec: an upstream needs a type"),
        (
            {"kube": {"serviceName": "x", "servicePort": 80}, "static": {"hosts": []}},
            "spec: only one of kube, static, pipe, aws, azure, consul, awsEc2, gcp, ai may be set",
        ),
        ({"kube": {"serviceName": "x"}}, "spec.kube.servicePort: required field is missing"),
    ],
)
def test_bad_upstreams_are_rejected(spec: dict[str, Any], error: str) -> None:
    table, reports = run(upstream("bad", spec), vs(route(action=to("bad"))))
    assert reports[("Upstream", NS, "bad")].errors[0].startswith(error)
    assert "bad" not in table.clusters
    assert "*v1.Upstream { gloo-system.bad } is Rejected" in reports[VS_KEY].warnings[0]


# ── actions ──────────────────────────────────────────────────────────────────


def test_direct_response_and_redirect() -> None:
    table, reports = run(
        vs(
            route([{"exact": "/gone"}], {"directResponseAction": {"status": 410, "body": "bye"}}),
            route(
                [{"prefix": "/old"}],
                {
                    "redirectAction": {
                        "pathRedirect": "/new",
                        "responseCode": "PERMANENT_REDIRECT",
                        "httpsRedirect": True,
                        "hostRedirect": "example.com",
                    }
                },
            ),
            route([{"prefix": "/moved"}], {"redirectAction": {"prefixRewrite": "/m"}}),
        )
    )
    assert state(reports) == "Accepted"
    routes = table.virtual_hosts[0].routes
    assert routes[0].action == DirectResponse(410, "bye")
    assert routes[1].action == Redirect(308, "example.com", "/new", None, "https")
    assert routes[2].action == Redirect(301, None, None, "/m", None)


@pytest.mark.parametrize(
    "bad_route, error",
    [
        ({"matchers": [{"prefix": "/"}]}, "spec.virtualHost.routes[0]: route has no action"),
        (
            {**to(V1), "directResponseAction": {"status": 200}},
            "spec.virtualHost.routes[0]: only one of routeAction, directResponseAction, redirectAction, "
            "delegateAction, "
            "graphqlApiRef may be set, found routeAction and directResponseAction",
        ),
        (
            {"matchers": [{"exact": "/rt"}], "delegateAction": {"ref": {"name": "rt", "namespace": NS}}},
            "spec.virtualHost.routes[0].matchers: invalid route: routes with delegate actions must use a prefix",
        ),
        ({"routeAction": {}}, "spec.virtualHost.routes[0].routeAction: routeAction needs one of"),
    ],
)
def test_route_action_problems_reject(bad_route: dict[str, Any], error: str) -> None:
    table, reports = run(vs(bad_route))
    assert any(e.startswith(error) for e in reports[VS_KEY].errors), reports[VS_KEY].errors
    assert table.virtual_hosts == ()


@pytest.mark.parametrize(
    "matcher, path",
    [
        ({"regex": "/pets/(["}, "spec.virtualHost.routes[0].matchers[0].regex"),
        (
            {"headers": [{"name": "x", "value": "a(", "regex": True}]},
            "spec.virtualHost.routes[0].matchers[0].headers[0].value",
        ),
        (
            {"queryParameters": [{"name": "q", "value": "*", "regex": True}]},
            "spec.virtualHost.routes[0].matchers[0].queryParameters[0].value",
        ),
    ],
)
def test_bad_regex_is_rejected_with_the_field_path(matcher: dict[str, Any], path: str) -> None:
    table, reports = run(vs(route([matcher])))
    [error] = reports[VS_KEY].errors
    assert error.startswith(f"{path}: invalid regex")
    assert re.search(r"RE2 refuses it: (missing|unterminated|no argument for repetition)", error)
    assert table.virtual_hosts == ()


def test_header_value_without_regex_is_not_compiled() -> None:
    _, reports = run(vs(route([{"headers": [{"name": "x", "value": "a("}]}])))
    assert state(reports) == "Accepted"


# ── virtual services together ────────────────────────────────────────────────


@pytest.mark.parametrize(
    "domains_a, domains_b, domain",
    [
        (None, None, "*"),  # both default to '*'
        (["*"], None, "*"),
        (["pets.example.com"], ["api.example.com", "Pets.example.com"], "pets.example.com"),
    ],
)
def test_duplicate_domain_is_an_error_on_both(domains_a: Any, domains_b: Any, domain: str) -> None:
    other = vs(route(), name="other", ns="default", domains=["other.example.com"])
    table, reports = run(vs(route(), name="a", domains=domains_a), vs(route(), name="b", domains=domains_b), other)
    a, b = reports[("VirtualService", NS, "a")], reports[("VirtualService", NS, "b")]
    assert a.state == b.state == "Rejected"
    assert f"the [{domain}] domain is also claimed by VirtualService {NS}/b" in a.errors[0]
    assert f"the [{domain}] domain is also claimed by VirtualService {NS}/a" in b.errors[0]
    assert [vh.name for vh in table.virtual_hosts] == ["default.other"]  # the rest is still built


def no_virtual_host(name: str = "empty") -> dict[str, Any]:
    return {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"displayName": "nothing yet"},
    }


def test_a_virtual_service_without_a_virtual_host_is_a_warning_and_serves_nothing() -> None:
    # Gloo 1.22.1: NoVirtualHostErr is a warning; the VirtualService becomes an empty
    # virtual host (no routes), so Envoy answers its requests 404.
    assert validate(no_virtual_host()) == []
    key = ("VirtualService", NS, "empty")
    good = vs(route(action=to(V2)), name="good", domains=["good.example.com"])
    table, reports = run(no_virtual_host(), good)
    assert reports[key].errors == []
    assert reports[key].warnings == [
        f"spec.virtualHost: virtual service [{NS}.empty] does not specify a virtual host (it serves no routes)"
    ]
    assert gloo_status(reports[key])["statuses"][NS]["state"] == "Warning"
    assert served(table, req("/", host="anything.example.com")) is None
    assert served(table, req("/", host="good.example.com")) == V2


def test_a_virtual_service_without_a_virtual_host_still_claims_the_default_domain() -> None:
    # Its empty virtual host has no domains, which Gloo serves as "*": another
    # VirtualService on "*" is a domain conflict (Gloo's DomainsNotUniqueError).
    table, reports = run(no_virtual_host(), vs(route(), name="star", domains=["*"]))
    assert state(reports, ("VirtualService", NS, "empty")) == "Rejected"
    assert state(reports, ("VirtualService", NS, "star")) == "Rejected"
    assert table.virtual_hosts == ()


def test_rejected_virtual_service_leaves_the_others_serving() -> None:
    bad = vs(route([{"regex": "("}]), name="bad", domains=["bad.example.com"])
    good = vs(route(action=to(V2)), name="good", domains=["good.example.com"])
    table, reports = run(bad, good)
    assert state(reports, ("VirtualService", NS, "bad")) == "Rejected"
    assert served(table, req("/", host="good.example.com")) == V2
    assert served(table, req("/", host="bad.example.com")) is None


def test_virtual_hosts_are_ordered_by_namespace_then_name() -> None:
    services = [
        vs(route(), name=n, ns=ns, domains=[f"{ns}.{n}"]) for ns, n in [("zeta", "a"), ("alpha", "b"), ("alpha", "a")]
    ]
    table, _ = run(*services)
    assert [vh.name for vh in table.virtual_hosts] == ["alpha.a", "alpha.b", "zeta.a"]
    assert table.virtual_hosts[0].domains == ("alpha.a",)


def test_every_input_resource_gets_a_report_and_other_kinds_are_ignored() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    table, reports = translate([*BASE, cm, vs(route()), group("g", 1)], ENDPOINTS)
    assert set(reports) == {
        ("Service", "default", "petstore-v1"),
        ("Service", "default", "petstore-v2"),
        ("Upstream", NS, V1),
        ("Upstream", NS, V2),
        VS_KEY,
        ("UpstreamGroup", NS, "g"),
    }
    assert table.version == 0


@pytest.mark.parametrize(
    "garbage",
    [
        {
            "apiVersion": "gateway.solo.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "coalmine", "namespace": NS},
        },
        {
            "apiVersion": "gateway.solo.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "coalmine", "namespace": NS},
            "spec": ["not", "a", "map"],
        },
        vs("not a route"),
        vs(route(action={"routeAction": {"single": None}})),
        vs(route(action={"routeAction": {"multi": {"destinations": [{"weight": 1}]}}})),
        vs(route([{"headers": "x-canary"}])),
        vs(route(options={"timeout": 15})),
        vs(route(options={"timeout": "soon"})),
        {**vs(route()), "spec": {"virtualHost": {"routes": {"a": 1}}}},
        {"apiVersion": "gateway.solo.io/v1", "kind": "VirtualService", "metadata": {"namespace": NS}, "spec": {}},
        {"apiVersion": "gateway.solo.io/v1", "kind": "VirtualService", "metadata": ["coalmine"], "spec": {}},
        {
            **vs(route()),
            "spec": {
                "virtualHost": {
                    "routes": [route([{"prefix": "/", "headers": [{"name": ["x"]}]}]), route([{"regex": 5}])],
                    "domains": [None, 3],
                }
            },
        },
    ],
)
def test_translate_never_raises_on_bad_input(garbage: Any) -> None:
    good = vs(route(), name="good", domains=["good.example.com"])
    table, reports = run(garbage, good, "not even a mapping", None)
    rejected = [k for k, r in reports.items() if r.state == "Rejected"]
    assert rejected and all(k[0] == "VirtualService" and k[2] != "good" for k in rejected)
    assert [vh.name for vh in table.virtual_hosts] == [f"{NS}.good"]


def test_translate_survives_random_damage() -> None:
    """Seeded fuzzing: junk dropped anywhere in a valid canary setup is reported on
    the resource it damaged, never raised and never an internal translator error."""
    case = yaml.safe_load((GOLDEN / "header-canary-and-split.yaml").read_text())
    base = case["resources"]

    def places(value: Any, path: tuple[Any, ...] = ()) -> Any:
        yield path
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for k, v in items:
            yield from places(v, (*path, k))

    spots = [p for p in places(base) if p]
    junk = [None, 0, -1, 2.5, True, "", "x", [], [None], {}, {"name": 1}, "/{a}/{a}", "(", 10**12]
    rng = random.Random(20190312)
    for _ in range(400):
        resources = copy.deepcopy(base)
        *parents, last = rng.choice(spots)
        target = resources
        for p in parents:
            target = target[p]
        target[last] = copy.deepcopy(rng.choice(junk))
        _table, reports = translate(resources, {})
        problems = [e for r in reports.values() for e in r.errors if "internal translator error" in e]
        assert problems == [], (parents, last)


# ── options ──────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "timeout, seconds",
    [
        (None, 15.0),  # Gloo's default
        ("15s", 15.0),
        ("0.5s", 0.5),
        ("100ms", 0.1),
        ("1m30s", 90.0),
        ("0s", None),  # 0 disables the timeout
    ],
)
def test_timeout(timeout: Any, seconds: float | None) -> None:
    options = {"timeout": timeout} if timeout is not None else {}
    table, reports = run(vs(route(options=options)))
    assert state(reports) == "Accepted"
    if seconds is None:
        assert only_action(table).timeout is None
    else:
        assert only_action(table).timeout == pytest.approx(seconds)


@pytest.mark.parametrize(
    "timeout, seconds",
    [("0", None), ("+2s", 2.0), ("1.5h", 5400.0), ("1.s", 1.0), (".5s", 0.5), ("300us", 0.0003), ("2µs", 2e-6)],
)
def test_durations_read_as_gloo_reads_them_go_syntax(timeout: str, seconds: float | None) -> None:
    # Gloo reads resources with golang/protobuf's jsonpb (v1.5.4), whose Duration is
    # Go's time.ParseDuration: "100ms" and "1m30s" are valid, as is a bare "0".
    table, reports = run(vs(route(options={"timeout": timeout})))
    assert state(reports) == "Accepted"
    assert only_action(table).timeout == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize(
    "timeout, message",
    [
        ("5", 'missing unit in duration "5": write e.g. "5s"'),
        ("1d", 'invalid duration "1d": write e.g. "10s", "1m" or "1m30s"'),
        ("10 s", 'invalid duration "10 s": write e.g. "10s", "1m" or "1m30s"'),
        ("", 'invalid duration "": write e.g. "10s", "1m" or "1m30s"'),
        ("-1s", "a duration cannot be negative (Envoy refuses it)"),
        (15, 'expected a duration such as "15s" or "100ms", got number 15 (write "15s")'),
    ],
)
def test_a_duration_gloo_cannot_read_is_refused_with_the_right_form(timeout: Any, message: str) -> None:
    assert validate(vs(route(options={"timeout": timeout}))) == [
        f"spec.virtualHost.routes[0].options.timeout: {message}"
    ]


@pytest.mark.parametrize("timeout", [{"seconds": 2, "nanos": 500000000}, {"seconds": 0}])
def test_a_duration_given_as_an_object_is_refused_as_the_crd_types_it_string(timeout: Any) -> None:
    _, reports = run(vs(route(options={"timeout": timeout})))
    assert state(reports) == "Rejected"
    assert any("expected a duration string" in e for r in reports.values() for e in r.errors)


def test_route_options_are_parsed_into_the_route_action() -> None:
    options = {
        "prefixRewrite": "/api/pets",
        "retries": {"retryOn": "5xx, connect-failure", "numRetries": 3, "perTryTimeout": "2s"},
        "faults": {"abort": {"percentage": 12.5, "httpStatus": 418}, "delay": {"percentage": 50, "fixedDelay": "1.5s"}},
        "headerManipulation": {
            "requestHeadersToAdd": [
                {"header": {"key": "X-Lab", "value": "coalmine"}},
                {"header": {"key": "x-once", "value": "1"}, "append": False},
            ],
            "requestHeadersToRemove": ["Cookie"],
            "responseHeadersToAdd": [{"header": {"key": "x-served-by", "value": "gateway"}}],
            "responseHeadersToRemove": ["server"],
        },
    }
    table, reports = run(vs(route(options=options)))
    assert state(reports) == "Accepted", reports[VS_KEY]
    action = only_action(table)
    assert isinstance(action, RouteAction)
    assert action.prefix_rewrite == "/api/pets"
    assert action.retries == RetryPolicy(frozenset({"5xx", "connect-failure"}), 3, 2.0)
    assert action.faults == Faults(12.5, 418, 50.0, 1.5)
    assert action.header_ops == HeaderOps(
        (("x-lab", "coalmine", True), ("x-once", "1", False)),
        frozenset({"cookie"}),
        (("x-served-by", "gateway", True),),
        frozenset({"server"}),
    )


def test_retries_default_to_one() -> None:
    table, _ = run(vs(route(options={"retries": {"retryOn": "gateway-error"}})))
    assert only_action(table).retries == RetryPolicy(frozenset({"gateway-error"}), 1, None)


def test_virtual_host_header_manipulation_applies_to_every_route() -> None:
    vh_options = {"headerManipulation": {"responseHeadersToAdd": [{"header": {"key": "x-vh", "value": "1"}}]}}
    route_ops = {"headerManipulation": {"responseHeadersToAdd": [{"header": {"key": "x-route", "value": "2"}}]}}
    table, reports = run(
        vs(route([{"prefix": "/a"}], options=route_ops), route([{"prefix": "/b"}]), options=vh_options)
    )
    assert state(reports) == "Accepted"
    a, b = (r.action for r in table.virtual_hosts[0].routes)
    assert a.header_ops.response_add == (("x-route", "2", True), ("x-vh", "1", True))  # route first, as Envoy
    assert b.header_ops.response_add == (("x-vh", "1", True),)


@pytest.mark.parametrize("delay, ok", [("0.5s", False), ("999ms", False), ("1s", True), ("3s", True)])
def test_fault_delay_under_one_second_is_rejected(delay: str, ok: bool) -> None:
    _, reports = run(vs(route(options={"faults": {"delay": {"percentage": 100, "fixedDelay": delay}}})))
    if ok:
        assert state(reports) == "Accepted"
    else:
        [error] = reports[VS_KEY].errors
        assert error.startswith(
            "spec.virtualHost.routes[0].options.faults.delay.fixedDelay: a fault delay must be at least 1s"
        )


@pytest.mark.parametrize(
    "options, severity, message",
    [
        (
            {"cors": {"allowOrigin": ["*"]}},
            "warning",
            "spec.virtualHost.routes[0].options.cors: not supported by the local runtime; ignored",
        ),
        ({"shadowing": {"upstream": {"name": V2}}}, "warning", "options.shadowing: not supported"),
        ({"retries": {"numRetries": 2}}, "warning", "options.retries.retryOn: no retry conditions"),
        ({"retries": {"retryOn": "5xx,sometimes"}}, "warning", '"sometimes" is not a retry condition'),
        ({"teleport": True}, "error", "spec.virtualHost.routes[0].options.teleport: unknown field"),
        (
            {"faults": {"abort": {"percentage": 120, "httpStatus": 503}}},
            "error",
            "options.faults.abort.percentage: 120 is out of range",
        ),
        (
            {"headerManipulation": {"requestHeadersToAdd": [{"header": {"key": ":path", "value": "/"}}]}},
            "error",
            '":path" cannot be added',
        ),
    ],
)
def test_unsupported_and_unknown_options(options: dict[str, Any], severity: str, message: str) -> None:
    table, reports = run(vs(route(options=options)))
    found = reports[VS_KEY].warnings if severity == "warning" else reports[VS_KEY].errors
    assert any(message in m for m in found), reports[VS_KEY]
    assert (len(table.virtual_hosts) == 1) == (severity == "warning")


def test_options_on_a_direct_response_are_ignored_with_a_warning() -> None:
    _, reports = run(vs(route(action={"directResponseAction": {"status": 200}}, options={"prefixRewrite": "/x"})))
    assert reports[VS_KEY].warnings == [
        "spec.virtualHost.routes[0].options.prefixRewrite: applies only to routeAction routes; ignored"
    ]


# ── REST functions ───────────────────────────────────────────────────────────


def test_rest_destination_with_parameters_is_compiled() -> None:
    rest = {"rest": {"functionName": "findPetById", "parameters": {"headers": {":path": "/findPetWithId/{id}"}}}}
    table, reports = run(vs(route([{"prefix": "/findPetWithId/"}], to(V1, destinationSpec=rest))))
    assert state(reports) == "Accepted"
    call = only_action(table).destinations[0].destination.rest
    assert call.function == "findPetById"
    [(header, pattern)] = call.parameters
    assert header == ":path"
    m = pattern.fullmatch("/findPetWithId/42")
    assert m is not None and m.group("id") == "42"


@pytest.mark.parametrize(
    "rest, severity, message",
    [
        (
            {"functionName": "deletePet"},
            "warning",
            "destinationSpec.rest.functionName: function deletePet not found on upstream default-petstore-v1-8080 "
            "(its functions: findPetById, findPets)",
        ),
        (
            {"functionName": "findPetById", "parameters": {"headers": {":path": "/{id}/{id}"}}},
            "error",
            'destinationSpec.rest.parameters.headers[":path"]: invalid parameter template "/{id}/{id}"',
        ),
        ({"parameters": {}}, "error", "destinationSpec.rest.functionName: required field is missing"),
    ],
)
def test_rest_destination_problems(rest: dict[str, Any], severity: str, message: str) -> None:
    _, reports = run(vs(route(action=to(V1, destinationSpec={"rest": rest}))))
    found = reports[VS_KEY].warnings if severity == "warning" else reports[VS_KEY].errors
    assert any(message in m for m in found), reports[VS_KEY]
    assert state(reports) == ("Warning" if severity == "warning" else "Rejected")


# ── schema: unknown fields, types, the 2019 spellings ────────────────────────


@pytest.mark.parametrize(
    "resource, error",
    [
        (
            vs({"matcher": {"prefix": "/"}, **to(V1)}),
            "spec.virtualHost.routes[0].matcher: unknown field; use `matchers: [...]` (Gloo 1.x)",
        ),
        (
            vs(route(routePlugins={"prefixRewrite": {"prefixRewrite": "/api"}})),
            "spec.virtualHost.routes[0].routePlugins: unknown field; use `options`",
        ),
        (
            upstream("old", {"upstreamSpec": {"kube": {"serviceName": "petstore", "servicePort": 8080}}}),
            "spec.upstreamSpec: unknown field; fields moved under `spec`",
        ),
    ],
)
def test_2019_spellings_get_hints(resource: dict[str, Any], error: str) -> None:
    errors = validate(resource)
    assert errors and errors[0].startswith(error), errors
    _, reports = translate([resource], {})
    assert reports[next(iter(reports))].errors == errors  # translate() reports validate()'s errors


@pytest.mark.parametrize(
    "mutate, error",
    [
        (
            lambda r: r["spec"]["virtualHost"].update(name="default"),
            "spec.virtualHost.name: unknown field; virtualHost.name was removed in Gloo 1.x",
        ),
        (
            lambda r: r["spec"]["virtualHost"]["routes"][0]["routeAction"]["multi"]["destinations"][0].update(
                weight="10"
            ),
            "spec.virtualHost.routes[0].routeAction.multi.destinations[0].weight: expected a number, "
            'got string "10" (remove the quotes)',
        ),
        (
            lambda r: r["spec"]["virtualHost"]["routes"][0].update(
                matchers=[{"headers": [{"name": "x", "value": True}]}]
            ),
            "spec.virtualHost.routes[0].matchers[0].headers[0].value: "
            'expected a string, got boolean true (quote it: "true")',
        ),
        (
            lambda r: r["spec"]["virtualHost"]["routes"][0].update(matchers={"prefix": "/"}),
            "spec.virtualHost.routes[0].matchers: expected a list",
        ),
        (
            lambda r: r["spec"]["virtualHost"]["routes"][0].update(matchers=[{"prefix": "/", "exact": "/"}]),
            "spec.virtualHost.routes[0].matchers[0]: only one of prefix, exact, regex, connectMatcher may be set",
        ),
        (
            lambda r: r["spec"]["virtualHost"].update(domains=["a", "a"]),
            'spec.virtualHost.domains: domain "a" is listed twice',
        ),
        (
            lambda r: r.update(apiVersion="gateway.solo.io/v1beta1"),
            'apiVersion: VirtualService is "gateway.solo.io/v1"',
        ),
        (lambda r: r["spec"].update(virtualHost=[]), "spec.virtualHost: expected an object"),
        (
            lambda r: r["spec"]["virtualHost"]["routes"][0].update(colour="blue"),
            "spec.virtualHost.routes[0].colour: unknown field (known here: delegateAction, directResponseAction",
        ),
    ],
)
def test_validate_names_the_field_path(mutate: Any, error: str) -> None:
    resource = vs(route(action=multi(10, 90)))
    assert validate(resource) == []
    mutate(resource)
    errors = validate(resource)
    assert any(e.startswith(error) for e in errors), errors


def test_validate_leaves_other_kinds_alone() -> None:
    assert validate(service("petstore-v1")) == []
    assert validate({"apiVersion": "gateway.solo.io/v1", "kind": "RouteOption", "metadata": {"name": "x"}}) == [
        "kind: RouteOption is not supported by the local runtime "
        "(it serves VirtualService, Upstream, RouteTable, UpstreamGroup)"
    ]
    assert validate(petstore_upstream("v1")) == []


# ── statuses ─────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "report, status",
    [
        (Report([], []), {"state": "Accepted", "reportedBy": "gateway"}),
        (Report([], ["w1", "w2"]), {"state": "Warning", "reportedBy": "gateway", "reason": "w1; w2"}),
        (Report(["e1"], ["w1"]), {"state": "Rejected", "reportedBy": "gateway", "reason": "e1; w1"}),
    ],
)
def test_gloo_status_shapes(report: Report, status: dict[str, str]) -> None:
    assert gloo_status(report) == {"statuses": {"gloo-system": status}}
    assert gloo_status(report, "gloo")["statuses"]["gloo-system"]["reportedBy"] == "gloo"


# ── the lab's own manifests, and golden cases ────────────────────────────────


@pytest.mark.parametrize("path", sorted((ROOT / "manifests" / "gloo").glob("*.yaml")), ids=lambda p: p.name)
def test_lab_manifests_translate_cleanly(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert all(validate(d) == [] for d in docs)
    table, reports = run(*docs)
    assert all(r.state == "Accepted" for r in reports.values()), {
        k: r for k, r in reports.items() if r.state != "Accepted"
    }
    assert served(table, req("/findPets")) in (V1, V2)
    assert served(table, req("/nothing-here")) is None


def test_golden_cases_exist() -> None:
    assert len(list(GOLDEN.glob("*.yaml"))) >= 3


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.yaml")), ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    """Each file: ``resources`` in, expected report states, messages and routing out."""
    case = yaml.safe_load(path.read_text())
    endpoints = {}
    for where, addresses in (case.get("endpoints") or {}).items():
        ns, svc, port = where.split("/")
        endpoints[(ns, svc, int(port))] = [Endpoint(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in addresses]
    table, reports = translate(case["resources"], endpoints)
    for ref, want in case["expect"]["reports"].items():
        report = reports[tuple(ref.split("/"))]
        assert report.state == want["state"], (ref, report)
        for text in want.get("errors", []):
            assert any(text in e for e in report.errors), (ref, text, report.errors)
        for text in want.get("warnings", []):
            assert any(text in w for w in report.warnings), (ref, text, report.warnings)
    for r in case["expect"].get("requests", []):
        got = served(
            table, req(r["path"], r.get("method", "GET"), r.get("headers"), r.get("query"), r.get("host", "localhost"))
        )
        assert got == r["to"], (r, got)
