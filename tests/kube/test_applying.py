"""Server-side apply and delete through the real kubernetes client, against the fake
API server: the request sequence, idempotence, and refusals that change nothing."""

from __future__ import annotations

import copy
import http.client
import json

import pytest
import yaml

from helpers.backends.kube import KubernetesBackend
from helpers.backends.kube.applying import wait_served
from helpers.backends.kube.connecting import APPLY_PATCH
from helpers.builders.routing import route_to_v1
from helpers.errors import WaitTimeout
from helpers.loading import load_manifests

from .conftest import MANIFESTS
from .fake_apiserver import FakeApiServer

APPLY = "?fieldManager=coalmine&fieldValidation=Strict&force=true"
CM = "/api/v1/namespaces/default/configmaps/petstore-v1-app"
SVC = "/api/v1/namespaces/default/services/petstore-v1"
DEP = "/apis/apps/v1/namespaces/default/deployments/petstore-v1"
VS = "/apis/gateway.solo.io/v1/namespaces/gloo-system/virtualservices/coalmine"


def actions(results: list[dict]) -> list[tuple[str, str]]:
    return [(r["ref"], r.get("action") or r["error"]) for r in results]


def test_apply_reads_then_server_side_applies_each_object_in_order(
    backend: KubernetesBackend, apiserver: FakeApiServer
):
    objects = load_manifests([MANIFESTS / "petstore-v1.yaml"])
    apiserver.requests.clear()
    results = backend.apply(objects)
    assert actions(results) == [
        ("configmap/petstore-v1-app", "created"),
        ("service/petstore-v1", "created"),
        ("deployment.apps/petstore-v1", "created"),
    ]
    assert apiserver.requests == [
        f"GET {CM}",
        f"PATCH {CM}{APPLY}",
        f"GET {SVC}",
        f"PATCH {SVC}{APPLY}",
        f"GET {DEP}",
        f"PATCH {DEP}{APPLY}",
    ]
    assert apiserver.get(DEP)["spec"]["replicas"] == 1


def test_apply_again_is_unchanged_and_a_change_is_configured(backend: KubernetesBackend, apiserver: FakeApiServer):
    objects = load_manifests([MANIFESTS / "petstore-v1.yaml"])
    backend.apply(objects)
    version = apiserver.get(DEP)["metadata"]["resourceVersion"]
    assert {r["action"] for r in backend.apply(objects)} == {"unchanged"}
    assert apiserver.get(DEP)["metadata"]["resourceVersion"] == version
    scaled = copy.deepcopy(objects)
    scaled[2]["spec"]["replicas"] = 2
    assert actions(backend.apply(scaled)) == [
        ("configmap/petstore-v1-app", "unchanged"),
        ("service/petstore-v1", "unchanged"),
        ("deployment.apps/petstore-v1", "configured"),
    ]
    assert apiserver.get(DEP)["spec"]["replicas"] == 2


def test_a_gloo_object_without_gloos_crds_is_refused_with_the_fix(backend: KubernetesBackend, apiserver: FakeApiServer):
    [result] = backend.apply([route_to_v1()])
    assert result["ref"] == "virtualservice.gateway.solo.io/coalmine"
    assert "Gloo's CRDs are not installed" in result["error"] and "coalmine install gloo" in result["error"]
    assert VS not in apiserver.objects


def test_strict_validation_refusal_keeps_the_running_object(backend: KubernetesBackend, apiserver: FakeApiServer):
    apiserver.served_groups |= {"gateway.solo.io", "gloo.solo.io"}
    apiserver.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gloo-system"}})
    assert actions(backend.apply([route_to_v1()])) == [("virtualservice.gateway.solo.io/coalmine", "created")]
    running = copy.deepcopy(apiserver.get(VS))
    apiserver.admission = lambda obj: "Route Error: InvalidMatcherError. Reason: regex does not compile"
    [refused] = backend.apply([_with_rewrite(route_to_v1())])
    assert "admission webhook" in refused["error"] and "InvalidMatcherError" in refused["error"]
    assert "The running configuration is unchanged" in refused["error"]
    assert apiserver.get(VS) == running


def _with_rewrite(vs: dict) -> dict:
    vs = copy.deepcopy(vs)
    vs["spec"]["virtualHost"]["routes"][0]["options"] = {"prefixRewrite": "/x"}
    return vs


def test_a_missing_namespace_is_named(backend: KubernetesBackend):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "petshop"}}
    [result] = backend.apply([cm])
    assert result["error"] == 'namespaces "petshop" not found: create it first (apiVersion: v1, kind: Namespace)'


def test_delete_then_delete_again_is_not_found(backend: KubernetesBackend, apiserver: FakeApiServer):
    backend.apply(load_manifests([MANIFESTS / "petstore-v1.yaml"]))
    ref = {"kind": "Deployment", "namespace": "default", "name": "petstore-v1"}
    apiserver.requests.clear()
    assert backend.delete([ref]) == [{"ref": "deployment.apps/petstore-v1", "action": "deleted"}]
    assert apiserver.requests == [f"DELETE {DEP}"]
    assert DEP not in apiserver.objects
    assert backend.delete([ref]) == [
        {
            "ref": "deployment.apps/petstore-v1",
            "error": 'deployments.apps "petstore-v1" not found',
            "reason": "NotFound",
        }
    ]


def test_reset_deletes_what_the_lab_applied_newest_first(backend: KubernetesBackend, apiserver: FakeApiServer):
    apiserver.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "theirs", "namespace": "default"}})
    backend.apply(load_manifests([MANIFESTS / "petstore-v1.yaml"]))
    apiserver.requests.clear()
    assert backend.reset() == [
        "deployment.apps/petstore-v1 deleted",
        "service/petstore-v1 deleted",
        "configmap/petstore-v1-app deleted",
    ]
    assert [r for r in apiserver.requests if r.startswith("DELETE")] == [
        f"DELETE {DEP}",
        f"DELETE {SVC}",
        f"DELETE {CM}",
    ]
    assert list(apiserver.objects) == ["/api/v1/namespaces/default/configmaps/theirs"]
    assert backend.reset() == []


def test_delete_sends_its_options_as_an_object_the_api_server_can_decode(
    backend: KubernetesBackend, apiserver: FakeApiServer
):
    backend.apply(load_manifests([MANIFESTS / "petstore-v1.yaml"]))
    ref = {"kind": "Deployment", "namespace": "default", "name": "petstore-v1"}
    assert backend.delete([ref]) == [{"ref": "deployment.apps/petstore-v1", "action": "deleted"}]
    assert apiserver.deleted[DEP] == {"propagationPolicy": "Background"}


def raw_request(apiserver: FakeApiServer, method: str, path: str, body: bytes, content_type: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", apiserver.port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {apiserver.token}", "Content-Type": content_type}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, str(json.loads(resp.read()).get("message", ""))
    finally:
        conn.close()


def test_the_fake_api_server_refuses_bodies_a_real_one_cannot_decode(apiserver: FakeApiServer):
    apiserver.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}})
    twice = json.dumps(json.dumps({"propagationPolicy": "Background"})).encode()
    status, message = raw_request(
        apiserver, "DELETE", "/api/v1/namespaces/default/configmaps/x", twice, "application/json"
    )
    assert status == 400 and message.startswith(
        "couldn't get version/kind; json parse error: json: cannot unmarshal string"
    )
    assert "/api/v1/namespaces/default/configmaps/x" in apiserver.objects
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y", "namespace": "default"}}
    apply = "/api/v1/namespaces/default/configmaps/y?fieldManager=coalmine"
    status, message = raw_request(apiserver, "PATCH", apply, json.dumps(json.dumps(cm)).encode(), APPLY_PATCH)
    assert status == 400 and "error decoding YAML" in message
    status, _ = raw_request(apiserver, "PATCH", apply, yaml.safe_dump(cm).encode(), APPLY_PATCH)
    assert status == 201  # YAML, as kubectl sends it, is an apply patch too


def test_reset_deletes_what_the_lab_applied_even_where_the_api_server_decodes_delete_options(
    backend: KubernetesBackend, apiserver: FakeApiServer
):
    backend.apply(load_manifests([MANIFESTS / "petstore-v1.yaml"]))
    assert len(backend.reset()) == 3
    assert list(apiserver.deleted.values()) == [{"propagationPolicy": "Background"}] * 3
    assert backend.ledger.applied() == []


def test_a_webhook_that_does_not_answer_is_named_with_what_to_do(backend: KubernetesBackend, apiserver: FakeApiServer):
    apiserver.served_groups |= {"gateway.solo.io", "gloo.solo.io"}
    apiserver.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gloo-system"}})
    apiserver.webhook_down = True
    [result] = backend.apply([route_to_v1()])
    assert result["ref"] == "virtualservice.gateway.solo.io/coalmine"
    assert result["error"].startswith(
        'an admission webhook did not answer (Internal error occurred: failed calling webhook "gloo.gloo-system.svc"'
    )
    assert "Nothing was changed; if it is Gloo's, wait until Gloo is ready (`coalmine wait`)" in result["error"]
    assert VS not in apiserver.objects


def test_an_unknown_field_is_refused_as_strict_field_validation_says(
    backend: KubernetesBackend, apiserver: FakeApiServer
):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}, "dta": {}}
    [result] = backend.apply([cm])
    assert result["ref"] == "configmap/x"
    assert 'unknown field "dta"' in result["error"]
    assert "/api/v1/namespaces/default/configmaps/x" not in apiserver.objects


def test_without_strict_field_validation_the_api_server_drops_an_unknown_field(apiserver: FakeApiServer):
    # What the backend avoids: a request that does not ask for Strict loses the field, with a warning.
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}, "dta": {}}
    apply = "/api/v1/namespaces/default/configmaps/x?fieldManager=coalmine"
    status, _ = raw_request(apiserver, "PATCH", apply, yaml.safe_dump(cm).encode(), APPLY_PATCH)
    assert status == 201
    assert "dta" not in apiserver.objects["/api/v1/namespaces/default/configmaps/x"]


def test_wait_in_force_asks_the_gateway_until_it_serves_the_change(backend: KubernetesBackend):
    answers = iter([False, False, True])
    assert backend.wait_in_force(lambda: next(answers), timeout=30) is True
    assert next(answers, "asked no more") == "asked no more"
    assert backend.wait_in_force(lambda: True, timeout=30) is False


def test_wait_in_force_says_what_the_gateway_still_serves_when_time_is_up():
    class Stale:
        def __call__(self) -> bool:
            return False

        def __str__(self) -> str:
            return "GET /findPets: want answers from v2; last v1 20"

    with pytest.raises(WaitTimeout, match=r"did not serve the change within 0s \(GET /findPets: want answers"):
        wait_served(Stale(), timeout=0, period=0)
