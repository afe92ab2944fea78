"""A pod's environment as the kubelet builds it (``podenv``) and a Service's endpoints
from EndpointSlices (``endpointslices``): pure functions over a pod and its objects."""

from __future__ import annotations

import base64
import math
import os
from pathlib import Path
from typing import Any

import pytest

from helpers.runtime import endpointslices
from helpers.runtime.podenv import NODE_NAME, quantity
from helpers.runtime.pods import NotYet, Pod, PodSpecError, prepare, template_hash
from helpers.runtime.routes import Endpoint


def pod_with(tmp_path: Path, env: list[dict[str, Any]], **container: Any) -> Pod:
    template = {
        "metadata": {"labels": {"app": "echo"}, "annotations": {"team": "canary"}},
        "spec": {
            "serviceAccountName": "robot",
            "containers": [{"name": "c", "command": ["python"], "env": env, **container}],
        },
    }
    return Pod("echo-abc-12345", "shop", "echo", template_hash(template), template, tmp_path / "pod")


def lookup(*objects: dict[str, Any]) -> Any:
    found = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}
    return lambda ns, name: found.get((ns, name))


def field(path: str) -> dict[str, Any]:
    return {"fieldRef": {"fieldPath": path}}


def test_the_downward_api_gives_the_pod_its_own_facts(tmp_path: Path) -> None:
    paths = {
        "POD_NAME": "metadata.name",
        "NAMESPACE": "metadata.namespace",
        "UID": "metadata.uid",
        "IP": "status.podIP",
        "HOST_IP": "status.hostIP",
        "NODE": "spec.nodeName",
        "SA": "spec.serviceAccountName",
        "APP": "metadata.labels['app']",
        "HASH": "metadata.labels['pod-template-hash']",
        "TEAM": "metadata.annotations['team']",
        "NONE": "metadata.labels['absent']",
    }
    pod = pod_with(tmp_path, [{"name": k, "valueFrom": field(v)} for k, v in paths.items()])
    _, env = prepare(pod, lookup())
    assert {k: env[k] for k in paths} == {
        "POD_NAME": "echo-abc-12345",
        "NAMESPACE": "shop",
        "UID": pod.uid,
        "IP": "127.0.0.1",
        "HOST_IP": "127.0.0.1",
        "NODE": NODE_NAME,
        "SA": "robot",
        "APP": "echo",
        "HASH": pod.template_hash,
        "TEAM": "canary",
        "NONE": "",
    }
    shown = pod.to_object()
    assert shown["metadata"]["uid"] == pod.uid and shown["spec"]["nodeName"] == NODE_NAME
    assert shown["status"]["podIPs"] == [{"ip": "127.0.0.1"}]


def test_an_unknown_field_path_is_a_config_error_naming_it(tmp_path: Path) -> None:
    pod = pod_with(tmp_path, [{"name": "X", "valueFrom": field("status.phase")}])
    with pytest.raises(PodSpecError, match=r'env "X": fieldRef\.fieldPath "status\.phase" is not supported'):
        prepare(pod, lookup())


def test_config_map_and_secret_keys_resolve_from_the_store(tmp_path: Path) -> None:
    cm = {"metadata": {"namespace": "shop", "name": "settings"}, "data": {"mode": "fast", "bad-key!": "x"}}
    secret = {
        "metadata": {"namespace": "shop", "name": "creds"},
        "data": {"token": base64.b64encode(b"s3cret").decode()},
    }
    env_in = [
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "GONE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "nope", "optional": True}}},
        {"name": "ZERO", "value": 0},
    ]
    pod = pod_with(tmp_path, env_in, envFrom=[{"configMapRef": {"name": "settings"}, "prefix": "CM_"}])
    _, env = prepare(pod, lookup(cm), lookup(secret))
    assert (env["MODE"], env["TOKEN"], env["ZERO"], env["CM_mode"]) == ("fast", "s3cret", "0", "fast")
    assert "GONE" not in env and not any("bad-key" in k for k in env)  # invalid names are skipped


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ({"configMapKeyRef": {"name": "settings", "key": "mode"}}, 'configmap "settings" not found'),
        ({"secretKeyRef": {"name": "creds", "key": "token"}}, 'secret "creds" not found'),
    ],
)
def test_a_missing_source_holds_the_container_back(tmp_path: Path, ref: dict[str, Any], message: str) -> None:
    pod = pod_with(tmp_path, [{"name": "X", "valueFrom": ref}])
    with pytest.raises(NotYet, match=message) as caught:
        prepare(pod, lookup(), lookup())
    assert caught.value.reason == "CreateContainerConfigError"


def test_a_missing_key_is_named_with_its_config_map(tmp_path: Path) -> None:
    cm = {"metadata": {"namespace": "shop", "name": "settings"}, "data": {}}
    pod = pod_with(tmp_path, [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}])
    with pytest.raises(NotYet, match="couldn't find key mode in ConfigMap shop/settings"):
        prepare(pod, lookup(cm))


def test_resource_fields_use_requests_limits_and_the_machine(tmp_path: Path) -> None:
    env_in = [
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
        {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
    ]
    pod = pod_with(tmp_path, env_in, resources={"limits": {"memory": "128Mi"}, "requests": {"cpu": "250m"}})
    _, env = prepare(pod, lookup())
    assert (env["MEM"], env["REQ"], env["CPUS"]) == ("128", "250", str(os.cpu_count() or 1))
    assert quantity("1.5Gi") == 1.5 * 1024**3 and quantity("1e3") is None and math.isclose(quantity("100m") or 0, 0.1)


def test_endpoint_slices_give_a_service_without_a_selector_its_endpoints(tmp_path: Path) -> None:
    service = {"metadata": {"namespace": "shop", "name": "manual"}, "spec": {"ports": [{"name": "web", "port": 8080}]}}

    def slice_of(name: str, service_name: str, *endpoints: dict[str, Any], ns: str = "shop") -> dict[str, Any]:
        return {
            "metadata": {"namespace": ns, "name": name, "labels": {endpointslices.SERVICE_NAME_LABEL: service_name}},
            "addressType": "IPv4",
            "ports": [{"name": "web", "port": 3000}],
            "endpoints": list(endpoints),
        }

    slices = [
        slice_of(
            "a",
            "manual",
            {"addresses": ["127.0.0.1"]},
            {"addresses": ["127.0.0.2"], "conditions": {"ready": False}},
            {"addresses": ["10.0.0.7"]},
        ),
        slice_of("b", "other", {"addresses": ["127.0.0.3"]}),
        slice_of("c", "manual", {"addresses": ["127.0.0.4"]}, ns="elsewhere"),
    ]
    assert endpointslices.endpoints(service, slices, []) == {8080: [Endpoint("127.0.0.1", 3000)]}
    assert endpointslices.unreachable(service, slices) == ["10.0.0.7"]
    unnamed = {**service, "spec": {"ports": [{"port": 8080}]}}
    assert endpointslices.endpoints(unnamed, slices, []) == {8080: []}  # port names must match
