"""The Gateway API translator, one test per rule of the specification.

Each test writes HTTPRoutes, translates them beside a Gateway and three petstore
Services, and asks the listener's table which rule a request reaches (``served``),
so matching is checked end to end through ``RouteTable.select``. The rules quoted
are from ``apis/v1/httproute_types.go`` (HTTPRouteRule.Matches, HTTPPathMatch,
HTTPHeaderMatch, BackendRef.Weight, HTTPRouteSpec.Hostnames).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from helpers import httproutes
from helpers.runtime.gatewayapi.schema import validate
from helpers.runtime.gatewayapi.status import stamp
from helpers.runtime.gatewayapi.translating import GatewayTranslation, intersect, translate
from helpers.runtime.matching import RequestView
from helpers.runtime.routes import DirectResponse, Endpoint, Redirect, RouteAction

LISTENER = ("kgateway-system", "http", "http")
ENDPOINTS = {
    ("default", f"petstore-{v}", 8080): [Endpoint("127.0.0.1", 9000 + i)] for i, v in enumerate(("v1", "v2", "v3"))
}
GATEWAY_CLASS = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "GatewayClass",
    "metadata": {"name": "kgateway"},
    "spec": {"controllerName": "kgateway.dev/kgateway"},
}


def service(name: str, ns: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"ports": [{"port": 8080}], "selector": {"app": name}},
    }


SERVICES = [service(f"petstore-{v}") for v in ("v1", "v2", "v3")]


def match(
    path: str = "/",
    kind: str = "PathPrefix",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    method: str | None = None,
    regex: bool = False,
) -> dict[str, Any]:
    m: dict[str, Any] = {"path": {"type": kind, "value": path}}
    t = {"type": "RegularExpression"} if regex else {}
    if headers:
        m["headers"] = [{"name": k, "value": v, **t} for k, v in headers.items()]
    if query:
        m["queryParams"] = [{"name": k, "value": v, **t} for k, v in query.items()]
    if method:
        m["method"] = method
    return m


def rule(m: dict[str, Any] | list[dict[str, Any]], to: str = "v1", **extra: Any) -> dict[str, Any]:
    return {
        "matches": m if isinstance(m, list) else [m],
        "backendRefs": [{"name": f"petstore-{to}", "port": 8080}],
        **extra,
    }


def route(
    *rules: dict[str, Any],
    name: str = "r",
    ns: str = "default",
    created: str = "2026-01-01T00:00:00Z",
    hostnames: list[str] | None = None,
    parent: dict[str, Any] | None = None,
    checked: bool = True,
) -> dict[str, Any]:
    obj = httproutes.http_route(list(rules), name=name, namespace=ns, hostnames=hostnames or ())
    if parent is not None:
        obj["spec"]["parentRefs"] = [parent]
    obj["metadata"].update(creationTimestamp=created, generation=1)
    assert not checked or validate(obj) == [], validate(obj)
    return obj


def run(*objects: dict[str, Any], gateway: dict[str, Any] | None = None) -> GatewayTranslation:
    gw = gateway or httproutes.gateway()
    return translate([GATEWAY_CLASS, gw, *SERVICES, *objects], ENDPOINTS)


def served(
    result: GatewayTranslation,
    path: str,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    method: str = "GET",
    host: str = "gw.test",
) -> str:
    """Which Service (v1, v2, v3) answers, or "404", or the action's type."""
    table = result.listeners[LISTENER]
    found = table.select(
        RequestView(method, host, path, query or {}, {k.lower(): v for k, v in (headers or {}).items()})
    )
    if found is None:
        return "404"
    action = found[0].action
    if isinstance(action, RouteAction) and len(action.destinations) == 1:
        return action.destinations[0].destination.cluster.split("petstore-")[1].split("-")[0]
    return type(action).__name__


def conditions(result: GatewayTranslation, name: str = "r", ns: str = "default") -> dict[str, tuple[str, str]]:
    parent = result.statuses[("HTTPRoute", ns, name)]["parents"][0]
    return {c["type"]: (c["status"], c["reason"]) for c in parent["conditions"]}


# ── precedence across rules and routes (HTTPRouteRule.Matches) ───────────────


def test_exact_path_wins_over_any_prefix() -> None:
    r = run(route(rule(match("/pets"), "v1"), rule(match("/pets", "Exact"), "v2")))
    assert served(r, "/pets") == "v2" and served(r, "/pets/1") == "v1"


def test_longest_prefix_wins() -> None:
    r = run(route(rule(match("/pets"), "v1"), rule(match("/pets/cats"), "v2")))
    assert served(r, "/pets/cats/1") == "v2" and served(r, "/pets/dogs") == "v1"


def test_method_match_wins_over_header_matches() -> None:
    r = run(
        route(rule(match("/pets", headers={"x-a": "1", "x-b": "2"}), "v1"), rule(match("/pets", method="GET"), "v2"))
    )
    assert served(r, "/pets", {"x-a": "1", "x-b": "2"}) == "v2"
    assert served(r, "/pets", {"x-a": "1", "x-b": "2"}, method="POST") == "v1"


def test_most_header_matches_win() -> None:
    r = run(
        route(rule(match("/", headers={"x-a": "1"}), "v1"), rule(match("/", headers={"x-a": "1", "x-b": "2"}), "v2"))
    )
    assert served(r, "/x", {"x-a": "1", "x-b": "2"}) == "v2" and served(r, "/x", {"x-a": "1"}) == "v1"


def test_most_query_matches_win_after_headers() -> None:
    r = run(
        route(
            rule(match("/", query={"a": "1"}), "v1"),
            rule(match("/", query={"a": "1", "b": "2"}), "v2"),
            rule(match("/", headers={"x-a": "1"}), "v3"),
        )
    )
    assert served(r, "/", query={"a": "1", "b": "2"}) == "v2"
    assert served(r, "/", {"x-a": "1"}, {"a": "1", "b": "2"}) == "v3"  # one header beats two query params


def test_oldest_route_wins_a_tie() -> None:
    old = route(rule(match("/pets"), "v1"), name="zz-old", created="2026-01-01T00:00:00Z")
    new = route(rule(match("/pets"), "v2"), name="aa-new", created="2026-01-02T00:00:00Z")
    assert served(run(new, old), "/pets") == "v1"


def test_then_namespace_and_name_in_alphabetical_order() -> None:
    a, b = route(rule(match("/pets"), "v1"), name="a"), route(rule(match("/pets"), "v2"), name="b")
    assert served(run(b, a), "/pets") == "v1"


def test_then_the_first_rule_in_list_order() -> None:
    r = run(route(rule(match("/pets"), "v2"), rule(match("/pets"), "v1")))
    assert served(r, "/pets") == "v2"


def test_regular_expression_paths_rank_between_exact_and_prefix() -> None:
    r = run(
        route(
            rule(match("/pets"), "v1"),
            rule(match("/pets/[0-9]+", "RegularExpression"), "v2"),
            rule(match("/pets/7", "Exact"), "v3"),
        )
    )
    assert [served(r, p) for p in ("/pets/7", "/pets/8", "/pets/x")] == ["v3", "v2", "v1"]


def test_the_seed_header_canary_rule_wins_though_it_is_last() -> None:
    r = run(httproutes.header_canary())
    assert served(r, "/findPets") == "v1" and served(r, "/findPets", {"x-canary": "true"}) == "v2"
    assert served(r, "/findPets", {"x-canary": "false"}) == "v1"


# ── matching ─────────────────────────────────────────────────────────────────


def test_path_prefix_matches_whole_segments_and_ignores_a_trailing_slash() -> None:
    r = run(route(rule(match("/abc"), "v1"), rule(match("/xyz/"), "v2")))
    assert [served(r, p) for p in ("/abc", "/abc/", "/abc/def", "/abcd")] == ["v1", "v1", "v1", "404"]
    assert [served(r, p) for p in ("/xyz", "/xyz/1", "/xyzz")] == ["v2", "v2", "404"]


def test_exact_path_is_exact_and_case_sensitive() -> None:
    r = run(route(rule(match("/abc", "Exact"))))
    assert [served(r, p) for p in ("/abc", "/abc/", "/Abc", "/abcd")] == ["v1", "404", "404", "404"]


def test_header_names_fold_case_values_do_not_and_regex_matches_whole_values() -> None:
    r = run(
        route(
            rule(match("/", headers={"X-Canary": "true"}), "v2"),
            rule(match("/a", headers={"x-v": "v[0-9]"}, regex=True), "v3"),
            rule(match("/")),
        )
    )
    assert served(r, "/", {"x-canary": "true"}) == "v2" and served(r, "/", {"x-canary": "True"}) == "v1"
    assert served(r, "/a", {"x-v": "v7"}) == "v3" and served(r, "/a", {"x-v": "v77"}) == "v1"


def test_only_the_first_of_two_equivalent_header_names_counts() -> None:
    m = {
        "path": {"type": "PathPrefix", "value": "/"},
        "headers": [{"name": "x-a", "value": "1"}, {"name": "X-A", "value": "2"}],
    }
    r = run(route({"matches": [m], "backendRefs": [{"name": "petstore-v2", "port": 8080}]}))
    assert served(r, "/", {"x-a": "1"}) == "v2" and served(r, "/", {"x-a": "2"}) == "404"


def test_query_and_method_matches() -> None:
    r = run(route(rule(match("/", query={"v": "2"}), "v2"), rule(match("/", method="DELETE"), "v3"), rule(match("/"))))
    assert served(r, "/", query={"v": "2"}) == "v2" and served(r, "/", query={"V": "2"}) == "v1"
    assert served(r, "/", method="DELETE") == "v3"


def test_no_match_is_404_and_a_rule_without_matches_takes_everything() -> None:
    assert served(run(route(rule(match("/a")))), "/b") == "404"
    r = run(route({"backendRefs": [{"name": "petstore-v2", "port": 8080}]}))
    assert served(r, "/anything") == "v2"


# ── backends and weights (BackendRef.Weight) ─────────────────────────────────


def weights(result: GatewayTranslation, path: str = "/") -> list[tuple[str, int]]:
    found = result.listeners[LISTENER].select(RequestView("GET", "h", path, {}, {}))
    assert found is not None and isinstance(found[0].action, RouteAction)
    return [(d.destination.cluster.rsplit("-", 2)[1], d.weight) for d in found[0].action.destinations]


def test_weights_default_to_1_are_relative_and_0_gets_nothing() -> None:
    refs = [
        {"name": "petstore-v1", "port": 8080},
        {"name": "petstore-v2", "port": 8080, "weight": 3},
        {"name": "petstore-v3", "port": 8080, "weight": 0},
    ]
    r = run(route({"matches": [match("/")], "backendRefs": refs}))
    assert weights(r) == [("v1", 1), ("v2", 3), ("v3", 0)]
    action = r.listeners[LISTENER].select(RequestView("GET", "h", "/", {}, {}))[0].action  # type: ignore[index]
    picks = [action.pick(i / 400).cluster.rsplit("-", 2)[1] for i in range(400)]
    assert picks.count("v1") == 100 and picks.count("v2") == 300 and "v3" not in picks


def test_all_weights_zero_or_no_backends_is_500() -> None:
    zero = run(
        route({"matches": [match("/z")], "backendRefs": [{"name": "petstore-v1", "port": 8080, "weight": 0}]}),
        route({"matches": [match("/n")]}, name="n"),
    )
    for path in ("/z", "/n"):
        action = zero.listeners[LISTENER].select(RequestView("GET", "h", path, {}, {}))[0].action  # type: ignore[index]
        assert isinstance(action, DirectResponse) and action.status == 500


@pytest.mark.parametrize(
    "ref,reason",
    [
        ({"name": "petstore-v9", "port": 8080}, "BackendNotFound"),
        ({"name": "petstore-v1", "port": 9090}, "BackendNotFound"),
        ({"name": "petstore-v1", "port": 8080, "kind": "ConfigMap"}, "InvalidKind"),
        ({"name": "petstore-v1", "port": 8080, "namespace": "other"}, "RefNotPermitted"),
    ],
)
def test_an_unresolved_backend_ref_is_reported_and_answered_500(ref: dict[str, Any], reason: str) -> None:
    good = {"name": "petstore-v2", "port": 8080}
    r = run(route({"matches": [match("/")], "backendRefs": [ref, good]}))
    assert conditions(r) == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("False", reason)}
    action = r.listeners[LISTENER].select(RequestView("GET", "h", "/", {}, {}))[0].action  # type: ignore[index]
    assert isinstance(action, RouteAction)
    assert action.destinations[0].destination.invalid and action.destinations[1].destination.invalid is None
    assert any(reason in w for w in r.warnings[("HTTPRoute", "default", "r")])


# ── attachment: parents, namespaces, hostnames ───────────────────────────────


def test_accepted_and_resolved_refs_when_all_is_well() -> None:
    r = run(httproutes.route_to_v1())
    assert conditions(r, "petstore") == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}
    listener = r.statuses[("Gateway", "kgateway-system", "http")]["listeners"][0]
    assert listener["attachedRoutes"] == 1 and listener["supportedKinds"][0]["kind"] == "HTTPRoute"


@pytest.mark.parametrize(
    "parent,reason",
    [
        ({"name": "nope", "namespace": "kgateway-system"}, "NoMatchingParent"),
        ({"name": "http", "namespace": "kgateway-system", "sectionName": "https"}, "NoMatchingParent"),
        ({"name": "http", "namespace": "kgateway-system", "port": 9999}, "NoMatchingParent"),
    ],
)
def test_a_parent_that_does_not_match_is_not_accepted(parent: dict[str, Any], reason: str) -> None:
    r = run(route(rule(match("/")), parent=parent))
    assert conditions(r)["Accepted"] == ("False", reason) and r.listeners[LISTENER].virtual_hosts == ()


def test_allowed_routes_from_same_namespace() -> None:
    gw = httproutes.gateway()
    gw["spec"]["listeners"][0]["allowedRoutes"] = {"namespaces": {"from": "Same"}}
    r = run(route(rule(match("/"))), gateway=gw)
    assert conditions(r)["Accepted"] == ("False", "NotAllowedByListeners")


def test_listener_and_route_hostnames_intersect() -> None:
    assert intersect("*.example.com", ["foo.example.com", "bar.other.com"]) == ["foo.example.com"]
    assert intersect("foo.example.com", ["*.example.com"]) == ["foo.example.com"]
    assert intersect(None, []) == ["*"] and intersect("a.b", []) == ["a.b"]
    gw = httproutes.gateway()
    gw["spec"]["listeners"][0]["hostname"] = "*.example.com"
    r = run(route(rule(match("/")), hostnames=["foo.example.com", "bar.other.com"]), gateway=gw)
    assert served(r, "/", host="foo.example.com:8080") == "v1"  # the port is ignored
    assert served(r, "/", host="bar.other.com") == "404" and served(r, "/", host="x.example.com") == "404"
    none = run(route(rule(match("/")), hostnames=["bar.other.com"]), gateway=gw)
    assert conditions(none)["Accepted"] == ("False", "NoMatchingListenerHostname")


def test_the_most_specific_hostname_wins() -> None:
    wild = route(rule(match("/"), "v1"), name="wild", hostnames=["*.example.com"])
    exact = route(rule(match("/"), "v2"), name="exact", hostnames=["foo.example.com"])
    r = run(wild, exact)
    assert [served(r, "/", host=h) for h in ("foo.example.com", "bar.example.com", "example.com")] == [
        "v2",
        "v1",
        "404",
    ]


def test_a_gateway_of_another_class_is_not_served() -> None:
    gw = httproutes.gateway(class_name="istio")
    r = run(httproutes.route_to_v1(), gateway=gw)
    assert (
        r.listeners == {} and r.statuses[("Gateway", "kgateway-system", "http")]["conditions"][0]["reason"] == "Pending"
    )
    assert "gatewayClassName" in r.warnings[("Gateway", "kgateway-system", "http")][0]


def test_a_tcp_listener_is_reported_not_served() -> None:
    gw = httproutes.gateway()
    gw["spec"]["listeners"].append({"name": "tcp", "protocol": "TCP", "port": 9000})
    r = run(gateway=gw)
    assert list(r.listeners) == [LISTENER]
    tcp = r.statuses[("Gateway", "kgateway-system", "http")]["listeners"][1]
    accepted = tcp["conditions"][0]
    assert (accepted["status"], accepted["reason"]) == ("False", "UnsupportedProtocol")
    assert tcp["supportedKinds"] == [{"group": "gateway.networking.k8s.io", "kind": "TCPRoute"}]


def test_an_https_listener_without_certificates_is_not_served() -> None:
    gw = httproutes.gateway()
    gw["spec"]["listeners"].append({"name": "tls", "protocol": "HTTPS", "port": 8443, "tls": {"mode": "Terminate"}})
    r = run(gateway=gw)
    assert list(r.listeners) == [LISTENER]
    conds = {
        c["type"]: (c["status"], c["reason"])
        for c in r.statuses[("Gateway", *LISTENER[:2])]["listeners"][1]["conditions"]
    }
    assert conds["ResolvedRefs"] == ("False", "InvalidCertificateRef")
    assert conds["Programmed"] == ("False", "Invalid")


# ── filters and timeouts become actions ──────────────────────────────────────


def test_redirect_filter_becomes_a_redirect_with_the_default_302() -> None:
    rr = {
        "matches": [match("/old")],
        "filters": [
            {
                "type": "RequestRedirect",
                "requestRedirect": {
                    "hostname": "new.example.com",
                    "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"},
                },
            }
        ],
    }
    action = run(route(rr)).listeners[LISTENER].select(RequestView("GET", "h", "/old/1", {}, {}))[0].action  # type: ignore[index]
    assert action == Redirect(302, "new.example.com", None, "/new", None, None, gateway_api=True)


def test_timeouts_and_retry() -> None:
    retried = route(
        rule(match("/"), timeouts={"request": "2s", "backendRequest": "500ms"}, retry={"codes": [503], "attempts": 2}),
        checked=False,  # retry is in the experimental channel only
    )
    assert validate(retried, "experimental") == [] and validate(retried) != []
    r = run(retried)
    action = r.listeners[LISTENER].select(RequestView("GET", "h", "/", {}, {}))[0].action  # type: ignore[index]
    assert isinstance(action, RouteAction) and action.timeout == 2.0
    assert action.retries is not None and action.retries.num_retries == 2 and action.retries.per_try_timeout == 0.5
    assert action.retries.retries_status(503) and not action.retries.retries_status(500)


def test_status_times_change_only_when_a_condition_does() -> None:
    first = stamp(
        copy.deepcopy(run(httproutes.route_to_v1()).statuses[("HTTPRoute", "default", "petstore")]), None, "T1"
    )
    again = stamp(
        copy.deepcopy(run(httproutes.route_to_v1()).statuses[("HTTPRoute", "default", "petstore")]), first, "T2"
    )
    assert {c["lastTransitionTime"] for c in again["parents"][0]["conditions"]} == {"T1"}
    broken = run(route(rule(match("/"), "v9"), name="petstore")).statuses[("HTTPRoute", "default", "petstore")]
    later = stamp(copy.deepcopy(broken), first, "T3")
    assert [c["lastTransitionTime"] for c in later["parents"][0]["conditions"]] == ["T1", "T3"]


# ── the schema and CEL rules refused at apply ────────────────────────────────


def bad(spec_rule: dict[str, Any]) -> list[str]:
    obj = httproutes.http_route([spec_rule])
    return validate(obj)


@pytest.mark.parametrize(
    "spec_rule,message",
    [
        ({"backendRefs": [{"name": "a"}]}, "backendRefs[0].port: Must have port for Service reference"),
        ({"matches": [{"path": {"type": "PathPrefix", "value": "pets"}}]}, "must be an absolute path"),
        ({"matches": [{"path": {"type": "Exact", "value": "/a//b"}}]}, 'must not contain "//"'),
        ({"matches": [{"path": {"type": "Prefix", "value": "/"}}]}, '"Prefix" is not one of Exact, PathPrefix'),
        ({"matches": [{"headers": [{"name": ":path", "value": "/"}]}]}, "is not a valid HTTP header name"),
        ({"matches": [{"method": "get"}]}, '"get" is not one of GET'),
        ({"backendRefs": [{"name": "a", "port": 80, "weight": 1000001}]}, "must be from 0 to 1000000"),
        (
            {
                "filters": [{"type": "RequestRedirect", "requestRedirect": {}}],
                "backendRefs": [{"name": "a", "port": 80}],
            },
            "RequestRedirect filter must not be used together with backendRefs",
        ),
        (
            {
                "matches": [{"path": {"type": "Exact", "value": "/a"}}],
                "filters": [
                    {
                        "type": "URLRewrite",
                        "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/b"}},
                    }
                ],
            },
            "exactly one PathPrefix match",
        ),
        (
            {"filters": [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplaceFullPath"}}}]},
            "replaceFullPath: must be set when type is ReplaceFullPath",
        ),
        ({"filters": [{"type": "RequestHeaderModifier"}]}, "requestHeaderModifier: must be set"),
        (
            {"filters": [{"type": "ExtensionRef", "extensionRef": {"group": "x", "kind": "y", "name": "z"}}]},
            "extensionRef: not supported by the local runtime",
        ),
        ({"timeouts": {"request": "1s", "backendRequest": "2s"}}, "backendRequest timeout cannot be longer"),
        ({"timeouts": {"request": "1.5s"}}, "is not a Gateway API duration"),
    ],
)
def test_what_the_crds_refuse_is_named_by_field(spec_rule: dict[str, Any], message: str) -> None:
    problems = bad(spec_rule)
    assert any(message in p for p in problems), problems


def test_gateway_schema() -> None:
    gw = httproutes.gateway()
    gw["spec"]["listeners"].append(dict(gw["spec"]["listeners"][0]))
    assert "spec.listeners: Listener name must be unique within the Gateway" in validate(gw)  # the CRD's CEL rule
    gw = httproutes.gateway()
    del gw["spec"]["gatewayClassName"]
    assert validate(gw) == ["spec.gatewayClassName: required field is missing"]
    old = httproutes.route_to_v1()
    old["apiVersion"] = "gateway.networking.k8s.io/v1beta1"
    assert validate(old) == []  # v1beta1 is still served by the v1.6.1 CRD
    old["apiVersion"] = "gateway.networking.k8s.io/v1alpha2"
    assert "gateway.networking.k8s.io/v1beta1" in validate(old)[0]
