"""The Gateway API track over real processes and HTTP: kgateway in the local lab.

One lab per test: petstore v1 and v2, Gloo (for the side-by-side tests) and kgateway
installed, the Gateway of manifests/gateway-api/0-gateway.yaml applied. Requests go
to the Gateway's own loopback listener.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from helpers import ApplyRefused, Lab, httproutes, routing
from helpers.errors import NotFound
from tests.conftest import wait_for

from .conftest import MANIFESTS, V1_PETS, V2_PETS, Client, version_of
from .test_cli import coalmine

pytestmark = pytest.mark.integration
GATEWAY_API = MANIFESTS / "gateway-api"
GATEWAY = "kgateway-system/http"


@pytest.fixture
def kgw_lab(petstore_lab: Lab) -> Lab:
    petstore_lab.install("kgateway")
    petstore_lab.apply(GATEWAY_API / "0-gateway.yaml")
    petstore_lab.wait(60)
    return petstore_lab


@pytest.fixture
def listener(kgw_lab: Lab) -> Iterator[Client]:
    client = Client(kgw_lab.proxy_url(gateway=GATEWAY))
    yield client
    client.close()


def test_gateway_api_kinds_need_install_kgateway(lab: Lab) -> None:
    with pytest.raises(ApplyRefused, match="the Gateway API CRDs are not installed; run `coalmine install kgateway`"):
        lab.apply(GATEWAY_API / "0-gateway.yaml")
    with pytest.raises(NotFound, match="coalmine install kgateway"):
        lab.proxy_url(gateway=GATEWAY)


def test_the_canary_steps_as_httproutes(kgw_lab: Lab, listener: Client) -> None:
    assert kgw_lab.apply(GATEWAY_API / "1-route-to-v1.yaml") == ["httproute.gateway.networking.k8s.io/petstore created"]
    assert listener.get("/findPets") == (200, V1_PETS)
    assert listener.get("/petstore") == (200, V1_PETS)
    assert listener.get("/findPetWithId/2")[1] == '{"id":2,"name":"Cat","status":"pending"}'
    assert listener.get("/petstorefront")[0] == 404  # PathPrefix matches whole segments

    kgw_lab.apply(GATEWAY_API / "2-header-canary.yaml")  # the canary rule is last, and wins
    assert listener.get("/findPets", x_canary="true") == (200, V2_PETS)
    assert listener.get("/findPets") == (200, V1_PETS)

    kgw_lab.apply(GATEWAY_API / "4-weighted-50-50.yaml")
    n = 200
    v2 = sum(version_of(listener.get("/petstore")[1]) == "v2" for _ in range(n))
    assert abs(v2 - n / 2) <= 5 * math.sqrt(n / 4), f"{v2} of {n} went to v2"

    kgw_lab.apply(GATEWAY_API / "5-all-to-v2.yaml")
    assert {listener.get(p)[1] for p in ("/findPets", "/petstore")} == {V2_PETS}


def test_a_refused_route_names_the_field_and_the_old_one_keeps_serving(kgw_lab: Lab, listener: Client) -> None:
    kgw_lab.apply(httproutes.route_to_v1())
    bad = httproutes.route_to_v1()
    del bad["spec"]["rules"][1]["backendRefs"][0]["port"]
    with pytest.raises(
        ApplyRefused,
        match=r"spec\.rules\[1\]\.backendRefs\[0\]\.port: Must have port for Service "
        r"reference\. The running configuration is unchanged",
    ):
        kgw_lab.apply(bad)
    assert listener.get("/findPets") == (200, V1_PETS)


def test_a_missing_service_is_a_warning_a_status_and_a_500(kgw_lab: Lab, listener: Client) -> None:
    route = httproutes.http_route(
        [httproutes.rule(httproutes.path_match("PathPrefix", "/v3"), "v3"), *httproutes.seed_rules("v1")]
    )
    lines = kgw_lab.apply(route)
    assert lines[0] == "httproute.gateway.networking.k8s.io/petstore created"
    assert (
        "ResolvedRefs False BackendNotFound: rules[0].backendRefs[0]: Service default/petstore-v3 not found" in lines[1]
    )
    status = yaml.safe_load(kgw_lab.yaml("httproutes", "petstore"))["status"]["parents"][0]
    resolved = {c["type"]: c for c in status["conditions"]}["ResolvedRefs"]
    assert (resolved["status"], resolved["reason"]) == ("False", "BackendNotFound") and resolved["lastTransitionTime"]
    assert listener.get("/v3")[0] == 500 and listener.get("/petstore") == (200, V1_PETS)


def test_the_same_two_rules_pick_different_winners_in_the_two_apis(kgw_lab: Lab, listener: Client) -> None:
    catch_all = {"matchers": [{"prefix": "/"}], "routeAction": {"single": {"upstream": routing.upstream("v1")}}}
    exact = {"matchers": [{"exact": "/api/pets"}], "routeAction": {"single": {"upstream": routing.upstream("v2")}}}
    kgw_lab.apply(routing.virtual_service([catch_all, exact]))
    kgw_lab.apply(
        httproutes.http_route(
            [
                httproutes.rule(httproutes.path_match("PathPrefix", "/"), "v1"),
                httproutes.rule(httproutes.path_match("Exact", "/api/pets"), "v2"),
            ]
        )
    )
    gloo = Client(kgw_lab.proxy_url())
    try:
        assert gloo.get("/api/pets") == (200, V1_PETS)  # first match wins
    finally:
        gloo.close()
    assert listener.get("/api/pets") == (200, V2_PETS)  # the exact path wins


def test_listeners_follow_gateways_and_survive_a_restart(kgw_lab: Lab, lab_home: Path) -> None:
    kgw_lab.apply(httproutes.route_to_v1())
    url = kgw_lab.proxy_url(gateway=GATEWAY)
    second = httproutes.gateway(name="second", namespace="default")
    kgw_lab.apply(second)
    assert kgw_lab.proxy_url(gateway="default/second") != url
    rows = kgw_lab.get("gateways", all_namespaces=True, wide=True)
    assert list(rows["NAME"]) == ["second", "http"] and set(rows["PROGRAMMED"]) == {"True"}
    kgw_lab.delete(kind="gateway", name="second", namespace="default")
    with pytest.raises(NotFound, match='gateway "default/second" is not served'):
        kgw_lab.proxy_url(gateway="default/second")

    kgw_lab.down()
    kgw_lab.up()
    kgw_lab.wait(60)
    assert kgw_lab.proxy_url(gateway=GATEWAY) == url  # the same port after a restart
    client = Client(url)
    try:
        assert wait_for(lambda: client.get("/findPets") == (200, V1_PETS), what="the listener after a restart")
    finally:
        client.close()


def test_cli_install_proxy_url_get_and_convert(kgw_lab: Lab, lab_home: Path, tmp_path: Path) -> None:
    assert "kgateway installed" in coalmine(lab_home, "install", "kgateway").stdout  # idempotent
    url = coalmine(lab_home, "proxy", "url", "--gateway", GATEWAY).stdout.strip()
    assert url == kgw_lab.proxy_url(gateway=GATEWAY) and url.startswith("http://127.0.0.1:")
    assert coalmine(lab_home, "proxy", "url", "--gateway", "http").stdout.strip() == url  # unique by name
    missing = coalmine(lab_home, "proxy", "url", "--gateway", "default/nope", check=False)
    assert missing.returncode == 1 and 'gateway "default/nope" is not served' in missing.stderr
    table = coalmine(lab_home, "get", "gtw", "-n", "kgateway-system").stdout.splitlines()
    assert table[0].split() == ["NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"]
    assert table[1].split()[:4] == ["http", "kgateway", "127.0.0.1", "True"]

    converted = coalmine(lab_home, "convert", "-f", str(MANIFESTS / "gloo" / "2-header-canary.yaml"))
    routes = list(yaml.safe_load_all(converted.stdout))
    assert [r["kind"] for r in routes] == ["HTTPRoute"] and "REST function findPets" in converted.stderr
    assert "was not given" not in converted.stderr  # the lab's discovered upstreams named the Services
    (tmp_path / "route.yaml").write_text(converted.stdout)
    coalmine(lab_home, "apply", "-f", str(tmp_path / "route.yaml"))
    got = yaml.safe_load(coalmine(lab_home, "get", "httproute", "coalmine", "-o", "yaml").stdout)
    assert [c["status"] for c in got["status"]["parents"][0]["conditions"]] == ["True", "True"]
    assert "coalmine" in coalmine(lab_home, "get", "httproutes").stdout
