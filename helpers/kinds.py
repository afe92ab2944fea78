"""The kinds of object the lab knows, their names, and the namespaces it reserves.

Each kind has an apiVersion, a plural and short names (as ``kubectl`` and
``glooctl`` accept them). This is vocabulary shared by every layer (like
``errors``), so it imports nothing from the rest of the package. What the API
server refuses in a built-in kind is checked in ``runtime.apiserver``; Gloo's kinds
in ``runtime.gloo.schema``, the Gateway API's in ``runtime.gatewayapi.schema``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from helpers.errors import UnknownKind

# apiVersions (group/version) of the custom kinds.
GLOO_GATEWAY_V1 = "gateway.solo.io/v1"  # VirtualService, RouteTable
GLOO_V1 = "gloo.solo.io/v1"  # Upstream, UpstreamGroup
GATEWAY_NETWORKING_GROUP = "gateway.networking.k8s.io"  # the Kubernetes Gateway API
GATEWAY_NETWORKING_V1 = f"{GATEWAY_NETWORKING_GROUP}/v1"
GATEWAY_NETWORKING_V1BETA1 = f"{GATEWAY_NETWORKING_GROUP}/v1beta1"  # ReferenceGrant (still v1beta1)
FLAGGER_V1BETA1 = "flagger.app/v1beta1"  # Canary, MetricTemplate

GLOO_NAMESPACE = "gloo-system"  # where Gloo runs, keeps its Upstreams and writes statuses
KGATEWAY_NAMESPACE = "kgateway-system"  # where kgateway runs and the lab's Gateway lives
BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public")
# The most one object may be, as JSON: 1 MiB, Kubernetes' limit on a ConfigMap's data
# (etcd's request limit, 1.5 MiB, bounds the other kinds). Refused when read and at apply.
MAX_OBJECT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Kind:
    name: str
    api_version: str
    plural: str
    short: tuple[str, ...] = ()
    namespaced: bool = True
    gloo: bool = False  # needs `coalmine install gloo` (its CRDs) first
    readonly: bool = False  # made by the runtime, not applied
    gateway_api: bool = False  # needs `coalmine install kgateway` (the Gateway API CRDs) first
    flagger: bool = False  # needs `coalmine install flagger` (its CRDs and controller) first

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def ref_prefix(self) -> str:
        """``deployment.apps`` / ``virtualservice.gateway.solo.io`` / ``service``."""
        return f"{self.name.lower()}.{self.group}" if self.group else self.name.lower()


KINDS: tuple[Kind, ...] = (
    Kind("Namespace", "v1", "namespaces", ("ns",), namespaced=False),
    Kind("ConfigMap", "v1", "configmaps", ("cm",)),
    Kind("Secret", "v1", "secrets"),
    Kind("Service", "v1", "services", ("svc",)),
    Kind("EndpointSlice", "discovery.k8s.io/v1", "endpointslices"),
    Kind("Pod", "v1", "pods", ("po",), readonly=True),
    Kind("Deployment", "apps/v1", "deployments", ("deploy",)),
    Kind("Upstream", GLOO_V1, "upstreams", ("us",), gloo=True),
    Kind("UpstreamGroup", GLOO_V1, "upstreamgroups", ("ug",), gloo=True),
    Kind("VirtualService", GLOO_GATEWAY_V1, "virtualservices", ("vs",), gloo=True),
    Kind("RouteTable", GLOO_GATEWAY_V1, "routetables", ("rt", "grt"), gloo=True),
    Kind(
        "GatewayClass",
        GATEWAY_NETWORKING_V1,
        "gatewayclasses",
        ("gc", "gatewayclass"),
        namespaced=False,
        gateway_api=True,
    ),
    Kind("Gateway", GATEWAY_NETWORKING_V1, "gateways", ("gtw",), gateway_api=True),
    Kind("HTTPRoute", GATEWAY_NETWORKING_V1, "httproutes", ("httproute",), gateway_api=True),
    Kind("ReferenceGrant", GATEWAY_NETWORKING_V1BETA1, "referencegrants", ("refgrant",), gateway_api=True),
    Kind("Canary", FLAGGER_V1BETA1, "canaries", ("canary",), flagger=True),
    Kind("MetricTemplate", FLAGGER_V1BETA1, "metrictemplates", (), flagger=True),
)
BY_NAME = {k.name: k for k in KINDS}


def lookup(word: str) -> Kind:
    """The kind for ``word``: a kind, plural, singular or short name, any case.

    ``vs``, ``virtualservice``, ``virtualservices`` and ``VirtualService.gateway.solo.io``
    all name the same kind. Raises ``UnknownKind`` listing the known names.
    """
    w = word.lower().split(".", 1)[0]
    for k in KINDS:
        if w in (k.name.lower(), k.plural, k.plural.rstrip("s"), *k.short):
            return k
    known = ", ".join(k.plural for k in KINDS)
    raise UnknownKind(f'the server doesn\'t have a resource type "{word}" (known: {known})')


def ref(obj: Mapping[str, Any]) -> str:
    """``deployment.apps/petstore-v1``: how kubectl names an object in its output."""
    kind = BY_NAME.get(str(obj.get("kind")))
    prefix = kind.ref_prefix if kind else str(obj.get("kind", "object")).lower()
    meta = obj.get("metadata")
    return f"{prefix}/{meta.get('name', '?') if isinstance(meta, Mapping) else '?'}"


def key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    """(kind, namespace, name); cluster-scoped kinds have namespace ''."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    kind = BY_NAME.get(str(obj.get("kind")))
    namespace = "" if kind is not None and not kind.namespaced else str(meta.get("namespace") or "default")
    return (str(obj.get("kind")), namespace, str(meta.get("name")))
