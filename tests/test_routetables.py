"""RouteTables and ``delegateAction`` in the translator, with Gloo 1.22's rules.

Each test translates a VirtualService that delegates to RouteTables next to the two
petstore upstreams, then asks the table where requests go (``served``) and what the
reports say (the statuses Gloo would write).
"""

from __future__ import annotations

import copy
from typing import Any

from helpers.runtime.gloo.translating import gloo_status, translate, validate
from helpers.runtime.routes import Endpoint

from .test_translating import BASE, ENDPOINTS, NS, V1, V2, VS_KEY, req, route, served, to, upstream, vs

APPS = "apps"


def rt(
    name: str, *routes: dict[str, Any], ns: str = APPS, weight: int | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"routes": list(routes)}
    if weight is not None:
        spec["weight"] = weight
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "gateway.solo.io/v1", "kind": "RouteTable", "metadata": meta, "spec": spec}


def delegate(prefix: str | None = "/", **action: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"delegateAction": action}
    return {**r, "matchers": [{"prefix": prefix}]} if prefix is not None else r


def by_ref(name: str, ns: str = APPS, prefix: str | None = "/", **extra: Any) -> dict[str, Any]:
    return {**delegate(prefix, ref={"name": name, "namespace": ns}), **extra}


def direct(status: int, prefix: str | None = None, **extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"directResponseAction": {"status": status}, **extra}
    return {"matchers": [{"prefix": prefix}], **r} if prefix is not None else r


def run(*resources: Any) -> tuple[Any, dict[tuple[str, str, str], Any]]:
    return translate([*copy.deepcopy(BASE), *resources], ENDPOINTS)


def key(name: str, ns: str = APPS) -> tuple[str, str, str]:
    return ("RouteTable", ns, name)


def sources(table: Any) -> list[str]:
    return [r.source for r in table.virtual_hosts[0].routes]


# ── delegation by reference ──────────────────────────────────────────────────


def test_a_ref_replaces_the_route_with_the_tables_routes_in_place() -> None:
    table, reports = run(
        vs(route([{"exact": "/first"}], to(V2)), by_ref("pets", prefix="/api"), route([{"prefix": "/"}], to(V2))),
        rt("pets", route([{"prefix": "/api/pets"}], to(V1)), direct(418, "/api/tea")),
    )
    assert reports[VS_KEY].state == reports[key("pets")].state == "Accepted"
    assert sources(table) == [
        f"{NS}/coalmine routes[0]",
        "rt:apps/pets routes[0]",
        "rt:apps/pets routes[1]",
        f"{NS}/coalmine routes[2]",
    ]
    assert served(table, req("/api/pets/1")) == V1
    assert served(table, req("/api/tea")) == "direct 418"
    assert served(table, req("/api/other")) == V2  # no child route matched: on to the next route
    assert gloo_status(reports[key("pets")]) == {
        "statuses": {"gloo-system": {"state": "Accepted", "reportedBy": "gateway"}}
    }


def test_the_older_flat_name_and_namespace_form_still_delegates() -> None:
    table, reports = run(vs(delegate(name="pets", namespace=APPS)), rt("pets", route([{"prefix": "/"}], to(V2))))
    assert reports[VS_KEY].state == "Accepted" and served(table, req("/x")) == V2


def test_an_upstream_without_namespace_is_looked_up_in_the_tables_namespace() -> None:
    local = upstream("local", {"static": {"hosts": [{"addr": "127.0.0.1", "port": 9500}]}}, ns=APPS)
    table, reports = run(
        local,
        vs(by_ref("pets")),  # the VirtualService is in gloo-system, which has no "local"
        rt("pets", route([{"prefix": "/"}], {"routeAction": {"single": {"upstream": {"name": "local"}}}})),
    )
    assert reports[key("pets")].state == reports[VS_KEY].state == "Accepted"
    assert served(table, req("/")) == "local"


def test_a_missing_table_is_a_warning_on_the_parent_and_the_route_serves_nothing() -> None:
    table, reports = run(vs(by_ref("ghost"), route([{"prefix": "/"}], to(V2))))
    assert reports[VS_KEY].state == "Warning"
    assert reports[VS_KEY].warnings == ["spec.virtualHost.routes[0].delegateAction: route table apps.ghost missing"]
    assert served(table, req("/x")) == V2


def test_a_ref_without_namespace_finds_nothing_as_in_gloo() -> None:
    _, reports = run(vs(delegate(ref={"name": "pets"})), rt("pets", direct(200), ns="gloo-system"))
    (warning,) = reports[VS_KEY].warnings
    assert "route table .pets missing" in warning and "add one" in warning


def test_a_ref_without_a_name_is_valid_warns_as_gloo_and_serves_nothing_there() -> None:
    # Neither the CRD nor Gloo's webhook requires the name: Gloo 1.22.1 looks up
    # "<namespace>." (RouteTableMissingWarning), warns, and the other routes serve.
    nameless = vs(delegate("/tables", ref={"namespace": APPS}), route([{"prefix": "/"}], to(V2)))
    assert validate(nameless) == []
    table, reports = run(nameless, rt("pets", direct(200), ns=APPS))
    (warning,) = reports[VS_KEY].warnings
    assert warning.startswith("spec.virtualHost.routes[0].delegateAction: route table apps. missing")
    assert "no name" in warning and reports[VS_KEY].state == "Warning"
    assert served(table, req("/tables/x")) == V2, "the delegating route serves nothing: the next route answers"


def test_a_missing_table_in_a_nested_table_is_reported_on_both() -> None:
    _, reports = run(vs(by_ref("outer")), rt("outer", by_ref("ghost")))
    assert reports[key("outer")].warnings == ["spec.routes[0].delegateAction: route table apps.ghost missing"]
    assert reports[VS_KEY].warnings == [
        "on sub route table apps.outer: spec.routes[0].delegateAction: route table apps.ghost missing"
    ]


def test_a_table_nobody_delegates_to_is_accepted_and_serves_nothing() -> None:
    table, reports = run(vs(route([{"prefix": "/"}], to(V1))), rt("lonely", direct(500)))
    assert reports[key("lonely")].state == "Accepted" and served(table, req("/")) == V1


# ── delegation by selector ───────────────────────────────────────────────────


def test_a_selector_picks_by_labels_in_the_parents_namespace_by_default() -> None:
    table, reports = run(
        vs(delegate(selector={"labels": {"team": "pets"}}), ns=APPS, name="front"),
        rt("a", route([{"prefix": "/a"}], to(V1)), labels={"team": "pets"}),
        rt("b", route([{"prefix": "/b"}], to(V2)), labels={"team": "pets", "extra": "yes"}),
        rt("c", direct(500, "/c"), labels={"team": "birds"}),
        rt("d", direct(500, "/d"), labels={"team": "pets"}, ns="other"),
    )
    front = ("VirtualService", APPS, "front")
    assert reports[front].state == "Accepted"
    assert [served(table, req(p)) for p in ("/a", "/b", "/c", "/d")] == [V1, V2, None, None]


def test_selector_namespaces_list_and_star() -> None:
    tables = (rt("a", direct(201, "/a"), ns="one"), rt("b", direct(202, "/b"), ns="two"), rt("c", direct(203, "/c")))
    listed, _ = run(vs(delegate(selector={"namespaces": ["one", "two"]})), *tables)
    assert [served(listed, req(p)) for p in ("/a", "/b", "/c")] == ["direct 201", "direct 202", None]
    everywhere, _ = run(vs(delegate(selector={"namespaces": ["*"]})), *tables)
    assert [served(everywhere, req(p)) for p in ("/a", "/b", "/c")] == ["direct 201", "direct 202", "direct 203"]


def test_selector_expressions() -> None:
    tables = (
        rt("gold", direct(201, "/gold"), labels={"tier": "gold", "rank": "3"}),
        rt("lead", direct(202, "/lead"), labels={"tier": "lead", "rank": "9"}),
        rt("none", direct(203, "/none")),
    )

    def picked(*expressions: dict[str, Any]) -> list[str]:
        table, _ = run(vs(delegate(selector={"namespaces": [APPS], "expressions": list(expressions)})), *tables)
        return [p for p in ("/gold", "/lead", "/none") if served(table, req(p)) is not None]

    assert picked({"key": "tier", "operator": "In", "values": ["gold", "silver"]}) == ["/gold"]
    assert picked({"key": "tier", "operator": "NotIn", "values": ["gold"]}) == ["/lead", "/none"]
    assert picked({"key": "tier", "operator": "Exists"}) == ["/gold", "/lead"]
    assert picked({"key": "tier", "operator": "DoesNotExist"}) == ["/none"]
    assert picked({"key": "rank", "operator": "GreaterThan", "values": ["5"]}) == ["/lead"]
    assert picked({"key": "rank", "operator": 8, "values": ["5"]}) == ["/gold"]  # LessThan, by number
    both = ({"key": "tier", "operator": "Exists"}, {"key": "rank", "operator": "NotEquals", "values": ["3"]})
    assert picked(*both) == ["/lead"]  # every expression must hold


def test_selector_problems_are_warnings_on_the_parent() -> None:
    cases = {
        "no route table matches the given selector": {"labels": {"team": "nobody"}},
        "cannot use both labels and expressions": {"labels": {"a": "b"}, "expressions": [{"key": "a"}]},
        "the route table selector expression is invalid": {"expressions": [{"key": "a", "operator": "In"}]},
    }
    for message, selector in cases.items():
        table, reports = run(vs(delegate(selector=selector), route([{"prefix": "/"}], to(V2))), rt("a", direct(500)))
        (warning,) = reports[VS_KEY].warnings
        assert message in warning and reports[VS_KEY].state == "Warning"
        assert served(table, req("/")) == V2


# ── Gloo's rules for children ────────────────────────────────────────────────


def test_a_child_outside_the_parents_prefix_is_left_out_with_a_warning() -> None:
    table, reports = run(
        vs(by_ref("pets", prefix="/api")),
        rt("pets", route([{"prefix": "/other"}], to(V2)), route([{"prefix": "/api/v1"}], to(V1))),
    )
    expected = (
        "spec.routes[0].matchers: invalid route: route table matchers must begin with the prefix of their parent "
        "route's matcher (required prefix: /api, prefix: /other)"
    )
    assert reports[key("pets")].warnings == [expected]
    assert reports[VS_KEY].warnings == [f"on sub route table apps.pets: {expected}"]
    assert reports[VS_KEY].state == "Warning"  # Gloo keeps serving the rest of the virtual host
    assert served(table, req("/other")) is None and served(table, req("/api/v1/x")) == V1


def test_a_child_must_keep_the_parents_headers_case_and_methods() -> None:
    parent = by_ref("pets", prefix="/api")
    parent["matchers"][0].update(headers=[{"name": "x-team", "value": "a"}], methods=["GET"])
    lacking = route([{"prefix": "/api/a", "methods": ["GET"]}], to(V1))
    complete = route([{"prefix": "/api/b", "methods": ["GET", "POST"], "headers": [{"name": "x-team", "value": "a"}]}])
    other_case = route([{"prefix": "/api/c", "caseSensitive": False, "headers": [{"name": "x-team", "value": "a"}]}])
    table, reports = run(vs(parent), rt("pets", lacking, complete, other_case))
    warnings = reports[key("pets")].warnings
    assert len(warnings) == 2
    assert "must have all headers" in warnings[0] and "must have the same case sensitivity" in warnings[1]
    assert served(table, req("/api/b", headers={"x-team": "a"})) == V1
    assert served(table, req("/api/a")) is None


def test_inheritable_path_matchers_give_the_child_the_parents_path() -> None:
    # Flagger's RouteTable: one route, header matchers only, inheritablePathMatchers: true.
    canary = route([{"headers": [{"name": "x-canary", "value": "true"}]}], to(V2), inheritablePathMatchers=True)
    table, reports = run(vs(by_ref("petstore", prefix="/pets")), rt("petstore", canary, route(None, to(V1))))
    # The second route has no matchers and does not inherit the path: it is "/", outside "/pets".
    assert reports[key("petstore")].state == "Warning"
    assert served(table, req("/pets/1", headers={"x-canary": "true"})) == V2
    assert served(table, req("/other", headers={"x-canary": "true"})) is None


def test_inheritance_flags_pass_down_and_inheritable_matchers_prepend_the_parents() -> None:
    parent = by_ref("outer", prefix="/api", inheritableMatchers=True, inheritablePathMatchers=True)
    parent["matchers"][0]["headers"] = [{"name": "x-team", "value": "a"}]
    table, reports = run(
        vs(parent),
        rt("outer", by_ref("inner", prefix="/ignored")),  # inherits both flags: its path becomes /api
        rt("inner", route([{"methods": ["GET"]}], to(V2))),
    )
    assert reports[VS_KEY].state == "Accepted", reports[VS_KEY]
    [only] = table.virtual_hosts[0].routes
    (m,) = only.matchers
    assert (m.path.kind, m.path.value, [h.name for h in m.headers], sorted(m.methods)) == (
        "prefix",
        "/api",
        ["x-team"],
        ["GET"],
    )
    assert served(table, req("/api/x", headers={"x-team": "a"})) == V2
    assert served(table, req("/api/x")) is None


def test_parent_options_fill_what_the_child_leaves_unset() -> None:
    parent = by_ref("pets", options={"prefixRewrite": "/v1", "timeout": "3s"})
    table, _ = run(vs(parent), rt("pets", route([{"prefix": "/"}], to(V1), options={"timeout": "9s"})))
    action = table.virtual_hosts[0].routes[0].action
    assert (action.prefix_rewrite, action.timeout) == ("/v1", 9.0)


def test_a_delegating_route_needs_one_prefix_matcher() -> None:
    two = {
        "matchers": [{"prefix": "/a"}, {"prefix": "/b"}],
        "delegateAction": {"ref": {"name": "x", "namespace": APPS}},
    }
    table, reports = run(vs(two), rt("x", direct(200)))
    assert reports[VS_KEY].errors == [
        "spec.virtualHost.routes[0].matchers: invalid route: routes with delegate actions must omit or "
        "specify a single matcher"
    ]
    assert table.virtual_hosts == ()  # Rejected: serves nothing


def test_a_delegation_cycle_rejects_the_table_and_the_virtual_service() -> None:
    table, reports = run(vs(by_ref("a")), rt("a", by_ref("b")), rt("b", by_ref("a")))
    cycle = "invalid route: delegation cycle detected: [apps.a] -> [apps.b] -> [apps.a]"
    assert reports[key("a")].errors == [cycle]
    assert reports[VS_KEY].errors == [f"on sub route table apps.a: {cycle}"]
    assert reports[key("b")].state == "Accepted"
    assert gloo_status(reports[VS_KEY])["statuses"]["gloo-system"]["state"] == "Rejected"
    assert table.virtual_hosts == ()


def test_a_table_delegating_to_itself_is_a_cycle() -> None:
    _, reports = run(vs(by_ref("a")), rt("a", by_ref("a")))
    assert reports[key("a")].errors == ["invalid route: delegation cycle detected: [apps.a] -> [apps.a]"]


def test_the_same_table_twice_on_different_branches_is_not_a_cycle() -> None:
    table, reports = run(vs(by_ref("shared", prefix="/"), by_ref("shared", prefix="/")), rt("shared", direct(204)))
    assert reports[VS_KEY].state == "Accepted" and len(table.virtual_hosts[0].routes) == 2


def test_nested_delegation_three_levels() -> None:
    table, reports = run(
        vs(by_ref("l1", prefix="/a")),
        rt("l1", by_ref("l2", prefix="/a/b"), direct(201, "/a")),
        rt("l2", by_ref("l3", prefix="/a/b/c"), direct(202, "/a/b")),
        rt("l3", direct(203, "/a/b/c")),
    )
    assert all(r.state == "Accepted" for r in reports.values())
    assert [served(table, req(p)) for p in ("/a/b/c/d", "/a/b/x", "/a/x")] == ["direct 203", "direct 202", "direct 201"]
    assert sources(table) == ["rt:apps/l3 routes[0]", "rt:apps/l2 routes[1]", "rt:apps/l1 routes[1]"]


def test_a_destination_problem_in_a_table_warns_on_the_table_and_the_virtual_service() -> None:
    missing = {"routeAction": {"single": {"upstream": {"name": "nope", "namespace": NS}}}}
    table, reports = run(vs(by_ref("pets")), rt("pets", route([{"prefix": "/"}], missing)))
    (on_table,) = reports[key("pets")].warnings
    assert "spec.routes[0].routeAction.single.upstream: InvalidDestinationWarning" in on_table
    assert reports[VS_KEY].warnings == [f"on sub route table apps.pets: {on_table}"]
    assert served(table, req("/")) == "nope"  # installed: the proxy answers 503


# ── weight orders tables, it never splits traffic ────────────────────────────


def test_weight_orders_the_selected_tables_ascending() -> None:
    def catch_all(name: str, weight: int | None, status: int) -> dict[str, Any]:
        return rt(name, direct(status, "/"), weight=weight)

    table, reports = run(
        vs(delegate(selector={"namespaces": [APPS]})),
        catch_all("heavy", 100, 201),
        catch_all("light", -5, 202),
        catch_all("default", None, 203),
    )
    assert reports[VS_KEY].state == "Accepted"
    assert sources(table) == ["rt:apps/light routes[0]", "rt:apps/default routes[0]", "rt:apps/heavy routes[0]"]
    # First match wins: weight -5 takes every request, whatever the other weights.
    assert {served(table, req("/")) for _ in range(20)} == {"direct 202"}


def test_tables_of_the_same_weight_have_their_routes_sorted_by_path_without_a_warning() -> None:
    # Gloo 1.22 (converter.go, SortRoutesByPath): exact < regex < prefix, longer path first.
    table, reports = run(
        vs(delegate(selector={"namespaces": [APPS]})),
        rt("a", direct(201, "/foo"), weight=5),
        rt("b", direct(202, "/foo/bar"), route([{"exact": "/foo/x"}], to(V1)), weight=5),
        rt("c", direct(203, "/zzz"), weight=9),
    )
    assert reports[VS_KEY].warnings == [] and reports[VS_KEY].state == "Accepted"
    assert sources(table) == [
        "rt:apps/b routes[1]",
        "rt:apps/b routes[0]",
        "rt:apps/a routes[0]",
        "rt:apps/c routes[0]",
    ]
    assert served(table, req("/foo/bar/1")) == "direct 202"  # not short-circuited by /foo


def test_a_weighted_multi_in_a_table_splits_traffic() -> None:
    split = {
        "routeAction": {
            "multi": {
                "destinations": [
                    {"destination": {"upstream": {"name": V1, "namespace": NS}}, "weight": 80},
                    {"destination": {"upstream": {"name": V2, "namespace": NS}}, "weight": 20},
                ]
            }
        }
    }
    table, _ = run(vs(by_ref("pets")), rt("pets", {**split, "inheritablePathMatchers": True}))
    action = table.virtual_hosts[0].routes[0].action
    assert [(d.destination.cluster, d.weight) for d in action.destinations] == [(V1, 80), (V2, 20)]
    assert (action.pick(0.79).cluster, action.pick(0.81).cluster) == (V1, V2)


# ── kube upstreams with a selector ───────────────────────────────────────────


def test_a_kube_upstream_selector_keeps_only_the_services_pods_with_those_labels() -> None:
    primary, canary = (
        Endpoint("127.0.0.1", 9101, (("app", "web-primary"),)),
        Endpoint("127.0.0.1", 9102, (("app", "web"),)),
    )
    endpoints = {("default", "web", 80): [primary, canary]}
    spec = {"serviceName": "web", "serviceNamespace": "default", "servicePort": 80}
    upstreams = [
        {
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Upstream",
            "metadata": {"name": n, "namespace": "default"},
            "spec": {"kube": s},
        }
        for n, s in (
            ("all", spec),
            ("primary", {**spec, "selector": {"app": "web-primary"}}),
            ("none", {**spec, "selector": {"app": "x"}}),
        )
    ]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": [{"port": 80}]},
    }
    table, reports = translate([service, *upstreams], endpoints)
    assert all(r.state == "Accepted" for r in reports.values())
    assert [e.port for e in table.clusters["all"].endpoints] == [9101, 9102]
    assert [e.port for e in table.clusters["primary"].endpoints] == [9101]
    assert table.clusters["none"].endpoints == ()
