"""Flagger's Gateway API provider in the local runtime: the HTTPRoute its router makes
(weights, A/B matches, the service's match, filters and timeouts), how a refresh keeps
the weights, the checks reading the kgateway clusters, and the schema.

A fake control plane puts what the controller applies into a real ``Store``; the state
machine is the real ``analysis.tick`` and the clock a fixed one.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from helpers.builders import progressive
from helpers.kinds import key
from helpers.runtime.flagger import httproutes
from helpers.runtime.flagger.controller import CanaryController, CanaryWorld
from helpers.runtime.flagger.metrics import check_metrics
from helpers.runtime.flagger.schema import check_canary
from helpers.runtime.flagger.windows import AllGateways
from helpers.runtime.gatewayapi.schema import validate
from helpers.runtime.proxy.stats import UpstreamStats
from helpers.runtime.store import Store

CANARY_CLUSTER = "kube-svc:default-petstore-canary-80"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def gatewayapi_canary(**service: Any) -> dict[str, Any]:
    canary = progressive.canary(provider="gatewayapi:v1")
    canary["spec"]["service"].update(service)
    canary["metadata"]["uid"] = "u1"
    return canary


def rules(route: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(route["spec"]["rules"])


def weights_of(rule: Mapping[str, Any]) -> list[tuple[str, int]]:
    return [(r["name"], r["weight"]) for r in rule["backendRefs"]]


# ── the HTTPRoute ────────────────────────────────────────────────────────────


def test_the_route_attaches_to_the_gateway_refs_and_splits_by_weight() -> None:
    route = httproutes.http_route(gatewayapi_canary(hosts=["petstore.example.com"]), 90, 10)
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1" and route["kind"] == "HTTPRoute"
    assert route["metadata"]["name"] == "petstore" and route["metadata"]["namespace"] == "default"
    assert route["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    assert route["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/reconcile"] == "disabled"
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "http", "namespace": "kgateway-system"}
    ]
    assert route["spec"]["hostnames"] == ["petstore.example.com"]
    (rule,) = rules(route)
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert weights_of(rule) == [("petstore-primary", 90), ("petstore-canary", 10)]
    assert all(r["port"] == 80 and r["kind"] == "Service" for r in rule["backendRefs"])
    assert validate(route) == []  # what the Gateway API CRDs accept
    assert httproutes.weights(route, gatewayapi_canary()) == (90, 10)


def test_ab_testing_sends_the_matched_requests_to_the_canary_and_the_rest_to_the_primary() -> None:
    canary = progressive.ab_canary(provider="gatewayapi:v1")
    canary["spec"]["service"]["match"] = [{"uri": {"prefix": "/api"}}, {"uri": {"exact": "/health"}}]
    canary["spec"]["analysis"]["match"].append({"queryParams": {"beta": {"regex": "on|yes"}}, "uri": {"exact": "/x"}})
    first, rest = rules(httproutes.http_route(canary, 0, 100))
    header = [{"name": "x-canary", "type": "Exact", "value": "insider"}]
    query = [{"name": "beta", "type": "RegularExpression", "value": "on|yes"}]
    # every (analysis, service) pair: the analysis match's headers or query over the
    # service's path; the analysis match's own uri is dropped, as Flagger does
    assert first["matches"] == [
        {"path": {"type": "PathPrefix", "value": "/api"}, "headers": header},
        {"path": {"type": "Exact", "value": "/health"}, "headers": header},
        {"path": {"type": "PathPrefix", "value": "/api"}, "queryParams": query},
        {"path": {"type": "Exact", "value": "/health"}, "queryParams": query},
    ]
    assert weights_of(first) == [("petstore-primary", 0), ("petstore-canary", 100)]
    assert rest["matches"] == [
        {"path": {"type": "PathPrefix", "value": "/api"}},
        {"path": {"type": "Exact", "value": "/health"}},
    ]
    assert weights_of(rest) == [("petstore-primary", 100)]
    assert httproutes.weights({"spec": {"rules": [first, rest]}}, canary) == (0, 100)


def test_filters_and_timeouts_are_copied_from_the_service() -> None:
    canary = gatewayapi_canary(
        timeout="10s",
        backendTimeout="5s",
        retries={"attempts": 3},
        headers={"request": {"set": {"b": "2", "a": "1"}, "remove": ["x-debug"]}, "response": {"add": {"v": "1"}}},
        rewrite={"uri": "/api", "type": "ReplacePrefixMatch"},
        corsPolicy={"allowOrigin": ["https://example.com"], "maxAge": "1m", "allowCredentials": True},
    )
    (rule,) = rules(httproutes.http_route(canary, 100, 0))
    assert rule["timeouts"] == {"request": "10s", "backendRequest": "5s"}
    assert "retry" not in rule  # Flagger's gatewayapi router does not copy service.retries
    assert rule["filters"] == [
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {
                "set": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}],
                "remove": ["x-debug"],
            },
        },
        {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [{"name": "v", "value": "1"}]}},
        {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/api"}}},
        {"type": "CORS", "cors": {"allowOrigins": ["https://example.com"], "allowCredentials": True, "maxAge": 60}},
    ]


def test_a_refresh_keeps_the_weights_unless_the_canary_changed_the_route() -> None:
    canary = gatewayapi_canary()
    stepped = httproutes.http_route(canary, 70, 30)
    assert httproutes.weights(httproutes.reconciled(canary, stepped), canary) == (70, 30)
    changed = gatewayapi_canary(hosts=["pets.example.com"])
    # Flagger's Reconcile writes the new spec at its initial weights
    assert httproutes.weights(httproutes.reconciled(changed, stepped), changed) == (100, 0)
    assert httproutes.weights(httproutes.reconciled(canary, None), canary) == (100, 0)


def test_a_route_the_user_wrote_is_taken_over_without_an_owner() -> None:
    mine = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "petstore", "namespace": "default", "labels": {"team": "a"}, "annotations": {"n": "1"}},
        "spec": {"parentRefs": [{"name": "http"}], "rules": [{"backendRefs": [{"name": "petstore-v1", "port": 8080}]}]},
    }
    route = httproutes.reconciled(gatewayapi_canary(), mine)
    assert "ownerReferences" not in route["metadata"]  # deleting the Canary leaves it, as on a cluster
    assert "labels" not in route["metadata"]  # the apex's labels replace the route's
    assert route["metadata"]["annotations"]["n"] == "1"  # other controllers' annotations stay
    assert weights_of(rules(route)[0]) == [("petstore-primary", 100), ("petstore-canary", 0)]


# ── the controller writes the HTTPRoute ──────────────────────────────────────


class FakeControlPlane:
    """apply and delete on a real store; every Deployment ready."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.applied: list[tuple[str, str, str]] = []

    def apply(self, objects: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        self.applied += [key(o) for o in objects]
        return [{"ref": o["metadata"]["name"], "action": self.store.put(o)[0]} for o in objects]

    def delete(self, refs: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
        return [{"ref": r[2], "action": "deleted" if self.store.delete(r) else "missing"} for r in refs]

    def deployment_status(self, namespace: str, name: str) -> dict[str, int]:
        n = int(((self.store.get(("Deployment", namespace, name)) or {}).get("spec") or {}).get("replicas", 1))
        return {"replicas": n, "readyReplicas": n, "updatedReplicas": n, "availableReplicas": n}


def test_the_controller_initializes_with_an_httproute_and_steps_its_weights(tmp_path: Path) -> None:
    async def main() -> None:
        store = Store(tmp_path / "store.json")
        for obj in load_petstore():
            store.put(obj)
        cp = FakeControlPlane(store)
        controller = CanaryController(
            store, cp, UpstreamStats(), lambda: {"version": 1, "services": {}}, clock=lambda: NOW
        )
        controller.install()
        canary = gatewayapi_canary()
        canary["spec"]["analysis"]["webhooks"] = []
        store.put(canary)
        controller.sync()
        await controller.step_once(("default", "petstore"))
        assert controller.status_of("default", "petstore")["phase"] == "Initialized"
        route = store.get(("HTTPRoute", "default", "petstore"))
        assert route is not None and httproutes.weights(route, canary) == (100, 0)
        kinds = {k[0] for k in cp.applied}
        assert "Upstream" not in kinds and "RouteTable" not in kinds  # no Gloo objects for this provider
        assert {("Service", "default", n) for n in ("petstore", "petstore-primary", "petstore-canary")} <= set(
            cp.applied
        )

        world = CanaryWorld(controller, store.get(("Canary", "default", "petstore")) or {})
        await world.set_weights(60, 40)
        stepped = store.get(("HTTPRoute", "default", "petstore")) or {}
        assert httproutes.weights(stepped, canary) == (60, 40)
        await world.initialize()  # a refresh keeps the weights
        assert httproutes.weights(store.get(("HTTPRoute", "default", "petstore")) or {}, canary) == (60, 40)

        store.delete(("Canary", "default", "petstore"))
        controller.sync()
        assert store.get(("HTTPRoute", "default", "petstore")) is None  # owned: deleted with the Canary
        await controller.close()

    asyncio.run(main())


def load_petstore() -> list[dict[str, Any]]:
    from helpers.loading import load_manifests

    return [copy.deepcopy(o) for o in load_manifests(progressive._PETSTORE)]


# ── the checks ───────────────────────────────────────────────────────────────


def test_the_checks_read_what_the_listener_sent_to_the_canary_service() -> None:
    canary = gatewayapi_canary()
    canary["spec"]["analysis"]["metrics"] = [progressive.success_rate(99, "30s"), progressive.duration(500, "30s")]
    stats = UpstreamStats()
    # Gloo's view of the same Services is not this provider's
    stats.record("default-petstore-canaryupstream-80", 500, 0.001)
    stats.record("default.kube-svc:default-petstore-canary-80", 500, 0.001)
    (message,) = check_metrics(canary, stats, lambda s: float(s.rstrip("s")))
    assert message == (
        "Halt advancement no values found for gatewayapi:v1 metric request-success-rate "
        "probably petstore.default is not receiving traffic: no values found"
    )
    for _ in range(99):
        stats.record(CANARY_CLUSTER, 200, 0.01)
    assert check_metrics(canary, stats, lambda s: float(s.rstrip("s"))) == []
    stats.record(CANARY_CLUSTER, 503, 0.01)
    stats.record(CANARY_CLUSTER, 503, 0.01)
    (message,) = check_metrics(canary, stats, lambda s: float(s.rstrip("s")))
    assert message.startswith("Halt petstore.default advancement success rate 98.02% < 99%")


# ── the schema ───────────────────────────────────────────────────────────────


def test_the_lesson_canaries_are_accepted_without_warnings() -> None:
    for canary in (progressive.canary(provider="gatewayapi:v1"), progressive.ab_canary(provider="gatewayapi:v1")):
        assert check_canary(canary) == ([], [])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gatewayRefs": None}, "spec.service.gatewayRefs: required with provider gatewayapi:v1"),
        ({"gatewayRefs": [{"namespace": "kgateway-system"}]}, "spec.service.gatewayRefs[0].name: required"),
        (
            {"match": [{"headers": {"x-canary": {"prefix": "in"}}}]},
            "spec.service.match[0].headers.x-canary.prefix: Flagger's gatewayapi router matches headers by exact",
        ),
        ({"match": [{"method": {"regex": "GET|HEAD"}}]}, "matches a method by exact only"),
        ({"hosts": ["Pets_Store"]}, "spec.service: the HTTPRoute Flagger would make is refused by the Gateway API"),
        ({"timeout": "1s", "backendTimeout": "2s"}, "backendRequest timeout cannot be longer than request timeout"),
    ],
)
def test_what_the_router_cannot_say_is_refused_with_one_line(change: dict[str, Any], message: str) -> None:
    canary = gatewayapi_canary()
    for field, value in change.items():
        if value is None:
            canary["spec"]["service"].pop(field)
        else:
            canary["spec"]["service"][field] = value
    errors, _ = check_canary(canary)
    assert any(message in e for e in errors), errors


def test_an_ab_header_prefix_is_refused_and_unused_fields_warned() -> None:
    canary = progressive.ab_canary(provider="gatewayapi:v1")
    canary["spec"]["analysis"]["match"] = [{"headers": {"x-canary": {"suffix": "der"}}}]
    errors, _ = check_canary(canary)
    assert errors and errors[0].startswith("spec.analysis.match[0].headers.x-canary.suffix:")
    canary = gatewayapi_canary(retries={"attempts": 2})
    canary["spec"]["analysis"]["match"] = [{"headers": {"a": {"exact": "b"}}, "uri": {"prefix": "/"}}]
    canary["spec"]["analysis"]["iterations"] = 2
    errors, warnings = check_canary(canary)
    assert errors == []
    assert any(w.startswith("spec.service.retries: not used by Flagger's gatewayapi router") for w in warnings)
    assert any(w.startswith("spec.analysis.match[0].uri: A/B routing uses only headers") for w in warnings)


def test_the_checks_read_every_gateway_each_cluster_once() -> None:
    gloo, one, two = UpstreamStats(), UpstreamStats(), UpstreamStats()
    gloo.record("default-petstore-canaryupstream-80", 200, 0.001)
    one.record(CANARY_CLUSTER, 200, 0.001)
    two.record(CANARY_CLUSTER, 500, 0.2)
    two.record("kube-svc:default-petstore-primary-80", 200, 0.001)
    gateways = [gloo, one, two]
    merged = AllGateways(lambda: [*gateways, one])  # a gateway listed twice counts once
    assert merged.names() == [
        "default-petstore-canaryupstream-80",
        "kube-svc:default-petstore-canary-80",
        "kube-svc:default-petstore-primary-80",
    ]
    window = merged.window(CANARY_CLUSTER, 30)
    assert window["requests"] == 2 and window["by_class"] == {"2xx": 1, "5xx": 1}
    assert sum(window["latency_ms"]["counts"]) == 2 and window["p99_ms"] > 100
    gateways.pop()  # a Gateway deleted: its Envoy and its counters are gone
    assert merged.window(CANARY_CLUSTER, 30)["requests"] == 1
    assert merged.window("nowhere", 30)["requests"] == 0
