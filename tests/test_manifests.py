"""The manifests: petstore ConfigMaps carry the app source, the Deployments meet the
"restricted" Pod Security Standard, and the Gloo VirtualServices are the seed's steps in
Gloo Edge 1.x form."""

from __future__ import annotations

import copy
import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
SOURCE = ROOT / "helpers" / "apps" / "petstore.py"
RENDER = ROOT / "scripts" / "render_manifests.py"
GLOO = MANIFESTS / "gloo"
GLOO_STEPS = [
    "1-route-to-v1.yaml",
    "2-header-canary.yaml",
    "3-weighted-10-90.yaml",
    "4-weighted-50-50.yaml",
    "5-all-to-v2.yaml",
]
UPSTREAM = {v: {"name": f"default-petstore-{v}-8080", "namespace": "gloo-system"} for v in ("v1", "v2")}


def documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def by_kind(path: Path) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in documents(path)}


# --- petstore manifests ----------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_configmap_carries_the_exact_source(version: str) -> None:
    config_map = by_kind(MANIFESTS / f"petstore-{version}.yaml")["ConfigMap"]
    assert config_map["metadata"] == {
        "name": f"petstore-{version}-app",
        "namespace": "default",
        "labels": {"app": f"petstore-{version}"},
    }
    assert config_map["data"]["petstore.py"] == SOURCE.read_bytes().decode("utf-8")


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_service_and_deployment(version: str) -> None:
    name = f"petstore-{version}"
    docs = by_kind(MANIFESTS / f"{name}.yaml")
    assert sorted(docs) == ["ConfigMap", "Deployment", "Service"]
    service = docs["Service"]
    assert (service["apiVersion"], service["metadata"]["name"], service["metadata"]["namespace"]) == (
        "v1",
        name,
        "default",
    )
    assert service["metadata"]["labels"] == {"app": name, "discovery.solo.io/function_discovery": "enabled"}
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == {"app": name}
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"}]

    deployment = docs["Deployment"]
    assert deployment["apiVersion"] == "apps/v1"
    assert (deployment["metadata"]["name"], deployment["metadata"]["namespace"]) == (name, "default")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["selector"] == {"matchLabels": {"app": name}}
    assert spec["template"]["metadata"]["labels"] == {"app": name, "version": version}
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    assert container["name"] == "petstore"
    assert container["image"] == "python:3.12-slim"
    assert container["command"] == ["python", "/app/petstore.py"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"VERSION": version, "PYTHONDONTWRITEBYTECODE": "1"}
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    readiness = container["readinessProbe"]
    assert readiness["httpGet"] == {"path": "/healthz", "port": "http"} and readiness["periodSeconds"] == 2
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["volumeMounts"] == [{"name": "app", "mountPath": "/app", "readOnly": True}]
    assert pod["volumes"] == [{"name": "app", "configMap": {"name": f"{name}-app"}}]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_render_check_passes() -> None:
    result = subprocess.run([sys.executable, str(RENDER), "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_render_check_names_a_stale_file(tmp_path: Path) -> None:
    # A copy of the three inputs, so the real files are never touched.
    for rel in (
        "scripts/render_manifests.py",
        "helpers/apps/petstore.py",
        "manifests/petstore-v1.yaml",
        "manifests/petstore-v2.yaml",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    stale = tmp_path / "manifests" / "petstore-v2.yaml"
    stale.write_text(stale.read_text().replace("cpu: 50m", "cpu: 60m"))
    check = [sys.executable, str(tmp_path / "scripts" / "render_manifests.py"), "--check"]
    result = subprocess.run(check, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "manifests/petstore-v2.yaml is stale" in result.stderr and "v1" not in result.stderr
    subprocess.run(check[:-1], check=True, capture_output=True, timeout=60)  # re-render
    assert subprocess.run(check, capture_output=True, timeout=60).returncode == 0


# --- the "restricted" Pod Security Standard -------------------------------------------------

ALLOWED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What in a pod spec breaks the "restricted" Pod Security Standard (the checks that
    matter for this repo; see kubernetes.io/docs/concepts/security/pod-security-standards)."""
    problems = []
    pod_sc = pod.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"{field} is set")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            problems.append(f"volume {volume['name']} uses {sorted(kinds - ALLOWED_VOLUME_TYPES)}")
    if pod_sc.get("runAsUser") == 0:
        problems.append("pod runAsUser is 0")
    containers = [c for key in ("initContainers", "containers", "ephemeralContainers") for c in pod.get(key) or []]
    for c in containers:
        sc = c.get("securityContext") or {}
        where = f"container {c.get('name')}"
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            problems.append(f"{where}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            problems.append(f"{where}: runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile is {seccomp!r}")
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{where}: capabilities do not drop ALL")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}: adds capabilities {capabilities['add']}")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            problems.append(f"{where}: uses a hostPort")
    return problems


def workloads() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(MANIFESTS.rglob("*.yaml")):
        for doc in documents(path):
            if doc.get("kind") in POD_KINDS:
                yield f"{path.relative_to(ROOT)}:{doc['metadata']['name']}", doc


def test_every_workload_is_restricted() -> None:
    found = dict(workloads())
    assert {"manifests/petstore-v1.yaml:petstore-v1", "manifests/petstore-v2.yaml:petstore-v2"} <= set(found)
    for where, obj in found.items():
        assert restricted_violations(pod_spec(obj)) == [], where


def test_the_checker_catches_violations() -> None:
    deployment = by_kind(MANIFESTS / "petstore-v1.yaml")["Deployment"]
    pod = copy.deepcopy(pod_spec(deployment))
    pod["hostNetwork"] = True
    pod["securityContext"].pop("runAsNonRoot")
    pod["securityContext"]["seccompProfile"]["type"] = "Unconfined"
    pod["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    container_sc = pod["containers"][0]["securityContext"]
    container_sc.pop("runAsNonRoot")
    container_sc.update(
        allowPrivilegeEscalation=True, privileged=True, runAsUser=0, capabilities={"add": ["SYS_ADMIN"]}
    )
    problems = "\n".join(restricted_violations(pod))
    for expected in (
        "hostNetwork",
        "hostPath",
        "runAsNonRoot",
        "runAsUser is 0",
        "seccompProfile",
        "privileged",
        "allowPrivilegeEscalation",
        "drop ALL",
        "SYS_ADMIN",
    ):
        assert expected in problems


# --- Gloo VirtualServices ---------------------------------------------------------------------


def load_vs(name: str) -> dict[str, Any]:
    [vs] = documents(GLOO / name)
    return vs


def routes(name: str) -> list[dict[str, Any]]:
    return load_vs(name)["spec"]["virtualHost"]["routes"]


def keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from keys(item)


def destinations(route: dict[str, Any]) -> list[tuple[str, int | None, dict[str, Any] | None]]:
    """(version, weight, destinationSpec) per destination of a route."""
    action = route["routeAction"]
    weighted = (
        [(d["destination"], d["weight"]) for d in action["multi"]["destinations"]]
        if "multi" in action
        else [(action["single"], None)]
    )
    found = []
    for destination, weight in weighted:
        version = next(v for v, ref in UPSTREAM.items() if destination["upstream"] == ref)
        found.append((version, weight, destination.get("destinationSpec")))
    return found


FIND_PET_BY_ID = {"rest": {"functionName": "findPetById", "parameters": {"headers": {":path": "/findPetWithId/{id}"}}}}
FIND_PETS = {"rest": {"functionName": "findPets"}}
STEP1_MATCHERS = [[{"prefix": "/findPetWithId/"}], [{"exact": "/findPets"}], [{"prefix": "/petstore"}]]
STEP1_SPECS = [FIND_PET_BY_ID, FIND_PETS, None]


def test_gloo_steps_are_current_virtual_services() -> None:
    assert sorted(p.name for p in GLOO.glob("*.yaml")) == GLOO_STEPS
    for name in GLOO_STEPS:
        vs = load_vs(name)
        assert (vs["apiVersion"], vs["kind"]) == ("gateway.solo.io/v1", "VirtualService"), name
        assert vs["metadata"] == {"name": "coalmine", "namespace": "gloo-system"}, name
        assert vs["spec"]["displayName"] == "coalmine"
        assert vs["spec"]["virtualHost"]["domains"] == ["*"]
        all_keys = set(keys(vs))
        assert not all_keys & {"matcher", "routePlugins", "upstreamSpec"}, name
        for route in vs["spec"]["virtualHost"]["routes"]:
            assert isinstance(route["matchers"], list) and route["matchers"], name
            assert set(route) <= {"matchers", "routeAction", "options"}, name
        assert (GLOO / name).read_text().startswith("# Step "), name


def test_step1_routes_everything_to_v1() -> None:
    found = routes("1-route-to-v1.yaml")
    assert [r["matchers"] for r in found] == STEP1_MATCHERS
    assert [destinations(r) for r in found] == [[("v1", None, spec)] for spec in STEP1_SPECS]
    assert found[2]["options"] == {"prefixRewrite": "/api/pets"}


@pytest.mark.parametrize("name", GLOO_STEPS[1:4])
def test_header_canary_route_comes_first(name: str) -> None:
    first, *rest = routes(name)
    [matcher] = first["matchers"]
    assert matcher["headers"] == [{"name": "x-canary", "value": "true"}]
    assert matcher.get("exact", matcher.get("prefix")) == "/findPets"
    assert destinations(first) == [("v2", None, FIND_PETS)]
    assert [r["matchers"] for r in rest] == STEP1_MATCHERS
    assert rest[2]["options"] == {"prefixRewrite": "/api/pets"}


def test_step2_keeps_the_step1_routes() -> None:
    assert routes("2-header-canary.yaml")[1:] == routes("1-route-to-v1.yaml")


@pytest.mark.parametrize(
    ("name", "v2_weight", "v1_weight"), [("3-weighted-10-90.yaml", 10, 90), ("4-weighted-50-50.yaml", 50, 50)]
)
def test_weighted_steps(name: str, v2_weight: int, v1_weight: int) -> None:
    for route, spec in zip(routes(name)[1:], STEP1_SPECS, strict=True):
        assert destinations(route) == [("v2", v2_weight, spec), ("v1", v1_weight, spec)]


def test_step5_routes_everything_to_v2() -> None:
    found = routes("5-all-to-v2.yaml")
    assert [r["matchers"] for r in found] == STEP1_MATCHERS
    assert [destinations(r) for r in found] == [[("v2", None, spec)] for spec in STEP1_SPECS]
    assert found[2]["options"] == {"prefixRewrite": "/api/pets"}


def test_rest_functions_exist_in_the_petstore_swagger() -> None:
    spec = importlib.util.spec_from_file_location("_petstore_under_test", SOURCE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    operations = {op["operationId"] for ops in module.swagger("v1")["paths"].values() for op in ops.values()}
    used = {fn for name in GLOO_STEPS for fn in _function_names(load_vs(name))}
    assert used == {"findPets", "findPetById"} and used <= operations


def _function_names(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if "functionName" in value:
            yield value["functionName"]
        for item in value.values():
            yield from _function_names(item)
    elif isinstance(value, list):
        for item in value:
            yield from _function_names(item)


# --- the Kubernetes OpenAPI schemas, offline (kubernetes-validate, strict) -------------------

# The oldest and newest Kubernetes minor that kind and minikube ship as defaults today.
K8S_VERSIONS = ["1.30.0", "1.33.0"]


def kubernetes_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every manifest that is a built-in Kubernetes kind (the Gloo and Gateway API
    objects are CRDs: the Gloo schema checks those, in tests/test_translating.py)."""
    for path in sorted(MANIFESTS.rglob("*.yaml")):
        for doc in documents(path):
            group = doc["apiVersion"].rpartition("/")[0]
            if group in ("", "apps"):
                yield f"{path.relative_to(ROOT)}:{doc['kind']}/{doc['metadata']['name']}", doc


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_validate_strictly(version: str) -> None:
    import kubernetes_validate

    found = dict(kubernetes_documents())
    assert len(found) >= 6
    for where, doc in found.items():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{where} is not a valid Kubernetes {version} object: {e.message}")


def test_strict_validation_refuses_an_unknown_field() -> None:
    import kubernetes_validate

    deployment = copy.deepcopy(by_kind(MANIFESTS / "petstore-v1.yaml")["Deployment"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/"}
    with pytest.raises(kubernetes_validate.ValidationError, match="'httpGett' was unexpected"):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_objects_the_cluster_backend_writes_are_valid() -> None:
    """The kgateway Gateway's workload-free shape, and the Upstreams the backend writes
    where Gloo's discovery is off, pass the Gloo schema the local runtime enforces."""
    from helpers.apps.petstore import swagger
    from helpers.backends.kube.installing import kgateway_gateway
    from helpers.runtime.gloo.discovering import upstreams_for, with_functions
    from helpers.runtime.gloo.functions import transformations_from_swagger
    from helpers.runtime.gloo.schema import validate

    service = by_kind(MANIFESTS / "petstore-v1.yaml")["Service"]
    [upstream] = upstreams_for(service)
    functions = transformations_from_swagger(swagger("v1"))
    written = with_functions(upstream, "http://petstore-v1.default.svc.cluster.local:8080/swagger.json", functions)
    assert validate(written) == [] and sorted(functions) == ["addPet", "deletePet", "findPetById", "findPets"]
    gateway = kgateway_gateway()
    assert (gateway["apiVersion"], gateway["spec"]["gatewayClassName"]) == ("gateway.networking.k8s.io/v1", "kgateway")
