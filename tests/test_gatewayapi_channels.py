"""The Gateway API channel: what each channel's CRDs accept, the install that records
the channel (kept across a restart, switched by installing again), and what a switch
back to the standard channel does to stored objects."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from helpers.errors import InvalidArgument
from helpers.runtime.controlplane import ControlPlane
from helpers.runtime.gatewayapi.channels import prune
from helpers.runtime.gatewayapi.kgateway import Kgateway, admission
from helpers.runtime.gatewayapi.schema import check, validate
from helpers.runtime.home import LabHome
from helpers.runtime.proxy.stats import UpstreamStats
from helpers.runtime.store import Store

T = TypeVar("T")
X = "experimental"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 20))


def httproute(**rule: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "default"},
        "spec": {
            "parentRefs": [{"name": "http", "namespace": "kgateway-system"}],
            "rules": [{"backendRefs": [{"name": "petstore-v1", "port": 8080}], **rule}],
        },
    }


def gateway(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "http", "namespace": "kgateway-system"},
        "spec": {"gatewayClassName": "kgateway", "listeners": [{"name": "http", "port": 8080, "protocol": "HTTP"}]}
        | spec,
    }


def one(errors: list[str], *needles: str) -> str:
    found = [e for e in errors if all(n in e for n in needles)]
    assert len(found) == 1, errors
    return found[0]


# ── the schema, per channel ──────────────────────────────────────────────────


def test_retry_is_experimental_and_the_standard_refusal_says_how_to_get_it() -> None:
    retried = httproute(retry={"attempts": 3, "codes": [500, 503], "backoff": "100ms"})
    assert validate(retried, X) == []
    message = one(validate(retried), "spec.rules[0].retry")
    assert "experimental channel" in message and "coalmine install kgateway --channel experimental" in message


@pytest.mark.parametrize(
    ("retry", "where", "says"),
    [
        ({"attempts": 0}, "retry.attempts", "must be at least 1"),
        ({"codes": [399]}, "retry.codes[0]", "out of range"),
        ({"codes": [600]}, "retry.codes[0]", "out of range"),
        ({"codes": [503, 503]}, "retry.codes[1]", "Duplicate value: 503"),
        ({"backoff": "1 s"}, "retry.backoff", "is not a Gateway API duration"),
        ({"attempts": "2"}, "retry.attempts", "expected a number"),
        ({"tries": 2}, "retry.tries", "unknown field"),
    ],
)
def test_the_experimental_crd_constrains_retry(retry: dict[str, Any], where: str, says: str) -> None:
    one(validate(httproute(retry=retry), X), where, says)


def test_retry_backoff_is_accepted_with_a_warning() -> None:
    found = check(httproute(retry={"backoff": "1s"}), X)
    assert found.errors == []
    one(found.warnings, "spec.rules[0].retry.backoff", "not implemented by the local runtime")


def test_experimental_fields_the_runtime_does_not_implement_are_refused_by_name() -> None:
    sticky = httproute(sessionPersistence={"sessionName": "s", "type": "Cookie"})
    one(validate(sticky, X), "spec.rules[0].sessionPersistence", "not implemented by the local runtime")
    assert "not implement" in one(validate(sticky), "spec.rules[0].sessionPersistence", "experimental channel")
    auth = {"type": "ExternalAuth", "externalAuth": {"protocol": "HTTP", "backendRef": {"name": "a", "port": 80}}}
    one(validate(httproute(filters=[auth]), X), "filters[0].externalAuth", "not implemented by the local runtime")
    one(validate(httproute(filters=[auth])), "filters[0].type", "is not one of")
    defaults = httproute()
    defaults["spec"]["useDefaultGateways"] = "All"
    one(validate(defaults, X), "spec.useDefaultGateways", "not implemented by the local runtime")
    defaults["spec"]["useDefaultGateways"] = "None"  # what the local runtime does anyway
    assert validate(defaults, X) == []
    one(validate(defaults), "spec.useDefaultGateways", "experimental channel")


def test_gateway_default_scope() -> None:
    found = check(gateway(defaultScope="All"), X)
    assert found.errors == []
    one(found.warnings, "spec.defaultScope", "not implemented by the local runtime")
    one(validate(gateway(defaultScope="All")), "spec.defaultScope", "experimental channel")
    one(validate(gateway(defaultScope="Some"), X), "spec.defaultScope", "is not one of All, None")
    # backendTLS is in neither channel of v1.6.1.
    for channel in ("standard", X):
        one(validate(gateway(backendTLS={}), channel), "spec.backendTLS", "spec.tls.backend")


def test_rules_the_experimental_crd_adds_or_changes() -> None:
    spaced = httproute(
        filters=[{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "a", "value": " x"}]}}]
    )
    assert validate(spaced) == []  # the standard CRD has no pattern for header values
    one(validate(spaced, X), "set[0].value", "is not a valid header value")
    named = httproute(name="same")
    named["spec"]["rules"].append(copy.deepcopy(named["spec"]["rules"][0]))
    assert validate(named) == []  # the standard CRD has no rule for it
    one(validate(named, X), "spec.rules", "Rule name must be unique within the route")
    ports = httproute()
    ports["spec"]["parentRefs"] = [{"name": "http", "port": 8080}, {"name": "http", "port": 8443}]
    assert validate(ports, X) == []  # two ports of one Gateway: distinct in the experimental channel
    one(validate(ports), "spec.parentRefs", "sectionName must be unique")


def test_an_unknown_channel_is_refused() -> None:
    with pytest.raises(InvalidArgument, match='unknown Gateway API channel "beta": use "standard" or "experimental"'):
        validate(httproute(), "beta")


def test_prune_drops_only_experimental_fields() -> None:
    obj = httproute(retry={"attempts": 2}, timeouts={"request": "1s"})
    obj["spec"]["useDefaultGateways"] = "None"
    kept, removed = prune(obj)
    assert removed == ["spec.useDefaultGateways", "spec.rules[0].retry"]
    assert kept["spec"]["rules"][0]["timeouts"] == {"request": "1s"} and "retry" not in kept["spec"]["rules"][0]
    assert obj["spec"]["rules"][0]["retry"] == {"attempts": 2}  # the input is left alone
    assert prune(gateway()) == (gateway(), [])


# ── the install ──────────────────────────────────────────────────────────────


def test_the_channel_is_recorded_kept_across_a_restart_and_switched(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    store = Store(path)
    kg = Kgateway(store, UpstreamStats())
    assert kg.install() == [] and kg.channel == "standard"
    assert kg.install(X) == [] and kg.channel == X
    store.put(httproute(retry={"attempts": 2}))
    assert Kgateway(Store(path), UpstreamStats()).channel == X  # a restart reads it back

    pruned = kg.install("standard")
    assert pruned == ["HTTPRoute/default/r: spec.rules[0].retry"]
    assert "retry" not in store.get(("HTTPRoute", "default", "r"))["spec"]["rules"][0]  # type: ignore[index]
    reread = Kgateway(Store(path), UpstreamStats())
    assert reread.channel == "standard"
    assert "retry" not in reread.store.get(("HTTPRoute", "default", "r"))["spec"]["rules"][0]  # type: ignore[index]
    assert admission(httproute(retry={"attempts": 2}), reread.channel) != []


def test_the_control_plane_installs_the_channel_and_refuses_by_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        cp = ControlPlane(LabHome(tmp_path))
        try:
            await cp.start()
            result = await cp.install("kgateway")
            assert result["channel"] == "standard" and cp.status()["gatewayApi"]["channel"] == "standard"
            refused = cp.apply([httproute(retry={"attempts": 2})])[0]
            assert "--channel experimental" in refused["error"] and "unchanged" in refused["error"]
            result = await cp.install("kgateway", channel=X)
            assert result["channel"] == X and cp.status()["gatewayApi"]["channel"] == X
            assert cp.apply([httproute(retry={"attempts": 2})])[0]["action"] == "created"
            sticky = cp.apply([httproute(sessionPersistence={"sessionName": "s"})])[0]
            assert "sessionPersistence: session persistence is not implemented by the local runtime" in sticky["error"]
            stored = cp.get("HTTPRoute", "default", "r")[0]
            assert stored["spec"]["rules"][0]["retry"] == {"attempts": 2}  # the refusal changed nothing
            with pytest.raises(InvalidArgument, match="--channel is a Gateway API choice"):
                await cp.install("gloo", channel=X)
        finally:
            await cp.close()

    run(scenario())
