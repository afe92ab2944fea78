"""VirtualService -> HTTPRoute: what converts exactly, and a warning for each thing that does not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import load_manifests, routing
from helpers.apps.petstore import swagger
from helpers.converting import convert
from helpers.runtime.restfunctions import transformations_from_swagger

ROOT = Path(__file__).resolve().parents[1]


def upstream(version: str) -> dict[str, Any]:
    """The Upstream discovery makes for petstore ``version``, with its REST functions."""
    return {"kind": "Upstream", "metadata": {"name": f"default-petstore-{version}-8080", "namespace": "gloo-system"},
            "spec": {"kube": {"serviceName": f"petstore-{version}", "serviceNamespace": "default", "servicePort": 8080,
                              "serviceSpec": {"rest": {"transformations": transformations_from_swagger(swagger(version))}}}}}


UPSTREAMS = [upstream("v1"), upstream("v2")]


def vs(*routes: dict[str, Any], domains: list[str] | None = None) -> dict[str, Any]:
    return routing.virtual_service(list(routes), domains=domains or ["*"])


def to(version: str = "v1") -> dict[str, Any]:
    return {"single": {"upstream": routing.upstream(version)}}


def route(matcher: dict[str, Any] | None = None, action: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"matchers": [matcher or {"prefix": "/"}], "routeAction": action or to(), **extra}


def rules(result: Any) -> list[dict[str, Any]]:
    return result.routes[0]["spec"]["rules"]


def warned(result: Any, *words: str) -> bool:
    return any(all(w in warning for w in words) for warning in result.warnings)


def test_the_seed_header_canary_converts_with_rewrites() -> None:
    result = convert(routing.header_canary(), UPSTREAMS)
    route0 = result.routes[0]
    assert route0["apiVersion"] == "gateway.networking.k8s.io/v1" and route0["kind"] == "HTTPRoute"
    assert route0["metadata"] == {"name": "coalmine", "namespace": "default"}
    assert route0["spec"]["parentRefs"] == [{"name": "http", "namespace": "kgateway-system"}]
    assert "hostnames" not in route0["spec"]  # domains '*': every host
    canary, by_id, plain, store = rules(result)
    assert canary["matches"] == [{"path": {"type": "Exact", "value": "/findPets"},
                                  "headers": [{"name": "x-canary", "value": "true"}]}]
    assert canary["backendRefs"] == [{"name": "petstore-v2", "port": 8080}]
    assert canary["filters"] == [{"type": "URLRewrite",
                                  "urlRewrite": {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/api/pets"}}}]
    # /findPetWithId/{id} -> /api/pets/{id} is a prefix rewrite
    assert by_id["filters"][0]["urlRewrite"]["path"] == {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/api/pets"}
    assert plain["backendRefs"] == [{"name": "petstore-v1", "port": 8080}]
    assert store["matches"][0]["path"] == {"type": "PathPrefix", "value": "/petstore"}
    assert warned(result, "REST function findPets", "URLRewrite", "query-parameter templates are dropped")
    # The canary route wins in both APIs (same exact path, more header matches): no ordering warning.
    assert not warned(result, "comes first")


def test_weights_carry_over_and_all_zero_is_flagged() -> None:
    result = convert(routing.weighted(10), UPSTREAMS)
    assert rules(result)[2]["backendRefs"] == [{"name": "petstore-v2", "port": 8080, "weight": 10},
                                              {"name": "petstore-v1", "port": 8080, "weight": 90}]
    # The same function on both weighted destinations: one rewrite for the rule.
    assert rules(result)[2]["filters"][0]["urlRewrite"]["path"]["replaceFullPath"] == "/api/pets"
    zero = {"multi": {"destinations": [{"weight": 0, "destination": {"upstream": routing.upstream("v1")}}]}}
    assert warned(convert(vs(route(action=zero)), UPSTREAMS), "every weight is 0")


def test_prefix_matches_whole_segments_in_the_gateway_api() -> None:
    result = convert(vs(route({"prefix": "/pet"}), route({"prefix": "/api/"})), UPSTREAMS)
    assert [r["matches"][0]["path"]["value"] for r in rules(result)] == ["/pet", "/api"]
    assert warned(result, "route 0", 'also matches "/petx..." in Gloo')
    assert warned(result, "route 1", "PathPrefix /api also matches /api itself")


def test_regex_path_and_header_matches_come_with_warnings() -> None:
    result = convert(vs(route({"regex": "/pets/[0-9]+", "headers": [{"name": "x-tier", "value": "gold|silver",
                                                                     "regex": True}]})), UPSTREAMS)
    match = rules(result)[0]["matches"][0]
    assert match["path"] == {"type": "RegularExpression", "value": "/pets/[0-9]+"}
    assert match["headers"] == [{"type": "RegularExpression", "name": "x-tier", "value": "gold|silver"}]
    assert warned(result, "RegularExpression path is implementation-specific")
    assert warned(result, "header x-tier regex", "ranks a regex header match like an exact one")


def test_presence_and_inverted_header_matches() -> None:
    result = convert(vs(route({"prefix": "/", "headers": [{"name": "x-debug"},
                                                          {"name": "x-canary", "value": "true", "invertMatch": True}]})),
                     UPSTREAMS)
    assert rules(result)[0]["matches"][0]["headers"] == [{"type": "RegularExpression", "name": "x-debug", "value": ".*"}]
    assert warned(result, 'header x-debug "is present"')
    assert warned(result, "header x-canary with invertMatch has no equivalent", "matches more requests")


def test_methods_become_one_match_each_and_query_parameters_carry_over() -> None:
    result = convert(vs(route({"exact": "/api/pets", "methods": ["get", "HEAD"],
                               "queryParameters": [{"name": "tags", "value": "dog"},
                                                   {"name": "limit", "value": "[0-9]+", "regex": True}]})), UPSTREAMS)
    matches = rules(result)[0]["matches"]
    assert [m["method"] for m in matches] == ["GET", "HEAD"]
    assert matches[0]["queryParams"] == [{"name": "tags", "value": "dog"},
                                         {"type": "RegularExpression", "name": "limit", "value": "[0-9]+"}]
    assert result.warnings == []


@pytest.mark.parametrize("first, later, why", [
    ({"prefix": "/"}, {"prefix": "/api"}, "a longer prefix wins"),
    ({"prefix": "/api"}, {"exact": "/api/pets"}, "an exact path beats a prefix"),
    ({"prefix": "/api"}, {"prefix": "/api", "methods": ["GET"]}, "a match on the method wins"),
    ({"exact": "/x"}, {"exact": "/x", "headers": [{"name": "a", "value": "1"}]}, "more header matches win"),
    ({"exact": "/x"}, {"exact": "/x", "queryParameters": [{"name": "q", "value": "1"}]},
     "more query parameter matches win"),
])
def test_first_match_order_the_gateway_api_would_change(first: dict, later: dict, why: str) -> None:
    result = convert(vs(route(first), route(later, to("v2"))), UPSTREAMS)
    assert warned(result, "route 1", "route 0", "comes first", why), result.warnings


@pytest.mark.parametrize("first, later", [
    ({"prefix": "/api"}, {"prefix": "/"}),                                   # already most specific first
    ({"prefix": "/api"}, {"exact": "/web"}),                                 # never the same request
    ({"exact": "/x", "headers": [{"name": "a", "value": "1"}]},
     {"exact": "/x", "headers": [{"name": "a", "value": "2"}, {"name": "b", "value": "3"}]}),  # a=1 vs a=2
    ({"prefix": "/", "methods": ["POST"]}, {"prefix": "/api", "methods": ["GET"]}),
])
def test_no_ordering_warning_where_the_winner_is_the_same(first: dict, later: dict) -> None:
    result = convert(vs(route(first), route(later, to("v2"))), UPSTREAMS)
    assert not warned(result, "comes first"), result.warnings


def test_rest_functions_without_a_faithful_rewrite() -> None:
    templated = route({"exact": "/pet"}, {"single": {"upstream": routing.upstream("v1"),
                                                      "destinationSpec": {"rest": {"functionName": "findPetById"}}}})
    result = convert(vs(templated), UPSTREAMS)
    assert "filters" not in rules(result)[0]
    assert warned(result, "REST function findPetById", "template parameters an HTTPRoute cannot fill")
    unknown = convert(routing.route_to_v1())  # no upstreams given: discovery names are read, functions unknown
    assert rules(unknown)[1]["backendRefs"] == [{"name": "petstore-v1", "port": 8080}]
    assert warned(unknown, "upstream default-petstore-v1-8080 was not given", "discovery's naming")
    assert warned(unknown, "REST function findPets: the Gateway API has no functions")
    mixed = {"multi": {"destinations": [
        {"weight": 1, "destination": {"upstream": routing.upstream("v1"),
                                      "destinationSpec": {"rest": {"functionName": "findPets"}}}},
        {"weight": 1, "destination": {"upstream": routing.upstream("v2")}}]}}
    assert warned(convert(vs(route({"exact": "/f"}, mixed)), UPSTREAMS), "different REST functions")


def test_prefix_rewrite_and_header_manipulation_become_filters() -> None:
    options = {"prefixRewrite": "/api/pets", "headerManipulation": {
        "requestHeadersToAdd": [{"header": {"key": "x-from", "value": "gloo"}, "append": False},
                                {"header": {"key": "x-trace", "value": "1"}}],
        "requestHeadersToRemove": ["x-debug"], "responseHeadersToAdd": [{"header": {"key": "x-v", "value": "1"}}],
        "responseHeadersToRemove": ["server"]}}
    result = convert(vs(route({"prefix": "/petstore"}, options=options),
                        route({"exact": "/one"}, options={"prefixRewrite": "/api/pets/1"}),
                        route({"regex": "/r.*"}, options={"prefixRewrite": "/x"})), UPSTREAMS)
    filters = rules(result)[0]["filters"]
    assert filters == [
        {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/api/pets"}}},
        {"type": "RequestHeaderModifier", "requestHeaderModifier": {
            "set": [{"name": "x-from", "value": "gloo"}], "add": [{"name": "x-trace", "value": "1"}],
            "remove": ["x-debug"]}},
        {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
            "add": [{"name": "x-v", "value": "1"}], "remove": ["server"]}},
    ]
    assert rules(result)[1]["filters"][0]["urlRewrite"]["path"] == {"type": "ReplaceFullPath",
                                                                    "replaceFullPath": "/api/pets/1"}
    assert "filters" not in rules(result)[2] and warned(result, "prefixRewrite /x on a regex")


def test_redirects_timeouts_and_options_without_an_equivalent() -> None:
    redirect = {"matchers": [{"prefix": "/old"}], "redirectAction": {"hostRedirect": "new.example.com",
                                                                      "pathRedirect": "/new", "httpsRedirect": True}}
    temporary = {"matchers": [{"prefix": "/tmp"}], "redirectAction": {"pathRedirect": "/t", "responseCode": "FOUND"}}
    odd = {"matchers": [{"prefix": "/odd"}], "redirectAction": {"pathRedirect": "/o", "responseCode": "PERMANENT_REDIRECT"}}
    result = convert(vs(redirect, temporary, odd,
                        route({"prefix": "/slow"}, options={"timeout": "15s", "retries": {"retryOn": "5xx"},
                                                            "faults": {"abort": {"percentage": 10}}}),
                        {"matchers": [{"prefix": "/direct"}], "directResponseAction": {"status": 200}}), UPSTREAMS)
    r = rules(result)
    assert r[0]["filters"] == [{"type": "RequestRedirect", "requestRedirect": {
        "scheme": "https", "hostname": "new.example.com",
        "path": {"type": "ReplaceFullPath", "replaceFullPath": "/new"}, "statusCode": 301}}]
    assert "backendRefs" not in r[0] and r[1]["filters"][0]["requestRedirect"]["statusCode"] == 302
    assert warned(result, "redirect code PERMANENT_REDIRECT", "301 and 302 only")
    assert r[3]["timeouts"] == {"request": "15s"}
    assert warned(result, "options.retries has no equivalent") and warned(result, "options.faults has no equivalent")
    assert len(r) == 4 and warned(result, "directResponseAction has no HTTPRoute equivalent; the route is left out")


def test_upstream_groups_and_kube_destinations() -> None:
    group = {"kind": "UpstreamGroup", "metadata": {"name": "canary", "namespace": "gloo-system"},
             "spec": {"destinations": [{"weight": 3, "destination": {"upstream": routing.upstream("v1")}},
                                       {"weight": 1, "destination": {"upstream": routing.upstream("v2")}}]}}
    by_group = route(action={"upstreamGroup": {"name": "canary", "namespace": "gloo-system"}})
    kube = route({"prefix": "/k"}, {"single": {"kube": {"ref": {"name": "petstore-v2", "namespace": "default"},
                                                        "port": 8080}}})
    result = convert(vs(kube, by_group), UPSTREAMS, [group])
    assert rules(result)[0]["backendRefs"] == [{"name": "petstore-v2", "port": 8080}]
    assert rules(result)[1]["backendRefs"] == [{"name": "petstore-v1", "port": 8080, "weight": 3},
                                              {"name": "petstore-v2", "port": 8080, "weight": 1}]
    missing = convert(vs(by_group), UPSTREAMS)
    assert rules(missing) == [] and warned(missing, "UpstreamGroup canary was not given")


def test_domains_become_hostnames() -> None:
    result = convert(vs(route(), domains=["petstore.example.com", "*.example.com", "api.example.com:8080", "pets-*"]),
                     UPSTREAMS)
    assert result.routes[0]["spec"]["hostnames"] == ["petstore.example.com", "*.example.com", "api.example.com"]
    assert warned(result, '"api.example.com:8080": an HTTPRoute hostname has no port')
    assert warned(result, '"pets-*": only a leading "*." wildcard')


def test_many_routes_are_split_and_other_namespaces_need_a_grant() -> None:
    many = [route({"exact": f"/p{i}"}) for i in range(20)]
    result = convert(vs(*many), UPSTREAMS)
    assert [r["metadata"]["name"] for r in result.routes] == ["coalmine", "coalmine-2"]
    assert [len(r["spec"]["rules"]) for r in result.routes] == [16, 4]
    assert warned(result, "20 rules split into 2 HTTPRoutes")
    other = route({"prefix": "/o"}, {"single": {"kube": {"ref": {"name": "shop", "namespace": "shop"}, "port": 80}}})
    mixed = convert(vs(route(), other), UPSTREAMS, namespace="default")
    assert rules(mixed)[1]["backendRefs"] == [{"name": "shop", "namespace": "shop", "port": 80}]
    assert warned(mixed, "Service shop/shop is in another namespace", "ReferenceGrant")


def test_only_virtual_services_convert() -> None:
    with pytest.raises(ValueError, match="convert takes a VirtualService, not 'Upstream'"):
        convert(UPSTREAMS[0])


def test_convert_command_prints_yaml_and_warnings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COALMINE_")}
    env["COALMINE_HOME"] = str(tmp_path / "no-lab")
    ups = tmp_path / "upstreams.yaml"
    ups.write_text(yaml.safe_dump_all(UPSTREAMS))
    result = subprocess.run([sys.executable, "-m", "helpers", "convert", "-f", str(ROOT / "manifests/gloo/3-weighted-10-90.yaml"),
                             "-f", str(ups), "--gateway", "web/edge"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    (converted,) = list(yaml.safe_load_all(result.stdout))
    assert converted["spec"]["parentRefs"] == [{"name": "edge", "namespace": "web"}]
    assert converted == convert(load_manifests([ROOT / "manifests/gloo/3-weighted-10-90.yaml"])[0], UPSTREAMS,
                                gateway="web/edge").routes[0]
    assert "warning: coalmine: route 0 (exact /findPets): REST function findPets" in result.stderr
    none = subprocess.run([sys.executable, "-m", "helpers", "convert", "-f", str(ups)], capture_output=True, text=True,
                          env=env, timeout=60)
    assert none.returncode == 1 and "no VirtualService in the files given" in none.stderr
