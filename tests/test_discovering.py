"""Discovery names upstreams as Gloo does and turns swagger into REST functions."""

from helpers.runtime.gloo import discovering
from helpers.runtime.gloo.functions import transformations_from_swagger


def test_upstream_name_is_namespace_service_port():
    assert discovering.upstream_name("default", "petstore-v1", 8080) == "default-petstore-v1-8080"


def test_long_names_stay_unique_and_valid():
    a = discovering.upstream_name("default", "x" * 80, 8080)
    b = discovering.upstream_name("default", "x" * 79 + "y", 8080)
    assert len(a) <= 63 and len(b) <= 63 and a != b


def test_one_upstream_per_service_port_labelled_as_discovered():
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "petstore-v1", "namespace": "default", "labels": {"app": "petstore-v1"}},
        "spec": {
            "selector": {"app": "petstore-v1"},
            "ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9090}],
        },
    }
    found = discovering.upstreams_for(svc)
    assert [u["metadata"]["name"] for u in found] == ["default-petstore-v1-8080", "default-petstore-v1-9090"]
    assert all(u["metadata"]["namespace"] == "gloo-system" and discovering.is_discovered(u) for u in found)
    assert found[0]["spec"]["kube"] == {
        "serviceName": "petstore-v1",
        "serviceNamespace": "default",
        "servicePort": 8080,
        "selector": {"app": "petstore-v1"},
    }


def test_swagger_operations_become_gloo_transformations():
    spec = {
        "swagger": "2.0",
        "basePath": "/api",
        "paths": {
            "/pets": {
                "get": {
                    "operationId": "findPets",
                    "parameters": [{"name": "tags", "in": "query"}, {"name": "limit", "in": "query"}],
                },
                "post": {"operationId": "addPet", "parameters": [{"name": "pet", "in": "body"}]},
            },
            "/pets/{id}": {"get": {"operationId": "findPetById"}, "delete": {"operationId": "deletePet"}},
        },
    }
    t = transformations_from_swagger(spec)
    assert list(t) == ["addPet", "deletePet", "findPetById", "findPets"]
    assert t["findPetById"]["headers"][":path"]["text"] == '/api/pets/{{ default(id, "") }}'
    assert (
        t["findPets"]["headers"][":path"]["text"] == '/api/pets?tags={{default(tags, "")}}&limit={{default(limit, "")}}'
    )
    assert t["addPet"]["headers"][":method"]["text"] == "POST" and "body" not in t["addPet"]
    url = discovering.swagger_url(
        discovering.upstreams_for({"metadata": {"name": "s", "namespace": "n"}, "spec": {"ports": [{"port": 80}]}})[0],
        "/swagger.json",
    )
    assert url == "http://s.n.svc.cluster.local:80/swagger.json"
