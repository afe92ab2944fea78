"""Installing Flagger on a cluster, and removing exactly what that installed.

Flagger's chart (pinned in ``pins``) as Flagger's own guides install it, for the
gateway the lab installed: with Gloo, ``meshProvider=gloo`` in ``gloo-system`` (the
Gloo guide); with kgateway, ``meshProvider=gatewayapi:v1`` in ``flagger-system`` (the
Gateway API guide). Both with ``prometheus.install=true``: the chart then runs
Prometheus (Deployment and Service ``flagger-prometheus``, port 9090) and points
Flagger's ``-metrics-server`` at it; it scrapes every pod annotated
``prometheus.io/scrape``, which the gateways' Envoy pods are.

Then Flagger's loadtester chart, release ``flagger-loadtester`` in ``default``, so the
Canaries of ``manifests/flagger/`` reach it at ``http://flagger-loadtester.default/``;
unless a ``flagger-loadtester`` Service is there already (the lab's own,
``manifests/flagger/loadtester.yaml``, which speaks the same API): both cannot be.

Helm creates the chart's CRDs (its ``crds/`` folder: Canary, MetricTemplate,
AlertProvider) and never deletes them; ``uninstall`` removes those this install
created. These charts have no LoadBalancer Service, so Helm's ``--wait`` ends: the
install returns once Flagger, its Prometheus and the loadtester are ready. A Flagger
that was there before the lab is used as it is and never uninstalled.
"""

from __future__ import annotations

from typing import Any

from helpers.backends.kube.installing import PENDING, Installer
from helpers.backends.kube.ledger import Ledger
from helpers.backends.kube.pins import FLAGGER_LOADTESTER_VERSION, FLAGGER_REPO, FLAGGER_VERSION
from helpers.backends.kube.resources import by_kind
from helpers.backends.kube.tools import INSTALL_TOOLS
from helpers.errors import ClusterError, InvalidArgument, MissingTool, Unsupported
from helpers.kinds import GLOO_NAMESPACE

FLAGGER_GROUP = "flagger.app"
FLAGGER_NAMESPACE = "flagger-system"  # the Gateway API guide's; with Gloo, Gloo's namespace
# The gateway the lab installed -> Flagger's meshProvider and the namespace its guide uses.
PROVIDERS = {"gloo": ("gloo", GLOO_NAMESPACE), "kgateway": ("gatewayapi:v1", FLAGGER_NAMESPACE)}
LOADTESTER = "flagger-loadtester"
LOADTESTER_NAMESPACE = "default"  # where manifests/flagger/ put the Canary and point its webhooks
PROMETHEUS_SERVICE, PROMETHEUS_PORT = "flagger-prometheus", 9090  # the chart's names for release "flagger"
_CHART_LABEL = "app.kubernetes.io/name=flagger"  # on the chart's Deployments
# Flagger 1.44 pkg/metrics/observers/factory.go: gatewayapi uses the HTTP observer (http.go).
GATEWAY_API_CHECKS = (
    "Flagger's built-in checks for gatewayapi:v1 query the app's own http_request_duration_seconds "
    "(the petstore exports none, so they find no values): write them as MetricTemplates on Envoy's "
    "envoy_cluster_upstream_rq* metrics, which the chart's Prometheus scrapes from the gateway's pods"
)


def _flagger(group: str) -> bool:
    return group == FLAGGER_GROUP


def flagger_argv(provider: str, namespace: str, context: list[str]) -> list[str]:
    """``helm upgrade --install flagger``: the pinned chart, with its Prometheus."""
    return [
        *("helm", "upgrade", "--install", "flagger", "flagger", "--repo", FLAGGER_REPO),
        *("--version", FLAGGER_VERSION, "--namespace", namespace, "--create-namespace", *context),
        *("--set", f"meshProvider={provider}", "--set", "prometheus.install=true", "--wait", "--timeout", "10m"),
    ]


def loadtester_argv(context: list[str]) -> list[str]:
    """``helm upgrade --install flagger-loadtester``: the loadtester chart of the same release."""
    return [
        *("helm", "upgrade", "--install", LOADTESTER, "loadtester", "--repo", FLAGGER_REPO),
        *("--version", FLAGGER_LOADTESTER_VERSION, "--namespace", LOADTESTER_NAMESPACE, *context),
        *("--wait", "--timeout", "10m"),
    ]


def prometheus_url(namespace: str) -> str:
    """Where Flagger (and a MetricTemplate's ``provider.address``) reaches the chart's Prometheus."""
    return f"http://{PROMETHEUS_SERVICE}.{namespace}:{PROMETHEUS_PORT}"


class FlaggerInstaller(Installer):
    """``install flagger`` and ``uninstall flagger``."""

    component = "flagger"

    def install(self) -> dict[str, Any]:
        record = self.recorded()
        if record and record.get("state") != PENDING:
            message = f"flagger is already installed by this lab (meshProvider {record.get('provider', '?')})"
            return {**record, "component": "flagger", "message": message}
        if self.tools.which("helm") is None:
            raise MissingTool(f"installing flagger needs helm, which is not on PATH: {INSTALL_TOOLS['helm']}")
        if record is None:
            existing = self._existing()
            if existing is not None:
                record = {"ours": False, "via": "existing", "namespace": existing}
                self.done(record)
                message = (
                    f"Flagger was already installed in this cluster (namespace {existing}): the lab uses it "
                    "and will not uninstall it"
                )
                return {**record, "component": "flagger", "message": message}
            provider, namespace = self._provider()
            record = {
                "ours": True,
                "via": "helm",
                "version": FLAGGER_VERSION,
                "provider": provider,
                "namespace": namespace,
                "createdNamespace": not self.exists("Namespace", namespace),
                "crdsBefore": self.crds(_flagger),
                "loadtester": not self.exists("Service", LOADTESTER, LOADTESTER_NAMESPACE),
            }
        self.begin(record)
        try:
            self.tools.run(flagger_argv(record["provider"], record["namespace"], self.context_flags()))
            if record["loadtester"]:
                self.tools.run(loadtester_argv(self.context_flags()))
        except ClusterError as e:
            raise self.unfinished(e) from None
        record["crds"] = self.created_crds(record, _flagger, "crds")
        self.done(record)
        return {**record, "state": "installed", "component": "flagger", "message": self._message(record)}

    def _message(self, record: dict[str, Any]) -> str:
        loadtester = (
            f"the loadtester chart {FLAGGER_LOADTESTER_VERSION} as {LOADTESTER}.{LOADTESTER_NAMESPACE}"
            if record["loadtester"]
            else f"the {LOADTESTER} Service already in {LOADTESTER_NAMESPACE} is the loadtester (no chart installed)"
        )
        notes = []
        if record["provider"].startswith("gatewayapi"):
            notes.append(GATEWAY_API_CHECKS)
        elif "kgateway" in self.ledger.installed():
            notes.append("kgateway is installed too: a Canary with provider gatewayapi:v1 routes through it")
        return (
            f"Flagger {FLAGGER_VERSION} installed with helm in {record['namespace']} (meshProvider "
            f"{record['provider']}; its Prometheus at {prometheus_url(record['namespace'])}); {loadtester}"
            + "".join(f"\nnote: {n}" for n in notes)
        )

    def _existing(self) -> str | None:
        """The namespace of a Flagger Deployment already in the cluster (the chart labels it)."""
        res = by_kind("Deployment")
        found = self.api.request("GET", res.path(), {"labelSelector": _CHART_LABEL}, what="deployments") or {}
        for dep in found.get("items") or []:
            return str((dep.get("metadata") or {}).get("namespace", ""))
        return None

    def _provider(self) -> tuple[str, str]:
        """meshProvider and namespace for the gateway the lab installed (Gloo's when both are)."""
        installed = self.ledger.installed()
        for gateway in ("gloo", "kgateway"):
            if gateway in installed and installed[gateway].get("state") != PENDING:
                return PROVIDERS[gateway]
        raise InvalidArgument(
            "flagger needs a gateway first: run `coalmine install gloo` (Flagger's provider gloo) or "
            "`coalmine install kgateway` (provider gatewayapi:v1), then `install flagger`"
        )

    def uninstall(self) -> list[str]:
        record = self.recorded()
        if not record:
            return ["flagger: not installed by this lab; nothing to do"]
        lines = []
        if record.get("ours"):
            if record.get("loadtester"):
                lines += self.helm_uninstall(LOADTESTER, LOADTESTER_NAMESPACE)
            lines += self.helm_uninstall("flagger", record["namespace"])
            # Helm never deletes a chart's CRDs (deleting one deletes every Canary): only those it created go.
            for name in self.created_crds(record, _flagger, "crds"):
                lines += self.delete("CustomResourceDefinition", name)
            if record.get("createdNamespace"):
                lines += self.delete("Namespace", record["namespace"])
        else:
            lines.append("flagger: installed before the lab; left as it is")
        self.ledger.drop("flagger")
        return lines


def prometheus_status(ledger: Ledger) -> dict[str, Any]:
    """What ``install prometheus`` answers on a cluster: Flagger's chart runs the Prometheus."""
    record = ledger.installed().get("flagger") or {}
    if not record.get("ours") or record.get("state") == PENDING:
        where = f" (in {record['namespace']}, installed before the lab)" if record.get("namespace") else ""
        raise Unsupported(
            "on a cluster the lab does not install Prometheus by itself: Flagger's chart brings one "
            f"(prometheus.install=true) when `coalmine install flagger` installs Flagger{where}"
        )
    namespace = record["namespace"]
    return {
        "component": "prometheus",
        "url": prometheus_url(namespace),
        "message": (
            f"Flagger's chart already runs Prometheus in this cluster: {prometheus_url(namespace)} (Flagger's "
            f"metrics server; a MetricTemplate's provider.address). From your machine: `kubectl -n {namespace} "
            f"port-forward svc/{PROMETHEUS_SERVICE} {PROMETHEUS_PORT}`, then http://127.0.0.1:{PROMETHEUS_PORT}"
        ),
    }
