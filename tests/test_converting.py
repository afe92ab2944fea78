"""VirtualService → HTTPRoute: what converts faithfully, and a warning for each case that does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import routing
from helpers.errors import InvalidArgument
from helpers.migrate.converting import convert, convert_objects
from helpers.migrate.ordering import may_overlap
from helpers.runtime.gatewayapi.schema import validate

GLOO = Path(__file__).resolve().parents[1] / "manifests" / "gloo"
V1 = {"upstream": routing.upstream("v1")}
V2 = {"upstream": routing.upstream("v2")}
UPSTREAM_V1 = {
    "apiVersion": "gloo.solo.io/v1",
    "kind": "Upstream",
    "metadata": {"name": "default-petstore-v1-8080", "namespace": "gloo-system"},
    "spec": {
        "kube": {
            "serviceName": "petstore-v1",
            "serviceNamespace": "default",
            "servicePort": 8080,
            "serviceSpec": {"rest": {"transformations": {"findPets": {"headers": {":path": {"text": "/api/pets"}}}}}},
        }
    },
}


def vs(*routes: dict[str, Any], domains: tuple[str, ...] = ("*",)) -> dict[str, Any]:
    return routing.virtual_service(list(routes), domains=domains)


def r(matcher: dict[str, Any] | None = None, dest: dict[str, Any] = V1, **extra: Any) -> dict[str, Any]:
    return {"matchers": [matcher or {"prefix": "/"}], "routeAction": {"single": dest}, **extra}


def rules(result: Any) -> list[dict[str, Any]]:
    return [rule for obj in result.objects for rule in obj["spec"]["rules"]]


def warned(result: Any, *needles: str) -> list[str]:
    found = [w for w in result.warnings if all(n in w for n in needles)]
    assert found, result.warnings
    return found


@pytest.mark.parametrize("manifest", sorted(p.name for p in GLOO.glob("*.yaml")))
def test_the_seed_steps_convert_to_valid_httproutes(manifest: str) -> None:
    result = convert(yaml.safe_load((GLOO / manifest).read_text()))
    assert result.objects and all(validate(o) == [] for o in result.objects)
    route = result.objects[0]
    assert route["metadata"] == {"name": "coalmine", "namespace": "default"}  # where the Services are
    assert route["spec"]["parentRefs"] == [{"name": "http", "namespace": "kgateway-system"}]
    assert yaml.safe_load(result.to_yaml()) == route


def test_a_plain_route_converts_without_warnings() -> None:
    result = convert(
        vs(r({"prefix": "/api/"}, {"kube": {"ref": {"name": "petstore-v1", "namespace": "default"}, "port": 8080}}))
    )
    assert result.warnings == []
    assert rules(result) == [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/api/"}}],
            "backendRefs": [{"name": "petstore-v1", "port": 8080}],
        }
    ]


def test_rest_function_destination_is_warned_with_the_rewrite_to_add() -> None:
    route = r({"exact": "/findPets"}, {**V1, "destinationSpec": {"rest": {"functionName": "findPets"}}})
    result = convert(vs(route), [UPSTREAM_V1])
    w = warned(result, "routes[0].routeAction.single.destinationSpec.rest", "REST function findPets has no Gateway API")
    assert "ReplaceFullPath: /api/pets" in w[0]
    assert not [x for x in result.warnings if "was not given" in x]  # the Upstream said which Service


def test_an_upstream_not_given_is_read_from_its_name_with_a_warning() -> None:
    result = convert(vs(r(), r({"prefix": "/b/"})))
    assert len(warned(result, "upstream default-petstore-v1-8080 was not given", "Service default/petstore-v1")) == 1
    assert rules(result)[0]["backendRefs"] == [{"name": "petstore-v1", "port": 8080}]


def test_regex_header_precedence_is_warned() -> None:
    result = convert(vs(r({"prefix": "/", "headers": [{"name": "x-canary", "value": "tr.e", "regex": True}]})))
    warned(result, "headers[0]", "implementation-specific", "counts like an exact one in precedence")
    assert rules(result)[0]["matches"][0]["headers"] == [
        {"type": "RegularExpression", "name": "x-canary", "value": "tr.e"}
    ]
    plain = convert(vs(r({"prefix": "/", "headers": [{"name": "x-canary", "value": "true", "regex": True}]})))
    warned(plain, "no special characters: written as an Exact match")


def test_first_match_ordering_the_gateway_api_would_change_is_warned() -> None:
    catch_all, exact = r({"prefix": "/"}, V1), r({"exact": "/api/pets"}, V2)
    w = warned(convert(vs(catch_all, exact)), "routes[1] (exact /api/pets) now wins over routes[0] (/)")
    assert "an Exact path before any other" in w[0]
    longer = warned(convert(vs(r({"prefix": "/api"}), r({"prefix": "/api/pets"}))), "the longest path prefix")
    headers = warned(
        convert(vs(r({"prefix": "/"}), r({"prefix": "/", "headers": [{"name": "x", "value": "1"}]}))),
        "the most header matches",
    )
    assert longer and headers


def test_no_ordering_warning_when_the_winner_stays_or_routes_cannot_overlap() -> None:
    same_order = convert(routing.header_canary())
    assert not [w for w in same_order.warnings if "now wins" in w]
    disjoint = convert(vs(r({"prefix": "/a/"}), r({"exact": "/b/x"})))
    assert not [w for w in disjoint.warnings if "now wins" in w]
    values = convert(
        vs(
            r({"prefix": "/", "headers": [{"name": "v", "value": "1"}]}),
            r({"exact": "/x", "headers": [{"name": "v", "value": "2"}]}),
        )
    )
    assert not [w for w in values.warnings if "now wins" in w]
    assert not may_overlap({"prefix": "/", "methods": ["GET"]}, {"exact": "/x", "methods": ["POST"]})


def test_invert_match_and_presence_matches_have_no_equivalent() -> None:
    result = convert(
        vs(
            r(
                {
                    "prefix": "/",
                    "headers": [{"name": "x-canary", "value": "true", "invertMatch": True}, {"name": "x-user"}],
                }
            )
        )
    )
    warned(result, "headers[0]", "invertMatch", "dropped", "matches more requests")
    warned(result, "headers[1]", "only has to be present", 'RegularExpression ".*"')
    assert rules(result)[0]["matches"][0]["headers"] == [{"type": "RegularExpression", "name": "x-user", "value": ".*"}]


def test_a_prefix_that_is_not_a_whole_segment_is_warned() -> None:
    warned(convert(vs(r({"prefix": "/pet"}))), 'PathPrefix "/pet" matches whole path segments only', "/petx")
    assert not convert(vs(r({"prefix": "/pet/"}))).warnings[1:]


def test_options_faults_retries_timeout_and_headers() -> None:
    options = {
        "faults": {"abort": {"percentage": 10, "httpStatus": 503}},
        "timeout": "2.5s",
        "retries": {"retryOn": "5xx,reset", "numRetries": 3, "perTryTimeout": "1s"},
        "headerManipulation": {
            "requestHeadersToAdd": [{"header": {"key": "x-a", "value": "1"}, "append": False}],
            "responseHeadersToRemove": ["server"],
        },
    }
    result = convert(vs(r({"prefix": "/x/"}, options=options)))
    warned(result, "options.faults", "has no Gateway API equivalent")
    # The standard channel (the default) has no HTTPRoute retry: left out, and the warning says how.
    warned(result, "options.retries", "experimental channel", "--channel experimental", "install kgateway")
    rule = rules(result)[0]
    assert "retry" not in rule
    assert rule["timeouts"] == {"request": "2500ms", "backendRequest": "1s"}
    assert rule["filters"] == [
        {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-a", "value": "1"}]}},
        {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"remove": ["server"]}},
    ]
    assert validate(result.objects[0]) == []

    experimental = convert(vs(r({"prefix": "/x/"}, options=options)), channel="experimental")
    warned(experimental, "retries.retryOn", '"reset" has no Gateway API equivalent')
    assert not [w for w in experimental.warnings if "--channel experimental" in w]
    assert rules(experimental)[0]["retry"] == {"attempts": 3, "codes": [500, 502, 503, 504]}
    assert validate(experimental.objects[0], "experimental") == []
    assert any("retry" in e for e in validate(experimental.objects[0]))  # what a standard cluster refuses


def test_zero_retries_and_an_unknown_channel() -> None:
    options = {"retries": {"retryOn": "5xx", "numRetries": 0}}
    result = convert(vs(r({"prefix": "/x/"}, options=options)), channel="experimental")
    warned(result, "retries.numRetries", "at least 1")
    assert "retry" not in rules(result)[0]
    with pytest.raises(InvalidArgument, match='unknown Gateway API channel "beta"'):
        convert(vs(r({"prefix": "/x/"})), channel="beta")


def test_prefix_rewrite_becomes_url_rewrite_one_rule_per_matcher() -> None:
    route = {
        "matchers": [{"prefix": "/petstore"}, {"exact": "/pets"}],
        "routeAction": {"single": V1},
        "options": {"prefixRewrite": "/api/pets"},
    }
    result = convert(vs(route))
    got = [(x["matches"][0]["path"]["type"], x["filters"][0]["urlRewrite"]["path"]) for x in rules(result)]
    assert got == [
        ("PathPrefix", {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/api/pets"}),
        ("Exact", {"type": "ReplaceFullPath", "replaceFullPath": "/api/pets"}),
    ]
    assert validate(result.objects[0]) == []


def test_direct_responses_are_left_out_with_a_warning() -> None:
    result = convert(vs({"matchers": [{"prefix": "/down"}], "directResponseAction": {"status": 503}}, r()))
    warned(result, "routes[0]", "directResponseAction has no standard Gateway API equivalent")
    assert len(rules(result)) == 1


def route_table(name: str, *routes: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "gloo-system", **({"labels": labels} if labels else {})}
    return {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "RouteTable",
        "metadata": meta,
        "spec": {"routes": list(routes)},
    }


def test_delegation_by_ref_becomes_a_parent_rule_naming_the_child_httproute() -> None:
    parent = vs({"matchers": [{"prefix": "/pets/"}], "delegateAction": {"ref": {"name": "pets"}}})
    child = route_table("pets", r({"prefix": "/pets/v1"}), r({"exact": "/pets/all"}, V2))
    result = convert_objects([parent, child, UPSTREAM_V1])
    by_name = {o["metadata"]["name"]: o for o in result.objects}
    [rule] = by_name["coalmine"]["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/pets/"}}]
    assert rule["backendRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "pets", "namespace": "gloo-system"}
    ]
    kid = by_name["pets"]
    assert "parentRefs" not in kid["spec"] and kid["metadata"]["namespace"] == "gloo-system"
    assert [m["path"] for rule in kid["spec"]["rules"] for m in rule["matches"]] == [
        {"type": "PathPrefix", "value": "/pets/v1"},
        {"type": "Exact", "value": "/pets/all"},
    ]
    warned(result, "virtualservice gloo-system/coalmine", "delegates to the HTTPRoute gloo-system/pets")
    for o in result.objects:
        assert validate(o) == [], o


def test_delegation_by_one_label_selects_children_by_kgateways_label() -> None:
    selector = {"labels": {"team": "pets"}, "namespaces": ["*"]}
    parent = vs({"matchers": [{"prefix": "/"}], "delegateAction": {"selector": selector}})
    child = route_table("pets", r({"prefix": "/pets"}), labels={"team": "pets"})
    result = convert_objects([child, parent])
    by_name = {o["metadata"]["name"]: o for o in result.objects}
    assert by_name["coalmine"]["spec"]["rules"][0]["backendRefs"] == [
        {"group": "delegation.kgateway.dev", "kind": "label", "name": "pets", "namespace": "all"}
    ]
    assert by_name["pets"]["metadata"]["labels"] == {"delegation.kgateway.dev/label": "pets"}
    warned(result, "delegateAction.selector", 'delegation.kgateway.dev/label: "pets", not by team=pets')


def test_delegation_kgateway_cannot_express_is_left_out_with_the_reason() -> None:
    result = convert(
        vs(
            {"matchers": [{"exact": "/rt"}], "delegateAction": {"ref": {"name": "x"}}},
            {"matchers": [{"prefix": "/two"}], "delegateAction": {"selector": {"labels": {"a": "1", "b": "2"}}}},
            r(),
        )
    )
    warned(result, "routes[0].matchers", "a delegating route must match a prefix")
    warned(result, "routes[1].delegateAction.selector", "not by 2 labels or expressions; left out")
    assert len(rules(result)) == 1


def test_a_route_tables_weight_is_named_as_not_carried() -> None:
    table = route_table("pets", r({"prefix": "/pets"}))
    table["spec"]["weight"] = 10
    result = convert_objects([table])
    warned(result, "routetable gloo-system/pets: spec.weight", "Gateway API precedence")


def test_redirects_weights_groups_and_domains() -> None:
    group = {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "UpstreamGroup",
        "metadata": {"name": "g", "namespace": "gloo-system"},
        "spec": {"destinations": [{"destination": V1, "weight": 3}, {"destination": V2}]},
    }
    objects = [
        vs(
            {
                "matchers": [{"prefix": "/old/"}],
                "redirectAction": {"hostRedirect": "new.example.com", "responseCode": "FOUND"},
            },
            {
                "matchers": [{"prefix": "/w/"}],
                "routeAction": {
                    "multi": {"destinations": [{"destination": V2, "weight": 0}, {"destination": V1, "weight": 5}]}
                },
            },
            {"matchers": [{"prefix": "/g/"}], "routeAction": {"upstreamGroup": {"name": "g"}}},
            domains=("shop.example.com:8080", "*.example.com", "api.*"),
        ),
        group,
    ]
    result = convert_objects(objects)
    assert result.objects[0]["spec"]["hostnames"] == ["shop.example.com", "*.example.com"]
    warned(result, "domains", "the port was dropped")
    warned(result, '"api.*"', 'only a leading "*." wildcard')
    redirect, weights, grouped = rules(result)
    assert redirect == {
        "matches": [{"path": {"type": "PathPrefix", "value": "/old/"}}],
        "filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 302, "hostname": "new.example.com"}}],
    }
    assert [b["weight"] for b in weights["backendRefs"]] == [0, 5]
    assert [(b["name"], b["weight"]) for b in grouped["backendRefs"]] == [("petstore-v1", 3), ("petstore-v2", 0)]
    assert validate(result.objects[0]) == []


def test_several_methods_become_several_matches() -> None:
    result = convert(vs(r({"prefix": "/", "methods": ["GET", "HEAD"]})))
    assert [m["method"] for m in rules(result)[0]["matches"]] == ["GET", "HEAD"]
    warned(result, "one match per method")


def test_more_than_16_routes_make_several_httproutes() -> None:
    result = convert(vs(*[r({"exact": f"/p{i}"}) for i in range(20)]))
    assert [o["metadata"]["name"] for o in result.objects] == ["coalmine", "coalmine-2"]
    assert [len(o["spec"]["rules"]) for o in result.objects] == [16, 4]
    warned(result, "split into 2 HTTPRoutes")


def test_convert_objects_needs_a_virtual_service() -> None:
    with pytest.raises(ValueError, match="no VirtualService or RouteTable to convert"):
        convert_objects([UPSTREAM_V1])


@pytest.mark.parametrize(
    "dest, field",
    [
        ({"kube": {"ref": {"namespace": "default"}, "port": 8080}}, ".single.kube.ref.name"),
        ({"kube": {"ref": {"name": "petstore-v1"}}}, ".single.kube.port"),
        ({"upstream": {"namespace": "gloo-system"}}, ".single.upstream.name"),
    ],
)
def test_a_destination_without_its_name_is_left_out_with_a_warning_naming_the_field(
    dest: dict[str, Any], field: str
) -> None:
    # Gloo's CRD lets the name (or a group's port) go: Gloo finds nothing and answers 503.
    result = convert(vs(r({"prefix": "/broken"}, dest), r({"prefix": "/"})))
    (warning,) = warned(result, f"routeAction{field}", "Gloo finds nothing for it and answers 503; left out")
    assert "no " in warning
    assert all(validate(o) == [] for o in result.objects)


def test_an_upstream_group_ref_without_a_name_is_warned() -> None:
    result = convert(vs({"matchers": [{"prefix": "/g/"}], "routeAction": {"upstreamGroup": {"namespace": "x"}}}))
    warned(result, "routeAction.upstreamGroup.name", "no UpstreamGroup name given")
