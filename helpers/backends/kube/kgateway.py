"""Installing kgateway on a cluster, and removing exactly what that installed.

The Gateway API CRDs (``kubectl apply --server-side``) at the release kgateway's
docs name for the pinned kgateway minor (``pins``), of the standard channel or, with
``--channel experimental``, the experimental one; the ``kgateway-crds`` and
``kgateway`` charts (Helm), and one Gateway ``http`` on 8080.

Gateway API CRDs that are already in the cluster are used when their release is
one the pinned kgateway supports, and refused with the fix otherwise: a controller
built for another release can wait for ever on a version the CRDs do not serve
(TCPRoute ``v1alpha2`` is not served by v1.6's standard channel).

``standard-install.yaml`` ends with a ValidatingAdmissionPolicy (since v1.5),
which Kubernetes serves from 1.30; on an older cluster kubectl creates the CRDs,
then fails on the policy. The install goes on without it and says so.

Installing again with the other channel switches the CRDs the lab applied. That
policy refuses experimental CRDs over standard ones, so the lab removes the policy
it installed first (the experimental bundle brings it back), as the release notes
say to. Back to standard, the API server drops the experimental fields of stored
objects when it reads them; the experimental-only CRDs stay until ``uninstall``.
"""

from __future__ import annotations

from typing import Any

from helpers.backends.kube.installing import PENDING, Installer, kgateway_gateway
from helpers.backends.kube.pins import (
    GATEWAY_API_CRDS,
    GATEWAY_API_CRDS_BY_CHANNEL,
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
from helpers.runtime.gatewayapi.channels import EXPERIMENTAL, STANDARD, channel_named

GATEWAY_API_GROUP = "gateway.networking.k8s.io"
GATEWAY_API_X_GROUP = "gateway.networking.x-k8s.io"  # the experimental bundle's extra kinds
GATEWAY_API_CRD = f"gateways.{GATEWAY_API_GROUP}"
KGATEWAY_CRD = "gatewayparameters.gateway.kgateway.dev"
SAFE_UPGRADES = "safe-upgrades.gateway.networking.k8s.io"  # the policy and its binding share the name
BUNDLE_VERSION = "gateway.networking.k8s.io/bundle-version"
BUNDLE_CHANNEL = "gateway.networking.k8s.io/channel"


def _gateway_api(group: str) -> bool:
    return group in (GATEWAY_API_GROUP, GATEWAY_API_X_GROUP)


def _shown(span: tuple[tuple[int, int], tuple[int, int]]) -> str:
    return f"{span[0][0]}.{span[0][1]}-{span[1][0]}.{span[1][1]}"


class KgatewayInstaller(Installer):
    """``install kgateway`` and ``uninstall kgateway``."""

    component = "kgateway"

    def install(self, channel: str | None = None) -> dict[str, Any]:
        channel = channel_named(channel)
        record = self.recorded()
        if record and record.get("state") != PENDING:
            if record.get("channel", STANDARD) != channel:
                return self._switch(record, channel)
            return {
                **record,
                "component": "kgateway",
                "channel": channel,
                "message": f"kgateway is already installed by this lab (Gateway API {channel} channel)",
            }
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
        if record["ours"] and not record["gatewayApiCrdsBefore"]:
            record["channel"] = channel
        else:  # the Gateway API CRDs were there: their channel is the cluster's
            record["channel"] = self._cluster_channel()
            if record["channel"] != channel:
                notes.append(self._not_ours(channel, record["channel"]))
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
        message = (
            f"{how} (Gateway API {GATEWAY_API_RELEASE}, {record['channel']} channel); "
            f"Gateway {KGATEWAY_NAMESPACE}/http on port 8080" + "".join(f"\nnote: {n}" for n in notes)
        )
        return {**record, "state": "installed", "component": "kgateway", "message": message}

    def _cluster_channel(self) -> str:
        """The channel of the Gateway API CRDs in the cluster (their annotation)."""
        res = by_kind("CustomResourceDefinition")
        crd = self.api.request("GET", res.path(None, GATEWAY_API_CRD), what=res.ref(GATEWAY_API_CRD)) or {}
        found = ((crd.get("metadata") or {}).get("annotations") or {}).get(BUNDLE_CHANNEL)
        return EXPERIMENTAL if found == EXPERIMENTAL else STANDARD

    @staticmethod
    def _not_ours(wanted: str, have: str) -> str:
        return (
            f"this cluster's Gateway API CRDs (the {have} channel) were not installed by the lab, which leaves them "
            f"as they are; for the {wanted} channel apply `kubectl apply --server-side -f "
            f"{GATEWAY_API_CRDS_BY_CHANNEL[wanted]}`"
            + (f" (delete the {SAFE_UPGRADES} ValidatingAdmissionPolicy first)" if wanted == EXPERIMENTAL else "")
        )

    def _switch(self, record: dict[str, Any], channel: str) -> dict[str, Any]:
        """Apply the other channel's CRDs over the ones the lab installed."""
        have = record.get("channel", STANDARD)
        if not record.get("ours") or record.get("gatewayApiCrdsBefore"):
            raise ClusterError(self._not_ours(channel, have))
        notes = []
        if channel == EXPERIMENTAL and self.exists("ValidatingAdmissionPolicy", SAFE_UPGRADES):
            if not self._policy_created(record):
                raise ClusterError(
                    f"the {SAFE_UPGRADES} ValidatingAdmissionPolicy (not installed by the lab) refuses experimental "
                    "CRDs over standard ones: delete it first (`kubectl delete validatingadmissionpolicybinding,"
                    f"validatingadmissionpolicy {SAFE_UPGRADES}`), then install again"
                )
            self.delete("ValidatingAdmissionPolicyBinding", SAFE_UPGRADES)
            self.delete("ValidatingAdmissionPolicy", SAFE_UPGRADES)
            notes.append(
                f"the {SAFE_UPGRADES} policy refuses experimental CRDs over standard ones: the lab removed the one "
                "it installed, and the experimental bundle put it back"
            )
        notes += self._apply_crds(channel)
        before = record.get("gatewayApiCrdsBefore") or []
        record.update(channel=channel, gatewayApiCrds=[n for n in self.crds(_gateway_api) if n not in before])
        if channel == STANDARD:
            notes.append(
                "objects keep their experimental fields in etcd, but the API server drops them when it reads them "
                "(kgateway stops seeing e.g. HTTPRoute retry); the experimental-only CRDs stay until uninstall"
            )
        self.done(record)
        message = f"kgateway: Gateway API {GATEWAY_API_RELEASE} CRDs switched from the {have} to the {channel} channel"
        message += "".join(f"\nnote: {n}" for n in notes)
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

    def _apply_crds(self, channel: str) -> list[str]:
        url = GATEWAY_API_CRDS_BY_CHANNEL[channel]
        try:
            self.tools.run(["kubectl", *self.context_flags("--context"), "apply", "--server-side", "-f", url])
        except ClusterError as e:
            # Only the policy failed (it comes last): the CRDs are in, and kgateway needs no more.
            if "ValidatingAdmissionPolicy" not in str(e) or not self.exists(
                "CustomResourceDefinition", GATEWAY_API_CRD
            ):
                raise
            return [
                f"this cluster does not serve ValidatingAdmissionPolicy (Kubernetes before 1.30), so the Gateway "
                f"API's {SAFE_UPGRADES} policy was left out; its CRDs are installed"
            ]
        return []

    def _run(self, record: dict[str, Any]) -> list[str]:
        notes = []
        if not record["gatewayApiCrdsBefore"]:
            notes += self._apply_crds(record.get("channel", STANDARD))
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
