"""Installing and uninstalling gateways through the helm/glooctl/kubectl seam: the
exact commands, the pinned versions and values, a failed install that can be finished
or undone, and a cluster left as it was (nothing removed that the lab did not create)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers.backends.kube import KubernetesBackend
from helpers.backends.kube.pins import (
    GATEWAY_API_CRDS,
    GATEWAY_API_CRDS_BY_CHANNEL,
    GLOO_REPO,
    GLOO_VERSION,
    KGATEWAY_CHARTS,
    KGATEWAY_VERSION,
)
from helpers.errors import ClusterError, InvalidArgument, MissingTool

from .conftest import FakeTools, chart, crd
from .fake_apiserver import FakeApiServer, ready_for_helm

GLOO_CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/virtualservices.gateway.solo.io"
GLOO_CRDS = ("virtualservices.gateway.solo.io", "upstreams.gloo.solo.io", "settings.gloo.solo.io")
PROXY = "/api/v1/namespaces/gloo-system/services/gateway-proxy"
GATEWAY = "/apis/gateway.networking.k8s.io/v1/namespaces/kgateway-system/gateways/http"
GATEWAY_API = ("gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io")
POLICY = "safe-upgrades.gateway.networking.k8s.io"


def gloo_chart() -> list[dict[str, Any]]:
    """What the Gloo chart creates, as far as these tests look: its CRDs and the proxy's
    Service, a LoadBalancer (the chart's default)."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "gateway-proxy", "namespace": "gloo-system"},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    return [*(crd(name) for name in GLOO_CRDS), service]


def helm_install_gloo(values_file: str) -> list[str]:
    return [
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
        "--timeout",
        "10m",
    ]


def crd_names(apiserver: FakeApiServer) -> list[str]:
    return sorted(o["metadata"]["name"] for o in apiserver.objects.values() if o["kind"] == "CustomResourceDefinition")


def test_gloo_is_installed_with_helm_pinned_with_discovery_and_validation_spelled_out(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    tools.on_run = chart(apiserver, *gloo_chart())
    result = backend.install("gloo")
    assert result["message"].startswith(f"Gloo Edge {GLOO_VERSION} installed with helm (discovery on; validation")
    [argv] = tools.calls
    values_file = argv[argv.index("--values") + 1]
    assert argv == helm_install_gloo(values_file)
    assert tools.values == [
        {
            "discovery": {"enabled": True, "fdsMode": "WHITELIST"},
            "gateway": {
                "validation": {"alwaysAcceptResources": False, "allowWarnings": True, "failurePolicy": "Ignore"}
            },
        }
    ]
    assert not Path(values_file).exists()
    assert backend.install("gloo")["message"] == "gloo is already installed by this lab"
    assert len(tools.calls) == 1


def test_the_fake_helm_waits_as_helm_3_does(apiserver: FakeApiServer):
    """The model the next test stands on: with --wait, a LoadBalancer without an address fails the install."""
    run = chart(apiserver, *gloo_chart())
    with pytest.raises(ClusterError, match="context deadline exceeded"):
        run([*helm_install_gloo("values.yaml")[:-2], "--wait", "--timeout", "10m"])
    service = apiserver.get(PROXY)
    assert service["spec"]["clusterIP"] and not ready_for_helm(service)
    apiserver.load_balancer_ip = "172.18.255.200"  # a cloud, or minikube tunnel
    apiserver.objects.pop(PROXY)
    run([*helm_install_gloo("values.yaml")[:-2], "--wait", "--timeout", "10m"])
    assert ready_for_helm(apiserver.get(PROXY))


def test_gloo_installs_on_kind_where_no_load_balancer_gets_an_address(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    tools.on_run = chart(apiserver, *gloo_chart())
    assert backend.install("gloo")["ours"] is True
    assert "--wait" not in tools.calls[0]
    assert not ready_for_helm(apiserver.get(PROXY))  # Helm would still be waiting; the lab's own wait is used
    gateway = backend.ready()["gateway"]
    assert gateway["installed"] and not gateway["serving"]  # its deployments are what `coalmine wait` waits for


def test_a_failed_install_is_pending_and_can_be_finished_or_undone(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    tools.on_run = chart(apiserver, *gloo_chart(), fail="failed pre-install: timed out waiting for the condition")
    with pytest.raises(ClusterError) as failed:
        backend.install("gloo")
    assert "timed out waiting for the condition" in str(failed.value)
    assert "run `coalmine install gloo` again to finish it, or `coalmine reset`" in str(failed.value)
    record = backend.ledger.installed()["gloo"]
    assert (record["state"], record["ours"], record["crdsBefore"]) == ("pending", True, [])
    assert GLOO_CRD in apiserver.objects  # the failed install left Gloo's CRDs behind

    tools.on_run = chart(apiserver, *gloo_chart())
    result = backend.install("gloo")  # finishes it: the CRDs it left are not taken for a Gloo that was there
    assert (result["ours"], result["state"]) == (True, "installed")
    assert result["crds"] == sorted(GLOO_CRDS)

    tools.on_run = chart(apiserver, *gloo_chart(), fail="timed out")
    backend.uninstall("gloo")
    with pytest.raises(ClusterError):
        backend.install("gloo")
    assert backend.reset() == [
        "gloo: helm release gloo removed",
        *(f"customresourcedefinition.apiextensions.k8s.io/{n} deleted" for n in sorted(GLOO_CRDS)),
        "namespace/gloo-system deleted",
    ]
    assert crd_names(apiserver) == [] and backend.ledger.installed() == {}


def test_undoing_a_pending_install_that_never_made_a_release(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    with backend.ledger.change() as entry:
        entry["installed"]["gloo"] = {"ours": True, "state": "pending", "via": "helm", "crdsBefore": []}

    def helm(argv: list[str]) -> str:
        raise ClusterError(
            f"`{' '.join(argv)}` failed (exit 1):\nError: uninstall: Release not loaded: gloo: release: not found"
        )

    tools.on_run = helm
    assert backend.uninstall("gloo") == ["gloo: no helm release gloo to remove"]
    assert backend.ledger.installed() == {}


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
    assert tools.calls == [] and backend.ledger.installed() == {}


def test_uninstall_removes_the_release_and_only_the_crds_and_namespace_it_created(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    apiserver.put(crd("widgets.example.com"))  # someone else's CRD stays
    apiserver.put(crd("authconfigs.enterprise.gloo.solo.io"))  # a solo.io CRD that was there before the lab stays
    tools.on_run = chart(apiserver, *gloo_chart())
    backend.install("gloo")
    assert backend.uninstall("gloo") == [
        "gloo: helm release gloo removed",
        *(f"customresourcedefinition.apiextensions.k8s.io/{n} deleted" for n in sorted(GLOO_CRDS)),
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
    assert crd_names(apiserver) == ["authconfigs.enterprise.gloo.solo.io", "widgets.example.com"]
    assert backend.uninstall("gloo") == ["gloo: not installed by this lab; nothing to do"]


def test_a_gloo_that_was_there_before_is_used_and_left_alone(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    apiserver.put(crd("virtualservices.gateway.solo.io"))
    result = backend.install("gloo")
    assert result["ours"] is False and "will not uninstall it" in result["message"]
    assert result["discovery"] is False  # no discovery deployment: the lab writes the Upstreams itself
    assert backend.uninstall("gloo") == ["gloo: installed before the lab; left as it is"]
    assert tools.calls == [] and GLOO_CRD in apiserver.objects


# ── kgateway ──────────────────────────────────────────────────────────────────


def gateway_api(apiserver: FakeApiServer) -> Any:
    """``kubectl apply -f standard-install.yaml``: the CRDs, then the safe-upgrades policy,
    which a cluster before Kubernetes 1.30 does not serve (kubectl then exits 1)."""

    def run(argv: list[str]) -> str:
        if argv[0] != "kubectl" or "apply" not in argv:
            return ""
        for name in GATEWAY_API:
            apiserver.put(
                {
                    **crd(name),
                    "metadata": {"name": name, "annotations": {"gateway.networking.k8s.io/bundle-version": "v1.6.1"}},
                }
            )
        if "admissionregistration.k8s.io" not in apiserver.served_groups:
            raise ClusterError(
                f'`{" ".join(argv)}` failed (exit 1):\nerror: resource mapping not found for name: "{POLICY}" '
                f'namespace: "" from "{GATEWAY_API_CRDS}": no matches for kind "ValidatingAdmissionPolicy" in '
                'version "admissionregistration.k8s.io/v1"\nensure CRDs are installed first'
            )
        for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
            apiserver.put({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": POLICY}})
        return ""

    return run


def kgateway_tools(apiserver: FakeApiServer, tools: FakeTools) -> None:
    crds, helm = gateway_api(apiserver), chart(apiserver, crd("gatewayparameters.gateway.kgateway.dev"))
    tools.on_run = lambda argv: crds(argv) + helm(argv)


def helm_install_kgateway(release: str) -> list[str]:
    return [
        "helm",
        "upgrade",
        "--install",
        release,
        f"{KGATEWAY_CHARTS}/{release}",
        "--version",
        "v2.4.3",
        "--namespace",
        "kgateway-system",
        "--create-namespace",
        "--kube-context",
        "fake",
        "--timeout",
        "10m",
    ]


def test_kgateway_installs_gateway_api_crds_charts_and_the_gateway(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    apiserver.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kgateway-system"}})
    kgateway_tools(apiserver, tools)
    result = backend.install("kgateway")
    assert (
        result["message"] == f"kgateway {KGATEWAY_VERSION} installed with helm (Gateway API v1.6.1, standard channel); "
        "Gateway kgateway-system/http on port 8080"
    )
    assert tools.calls == [
        ["kubectl", "--context", "fake", "apply", "--server-side", "-f", GATEWAY_API_CRDS],
        helm_install_kgateway("kgateway-crds"),
        helm_install_kgateway("kgateway"),
    ]
    assert GATEWAY_API_CRDS.endswith("/v1.6.1/standard-install.yaml")
    gateway = apiserver.get(GATEWAY)
    assert gateway["spec"]["gatewayClassName"] == "kgateway" and gateway["spec"]["listeners"][0]["port"] == 8080
    tools.calls.clear()
    ref = "customresourcedefinition.apiextensions.k8s.io"
    assert backend.uninstall("kgateway") == [
        "gateway.gateway.networking.k8s.io/http deleted",
        "kgateway: helm release kgateway removed",
        "kgateway: helm release kgateway-crds removed",
        f"validatingadmissionpolicybinding.admissionregistration.k8s.io/{POLICY} deleted",
        f"validatingadmissionpolicy.admissionregistration.k8s.io/{POLICY} deleted",
        *(f"{ref}/{n} deleted" for n in sorted(GATEWAY_API)),
        "Gateway API v1.6.1 CRDs removed",
    ]
    assert [c[:3] for c in tools.calls] == [["helm", "uninstall", "kgateway"], ["helm", "uninstall", "kgateway-crds"]]
    assert crd_names(apiserver) == ["gatewayparameters.gateway.kgateway.dev"]  # the chart's own: helm keeps CRDs
    assert "/api/v1/namespaces/kgateway-system" in apiserver.objects  # it was there before


def test_kgateway_on_a_cluster_that_does_not_serve_validating_admission_policies(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    apiserver.served_groups.discard("admissionregistration.k8s.io")
    apiserver.version = (1, 29)
    kgateway_tools(apiserver, tools)
    result = backend.install("kgateway")
    left_out = f"the Gateway API's {POLICY} policy was left out; its CRDs are installed"
    assert (
        f"note: this cluster does not serve ValidatingAdmissionPolicy (Kubernetes before 1.30), so {left_out}"
        in (result["message"])
    )
    assert "note: this cluster runs Kubernetes 1.29; kgateway 2.4 is documented for 1.32-1.36" in result["message"]
    assert len(tools.calls) == 3  # kubectl failed on the policy only; the charts were installed after it
    record = backend.ledger.installed()["kgateway"]
    assert (record["state"], record["gatewayApiCrds"], record["gatewayApiPolicy"]) == (
        "installed",
        sorted(GATEWAY_API),
        False,
    )
    lines = backend.uninstall("kgateway")
    assert "Gateway API v1.6.1 CRDs removed" in lines and not any("admissionpolic" in line for line in lines)
    assert crd_names(apiserver) == ["gatewayparameters.gateway.kgateway.dev"]


def test_gateway_api_crds_of_a_release_kgateway_does_not_support_are_refused(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    apiserver.put(
        {
            **crd(GATEWAY_API[0]),
            "metadata": {"name": GATEWAY_API[0], "annotations": {"gateway.networking.k8s.io/bundle-version": "v1.2.1"}},
        }
    )
    kgateway_tools(apiserver, tools)
    with pytest.raises(ClusterError) as refused:
        backend.install("kgateway")
    message = str(refused.value)
    assert "this cluster has the Gateway API CRDs of v1.2.1; kgateway v2.4.3 supports Gateway API 1.4-1.6" in message
    assert f"`kubectl apply --server-side -f {GATEWAY_API_CRDS}`" in message
    assert tools.calls == [] and backend.ledger.installed() == {}


def test_gateway_api_crds_kgateway_supports_are_used_and_kept(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    apiserver.put(
        {
            **crd(GATEWAY_API[0]),
            "metadata": {"name": GATEWAY_API[0], "annotations": {"gateway.networking.k8s.io/bundle-version": "v1.5.1"}},
        }
    )
    kgateway_tools(apiserver, tools)
    backend.install("kgateway")
    assert [c[0] for c in tools.calls] == ["helm", "helm"]  # no kubectl apply over them
    backend.uninstall("kgateway")
    assert GATEWAY_API[0] in crd_names(apiserver)


def test_kgateway_needs_helm(backend: KubernetesBackend, tools: FakeTools):
    tools.present = {"kubectl", "glooctl"}
    with pytest.raises(MissingTool, match="installing kgateway needs helm"):
        backend.install("kgateway")


# ── kgateway: the Gateway API channel ─────────────────────────────────────────

X_CRD = "xmeshes.gateway.networking.x-k8s.io"  # one of the kinds only the experimental bundle has
EXPERIMENTAL_CRDS = GATEWAY_API_CRDS_BY_CHANNEL["experimental"]


def gateway_api_channels(apiserver: FakeApiServer) -> Any:
    """``kubectl apply -f <channel>-install.yaml``, with the safe-upgrades policy at work:
    it refuses experimental CRDs over standard ones (Gateway API v1.5+)."""

    def run(argv: list[str]) -> str:
        if argv[0] != "kubectl" or "apply" not in argv:
            return ""
        channel = "experimental" if argv[-1] == EXPERIMENTAL_CRDS else "standard"
        have = apiserver.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{GATEWAY_API[0]}")
        had = ((have or {}).get("metadata") or {}).get("annotations", {}).get("gateway.networking.k8s.io/channel")
        policy = f"/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/{POLICY}"
        if channel == "experimental" and had == "standard" and apiserver.get(policy) is not None:
            raise ClusterError("Installing experimental CRDs on top of standard channel CRDs is prohibited by default")
        annotations = {
            "gateway.networking.k8s.io/bundle-version": "v1.6.1",
            "gateway.networking.k8s.io/channel": channel,
        }
        for name in (*GATEWAY_API, X_CRD) if channel == "experimental" else GATEWAY_API:
            apiserver.put({**crd(name), "metadata": {"name": name, "annotations": annotations}})
        for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
            apiserver.put({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": POLICY}})
        return ""

    return run


def test_kgateway_with_the_experimental_channel_and_switching_between_channels(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    crds, helm = gateway_api_channels(apiserver), chart(apiserver, crd("gatewayparameters.gateway.kgateway.dev"))
    tools.on_run = lambda argv: crds(argv) + helm(argv)
    result = backend.install("kgateway", channel="experimental")
    assert "(Gateway API v1.6.1, experimental channel)" in result["message"]
    assert tools.calls[0] == ["kubectl", "--context", "fake", "apply", "--server-side", "-f", EXPERIMENTAL_CRDS]
    assert EXPERIMENTAL_CRDS.endswith("/v1.6.1/experimental-install.yaml")
    assert backend.ledger.installed()["kgateway"]["channel"] == "experimental"
    again = backend.install("kgateway", channel="experimental")
    assert again["message"] == "kgateway is already installed by this lab (Gateway API experimental channel)"

    tools.calls.clear()
    back = backend.install("kgateway")  # the default channel: standard
    assert back["message"].startswith(
        "kgateway: Gateway API v1.6.1 CRDs switched from the experimental to the standard"
    )
    assert "the API server drops them when it reads them" in back["message"]
    assert tools.calls == [["kubectl", "--context", "fake", "apply", "--server-side", "-f", GATEWAY_API_CRDS]]

    # Standard to experimental: the policy refuses it, so the lab removes the one it installed first.
    forward = backend.install("kgateway", channel="experimental")
    assert "switched from the standard to the experimental channel" in forward["message"]
    assert f"the {POLICY} policy refuses experimental CRDs over standard ones" in forward["message"]
    record = backend.ledger.installed()["kgateway"]
    assert record["channel"] == "experimental" and X_CRD in record["gatewayApiCrds"]

    lines = backend.uninstall("kgateway")
    assert f"customresourcedefinition.apiextensions.k8s.io/{X_CRD} deleted" in lines
    assert crd_names(apiserver) == ["gatewayparameters.gateway.kgateway.dev"]


def test_a_policy_the_lab_did_not_install_is_left_to_the_user(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    crds, helm = gateway_api_channels(apiserver), chart(apiserver, crd("gatewayparameters.gateway.kgateway.dev"))
    tools.on_run = lambda argv: crds(argv) + helm(argv)
    for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
        apiserver.put({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": POLICY}})
    backend.install("kgateway")
    with pytest.raises(ClusterError, match=f"delete it first .*{POLICY}"):
        backend.install("kgateway", channel="experimental")
    assert backend.ledger.installed()["kgateway"]["channel"] == "standard"


def test_channel_goes_with_kgateway_only(backend: KubernetesBackend):
    with pytest.raises(InvalidArgument, match="--channel goes with `install kgateway`"):
        backend.install("gloo", channel="experimental")
    with pytest.raises(InvalidArgument, match='unknown Gateway API channel "beta"'):
        backend.install("kgateway", channel="beta")
