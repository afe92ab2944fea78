"""Where an object lives in the API: its REST path, from its apiVersion and kind.

The kinds the lab knows come from ``helpers.kinds`` (the same table the
local runtime uses); a few more are known for installing gateways; anything else
is looked up once in the API server's discovery document, as kubectl does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from helpers.errors import ApplyRefused
from helpers.kinds import BY_NAME

if TYPE_CHECKING:
    from helpers.backends.kube.connecting import KubeApi


@dataclass(frozen=True)
class Resource:
    """One kind as the API serves it: ``apps/v1`` + ``deployments``, namespaced or not."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """``/apis/apps/v1/namespaces/default/deployments/petstore-v1``; no name lists."""
        base = f"/apis/{self.api_version}" if self.group else f"/api/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base

    def ref(self, name: str) -> str:
        """``deployment.apps/petstore-v1``, as kubectl prints it."""
        prefix = f"{self.kind.lower()}.{self.group}" if self.group else self.kind.lower()
        return f"{prefix}/{name}"


_EXTRA = (
    Resource("discovery.k8s.io/v1", "EndpointSlice", "endpointslices"),
    Resource("gloo.solo.io/v1", "Settings", "settings"),
    Resource("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False),
    Resource("gateway.networking.k8s.io/v1", "GatewayClass", "gatewayclasses", namespaced=False),
    Resource("gateway.networking.k8s.io/v1", "Gateway", "gateways"),
    Resource("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes"),
    # In the Gateway API's standard-install.yaml since v1.5 ("safe-upgrades"); served from Kubernetes 1.30.
    Resource(
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        namespaced=False,
    ),
    Resource(
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        namespaced=False,
    ),
)
KNOWN: dict[tuple[str, str], Resource] = {
    (k.api_version, k.name): Resource(k.api_version, k.name, k.plural, k.namespaced) for k in BY_NAME.values()
}
KNOWN.update({(r.api_version, r.kind): r for r in _EXTRA})
GLOO_GROUPS = ("gloo.solo.io", "gateway.solo.io")


def by_kind(kind: str) -> Resource:
    """The resource for a kind name the lab knows (``Deployment``, ``VirtualService``, ...)."""
    return next(r for r in KNOWN.values() if r.kind == kind)


class Resources:
    """Resolves objects to resources; unknown kinds through API discovery (cached)."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self._discovered: dict[str, list[dict[str, Any]] | None] = {}

    def of(self, obj: Mapping[str, Any]) -> Resource:
        api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
        if not api_version or not kind:
            raise ApplyRefused("every object needs apiVersion and kind (e.g. apiVersion: apps/v1, kind: Deployment)")
        known = KNOWN.get((api_version, kind))
        if known is not None:
            return known
        listed = self._discover(api_version)
        for r in listed or []:
            if r.get("kind") == kind and "/" not in str(r.get("name")):
                return Resource(api_version, kind, str(r["name"]), bool(r.get("namespaced")))
        raise ApplyRefused(no_match(kind, api_version))

    def _discover(self, api_version: str) -> list[dict[str, Any]] | None:
        if api_version not in self._discovered:
            path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
            found = self.api.request("GET", path, what=f"API group {api_version}")
            self._discovered[api_version] = (found or {}).get("resources") if found else None
        return self._discovered[api_version]


def no_match(kind: str, api_version: str) -> str:
    """The message for a kind the cluster does not serve (its CRD is missing)."""
    message = f'no matches for kind "{kind}" in version "{api_version}"'
    group = api_version.rpartition("/")[0]
    if group in GLOO_GROUPS:
        return message + ": Gloo's CRDs are not installed in this cluster; run `coalmine install gloo` first"
    if group == "gateway.networking.k8s.io":
        return message + ": the Gateway API CRDs are not installed; run `coalmine install kgateway` first"
    return message + ": is the apiVersion right? `kubectl api-resources` lists what the cluster serves"
