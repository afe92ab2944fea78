"""What installing a gateway on a cluster shares, whichever gateway it is.

``gloo`` and ``kgateway`` (their own modules) each install with outside tools
(helm, glooctl, kubectl) and record in the ledger what they created, so that
``uninstall`` removes exactly that and nothing that was there before the lab.

Two rules hold for both:

- **A pending record first.** Before any installer runs, the ledger gets the
  component with ``state: pending`` and what existed before (its namespace, the
  CRDs of its API groups). A failed or interrupted install is then resumed by the
  next ``install`` (never mistaken for a gateway that was already there) and undone
  by ``reset``.
- **No readiness from Helm.** Helm 3's ``--wait`` counts a LoadBalancer Service as
  not ready until it has an ingress address (helm v3.21.4 ``pkg/kube/ready.go``,
  ``serviceReady``); kind, and minikube without ``minikube tunnel``, never give one,
  so the install would fail after its timeout. The lab's own ``wait`` waits for the
  gateway's deployments instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from helpers.backends.kube.connecting import KubeApi
from helpers.backends.kube.ledger import Ledger
from helpers.backends.kube.resources import by_kind
from helpers.backends.kube.tools import Tools
from helpers.errors import ClusterError
from helpers.kinds import GLOO_NAMESPACE, KGATEWAY_NAMESPACE

PENDING, INSTALLED = "pending", "installed"


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
    """Installs and uninstalls one component; subclasses say which and how."""

    component = ""

    def __init__(self, api: KubeApi, tools: Tools, ledger: Ledger, apply: Apply) -> None:
        self.api, self.tools, self.ledger, self.apply = api, tools, ledger, apply

    def install(self) -> dict[str, Any]:
        """Install the component (or resume a pending install); the result has ``message``."""
        raise NotImplementedError

    def uninstall(self) -> list[str]:
        """Remove what ``install`` created, one line per thing removed."""
        raise NotImplementedError

    # ── the cluster ──────────────────────────────────────────────────────────

    def exists(self, kind: str, name: str, namespace: str | None = None) -> bool:
        res = by_kind(kind)
        return self.api.request("GET", res.path(namespace, name), what=res.ref(name)) is not None

    def context_flags(self, flag: str = "--kube-context") -> list[str]:
        return [] if self.api.context == "in-cluster" else [flag, self.api.context]

    def crds(self, wanted: Callable[[str], bool]) -> list[str]:
        """Names of the CRDs whose API group ``wanted`` accepts."""
        res = by_kind("CustomResourceDefinition")
        items = (self.api.request("GET", res.path(), what="customresourcedefinitions") or {}).get("items") or []
        return sorted(
            str(crd["metadata"]["name"]) for crd in items if wanted(str((crd.get("spec") or {}).get("group", "")))
        )

    def delete(self, kind: str, name: str, namespace: str | None = None) -> list[str]:
        """Delete one object if it is there: ``["<ref> deleted"]`` or ``[]``."""
        res = by_kind(kind)
        if self.api.request("GET", res.path(namespace, name), what=res.ref(name)) is None:
            return []
        self.api.request("DELETE", res.path(namespace, name), what=res.ref(name))
        return [f"{res.ref(name)} deleted"]

    # ── the ledger ───────────────────────────────────────────────────────────

    def recorded(self) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.ledger.installed().get(self.component)
        return found

    def begin(self, record: dict[str, Any]) -> None:
        """Record the install as pending, before anything runs."""
        self.ledger.record(self.component, {**record, "state": PENDING})

    def done(self, record: dict[str, Any]) -> None:
        self.ledger.record(self.component, {**record, "state": INSTALLED})

    def unfinished(self, error: ClusterError) -> ClusterError:
        """The error for an install that failed part-way (its pending record stays)."""
        return ClusterError(
            f"{error}\n{self.component} is only partly installed: run `coalmine install {self.component}` again "
            f"to finish it, or `coalmine reset` (or `coalmine uninstall {self.component}`) to remove what it left"
        )

    def created_crds(self, record: dict[str, Any], wanted: Callable[[str], bool], key: str) -> list[str]:
        """The CRDs the install created: as recorded when it finished, else (pending) the
        ones there now that were not there before it began."""
        created = record.get(key)
        if isinstance(created, list):
            return [str(name) for name in created]
        before = record.get(f"{key}Before")
        if isinstance(before, list):
            return [name for name in self.crds(wanted) if name not in before]
        return []

    # ── helm ─────────────────────────────────────────────────────────────────

    def helm_uninstall(self, release: str, namespace: str) -> list[str]:
        """``helm uninstall``; a release that is not there (an install that failed
        before helm made it) is nothing to remove."""
        try:
            self.tools.run(["helm", "uninstall", release, "--namespace", namespace, *self.context_flags(), "--wait"])
        except ClusterError as e:
            if "not found" not in str(e).lower():
                raise
            return [f"{self.component}: no helm release {release} to remove"]
        return [f"{self.component}: helm release {release} removed"]
