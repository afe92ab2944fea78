"""Installing and uninstalling gateways through the helm/glooctl/kubectl seam: the
exact commands, the pinned versions and values, and a cluster left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.backends.kube import KubernetesBackend
from helpers.backends.kube.installing import (
    GATEWAY_API_CRDS,
    GLOO_REPO,
    GLOO_VERSION,
    KGATEWAY_CHARTS,
    KGATEWAY_VERSION,
)
from helpers.errors import MissingTool

from .conftest import FakeTools
from .fake_apiserver import FakeApiServer

GLOO_CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/virtualservices.gateway.solo.io"
CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}


def install_crds(apiserver: FakeApiServer, *names: str) -> None:
    for name in names:
        apiserver.put({**CRD, "metadata": {"name": name}, "spec": {"group": name.split(".", 1)[1]}})


def test_gloo_is_installed_with_helm_pinned_with_discovery_and_strict_validation(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    tools.on_run = lambda argv: install_crds(
        apiserver, "virtualservices.gateway.solo.io", "upstreams.gloo.solo.io", "settings.gloo.solo.io"
    )
    result = backend.install("gloo")
    assert result["message"] == f"Gloo Edge {GLOO_VERSION} installed with helm (discovery on, strict validation)"
    [argv] = tools.calls
    values_file = argv[argv.index("--values") + 1]
    assert argv == [
        "helm",
        "upgrade",
        "--install",
        "gloo",
        "gloo",
        "--repo",
        GLOO_REPO,
        "--version",
        "1.22.1",
        "--namespace",
        "gloo-system",
        "--create-namespace",
        "--kube-context",
        "fake",
        "--values",
        values_file,
        "--wait",
        "--timeout",
        "10m",
    ]
    assert tools.values == [
        {
            "discovery": {"enabled": True, "fdsMode": "WHITELIST"},
            "gateway": {"validation": {"alwaysAcceptResources": False}},
        }
    ]
    assert not Path(values_file).exists()
    assert backend.install("gloo")["message"] == "gloo is already installed by this lab"
    assert len(tools.calls) == 1


def test_glooctl_when_helm_is_absent(backend: KubernetesBackend, tools: FakeTools):
    tools.present = {"glooctl", "kubectl"}
    tools.on_run = lambda argv: "fake\n" if argv[:3] == ["kubectl", "config", "current-context"] else ""
    assert backend.install("gloo")["via"] == "glooctl"
    assert tools.calls[0] == ["kubectl", "config", "current-context"]
    argv = tools.calls[1]
    assert argv[:5] == ["glooctl", "install", "gateway", "--version", GLOO_VERSION]
    assert argv[5] == "--values" and argv[7:] == ["--create-namespace"]


def test_neither_helm_nor_glooctl(backend: KubernetesBackend, tools: FakeTools):
    tools.present = {"kubectl"}
    with pytest.raises(MissingTool, match="neither helm nor glooctl is on PATH: install helm with brew install helm"):
        backend.install("gloo")
    assert tools.calls == []


def test_uninstall_removes_the_release_its_crds_and_the_namespace_it_created(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    def helm(argv: list[str]) -> None:
        if argv[1] == "upgrade":
            install_crds(apiserver, "virtualservices.gateway.solo.io", "upstreams.gloo.solo.io")
            apiserver.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gloo-system"}})

    tools.on_run = helm
    install_crds(apiserver, "widgets.example.com")  # someone else's CRD stays
    backend.install("gloo")
    assert backend.uninstall("gloo") == [
        "gloo: helm release removed",
        "customresourcedefinition.apiextensions.k8s.io/virtualservices.gateway.solo.io deleted",
        "customresourcedefinition.apiextensions.k8s.io/upstreams.gloo.solo.io deleted",
        "namespace/gloo-system deleted",
    ]
    assert tools.calls[-1] == [
        "helm",
        "uninstall",
        "gloo",
        "--namespace",
        "gloo-system",
        "--kube-context",
        "fake",
        "--wait",
    ]
    assert list(apiserver.objects) == ["/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com"]
    assert backend.uninstall("gloo") == ["gloo: not installed by this lab; nothing to do"]


def test_a_gloo_that_was_there_before_is_used_and_left_alone(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    install_crds(apiserver, "virtualservices.gateway.solo.io")
    result = backend.install("gloo")
    assert result["ours"] is False and "will not uninstall it" in result["message"]
    assert result["discovery"] is False  # no discovery deployment: the lab writes the Upstreams itself
    assert backend.uninstall("gloo") == ["gloo: installed before the lab; left as it is"]
    assert tools.calls == [] and GLOO_CRD in apiserver.objects


def test_kgateway_installs_gateway_api_crds_charts_and_the_gateway(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    apiserver.served_groups.add("gateway.networking.k8s.io")
    apiserver.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kgateway-system"}})
    result = backend.install("kgateway")
    assert (
        result["message"]
        == f"kgateway {KGATEWAY_VERSION} installed with helm; Gateway kgateway-system/http on port 8080"
    )
    assert tools.calls == [
        ["kubectl", "--context", "fake", "apply", "--server-side", "-f", GATEWAY_API_CRDS],
        *[
            [
                "helm",
                "upgrade",
                "--install",
                r,
                f"{KGATEWAY_CHARTS}/{r}",
                "--version",
                "v2.4.3",
                "--namespace",
                "kgateway-system",
                "--create-namespace",
                "--kube-context",
                "fake",
                "--wait",
                "--timeout",
                "10m",
            ]
            for r in ("kgateway-crds", "kgateway")
        ],
    ]
    assert GATEWAY_API_CRDS.endswith("/v1.6.1/standard-install.yaml")
    gateway = apiserver.get("/apis/gateway.networking.k8s.io/v1/namespaces/kgateway-system/gateways/http")
    assert gateway["spec"]["gatewayClassName"] == "kgateway"
    assert gateway["spec"]["listeners"][0]["port"] == 8080
    tools.calls.clear()
    assert backend.uninstall("kgateway") == [
        "gateway.gateway.networking.k8s.io/http deleted",
        "kgateway: helm release kgateway removed",
        "kgateway: helm release kgateway-crds removed",
        "Gateway API v1.6.1 CRDs removed",
    ]
    assert [c[:3] for c in tools.calls] == [
        ["helm", "uninstall", "kgateway"],
        ["helm", "uninstall", "kgateway-crds"],
        ["kubectl", "--context", "fake"],
    ]
    assert "/api/v1/namespaces/kgateway-system" in apiserver.objects  # it was there before


def test_kgateway_needs_helm(backend: KubernetesBackend, tools: FakeTools):
    tools.present = {"kubectl", "glooctl"}
    with pytest.raises(MissingTool, match="installing kgateway needs helm"):
        backend.install("kgateway")
