"""Installing kgateway on a cluster, and removing exactly what that installed.

The Gateway API CRDs (standard channel, ``kubectl apply --server-side``) at the
release kgateway's docs name for the pinned kgateway minor (``pins``), the
``kgateway-crds`` and ``kgateway`` charts (Helm), and one Gateway ``http`` on 8080.

Gateway API CRDs that are already in the cluster are used when their release is
one the pinned kgateway supports, and refused with the fix otherwise: a controller
built for another release can wait for ever on a version the CRDs do not serve
(TCPRoute ``v1alpha2`` is not served by v1.6's standard channel).

``standard-install.yaml`` ends with a ValidatingAdmissionPolicy (since v1.5),
which Kubernetes serves from 1.30; on an older cluster kubectl creates the CRDs,
then fails on the policy. The install goes on without it and says so.
"""

from __future__ import annotations

from typing import Any

from helpers.backends.kube.installing import PENDING, Installer, kgateway_gateway
from helpers.backends.kube.pins import (
    GATEWAY_API_CRDS,
    GATEWAY_API_RELEASE,
    KGATEWAY_CHARTS,
    KGATEWAY_SUPPORTS_GATEWAY_API,
    KGATEWAY_SUPPORTS_KUBERNETES,
    KGATEWAY_VERSION,
    minor,
    version_tuple,
)
from helpers.backends.kube.resources import by_kind
from helpers.backends.kube.tools import INSTALL_TOOLS
from helpers.errors import ClusterError, MissingTool
from helpers.kinds import KGATEWAY_NAMESPACE

GATEWAY_API_GROUP = "gateway.networking.k8s.io"
GATEWAY_API_CRD = f"gateways.{GATEWAY_API_GROUP}"
KGATEWAY_CRD = "gatewayparameters.gateway.kgateway.dev"
SAFE_UPGRADES = "safe-upgrades.gateway.networking.k8s.io"  # the policy and its binding share the name
BUNDLE_VERSION = "gateway.networking.k8s.io/bundle-version"


def _gateway_api(group: str) -> bool:
    return group == GATEWAY_API_GROUP


def _shown(span: tuple[tuple[int, int], tuple[int, int]]) -> str:
    return f"{span[0][0]}.{span[0][1]}-{span[1][0]}.{span[1][1]}"


class KgatewayInstaller(Installer):
    """``install kgateway`` and ``uninstall kgateway``."""

    component = "kgateway"

    def install(self) -> dict[str, Any]:
        record = self.recorded()
        if record and record.get("state") != PENDING:
            return {**record, "component": "kgateway", "message": "kgateway is already installed by this lab"}
        for tool in ("helm", "kubectl"):
            if self.tools.which(tool) is None:
                raise MissingTool(f"installing kgateway needs {tool}, which is not on PATH: {INSTALL_TOOLS[tool]}")
        notes = self._kubernetes_notes()
        if record is None and self.exists("CustomResourceDefinition", KGATEWAY_CRD):
            record = {"ours": False, "via": "existing"}
        elif record is None:
            self._check_gateway_api()
            record = {
                "ours": True,
                "version": KGATEWAY_VERSION,
                "createdNamespace": not self.exists("Namespace", KGATEWAY_NAMESPACE),
                "gatewayApiCrdsBefore": self.crds(_gateway_api),
                "gatewayApiPolicyBefore": self.exists("ValidatingAdmissionPolicy", SAFE_UPGRADES),
            }
        if record["ours"]:
            self.begin(record)
            try:
                notes += self._run(record)
            except ClusterError as e:
                raise self.unfinished(e) from None
            record["gatewayApiCrds"] = self.created_crds(record, _gateway_api, "gatewayApiCrds")
            record["gatewayApiPolicy"] = self._policy_created(record)
        result = self.apply(kgateway_gateway())
        if "error" in result:
            error = ClusterError(f"the Gateway could not be applied: {result['error']}")
            raise (self.unfinished(error) if record["ours"] else error) from None
        record["gateway"] = result["action"] == "created"
        self.done(record)
        how = f"kgateway {KGATEWAY_VERSION} installed with helm" if record["ours"] else "kgateway was already installed"
        message = f"{how}; Gateway {KGATEWAY_NAMESPACE}/http on port 8080" + "".join(f"\nnote: {n}" for n in notes)
        return {**record, "state": "installed", "component": "kgateway", "message": message}

    def _kubernetes_notes(self) -> list[str]:
        """A note when the cluster's Kubernetes is outside what kgateway's docs support."""
        span = KGATEWAY_SUPPORTS_KUBERNETES.get(minor(KGATEWAY_VERSION))
        found = self.api.request("GET", "/version", what="the API server's version") or {}
        have = version_tuple(f"{found.get('major', '')}.{found.get('minor', '')}")
        if span is None or have is None or span[0] <= have <= span[1]:
            return []
        return [
            f"this cluster runs Kubernetes {have[0]}.{have[1]}; kgateway {minor(KGATEWAY_VERSION)} is documented "
            f"for {_shown(span)}"
        ]

    def _check_gateway_api(self) -> None:
        """Gateway API CRDs already in the cluster must be a release the pinned kgateway supports."""
        res = by_kind("CustomResourceDefinition")
        crd = self.api.request("GET", res.path(None, GATEWAY_API_CRD), what=res.ref(GATEWAY_API_CRD))
        if crd is None:
            return
        annotations = (crd.get("metadata") or {}).get("annotations") or {}
        bundle = str(annotations.get(BUNDLE_VERSION) or "an unknown release")
        span = KGATEWAY_SUPPORTS_GATEWAY_API.get(minor(KGATEWAY_VERSION))
        have = version_tuple(bundle)
        if span is None or (have is not None and span[0] <= have <= span[1]):
            return
        raise ClusterError(
            f"this cluster has the Gateway API CRDs of {bundle}; kgateway {KGATEWAY_VERSION} supports Gateway API "
            f"{_shown(span)} and its docs install {GATEWAY_API_RELEASE}: apply that release first "
            f"(`kubectl apply --server-side -f {GATEWAY_API_CRDS}`), or use a cluster without them"
        )

    def _run(self, record: dict[str, Any]) -> list[str]:
        notes = []
        if not record["gatewayApiCrdsBefore"]:
            try:
                self.tools.run(
                    ["kubectl", *self.context_flags("--context"), "apply", "--server-side", "-f", GATEWAY_API_CRDS]
                )
            except ClusterError as e:
                # Only the policy failed (it comes last): the CRDs are in, and kgateway needs no more.
                if "ValidatingAdmissionPolicy" not in str(e) or not self.exists(
                    "CustomResourceDefinition", GATEWAY_API_CRD
                ):
                    raise
                notes.append(
                    f"this cluster does not serve ValidatingAdmissionPolicy (Kubernetes before 1.30), so the Gateway "
                    f"API's {SAFE_UPGRADES} policy was left out; its CRDs are installed"
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
                    *self.context_flags(),
                    "--timeout",  # no --wait: the lab's own wait checks the deployments (see installing)
                    "10m",
                ]
            )
        return notes

    def _policy_created(self, record: dict[str, Any]) -> bool:
        if isinstance(record.get("gatewayApiPolicy"), bool):
            return bool(record["gatewayApiPolicy"])
        return not record.get("gatewayApiPolicyBefore") and self.exists("ValidatingAdmissionPolicy", SAFE_UPGRADES)

    def uninstall(self) -> list[str]:
        record = self.recorded()
        if not record:
            return ["kgateway: not installed by this lab; nothing to do"]
        lines = []
        if record.get("gateway"):
            lines += self.delete("Gateway", "http", KGATEWAY_NAMESPACE)
        if record.get("ours"):
            for release in ("kgateway", "kgateway-crds"):
                lines += self.helm_uninstall(release, KGATEWAY_NAMESPACE)
            if record.get("gatewayApiCrds") is True:  # a record from before the lab listed them
                record["gatewayApiCrds"] = self.crds(_gateway_api)
            crds = self.created_crds(record, _gateway_api, "gatewayApiCrds")
            if self._policy_created(record):
                lines += self.delete("ValidatingAdmissionPolicyBinding", SAFE_UPGRADES)
                lines += self.delete("ValidatingAdmissionPolicy", SAFE_UPGRADES)
            for name in crds:
                lines += self.delete("CustomResourceDefinition", name)
            if crds:
                lines.append(f"Gateway API {GATEWAY_API_RELEASE} CRDs removed")
            if record.get("createdNamespace"):
                lines += self.delete("Namespace", KGATEWAY_NAMESPACE)
        else:
            lines.append("kgateway: installed before the lab; left as it is")
        self.ledger.drop("kgateway")
        return lines
