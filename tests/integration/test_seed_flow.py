"""The seed's canary flow, step by step, with real processes and real HTTP."""

from __future__ import annotations

import json
import math

import pytest

from helpers import Lab

from .conftest import MANIFESTS, V1_PETS, V2_PETS, Client, version_of

pytestmark = pytest.mark.integration
GLOO = MANIFESTS / "gloo"


def pod_url(lab: Lab, app: str) -> str:
    (pod,) = [p for p in lab.objects("pods") if p["metadata"]["labels"].get("app") == app]
    return f"http://127.0.0.1:{pod['status']['localPort']}"


def test_each_version_answers_directly_with_the_seeds_bodies(lab: Lab):
    lines = lab.apply(MANIFESTS / "petstore-v1.yaml", MANIFESTS / "petstore-v2.yaml")
    assert "deployment.apps/petstore-v1 created" in lines and "service/petstore-v2 created" in lines
    lab.wait(60)
    pods = lab.get("pods")
    assert list(pods["READY"]) == ["1/1", "1/1"] and set(pods["STATUS"]) == {"Running"}
    v1, v2 = Client(pod_url(lab, "petstore-v1")), Client(pod_url(lab, "petstore-v2"))
    try:
        assert v1.get("/api/pets") == (200, V1_PETS)
        assert v2.get("/api/pets") == (200, V2_PETS)
        assert v1.get("/api/pets/3") == (404, '{"code":404,"message":"not found: pet 3"}')
        ops = {
            op["operationId"]
            for path in json.loads(v1.get("/swagger.json")[1])["paths"].values()
            for op in path.values()
        }
        assert ops == {"findPets", "findPetById", "addPet", "deletePet"}
    finally:
        v1.close()
        v2.close()
    again = lab.apply(MANIFESTS / "petstore-v1.yaml")
    assert set(line.rsplit(" ", 1)[1] for line in again) == {"unchanged"}


def test_discovery_names_upstreams_and_finds_rest_functions(petstore_lab: Lab):
    upstreams = petstore_lab.get("upstreams")
    row = upstreams.set_index("UPSTREAM").loc["default-petstore-v1-8080"]
    assert row["TYPE"] == "Kubernetes" and row["STATUS"] == "Accepted"
    assert row["DETAILS"].splitlines()[-4:] == ["- addPet", "- deletePet", "- findPetById", "- findPets"]
    (us,) = petstore_lab.objects("upstream", "default-petstore-v2-8080")
    assert us["spec"]["kube"]["serviceName"] == "petstore-v2"
    assert us["metadata"]["labels"]["discovered_by"] == "kubernetesplugin"


def test_route_to_v1_then_header_canary_then_all_to_v2(petstore_lab: Lab, gateway: Client):
    lab = petstore_lab
    early = Client(lab.proxy_url())
    with pytest.raises(ConnectionRefusedError):  # no virtual service yet: Gloo has no listener
        early.get("/petstore")
    early.close()

    assert lab.apply(GLOO / "1-route-to-v1.yaml") == ["virtualservice.gateway.solo.io/coalmine created"]
    assert gateway.get("/petstore") == (200, V1_PETS)
    assert gateway.get("/findPets") == (200, V1_PETS)
    assert gateway.get("/findPetWithId/1") == (200, '{"id":1,"name":"Dog","status":"available"}')
    assert gateway.get("/findPetWithId/3") == (404, '{"code":404,"message":"not found: pet 3"}')

    lab.apply(GLOO / "2-header-canary.yaml")
    assert gateway.get("/findPets") == (200, V1_PETS)
    assert gateway.get("/findPets", x_canary="true") == (200, V2_PETS)
    assert gateway.get("/findPets", x_canary="false") == (200, V1_PETS)

    lab.apply(GLOO / "5-all-to-v2.yaml")
    assert gateway.get("/petstore") == (200, V2_PETS)
    assert gateway.get("/findPets") == (200, V2_PETS)
    assert gateway.get("/findPetWithId/3") == (200, '{"id":3,"name":"Parrot","status":"v2"}')
    (vs,) = lab.objects("vs", "coalmine")
    assert vs["status"]["statuses"]["gloo-system"]["state"] == "Accepted"


@pytest.mark.parametrize("manifest,v2_share", [("3-weighted-10-90.yaml", 0.10), ("4-weighted-50-50.yaml", 0.50)])
def test_weighted_split_within_binomial_tolerance(petstore_lab: Lab, gateway: Client, manifest: str, v2_share: float):
    petstore_lab.apply(GLOO / manifest)
    n = 2000
    v2 = 0
    for _ in range(n):
        status, body = gateway.get("/findPets")
        assert status == 200
        v2 += version_of(body) == "v2"
    sigma = math.sqrt(n * v2_share * (1 - v2_share))
    # 5 sigma: a correct 10/90 split fails this about once in 3.5 million runs.
    assert abs(v2 - n * v2_share) <= 5 * sigma, f"{v2} of {n} went to v2, expected ~{n * v2_share:.0f}"


def test_header_canary_must_come_first(petstore_lab: Lab, gateway: Client):
    import yaml

    vs = yaml.safe_load((GLOO / "2-header-canary.yaml").read_text())
    routes = vs["spec"]["virtualHost"]["routes"]
    vs["spec"]["virtualHost"]["routes"] = routes[1:] + routes[:1]  # header route last
    petstore_lab.apply(vs)
    assert gateway.get("/findPets", x_canary="true") == (200, V1_PETS)  # shadowed: first match wins
