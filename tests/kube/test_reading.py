"""Reading the cluster into the local backend's shapes, so the tables are the same."""

from __future__ import annotations

import pytest

from helpers.backends.kube import KubernetesBackend
from helpers.backends.kube.reading import discovery_pending, gloo_status, rollout
from helpers.builders.routing import route_to_v1
from helpers.lab import Lab
from helpers.loading import load_manifests
from helpers.tables import rows

from .conftest import MANIFESTS
from .fake_apiserver import FakeApiServer


def pod(name: str, app: str, ready: bool = True) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "spec": {"containers": [{"name": "petstore", "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": str(ready)}],
            "containerStatuses": [{"ready": ready, "restartCount": 0, "state": {"running": {}}}],
        },
    }


def endpoint_slice(service: str, ip: str) -> dict:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-abc",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": service},
        },
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
    }


@pytest.mark.parametrize(
    ("status", "word"),
    [
        ({"statuses": {"gloo-system": {"state": "Accepted", "reportedBy": "gateway"}}}, "Accepted"),
        ({"namespacedStatuses": {"statuses": {"gloo-system": {"state": 3}}}}, "Warning"),
        ({"state": 2, "reason": "bad route", "reportedBy": "gateway"}, "Rejected"),
        ({}, None),
    ],
)
def test_every_gloo_status_form_becomes_one_view(status: dict, word: str | None):
    view = gloo_status({"status": status})
    assert [s["state"] for s in view["statuses"].values()] == ([word] if word else [])


def test_tables_match_the_local_backend(backend: KubernetesBackend, apiserver: FakeApiServer):
    lab = Lab(backend)
    lab.apply(MANIFESTS / "petstore-v1.yaml")
    apiserver.put(pod("petstore-v1-7d9f-x2x", "petstore-v1"))
    apiserver.put(endpoint_slice("petstore-v1", "10.244.0.7"))
    assert lab.get("pods")[["NAME", "READY", "STATUS", "RESTARTS"]].values.tolist() == [
        ["petstore-v1-7d9f-x2x", "1/1", "Running", 0]
    ]
    assert lab.get("services").values.tolist() == [["petstore-v1", "ClusterIP", "8080/TCP", "10.244.0.7:8080"]]
    deployment = apiserver.get("/apis/apps/v1/namespaces/default/deployments/petstore-v1")
    deployment["status"] = {"readyReplicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
    assert lab.get("deployments").values.tolist() == [["petstore-v1", "1/1", 1, 1]]
    assert "managedFields" not in lab.objects("deployments")[0]["metadata"]


def test_gloo_objects_read_with_their_status(backend: KubernetesBackend, apiserver: FakeApiServer):
    apiserver.served_groups |= {"gateway.solo.io", "gloo.solo.io"}
    apiserver.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gloo-system"}})
    backend.apply([route_to_v1()])
    vs = apiserver.get("/apis/gateway.solo.io/v1/namespaces/gloo-system/virtualservices/coalmine")
    vs["status"] = {"statuses": {"gloo-system": {"state": 1, "reportedBy": "gateway"}}}
    apiserver.put(
        {
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Upstream",
            "metadata": {"name": "default-petstore-v1-8080", "namespace": "gloo-system"},
            "spec": {
                "kube": {
                    "serviceName": "petstore-v1",
                    "serviceNamespace": "default",
                    "servicePort": 8080,
                    "serviceSpec": {"rest": {"transformations": {"findPets": {}, "findPetById": {}}}},
                }
            },
            "status": {"statuses": {"gloo-system": {"state": "Accepted"}}},
        }
    )
    [vs_row] = rows("VirtualService", backend.get("VirtualService", "gloo-system"))
    assert vs_row["STATUS"] == "Accepted" and vs_row["ROUTES"].startswith("/findPetWithId/ -> default-petstore-v1")
    [us_row] = rows("Upstream", backend.get("Upstream", "gloo-system"))
    assert (us_row["TYPE"], us_row["STATUS"]) == ("Kubernetes", "Accepted")
    assert us_row["DETAILS"].splitlines()[-2:] == ["- findPetById", "- findPets"]


def test_rollout_status_as_kubectl_reads_it():
    dep = {
        "metadata": {"name": "petstore-v1", "namespace": "default", "generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2},
    }
    assert rollout(dep) == {"name": "default/petstore-v1", "ready": 2, "desired": 2, "done": False}  # an old pod left
    dep["status"]["replicas"] = 2
    assert rollout(dep)["done"] is True
    dep["metadata"]["generation"] = 3  # the controller has not seen the change yet
    assert rollout(dep)["done"] is False


def test_discovery_is_pending_until_upstreams_and_their_functions_exist():
    svc = load_manifests([MANIFESTS / "petstore-v1.yaml"])[1]
    svc["status"] = {"endpoints": {"8080": ["10.244.0.7:8080"]}}
    assert discovery_pending([svc], []) == ["default-petstore-v1-8080"]
    plain = {"metadata": {"name": "default-petstore-v1-8080"}, "spec": {"kube": {}}}
    assert discovery_pending([svc], [plain]) == ["default-petstore-v1-8080 (REST functions)"]
    rest = {
        "metadata": {"name": "default-petstore-v1-8080"},
        "spec": {"kube": {"serviceSpec": {"rest": {"transformations": {"findPets": {}}}}}},
    }
    assert discovery_pending([svc], [rest]) == []
    svc["status"] = {"endpoints": {}}  # no pods: function discovery cannot run, so it is not waited for
    assert discovery_pending([svc], [plain]) == []


def test_ready_waits_for_the_labs_deployments(backend: KubernetesBackend, apiserver: FakeApiServer):
    backend.apply(load_manifests([MANIFESTS / "petstore-v1.yaml"]))
    state = backend.ready()
    assert state["ready"] is False and state["deployments"][0]["done"] is False
    dep = apiserver.get("/apis/apps/v1/namespaces/default/deployments/petstore-v1")
    dep["status"] = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
    assert backend.wait(5)["deployments"] == [{"name": "default/petstore-v1", "ready": 1, "desired": 1, "done": True}]


def test_where_discovery_is_off_the_lab_writes_the_upstreams_with_functions(
    backend: KubernetesBackend, apiserver: FakeApiServer
):
    from helpers.apps.petstore import swagger

    apiserver.served_groups |= {"gateway.solo.io", "gloo.solo.io"}
    apiserver.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gloo-system"}})
    with backend.ledger.change() as entry:
        entry["installed"]["gloo"] = {"ours": False, "via": "existing", "discovery": False}
    backend.apply(load_manifests([MANIFESTS / "petstore-v1.yaml"]))
    apiserver.put(endpoint_slice("petstore-v1", "10.244.0.7"))
    apiserver.objects["/api/v1/namespaces/default/services/petstore-v1:8080/proxy/swagger.json"] = swagger("v1")
    state = backend.ready()
    assert state["discoveryPending"] == []
    [us] = backend.get("Upstream", "gloo-system", "default-petstore-v1-8080")
    assert us["spec"]["kube"]["serviceName"] == "petstore-v1"
    assert sorted(us["spec"]["kube"]["serviceSpec"]["rest"]["transformations"]) == [
        "addPet",
        "deletePet",
        "findPetById",
        "findPets",
    ]
    assert {
        "kind": "Upstream",
        "namespace": "gloo-system",
        "name": "default-petstore-v1-8080",
    } in backend.ledger.applied()
