"""Installing Flagger on a cluster through the helm seam: the exact commands (pinned
charts, meshProvider for the gateway the lab installed, the chart's Prometheus, the
loadtester chart), the ledger that lets ``reset`` remove exactly them, and Canaries
and their Events read back from the API server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from helpers.backends.kube import KubernetesBackend
from helpers.backends.kube.flagger import GATEWAY_API_CHECKS
from helpers.backends.kube.pins import FLAGGER_LOADTESTER_VERSION, FLAGGER_REPO, FLAGGER_VERSION
from helpers.errors import ClusterError, InvalidArgument, MissingTool, Unsupported
from helpers.lab import Lab
from helpers.loading import load_manifests
from helpers.tables import rows

from .conftest import MANIFESTS, FakeTools, chart, crd
from .fake_apiserver import FakeApiServer

FLAGGER_CRDS = ("alertproviders.flagger.app", "canaries.flagger.app", "metrictemplates.flagger.app")
CRD_REF = "customresourcedefinition.apiextensions.k8s.io"
CANARY = "/apis/flagger.app/v1beta1/namespaces/default/canaries/petstore"


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def deployment(name: str, ns: str, labels: dict[str, str]) -> dict[str, Any]:
    metadata = {"name": name, "namespace": ns, "labels": labels}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata}


def service(name: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"ports": [{"name": "http", "port": 80 if "loadtester" in name else 9090}]},
    }


def flagger_charts(apiserver: FakeApiServer, fail: str | None = None) -> Callable[[list[str]], str]:
    """``helm upgrade --install`` of each release: what its chart creates, as far as these
    tests look (Helm puts the flagger chart's ``crds/`` in first); ``helm uninstall``
    removes the release's objects but not its CRDs, as Helm does."""

    def made(release: str, ns: str) -> list[dict[str, Any]]:
        if release == "flagger":
            return [
                *(crd(name) for name in FLAGGER_CRDS),
                deployment("flagger", ns, {"app.kubernetes.io/name": "flagger"}),
                deployment("flagger-prometheus", ns, {"app.kubernetes.io/name": "flagger"}),
                service("flagger-prometheus", ns),
            ]
        return [deployment(release, ns, {"app.kubernetes.io/name": "loadtester"}), service(release, ns)]

    def run(argv: list[str]) -> str:
        ns = argv[argv.index("--namespace") + 1]
        if argv[:2] == ["helm", "uninstall"]:
            for obj in made(argv[2], ns):
                if obj["kind"] != "CustomResourceDefinition":
                    apiserver.objects.pop(apiserver.path_of(obj), None)
            return ""
        objects = made(argv[3], ns)
        return str(chart(apiserver, *objects, fail=fail if fail and fail in argv else None)(argv))

    return run


def helm_flagger(provider: str, ns: str) -> list[str]:
    return [
        *("helm", "upgrade", "--install", "flagger", "flagger", "--repo", "https://flagger.app", "--version", "1.44.0"),
        *("--namespace", ns, "--create-namespace", "--kube-context", "fake"),
        *("--set", f"meshProvider={provider}", "--set", "prometheus.install=true", "--wait", "--timeout", "10m"),
    ]


HELM_LOADTESTER = [
    *("helm", "upgrade", "--install", "flagger-loadtester", "loadtester", "--repo", "https://flagger.app"),
    *("--version", "0.38.0", "--namespace", "default", "--kube-context", "fake", "--wait", "--timeout", "10m"),
]


def with_gloo(backend: KubernetesBackend, apiserver: FakeApiServer) -> None:
    """A Gloo the lab found in the cluster (no helm for it), with its namespace."""
    apiserver.put(namespace("gloo-system"))
    apiserver.put(crd("virtualservices.gateway.solo.io"))
    assert backend.install("gloo")["ours"] is False


def crd_names(apiserver: FakeApiServer) -> list[str]:
    return sorted(o["metadata"]["name"] for o in apiserver.objects.values() if o["kind"] == "CustomResourceDefinition")


def test_the_pins_are_flaggers_v1_44_0_charts():
    assert (FLAGGER_VERSION, FLAGGER_LOADTESTER_VERSION, FLAGGER_REPO) == ("1.44.0", "0.38.0", "https://flagger.app")


def test_flagger_with_gloo_installs_both_charts_and_reset_removes_exactly_them(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    apiserver.put(crd("widgets.example.com"))  # someone else's CRD stays
    with_gloo(backend, apiserver)
    tools.on_run = flagger_charts(apiserver)
    result = backend.install("flagger")
    assert tools.calls == [helm_flagger("gloo", "gloo-system"), HELM_LOADTESTER]
    assert result["message"] == (
        "Flagger 1.44.0 installed with helm in gloo-system (meshProvider gloo; its Prometheus at "
        "http://flagger-prometheus.gloo-system:9090); the loadtester chart 0.38.0 as flagger-loadtester.default"
    )
    record = backend.ledger.installed()["flagger"]
    assert (record["state"], record["provider"], record["createdNamespace"], record["loadtester"]) == (
        "installed",
        "gloo",
        False,
        True,
    )
    assert record["crds"] == sorted(FLAGGER_CRDS)
    assert backend.install("flagger")["message"] == "flagger is already installed by this lab (meshProvider gloo)"
    assert len(tools.calls) == 2

    backend.apply(load_manifests([MANIFESTS / "flagger" / "canary.yaml"]))
    assert CANARY in apiserver.objects
    tools.calls.clear()
    assert backend.reset() == [
        "canary.flagger.app/petstore deleted",
        "flagger: helm release flagger-loadtester removed",
        "flagger: helm release flagger removed",
        *(f"{CRD_REF}/{name} deleted" for name in sorted(FLAGGER_CRDS)),
        "gloo: installed before the lab; left as it is",
    ]
    assert [c[:5] for c in tools.calls] == [
        ["helm", "uninstall", "flagger-loadtester", "--namespace", "default"],
        ["helm", "uninstall", "flagger", "--namespace", "gloo-system"],
    ]
    assert crd_names(apiserver) == ["virtualservices.gateway.solo.io", "widgets.example.com"]
    assert "/api/v1/namespaces/gloo-system" in apiserver.objects and backend.ledger.installed() == {}


def test_flagger_with_kgateway_is_the_gateway_api_provider_in_its_own_namespace(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    backend.ledger.record("kgateway", {"ours": False, "via": "existing", "state": "installed"})
    tools.on_run = flagger_charts(apiserver)
    result = backend.install("flagger")
    assert tools.calls == [helm_flagger("gatewayapi:v1", "flagger-system"), HELM_LOADTESTER]
    assert f"note: {GATEWAY_API_CHECKS}" in result["message"]
    assert "http://flagger-prometheus.flagger-system:9090" in result["message"]
    lines = backend.uninstall("flagger")
    assert lines[-1] == "namespace/flagger-system deleted"  # the install created it
    assert crd_names(apiserver) == []


def test_flagger_needs_a_gateway_and_helm(backend: KubernetesBackend, tools: FakeTools):
    with pytest.raises(InvalidArgument, match=r"flagger needs a gateway first: run `coalmine install gloo`"):
        backend.install("flagger")
    tools.present = {"kubectl", "glooctl"}
    with pytest.raises(MissingTool, match="installing flagger needs helm"):
        backend.install("flagger")
    assert tools.calls == [] and backend.ledger.installed() == {}


def test_a_failed_install_is_pending_and_can_be_finished_or_undone(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    with_gloo(backend, apiserver)
    tools.on_run = flagger_charts(apiserver, fail="flagger-loadtester")
    with pytest.raises(ClusterError) as failed:
        backend.install("flagger")
    assert "run `coalmine install flagger` again to finish it, or `coalmine reset`" in str(failed.value)
    record = backend.ledger.installed()["flagger"]
    assert (record["state"], record["crdsBefore"], record["loadtester"]) == ("pending", [], True)

    tools.on_run = flagger_charts(apiserver)
    tools.calls.clear()
    result = backend.install("flagger")  # finishes it: the Flagger it left is not taken for one that was there
    assert (result["ours"], result["state"], result["crds"]) == (True, "installed", sorted(FLAGGER_CRDS))
    assert tools.calls == [helm_flagger("gloo", "gloo-system"), HELM_LOADTESTER]

    tools.on_run = flagger_charts(apiserver, fail="flagger")  # fails before the loadtester
    backend.uninstall("flagger")
    with pytest.raises(ClusterError):
        backend.install("flagger")
    lines = backend.uninstall("flagger")  # pending: the CRDs there now that were not before go
    assert lines[:2] == ["flagger: helm release flagger-loadtester removed", "flagger: helm release flagger removed"]
    assert crd_names(apiserver) == ["virtualservices.gateway.solo.io"]


def test_the_labs_own_loadtester_is_used_instead_of_the_chart(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    with_gloo(backend, apiserver)
    applied = backend.apply(load_manifests([MANIFESTS / "flagger" / "loadtester.yaml"]))
    assert "service/flagger-loadtester" in [r["ref"] for r in applied]
    tools.on_run = flagger_charts(apiserver)
    result = backend.install("flagger")
    assert tools.calls == [helm_flagger("gloo", "gloo-system")]
    assert result["message"].endswith(
        "the flagger-loadtester Service already in default is the loadtester (no chart installed)"
    )
    assert not any("flagger-loadtester" in line for line in backend.uninstall("flagger"))


def test_a_flagger_that_was_there_before_is_used_and_left_alone(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    apiserver.put(deployment("flagger", "flagger", {"app.kubernetes.io/name": "flagger"}))
    result = backend.install("flagger")  # no gateway needed: it is not the lab's to configure
    assert result["ours"] is False and "(namespace flagger)" in result["message"]
    with pytest.raises(Unsupported, match=r"Flagger's chart brings one .* \(in flagger, installed before the lab\)"):
        backend.install("prometheus")
    assert backend.uninstall("flagger") == ["flagger: installed before the lab; left as it is"]
    assert tools.calls == []


def test_install_prometheus_on_a_cluster_is_flaggers(
    backend: KubernetesBackend, apiserver: FakeApiServer, tools: FakeTools
):
    with pytest.raises(Unsupported, match=r"Flagger's chart brings one \(prometheus.install=true\)"):
        backend.install("prometheus")
    with_gloo(backend, apiserver)
    tools.on_run = flagger_charts(apiserver)
    backend.install("flagger")
    answer = backend.install("prometheus")
    assert answer["url"] == "http://flagger-prometheus.gloo-system:9090"
    assert "`kubectl -n gloo-system port-forward svc/flagger-prometheus 9090`" in answer["message"]
    assert len(tools.calls) == 2  # nothing more installed


def test_canaries_and_their_events_are_read_from_the_cluster(backend: KubernetesBackend, apiserver: FakeApiServer):
    for name in FLAGGER_CRDS:
        apiserver.put(crd(name))
    backend.apply(load_manifests([MANIFESTS / "flagger" / "canary.yaml"]))
    canary = apiserver.objects[CANARY]
    canary["status"] = {
        "phase": "Progressing",
        "canaryWeight": 20,
        "failedChecks": 1,
        "lastTransitionTime": "2026-11-30T10:00:05Z",
    }
    for i, (reason, message) in enumerate(
        [("Synced", "Starting canary analysis for petstore.default"), ("Synced", "Advance petstore.default canary")]
    ):
        apiserver.put(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"petstore.{i}", "namespace": "default"},
                "involvedObject": {"kind": "Canary", "name": "petstore", "namespace": "default"},
                "reason": reason,
                "message": message,
                "type": "Normal",
                "source": {"component": "flagger"},
                "lastTimestamp": f"2026-11-30T10:00:0{i}Z",
            }
        )
    lab = Lab(backend)
    [row] = rows("Canary", lab.objects("canaries"), wide=True)
    assert (row["STATUS"], row["WEIGHT"], row["FAILEDCHECKS"], row["STEPWEIGHT"]) == ("Progressing", "20", "1", "10")
    events = backend.events("default")
    assert [e["message"] for e in events] == [
        "Starting canary analysis for petstore.default",
        "Advance petstore.default canary",
    ]
    assert events[0]["kind"] == "Event" and events[0]["count"] == 1
