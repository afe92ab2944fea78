"""kgateway route delegation in the local Gateway API translator.

A parent HTTPRoute rule whose backendRef names HTTPRoutes (by name, ``"*"``, or the
``delegation.kgateway.dev/label`` label) hands its prefix to those children. The
behaviours are kgateway 2.x's (``internal/kgateway/query/httproute.go``,
``translator/httproute/delegation*.go``, ``irtranslator/route.go``; kgateway.dev
route-delegation pages). ``served`` asks the listener's table which Service answers.
"""

from __future__ import annotations

from typing import Any

from helpers.runtime.gatewayapi.translating import GatewayTranslation
from helpers.runtime.routes import DirectResponse, RouteAction
from tests.test_translating_gatewayapi import LISTENER, match, route, rule, run, served, service

TEAM = [service(f"petstore-{v}", "team") for v in ("v1", "v2")]
GROUP = "gateway.networking.k8s.io"


def to_route(name: str = "*", ns: str = "team", **extra: Any) -> dict[str, Any]:
    return {"group": GROUP, "kind": "HTTPRoute", "name": name, "namespace": ns, **extra}


def to_label(value: str, ns: str = "team") -> dict[str, Any]:
    return {"group": "delegation.kgateway.dev", "kind": "label", "name": value, "namespace": ns}


def delegating(m: dict[str, Any], *refs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"matches": [m], "backendRefs": list(refs), **extra}


def parent(*rules: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return route(*rules, name=kw.pop("name", "parent"), **kw)


def child(
    name: str, *rules: dict[str, Any], ns: str = "team", labels: dict[str, str] | None = None, **kw: Any
) -> dict[str, Any]:
    obj = route(*rules, name=name, ns=ns, **kw)
    del obj["spec"]["parentRefs"]
    if labels:
        obj["metadata"]["labels"] = labels
    return obj


def translate(*objects: dict[str, Any]) -> GatewayTranslation:
    return run(*TEAM, *objects)


def parents_of(result: GatewayTranslation, name: str, ns: str = "team") -> dict[str, dict[str, tuple[str, str]]]:
    """``status.parents`` as {"Kind ns/name": {condition type: (status, reason)}}."""
    return {
        f"{p['parentRef']['kind']} {p['parentRef']['namespace']}/{p['parentRef']['name']}": {
            c["type"]: (c["status"], c["reason"]) for c in p["conditions"]
        }
        for p in result.statuses[("HTTPRoute", ns, name)]["parents"]
    }


def warnings(result: GatewayTranslation, name: str, ns: str = "team") -> str:
    return "\n".join(result.warnings.get(("HTTPRoute", ns, name), []))


OK = {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}


# ── selecting children ───────────────────────────────────────────────────────


def test_a_parent_delegates_its_prefix_to_a_child_named_by_ref() -> None:
    r = translate(
        parent(delegating(match("/api"), to_route("pets")), rule(match("/"), "v1")),
        child("pets", rule(match("/api/pets"), "v2")),
    )
    assert served(r, "/api/pets/1") == "v2"
    # The delegating match is no route of its own: what no child matches falls to "/".
    assert served(r, "/api/other") == "v1"
    assert served(r, "/elsewhere") == "v1"
    assert parents_of(r, "pets") == {"HTTPRoute default/parent": OK}
    assert parents_of(r, "parent", "default")["Gateway kgateway-system/http"] == OK
    assert warnings(r, "pets") == ""  # no "parentRefs is empty" for a delegated child


def test_a_label_ref_picks_labelled_children_in_its_namespace_or_all() -> None:
    label = {"delegation.kgateway.dev/label": "pets"}
    kids = [
        child("a", rule(match("/api/a"), "v1"), labels=label),
        child("b", rule(match("/api/b"), "v2"), labels={"delegation.kgateway.dev/label": "other"}),
        child("c", rule(match("/api/c"), "v2"), ns="default", labels=label),
    ]
    r = translate(parent(delegating(match("/api"), to_label("pets"))), *kids)
    assert [served(r, f"/api/{x}") for x in "abc"] == ["v1", "404", "404"]
    r = translate(parent(delegating(match("/api"), to_label("pets", "all"))), *kids)
    assert [served(r, f"/api/{x}") for x in "abc"] == ["v1", "404", "v2"]


def test_a_wildcard_ref_picks_every_route_of_the_namespace() -> None:
    r = translate(
        parent(delegating(match("/api"), to_route("*"))),
        child("a", rule(match("/api/a"), "v1")),
        child("b", rule(match("/api/b"), "v2")),
    )
    assert served(r, "/api/a") == "v1" and served(r, "/api/b") == "v2"


def test_a_child_with_parent_refs_is_picked_only_by_the_httproute_they_name() -> None:
    mine = child("mine", rule(match("/api/mine"), "v1"))
    mine["spec"]["parentRefs"] = [{"group": GROUP, "kind": "HTTPRoute", "name": "parent", "namespace": "default"}]
    theirs = child("theirs", rule(match("/api/theirs"), "v2"))
    theirs["spec"]["parentRefs"] = [{"group": GROUP, "kind": "HTTPRoute", "name": "other", "namespace": "default"}]
    r = translate(parent(delegating(match("/api"), to_route("*"))), mine, theirs)
    assert served(r, "/api/mine") == "v1" and served(r, "/api/theirs") == "404"
    assert parents_of(r, "mine") == {"HTTPRoute default/parent": OK}
    assert "no parent HTTPRoute delegates to this route" in warnings(r, "theirs")


# ── what a child may match ───────────────────────────────────────────────────


def test_child_matches_outside_the_parents_prefix_are_dropped_silently() -> None:
    r = translate(
        parent(delegating(match("/api"), to_route("pets"))),
        child("pets", rule([match("/api/pets"), match("/pets")], "v1"), rule(match("/other"), "v2")),
    )
    assert served(r, "/api/pets") == "v1"
    assert served(r, "/pets") == "404" and served(r, "/other") == "404"
    assert parents_of(r, "pets") == {"HTTPRoute default/parent": OK}  # kgateway writes no condition for it


def test_the_prefix_is_compared_as_text_as_kgateway_does() -> None:
    r = translate(parent(delegating(match("/api"), to_route("pets"))), child("pets", rule(match("/apiary"), "v1")))
    assert served(r, "/apiary") == "v1"


def test_no_child_match_under_the_prefix_leaves_it_unrouted_with_a_warning() -> None:
    r = translate(parent(delegating(match("/api"), to_route("pets"))), child("pets", rule(match("/pets"), "v1")))
    assert served(r, "/api/x") == "404"
    assert "requests there get 404" in warnings(r, "parent", "default")
    assert ("HTTPRoute", "team", "pets") not in r.statuses or parents_of(r, "pets") == {}


def test_a_child_must_repeat_the_parents_headers_query_and_method() -> None:
    m = match("/api", headers={"x-team": "a"}, query={"q": "1"}, method="GET")
    r = translate(
        parent(delegating(m, to_route("*"))),
        child("full", rule(match("/api/full", headers={"x-team": "a", "x-more": "b"}, query={"q": "1"}, method="GET"))),
        child("bare", rule(match("/api/bare"), "v2")),
    )
    assert served(r, "/api/full", {"x-team": "a", "x-more": "b"}, {"q": "1"}) == "v1"
    assert served(r, "/api/full", {"x-team": "a"}, {"q": "1"}) == "404"
    assert served(r, "/api/bare", {"x-team": "a"}, {"q": "1"}) == "404"


def test_inherit_parent_matcher_joins_the_parents_match_to_the_childs() -> None:
    kid = child("bare", rule(match("/pets"), "v2"))
    kid["metadata"]["annotations"] = {"delegation.kgateway.dev/inherit-parent-matcher": "true"}
    r = translate(parent(delegating(match("/api", headers={"x-team": "a"}), to_route("bare"))), kid)
    assert served(r, "/api/pets/1", {"x-team": "a"}) == "v2"
    assert served(r, "/api/pets/1") == "404" and served(r, "/pets") == "404"


def test_a_child_with_hostnames_is_refused_with_unsupported_value() -> None:
    r = translate(
        parent(delegating(match("/api"), to_route("pets"))),
        child("pets", rule(match("/api/pets"), "v1"), hostnames=["pets.example"]),
    )
    assert served(r, "/api/pets") == "404"
    assert parents_of(r, "pets")["HTTPRoute default/parent"]["Accepted"] == ("False", "UnsupportedValue")
    assert "spec.hostnames must be unset on a delegatee route" in warnings(r, "pets")


def test_children_serve_the_parents_hostnames() -> None:
    r = translate(
        parent(delegating(match("/api"), to_route("pets")), hostnames=["shop.example"]),
        child("pets", rule(match("/api/pets"), "v1")),
    )
    assert served(r, "/api/pets", host="shop.example") == "v1"
    assert served(r, "/api/pets", host="other.example") == "404"


# ── failures: 500 at the parent's match, ResolvedRefs False ──────────────────


def test_an_unresolved_child_answers_500_and_sets_backend_not_found() -> None:
    r = translate(parent(delegating(match("/api"), to_route("missing")), rule(match("/"), "v1")))
    assert served(r, "/api/x") == "DirectResponse"
    assert served(r, "/x") == "v1"  # valid routes keep working
    found = r.listeners[LISTENER].virtual_hosts[0].routes
    assert any(isinstance(x.action, DirectResponse) and x.action.status == 500 for x in found)
    assert parents_of(r, "parent", "default")["Gateway kgateway-system/http"]["ResolvedRefs"] == (
        "False",
        "BackendNotFound",
    )


def test_a_cycle_answers_500_and_sets_ref_not_permitted() -> None:
    loop = child("loop", rule(match("/api/one"), "v1"), delegating(match("/api/loop"), to_route("loop")))
    r = translate(parent(delegating(match("/api"), to_route("loop"))), loop)
    assert served(r, "/api/one") == "v1"
    assert served(r, "/api/loop/x") == "DirectResponse"
    assert parents_of(r, "loop")["HTTPRoute default/parent"]["ResolvedRefs"] == ("False", "RefNotPermitted")


def test_nested_delegation_reaches_grandchildren() -> None:
    r = translate(
        parent(delegating(match("/api"), to_route("team", "team"))),
        child("team", delegating(match("/api/team"), to_route("grand", "default"))),
        child("grand", rule(match("/api/team/pets", "Exact"), "v2"), ns="default"),
    )
    assert served(r, "/api/team/pets") == "v2" and served(r, "/api/team/other") == "404"
    assert parents_of(r, "grand", "default") == {"HTTPRoute team/team": OK}
    assert parents_of(r, "team") == {"HTTPRoute default/parent": OK}


def test_a_childs_missing_service_shows_on_its_own_status() -> None:
    r = translate(
        parent(delegating(match("/api"), to_route("pets"))),
        child("pets", {"matches": [match("/api/pets")], "backendRefs": [{"name": "nope", "port": 8080}]}),
    )
    assert parents_of(r, "pets")["HTTPRoute default/parent"]["ResolvedRefs"] == ("False", "BackendNotFound")
    assert parents_of(r, "parent", "default")["Gateway kgateway-system/http"] == OK


# ── weights, policies and precedence ─────────────────────────────────────────


def test_weight_on_a_delegating_ref_means_nothing_and_services_beside_it_are_not_served() -> None:
    r = translate(
        parent(
            delegating(match("/api"), to_route("pets", weight=0), {"name": "petstore-v1", "port": 8080, "weight": 5})
        ),
        child("pets", rule(match("/api/pets"), "v2")),
    )
    assert served(r, "/api/pets") == "v2" and served(r, "/api/x") == "404"
    assert "beside a delegation, a Service is not served" in warnings(r, "parent", "default")


def test_children_inherit_the_delegating_rules_timeouts_and_filters_unless_they_set_their_own() -> None:
    header = {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-via", "value": "p"}]}}
    r = translate(
        parent(delegating(match("/api"), to_route("*"), timeouts={"request": "3s"}, filters=[header])),
        child("a", rule(match("/api/a"), "v1")),
        child("b", rule(match("/api/b"), "v2", timeouts={"request": "7s"})),
    )
    actions = {x.source.split()[0]: x.action for x in r.listeners[LISTENER].virtual_hosts[0].routes}
    a, b = actions["team/a"], actions["team/b"]
    assert isinstance(a, RouteAction) and isinstance(b, RouteAction)
    assert (a.timeout, b.timeout) == (3.0, 7.0)
    assert a.header_ops is not None and a.header_ops.request_add == (("x-via", "p", False),)


def test_merged_routes_are_ranked_by_the_specifications_precedence() -> None:
    r = translate(
        parent(delegating(match("/api"), to_route("*")), rule(match("/api/pets/special", "Exact"), "v1")),
        child("short", rule(match("/api/pets"), "v1")),
        child("long", rule(match("/api/pets/cats"), "v2")),
    )
    assert served(r, "/api/pets/cats/1") == "v2"  # the longer prefix, from another child
    assert served(r, "/api/pets/dogs") == "v1"
    sources = [x.source for x in r.listeners[LISTENER].virtual_hosts[0].routes]
    assert sources[0] == "default/parent rules[1].matches[0]"  # Exact first
    assert sources[1] == "team/long rules[0].matches[0] (delegated by default/parent)"
