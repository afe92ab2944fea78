"""Flagger's Canary with ``provider: gatewayapi:v1`` on the local runtime, over real
traffic through a kgateway listener: the HTTPRoute Flagger makes moves step by step to
a good release, which is promoted; a bad one (30% of its answers 500) is rolled back
with every request back on the primary.

The load comes from the lab's load tester pod, called by the Canary's webhooks through
in-lab DNS, sending ``hey``'s traffic to the Gateway's Service
``http://http.kgateway-system:8080/api/pets``.
"""

from __future__ import annotations

import time
from typing import Any

from helpers import Lab
from helpers.builders import progressive
from tests.conftest import wait_for
from tests.integration.conftest import MANIFESTS, Client, follow_canary, upstream_counts, version_of

FLAGGER = MANIFESTS / "flagger"
GATEWAY = "kgateway-system/http"
PRIMARY, CANARY_CLUSTER = "kube-svc:default-petstore-primary-80", "kube-svc:default-petstore-canary-80"


def canary() -> dict[str, Any]:
    """The lesson's gatewayapi Canary, with shorter steps so a rollout takes seconds."""
    found = progressive.canary(interval="1s", step_weight=25, max_weight=50, provider="gatewayapi:v1")
    hey = progressive.load_test(duration="2m", gateway=progressive.gateway_url(GATEWAY))
    found["spec"]["analysis"]["webhooks"] = progressive.load_tests(hey)
    return found


def route_weights(lab: Lab) -> list[tuple[str, int]]:
    (route,) = lab.objects("httproute", "petstore", "default")
    (rule,) = route["spec"]["rules"]
    return [(r["name"], r["weight"]) for r in rule["backendRefs"]]


def test_a_good_release_is_promoted_and_a_bad_one_rolled_back_on_kgateway(lab: Lab) -> None:
    lab.install("kgateway")
    lab.install("flagger")
    lab.apply(MANIFESTS / "gateway-api" / "0-gateway.yaml", FLAGGER / "petstore.yaml", FLAGGER / "loadtester.yaml")
    lab.wait(60)
    lab.apply(canary())
    follow_canary(lab, "Initialized", [], 60)
    assert route_weights(lab) == [("petstore-primary", 100), ("petstore-canary", 0)]
    (route,) = lab.objects("httproute", "petstore", "default")
    (parent,) = route["status"]["parents"]
    assert {c["type"]: c["status"] for c in parent["conditions"]}["Accepted"] == "True"
    client = Client(lab.proxy_url(gateway=GATEWAY))
    try:
        wait_for(lambda: client.get("/api/pets")[0] == 200 or None, 30, "the listener serves the HTTPRoute")
        code, body = client.get("/api/pets")
        assert (code, version_of(body)) == (200, "v1")

        started, seen = time.monotonic(), []
        lab.apply(FLAGGER / "rollout-good.yaml")
        follow_canary(lab, "Succeeded", seen, 180)
        good_s = time.monotonic() - started
        phases = [p for p, _ in seen]
        assert "Progressing" in phases and "Promoting" in phases and "Finalising" in phases
        assert {w for _, w in seen} >= {25, 50}  # step by step, up to maxWeight
        assert route_weights(lab) == [("petstore-primary", 100), ("petstore-canary", 0)]
        for _ in range(5):
            code, body = client.get("/api/pets")
            assert (code, version_of(body)) == (200, "v2")  # the primary now runs v2

        primary_before, canary_before = upstream_counts(lab, PRIMARY), upstream_counts(lab, CANARY_CLUSTER)
        started, seen = time.monotonic(), []
        lab.apply(FLAGGER / "rollout-bad.yaml")
        failed = follow_canary(lab, "Failed", seen, 180)
        bad_s = time.monotonic() - started
        assert failed["canaryWeight"] == 0
        assert route_weights(lab) == [("petstore-primary", 100), ("petstore-canary", 0)]
        canary_after, primary_after = upstream_counts(lab, CANARY_CLUSTER), upstream_counts(lab, PRIMARY)
        answered, failures = canary_after[0] - canary_before[0], canary_after[1] - canary_before[1]
        assert failures > 0  # the bad version was measured on real traffic through the listener
        assert primary_after[0] > primary_before[0] and primary_after[1] == primary_before[1] == 0
        for _ in range(20):
            code, body = client.get("/api/pets")
            assert (code, version_of(body)) == (200, "v2")  # all traffic back on the good primary
    finally:
        client.close()

    messages = list(lab.events("default")["MESSAGE"])
    assert any(m.startswith("Halt petstore.default advancement success rate") for m in messages)
    assert any("Rolling back" in m for m in messages)
    print(
        f"\nflagger gatewayapi figures: good rollout to Succeeded {good_s:.1f}s; bad rollout to Failed {bad_s:.1f}s; "
        f"the bad version answered {answered} requests ({failures} of them 5xx) before the rollback; "
        f"phases of the bad run: {seen}"
    )
