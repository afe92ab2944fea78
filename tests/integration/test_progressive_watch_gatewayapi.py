"""CanaryWatch on a ``provider: gatewayapi:v1`` Canary, over real traffic through a
kgateway listener: its samples count the requests the HTTPRoute sent to the Services
``petstore-primary`` and ``petstore-canary`` (what ``lab.stats()`` names
``kube-svc:default-petstore-primary-80`` and ``...-canary-80``), and ``checks("canary")``
gives the success rate of the canary's share while the rollout steps through it.

The load comes from the lab's load tester pod, called by the Canary's webhooks, as in
``test_flagger_gatewayapi.py``.
"""

from __future__ import annotations

from helpers import Lab
from helpers.live.progressive import CanaryWatch, follow_rollout
from tests.integration.conftest import MANIFESTS, canary_status, follow_canary, upstream_counts
from tests.integration.test_flagger_gatewayapi import canary

FLAGGER = MANIFESTS / "flagger"
PRIMARY, CANARY_CLUSTER = "kube-svc:default-petstore-primary-80", "kube-svc:default-petstore-canary-80"


def test_the_watch_counts_both_roles_of_a_gatewayapi_canary(lab: Lab) -> None:
    lab.install("kgateway")
    lab.install("flagger")
    lab.apply(MANIFESTS / "gateway-api" / "0-gateway.yaml", FLAGGER / "petstore.yaml", FLAGGER / "loadtester.yaml")
    lab.wait(60)
    lab.apply(canary())
    follow_canary(lab, "Initialized", [], 60)

    watch = CanaryWatch(lab)
    lab.apply(FLAGGER / "rollout-good.yaml")
    rollout = follow_rollout(lab, 180, say=None, watch=watch, every=0.2)
    assert rollout.phase == "Succeeded" and canary_status(lab)["phase"] == "Succeeded"

    last = watch.poll()  # the canary has no weight any more: its counter stays where it is
    assert last.totals["canary"][:2] == upstream_counts(lab, CANARY_CLUSTER)
    assert last.totals["primary"][0] > 0 and upstream_counts(lab, PRIMARY)[0] >= last.totals["primary"][0]
    assert rollout.canary_requests > 0, "follow_rollout saw the canary's share of the load"

    window = 15.0  # the Canary's metrics' interval (progressive.success_rate)
    stepped = [i for i, s in enumerate(watch.samples) if s.phase == "Progressing" and s.weight > 0]
    assert stepped, f"no step with canary weight seen: {watch.transitions()}"
    measured = [watch.checks("canary", window, at=i) for i in stepped]
    rates = [success for success, _, requests in measured if success is not None and requests > 0]
    assert rates and all(r == 100.0 for r in rates), f"the good release answers every request: {measured}"
    primary = [watch.checks("primary", window, at=i) for i in stepped]
    assert any(requests > 0 for _, _, requests in primary), f"the primary kept its share: {primary}"
