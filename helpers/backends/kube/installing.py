"""Installing and uninstalling the gateways on a cluster, leaving it as it was.

``gloo``: Gloo Edge OSS with Helm (pinned), discovery on (off by default since
1.20), function discovery for Services labelled
``discovery.solo.io/function_discovery=enabled`` (WHITELIST) and strict validation
(``alwaysAcceptResources=false``, so a route Gloo would reject is refused at apply,
as in the local backend). Without helm, ``glooctl install gateway`` with the same
values. A Gloo that was there before the lab is used and never uninstalled.

``kgateway``: the Gateway API CRDs (kubectl), the kgateway CRD and controller charts
(Helm, pinned) and one Gateway ``http`` listening on 8080.

What was created is written to the ledger; ``uninstall`` removes exactly that.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from helpers.backends.kube.connecting import KubeApi
from helpers.backends.kube.ledger import Ledger
from helpers.backends.kube.resources import by_kind
from helpers.backends.kube.tools import INSTALL_TOOLS, Tools
from helpers.errors import ClusterError, MissingTool
from helpers.kinds import GLOO_NAMESPACE, KGATEWAY_NAMESPACE

# Pinned versions (see ../shared/reference/gloo-facts.md §4-5 and docs/real-cluster.md).
# 1.22.1 is the newest OSS tag we could confirm; COALMINE_GLOO_VERSION picks another.
GLOO_VERSION = os.environ.get("COALMINE_GLOO_VERSION", "1.22.1")
GLOO_REPO = "https://storage.googleapis.com/solo-public-helm"
GLOO_VALUES: dict[str, Any] = {
    "discovery": {"enabled": True, "fdsMode": "WHITELIST"},
    "gateway": {"validation": {"alwaysAcceptResources": False}},
}
KGATEWAY_VERSION = "v2.4.3"
KGATEWAY_CHARTS = "oci://cr.kgateway.dev/kgateway-dev/charts"
GATEWAY_API_RELEASE = "v1.6.1"
GATEWAY_API_CRDS = (
    f"https://github.com/kubernetes-sigs/gateway-api/releases/download/{GATEWAY_API_RELEASE}/standard-install.yaml"
)
GLOO_CRD = "virtualservices.gateway.solo.io"
GATEWAY_API_CRD = "gateways.gateway.networking.k8s.io"
KGATEWAY_CRD = "gatewayparameters.gateway.kgateway.dev"
SOLO_GROUP_SUFFIX = ".solo.io"


@dataclass(frozen=True)
class ProxyTarget:
    """The Service in front of a gateway's proxy pods, and its HTTP port."""

    namespace: str
    service: str
    port: int


PROXIES = {
    "gloo": ProxyTarget(GLOO_NAMESPACE, "gateway-proxy", 80),
    "kgateway": ProxyTarget(KGATEWAY_NAMESPACE, "http", 8080),
}
GATEWAY_DEPLOYMENTS = {
    "gloo": [(GLOO_NAMESPACE, "gloo"), (GLOO_NAMESPACE, "gateway-proxy")],
    "kgateway": [(KGATEWAY_NAMESPACE, "kgateway"), (KGATEWAY_NAMESPACE, "http")],
}


def kgateway_gateway() -> dict[str, Any]:
    """The Gateway kgateway serves: ``http`` in kgateway-system, HTTP on 8080, routes from all namespaces."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "http", "namespace": KGATEWAY_NAMESPACE},
        "spec": {
            "gatewayClassName": "kgateway",
            "listeners": [
                {"name": "http", "protocol": "HTTP", "port": 8080, "allowedRoutes": {"namespaces": {"from": "All"}}}
            ],
        },
    }


Apply = Callable[[dict[str, Any]], dict[str, Any]]


class Installer:
    """Installs and uninstalls ``gloo`` and ``kgateway`` on the connected cluster."""

    def __init__(self, api: KubeApi, tools: Tools, ledger: Ledger, apply: Apply) -> None:
        self.api, self.tools, self.ledger, self.apply = api, tools, ledger, apply

    # ── helpers ──────────────────────────────────────────────────────────────

    def _exists(self, kind: str, name: str, namespace: str | None = None) -> bool:
        res = by_kind(kind)
        return self.api.request("GET", res.path(namespace, name), what=res.ref(name)) is not None

    def _context_flags(self, flag: str = "--kube-context") -> list[str]:
        return [] if self.api.context == "in-cluster" else [flag, self.api.context]

    # ── gloo ─────────────────────────────────────────────────────────────────

    def install_gloo(self) -> dict[str, Any]:
        done = self.ledger.installed().get("gloo")
        if done:
            return {**done, "component": "gloo", "message": "gloo is already installed by this lab"}
        if self._exists("CustomResourceDefinition", GLOO_CRD):
            record = {
                "ours": False,
                "via": "existing",
                "discovery": self._exists("Deployment", "discovery", GLOO_NAMESPACE),
            }
            message = "Gloo was already installed in this cluster: the lab uses it and will not uninstall it"
        else:
            created_ns = not self._exists("Namespace", GLOO_NAMESPACE)
            via = self._install_gloo_chart()
            record = {
                "ours": True,
                "via": via,
                "version": GLOO_VERSION,
                "createdNamespace": created_ns,
                "discovery": True,
            }
            message = f"Gloo Edge {GLOO_VERSION} installed with {via} (discovery on, strict validation)"
        with self.ledger.change() as entry:
            entry["installed"]["gloo"] = record
        return {**record, "component": "gloo", "message": message}

    def _install_gloo_chart(self) -> str:
        with tempfile.TemporaryDirectory(prefix="coalmine-") as tmp:
            values = Path(tmp) / "gloo-values.yaml"
            values.write_text(yaml.safe_dump(GLOO_VALUES, sort_keys=False))
            if self.tools.which("helm"):
                self.tools.run(
                    [
                        "helm",
                        "upgrade",
                        "--install",
                        "gloo",
                        "gloo",
                        "--repo",
                        GLOO_REPO,
                        "--version",
                        GLOO_VERSION,
                        "--namespace",
                        GLOO_NAMESPACE,
                        "--create-namespace",
                        *self._context_flags(),
                        "--values",
                        str(values),
                        "--wait",
                        "--timeout",
                        "10m",
                    ]
                )
                return "helm"
            if self.tools.which("glooctl"):
                self._require_current_context("glooctl")
                self.tools.run(
                    [
                        "glooctl",
                        "install",
                        "gateway",
                        "--version",
                        GLOO_VERSION,
                        "--values",
                        str(values),
                        "--create-namespace",
                    ]
                )
                return "glooctl"
        raise MissingTool(
            f"neither helm nor glooctl is on PATH: install helm with {INSTALL_TOOLS['helm']} "
            f"(or glooctl: {INSTALL_TOOLS['glooctl']})"
        )

    def _require_current_context(self, tool: str) -> None:
        if self.api.context == "in-cluster":
            return
        current = (
            self.tools.run(["kubectl", "config", "current-context"]).stdout.strip()
            if self.tools.which("kubectl")
            else self.api.context
        )
        if current != self.api.context:
            raise ClusterError(
                f'{tool} installs into the current context "{current}", not "{self.api.context}": '
                f"`kubectl config use-context {self.api.context}`, or install helm"
            )

    def uninstall_gloo(self) -> list[str]:
        record = self.ledger.installed().get("gloo")
        if not record:
            return ["gloo: not installed by this lab; nothing to do"]
        lines = []
        if record.get("ours"):
            if record.get("via") == "glooctl":
                self._require_current_context("glooctl")
                self.tools.run(["glooctl", "uninstall", "--all"])
            else:
                self.tools.run(
                    ["helm", "uninstall", "gloo", "--namespace", GLOO_NAMESPACE, *self._context_flags(), "--wait"]
                )
            lines.append("gloo: helm release removed" if record.get("via") != "glooctl" else "gloo: uninstalled")
            lines += self._delete_crds(lambda group: group.endswith(SOLO_GROUP_SUFFIX))
            if record.get("createdNamespace"):
                lines += self._delete("Namespace", GLOO_NAMESPACE)
        else:
            lines.append("gloo: installed before the lab; left as it is")
        with self.ledger.change() as entry:
            entry["installed"].pop("gloo", None)
        return lines

    # ── kgateway ─────────────────────────────────────────────────────────────

    def install_kgateway(self) -> dict[str, Any]:
        done = self.ledger.installed().get("kgateway")
        if done:
            return {**done, "component": "kgateway", "message": "kgateway is already installed by this lab"}
        for tool in ("helm", "kubectl"):
            if self.tools.which(tool) is None:
                raise MissingTool(f"installing kgateway needs {tool}, which is not on PATH: {INSTALL_TOOLS[tool]}")
        record: dict[str, Any] = {
            "ours": True,
            "version": KGATEWAY_VERSION,
            "createdNamespace": not self._exists("Namespace", KGATEWAY_NAMESPACE),
        }
        if self._exists("CustomResourceDefinition", KGATEWAY_CRD):
            record = {"ours": False, "via": "existing"}
        else:
            record["gatewayApiCrds"] = not self._exists("CustomResourceDefinition", GATEWAY_API_CRD)
            if record["gatewayApiCrds"]:
                self.tools.run(
                    ["kubectl", *self._context_flags("--context"), "apply", "--server-side", "-f", GATEWAY_API_CRDS]
                )
            for release in ("kgateway-crds", "kgateway"):
                self.tools.run(
                    [
                        "helm",
                        "upgrade",
                        "--install",
                        release,
                        f"{KGATEWAY_CHARTS}/{release}",
                        "--version",
                        KGATEWAY_VERSION,
                        "--namespace",
                        KGATEWAY_NAMESPACE,
                        "--create-namespace",
                        *self._context_flags(),
                        "--wait",
                        "--timeout",
                        "10m",
                    ]
                )
        result = self.apply(kgateway_gateway())
        if "error" in result:
            raise ClusterError(f"the Gateway could not be applied: {result['error']}")
        record["gateway"] = result["action"] == "created"
        with self.ledger.change() as entry:
            entry["installed"]["kgateway"] = record
        how = f"kgateway {KGATEWAY_VERSION} installed with helm" if record["ours"] else "kgateway was already installed"
        return {**record, "component": "kgateway", "message": f"{how}; Gateway {KGATEWAY_NAMESPACE}/http on port 8080"}

    def uninstall_kgateway(self) -> list[str]:
        record = self.ledger.installed().get("kgateway")
        if not record:
            return ["kgateway: not installed by this lab; nothing to do"]
        lines = []
        if record.get("gateway"):
            lines += self._delete("Gateway", "http", KGATEWAY_NAMESPACE)
        if record.get("ours"):
            for release in ("kgateway", "kgateway-crds"):
                self.tools.run(
                    ["helm", "uninstall", release, "--namespace", KGATEWAY_NAMESPACE, *self._context_flags(), "--wait"]
                )
                lines.append(f"kgateway: helm release {release} removed")
            if record.get("gatewayApiCrds"):
                self.tools.run(
                    [
                        "kubectl",
                        *self._context_flags("--context"),
                        "delete",
                        "--ignore-not-found",
                        "-f",
                        GATEWAY_API_CRDS,
                    ]
                )
                lines.append(f"Gateway API {GATEWAY_API_RELEASE} CRDs removed")
            if record.get("createdNamespace"):
                lines += self._delete("Namespace", KGATEWAY_NAMESPACE)
        else:
            lines.append("kgateway: installed before the lab; left as it is")
        with self.ledger.change() as entry:
            entry["installed"].pop("kgateway", None)
        return lines

    # ── shared ───────────────────────────────────────────────────────────────

    def _delete(self, kind: str, name: str, namespace: str | None = None) -> list[str]:
        res = by_kind(kind)
        if self.api.request("GET", res.path(namespace, name), what=res.ref(name)) is None:
            return []
        self.api.request("DELETE", res.path(namespace, name), what=res.ref(name))
        return [f"{res.ref(name)} deleted"]

    def _delete_crds(self, wanted: Callable[[str], bool]) -> list[str]:
        res = by_kind("CustomResourceDefinition")
        items = (self.api.request("GET", res.path(), what="customresourcedefinitions") or {}).get("items") or []
        lines = []
        for crd in items:
            if wanted(str((crd.get("spec") or {}).get("group", ""))):
                lines += self._delete("CustomResourceDefinition", crd["metadata"]["name"])
        return lines
