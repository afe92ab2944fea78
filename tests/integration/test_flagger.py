"""Flagger's Canary on the local runtime, over real traffic: a good release is promoted
step by step, a bad one (30% of its answers 500) is rolled back with every request back
on the primary, and the primary never answered a failure.

The load comes from the lab's load tester pod, called by the Canary's ``rollout``
webhook through in-lab DNS (``http://flagger-loadtester.default/``), sending ``hey``'s
traffic to ``http://gateway-proxy.gloo-system/api/pets``.
"""

from __future__ import annotations

import time
from typing import Any

import yaml

from helpers import Lab
from tests.integration.conftest import MANIFESTS, Client, follow_canary, upstream_counts, version_of

FLAGGER = MANIFESTS / "flagger"
PRIMARY, CANARY_US = "default-petstore-primaryupstream-80", "default-petstore-canaryupstream-80"
CANARY: dict[str, Any] = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "petstore", "namespace": "default"},
    "spec": {
        "provider": "gloo",
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "petstore"},
        "progressDeadlineSeconds": 60,
        "service": {"port": 80, "targetPort": 8080},
        "analysis": {
            "interval": "1s",
            "threshold": 2,
            "stepWeight": 25,
            "maxWeight": 50,
            "metrics": [
                {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "4s"},
                {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "4s"},
            ],
            "webhooks": [
                {
                    "name": "load-test",
                    "type": "rollout",
                    "url": "http://flagger-loadtester.default/",
                    "timeout": "5s",
                    "metadata": {
                        "type": "cmd",
                        "cmd": "hey -z 2m -q 20 -c 2 http://gateway-proxy.gloo-system/api/pets",
                    },
                }
            ],
        },
    },
}


def test_a_good_release_is_promoted_and_a_bad_one_rolled_back(lab: Lab) -> None:
    lab.apply(FLAGGER / "petstore.yaml", FLAGGER / "loadtester.yaml")
    lab.install("gloo")
    lab.install("flagger")
    lab.wait(60)
    lab.apply(FLAGGER / "virtualservice.yaml", CANARY)
    follow_canary(lab, "Initialized", [], 60)
    rt = lab.objects("routetable", "petstore", "default")[0]
    assert [d["weight"] for d in rt["spec"]["routes"][0]["routeAction"]["multi"]["destinations"]] == [100, 0]
    assert lab.objects("deployment", "petstore", "default")[0]["spec"]["replicas"] == 0
    client = Client(lab.proxy_url())
    try:
        code, body = client.get("/api/pets")
        assert (code, version_of(body)) == (200, "v1")

        started, seen = time.monotonic(), []
        lab.apply(FLAGGER / "rollout-good.yaml")
        follow_canary(lab, "Succeeded", seen, 180)
        good_s = time.monotonic() - started
        phases = [p for p, _ in seen]
        assert "Progressing" in phases and "Promoting" in phases and "Finalising" in phases
        assert {w for _, w in seen} >= {25, 50}  # step by step, up to maxWeight
        for _ in range(5):
            code, body = client.get("/api/pets")
            assert (code, version_of(body)) == (200, "v2")  # the primary now runs v2

        primary_before = upstream_counts(lab, PRIMARY)
        canary_before = upstream_counts(lab, CANARY_US)
        started, seen = time.monotonic(), []
        lab.apply(FLAGGER / "rollout-bad.yaml")
        failed = follow_canary(lab, "Failed", seen, 180)
        bad_s = time.monotonic() - started
        assert failed["canaryWeight"] == 0
        rt = lab.objects("routetable", "petstore", "default")[0]
        assert [d["weight"] for d in rt["spec"]["routes"][0]["routeAction"]["multi"]["destinations"]] == [100, 0]
        canary_after = upstream_counts(lab, CANARY_US)
        answered, failures = canary_after[0] - canary_before[0], canary_after[1] - canary_before[1]
        assert failures > 0  # the bad version was measured on real traffic
        primary_after = upstream_counts(lab, PRIMARY)
        assert primary_after[0] > primary_before[0] and primary_after[1] == primary_before[1] == 0
        for _ in range(20):
            code, body = client.get("/api/pets")
            assert (code, version_of(body)) == (200, "v2")  # all traffic back on the good primary
    finally:
        client.close()

    messages = list(lab.events("default")["MESSAGE"])
    assert any(m.startswith("Halt petstore.default advancement success rate") for m in messages)
    assert any("Rolling back" in m for m in messages)
    table = lab.get("canaries", wide=True)
    assert table.loc[0, "STATUS"] == "Failed" and table.loc[0, "MAXWEIGHT"] == "50"
    print(
        f"\nflagger figures: good rollout to Succeeded {good_s:.1f}s; bad rollout to Failed {bad_s:.1f}s; "
        f"the bad version answered {answered} requests ({failures} of them 5xx) before the rollback; "
        f"phases of the bad run: {seen}"
    )
    assert yaml.safe_dump(CANARY)  # the Canary in the test is plain YAML, as a learner writes it
