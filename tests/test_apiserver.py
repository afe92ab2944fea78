"""What the API server refuses in the built-in kinds, before anything is stored."""

from helpers.runtime import apiserver


def deployment(**spec_overrides):
    spec = {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "x"}},
        "template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "python:3.12-slim", "command": ["python", "/app/x.py"]}]},
        },
    }
    spec.update(spec_overrides)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": spec}


def test_valid_deployment_has_no_problems():
    assert apiserver.check_object(deployment()) == []


def test_unknown_kind_is_refused_with_the_known_kinds():
    problems = apiserver.check_object({"apiVersion": "v1", "kind": "Gadget", "metadata": {"name": "g"}})
    assert len(problems) == 1 and 'no matches for kind "Gadget"' in problems[0]
    assert "apps/v1 Deployment" in problems[0]


def test_the_seeds_old_deployment_api_gets_a_hint():
    old = deployment()
    old["apiVersion"] = "extensions/v1beta1"
    (problem,) = apiserver.check_object(old)
    assert "use apiVersion: apps/v1" in problem and "removed from Kubernetes" in problem


def test_selector_must_match_template_labels():
    bad = deployment(selector={"matchLabels": {"app": "other"}})
    assert any("must include every label" in p for p in apiserver.check_object(bad))


def test_missing_containers_named():
    bad = deployment(template={"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}})
    assert any("containers: at least one container" in p for p in apiserver.check_object(bad))


def test_service_port_out_of_range_names_the_field():
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 70000}], "selector": {"app": "x"}},
    }
    assert apiserver.check_object(svc) == ["spec.ports[0].port must be a number from 1 to 65535"]


def test_bad_name_and_label_types():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}
    assert "metadata.name" in apiserver.check_object(obj)[0]
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok", "labels": {"n": 1}}}
    assert "quote numbers" in apiserver.check_object(obj)[0]


def test_pods_cannot_be_applied():
    (problem,) = apiserver.check_object({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})
    assert "apply a Deployment" in problem


def test_not_a_mapping():
    assert "expected an object" in apiserver.check_object(["a"])[0]


def test_a_tls_secret_needs_its_two_keys_and_base64_data() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"}, "type": "kubernetes.io/tls"}
    ok = {**secret, "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}}
    assert apiserver.check_object(ok) == []
    assert apiserver.check_object({**secret, "stringData": {"tls.crt": "c", "tls.key": "k"}}) == []
    assert apiserver.check_object({**secret, "data": {"tls.crt": "Y2VydA=="}}) == [
        'data["tls.key"] is required for a Secret of type kubernetes.io/tls'
    ]
    assert "is not base64" in apiserver.check_object({**ok, "data": {**ok["data"], "tls.key": "not base64!"}})[0]


def test_an_endpointslice_lists_addresses_of_its_type() -> None:
    eps = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}],
    }
    assert apiserver.check_object(eps) == []
    bad = {**eps, "endpoints": [{"addresses": ["::1"]}]}
    assert apiserver.check_object(bad) == ['endpoints[0].addresses[0]: "::1" is not an IPv4 address']
    assert apiserver.check_object({**eps, "endpoints": [{"addresses": []}]}) == [
        "endpoints[0].addresses must list 1 to 100 addresses"
    ]


def test_metadata_follows_kubernetes_rules() -> None:
    def problems(**meta: object) -> list[str]:
        return apiserver.check_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", **meta}})

    assert "is invalid" in problems(name="a..b")[0]
    assert "at most 63" in problems(labels={"app": "x" * 64})[0]
    assert problems(labels={"example.com/app": "ok"}) == []
    assert problems(bogus=1) == ['metadata.bogus: unknown field "bogus" (strict field validation)']
    assert 'no "."' in problems(namespace="a.b")[0]


def test_v1beta1_httproutes_are_served_and_stored_as_v1() -> None:
    route = {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "HTTPRoute", "metadata": {"name": "r"}}
    assert apiserver.check_object(route) == []
    assert apiserver.stored(route)["apiVersion"] == "gateway.networking.k8s.io/v1"
