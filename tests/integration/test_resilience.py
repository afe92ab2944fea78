"""Changes under load, dead pods, refused input: the gateway keeps serving."""

from __future__ import annotations

import copy
import os
import signal
import time
from contextlib import closing

import pytest
import yaml

from helpers import ApplyRefused, Lab, NotFound
from tests.conftest import wait_for

from .conftest import MANIFESTS, V1_PETS, Client, Hammer, version_of, weighted

pytestmark = pytest.mark.integration
GLOO = MANIFESTS / "gloo"


def test_flipping_weights_every_100ms_under_load_fails_no_request(petstore_lab: Lab):
    url = petstore_lab.proxy_url()
    all_v1, all_v2 = weighted(100, 0), weighted(0, 100)
    petstore_lab.apply(all_v1)
    followed = 0
    with Hammer(url, workers=8) as load, closing(Client(url)) as probe:
        deadline = time.monotonic() + 3.0
        flips = 0
        while time.monotonic() < deadline:
            target = "v2" if flips % 2 == 0 else "v1"
            petstore_lab.apply(all_v2 if target == "v2" else all_v1)
            # The very next request after apply returns follows the new route.
            status, body = probe.get("/petstore")
            followed += status == 200 and version_of(body) == target
            flips += 1
            next_flip = time.monotonic() + 0.1
            time.sleep(max(0.0, next_flip - time.monotonic()))  # the flip cadence, not synchronisation
    assert load.failures == []
    assert load.requests > 100
    assert followed == flips


def test_a_killed_pod_is_restarted_and_traffic_recovers(petstore_lab: Lab, gateway: Client):
    petstore_lab.apply(GLOO / "1-route-to-v1.yaml")
    assert gateway.get("/petstore") == (200, V1_PETS)
    (pod,) = [p for p in petstore_lab.objects("pods") if p["metadata"]["labels"]["app"] == "petstore-v1"]
    os.kill(pod["status"]["localPid"], signal.SIGKILL)

    def restarted_and_ready():
        (p,) = [p for p in petstore_lab.objects("pods") if p["metadata"]["labels"]["app"] == "petstore-v1"]
        cs = p["status"]["containerStatuses"][0]
        return cs["restartCount"] >= 1 and cs["ready"]

    wait_for(restarted_and_ready, 30, "petstore-v1 to be restarted and ready")
    assert gateway.get("/petstore") == (200, V1_PETS)
    assert petstore_lab.get("pods").set_index("NAME")["RESTARTS"].max() >= 1


def _set_weights(vs: dict, weight: int) -> None:
    for d in vs["spec"]["virtualHost"]["routes"][1]["routeAction"]["multi"]["destinations"]:
        d["weight"] = weight


def _empty_multi(vs: dict) -> None:
    vs["spec"]["virtualHost"]["routes"][1]["routeAction"]["multi"]["destinations"] = []


def _bad_regex(vs: dict) -> None:
    vs["spec"]["virtualHost"]["routes"][0]["matchers"][0] = {"regex": "/find(Pets"}


def _no_action(vs: dict) -> None:
    vs["spec"]["virtualHost"]["routes"][1].pop("routeAction")


def _old_matcher(vs: dict) -> None:
    route = vs["spec"]["virtualHost"]["routes"][1]
    route["matcher"] = route.pop("matchers")[0]


# case -> (how to break the 10/90 manifest, what the refusal must mention)
REFUSALS = {
    "total weight 0": (lambda vs: _set_weights(vs, 0), "greater than or equal to 1"),
    "empty multi": (_empty_multi, "routes[1].routeAction.multi"),
    "bad regex": (_bad_regex, "routes[0].matchers[0]"),
    "route without action": (_no_action, "routes[1]"),
    "2019 matcher field": (_old_matcher, "matchers"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_virtual_service_leaves_routing_unchanged(petstore_lab: Lab, gateway: Client, case: str):
    base = yaml.safe_load((GLOO / "3-weighted-10-90.yaml").read_text())
    petstore_lab.apply(GLOO / "1-route-to-v1.yaml")
    (before,) = petstore_lab.objects("vs", "coalmine")
    bad = copy.deepcopy(base)
    mutate, expected = REFUSALS[case]
    mutate(bad)
    with pytest.raises(ApplyRefused) as refused:
        petstore_lab.apply(bad)
    assert expected in str(refused.value)
    assert "unchanged" in str(refused.value)
    (after,) = petstore_lab.objects("vs", "coalmine")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["status"]["statuses"]["gloo-system"]["state"] == "Accepted"
    for _ in range(20):
        assert gateway.get("/petstore") == (200, V1_PETS)


def test_second_virtual_service_for_a_served_domain_is_refused(petstore_lab: Lab, gateway: Client):
    petstore_lab.apply(GLOO / "1-route-to-v1.yaml")
    other = yaml.safe_load((GLOO / "5-all-to-v2.yaml").read_text())
    other["metadata"]["name"] = "another"
    with pytest.raises(ApplyRefused, match=r"\*"):
        petstore_lab.apply(other)
    assert petstore_lab.objects("vs", "another") == []
    assert gateway.get("/petstore") == (200, V1_PETS)


def test_unknown_kind_and_malformed_yaml_are_refused_and_change_nothing(petstore_lab: Lab, gateway: Client, tmp_path):
    petstore_lab.apply(GLOO / "1-route-to-v1.yaml")
    with pytest.raises(ApplyRefused, match='no matches for kind "Gadget"'):
        petstore_lab.apply({"apiVersion": "v1", "kind": "Gadget", "metadata": {"name": "g"}})
    broken = tmp_path / "broken.yaml"
    broken.write_text((GLOO / "5-all-to-v2.yaml").read_text() + "\n  : [oops\n")
    from helpers import ManifestError

    with pytest.raises(ManifestError, match=r"broken\.yaml"):
        petstore_lab.apply(broken)
    assert gateway.get("/petstore") == (200, V1_PETS)


def test_route_to_a_missing_upstream_is_a_warning_and_answers_503(petstore_lab: Lab, gateway: Client):
    vs = yaml.safe_load((GLOO / "1-route-to-v1.yaml").read_text())
    route = vs["spec"]["virtualHost"]["routes"][2]
    route["routeAction"]["single"]["upstream"]["name"] = "default-petstore-v3-8080"
    lines = petstore_lab.apply(vs)
    assert any(line.startswith("warning:") and "default-petstore-v3-8080" in line for line in lines)
    (obj,) = petstore_lab.objects("vs", "coalmine")
    assert obj["status"]["statuses"]["gloo-system"]["state"] == "Warning"
    status, body = gateway.get("/petstore")
    assert status == 503 and "default-petstore-v3-8080" in body
    assert gateway.get("/findPets") == (200, V1_PETS)  # the other routes still serve


def test_a_deleted_pod_is_replaced_by_its_deployment(petstore_lab: Lab, gateway: Client):
    petstore_lab.apply(GLOO / "1-route-to-v1.yaml")
    (old,) = [
        p["metadata"]["name"] for p in petstore_lab.objects("pods") if p["metadata"]["labels"]["app"] == "petstore-v1"
    ]
    assert petstore_lab.delete(kind="pod", name=old) == [f"pod/{old} deleted"]

    def replaced():
        pods = [p for p in petstore_lab.objects("pods") if p["metadata"]["labels"]["app"] == "petstore-v1"]
        return (
            len(pods) == 1 and pods[0]["metadata"]["name"] != old and pods[0]["status"]["containerStatuses"][0]["ready"]
        )

    wait_for(replaced, 30, "a new petstore-v1 pod to replace the deleted one")
    assert gateway.get("/petstore") == (200, V1_PETS)
    with pytest.raises(NotFound):
        petstore_lab.delete(kind="pod", name=old)
