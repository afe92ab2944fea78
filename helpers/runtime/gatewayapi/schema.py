"""The shape of Gateway API resources, checked one at a time, per release channel.

On a cluster, the API server checks a Gateway or HTTPRoute against the Gateway
API CRDs: the OpenAPI schema (types, enums, lengths, list sizes) and the CEL rules
written beside the Go types in ``apis/v1/*_types.go`` ("RequestRedirect filter
must not be used together with backendRefs", ...). ``check`` does the same for one
resource, naming the field in every message; what needs other objects (a parent
Gateway, a backend Service) is reported in the status by ``translating_gatewayapi``.

Fields the local runtime cannot honour without changing what the route does are
errors too (``Refused``), so a route is refused rather than served differently.
The node types are ``gloo_schema``'s. There is one table per channel: the standard
channel's (the default) and the experimental one's, which adds the fields and rules
of ``channels`` (``coalmine install kgateway --channel experimental``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.kinds import GATEWAY_NETWORKING_V1, GATEWAY_NETWORKING_V1BETA1
from helpers.runtime.gatewayapi.cel import (
    address,
    addresses,
    listener_rules,
    listener_tls,
    parent_refs,
    parent_refs_experimental,
)
from helpers.runtime.gatewayapi.channels import (
    DEFAULT_SCOPE,
    STANDARD,
    DefaultGateways,
    channel_named,
    default_scope,
    only_experimental,
    unique_rule_names,
)
from helpers.runtime.gatewayapi.fields import (
    ADDRESS_TYPE,
    CONTROLLER_NAME,
    GROUP,
    HOSTNAME,
    KIND,
    NAMESPACE,
    PROTOCOL,
    SECTION_NAME,
    LabelMap,
    enum,
    rules,
    sized,
    string,
)
from helpers.runtime.gatewayapi.routerules import PARENT_REF, PORT, ref, route_rule
from helpers.runtime.schema import STR, Anything, Found, ListOf, MapOf, Node, Obj, at

CONTROLLER = "kgateway.dev/kgateway"
# The versions the v1.6.1 CRDs serve, per kind (the first is the storage version).
SERVED = {
    "GatewayClass": (GATEWAY_NETWORKING_V1, GATEWAY_NETWORKING_V1BETA1),
    "Gateway": (GATEWAY_NETWORKING_V1, GATEWAY_NETWORKING_V1BETA1),
    "HTTPRoute": (GATEWAY_NETWORKING_V1, GATEWAY_NETWORKING_V1BETA1),
    "ReferenceGrant": (GATEWAY_NETWORKING_V1BETA1, GATEWAY_NETWORKING_V1),
}


# ── the resources ────────────────────────────────────────────────────────────


_METADATA = Obj(
    {"name": STR, "namespace": STR, "labels": MapOf(STR), "annotations": MapOf(STR)}, required=("name",), open=True
)


def _top(spec: Node, status: bool = True) -> Obj:
    fields: dict[str, Node] = {"apiVersion": STR, "kind": STR, "metadata": _METADATA, "spec": spec}
    if status:
        fields["status"] = Anything()
    return Obj(fields, required=("spec",))


_SELECTOR = Obj(
    {
        "matchLabels": MapOf(STR),
        "matchExpressions": ListOf(
            Obj({"key": STR, "operator": STR, "values": ListOf(STR)}, required=("key", "operator"))
        ),
    }
)
_ALLOWED_ROUTES = Obj(
    {
        "namespaces": Obj({"from": enum("All", "Same", "Selector"), "selector": _SELECTOR}),
        "kinds": sized(Obj({"group": GROUP, "kind": KIND}, required=("kind",)), 0, 8),
    }
)
_LISTENER = Obj(
    {
        "name": SECTION_NAME,
        "hostname": HOSTNAME,
        "port": PORT,
        "protocol": PROTOCOL,
        "tls": Obj(
            {
                "mode": enum("Terminate", "Passthrough"),
                "certificateRefs": sized(ref(namespace=NAMESPACE), 0, 64),
                "options": LabelMap(16, 4096, values_are_labels=False),
            },
            rules=(listener_tls,),
        ),
        "allowedRoutes": _ALLOWED_ROUTES,
    },
    required=("name", "port", "protocol"),
)
_CA_REFS = sized(ref(("group", "kind", "name"), namespace=NAMESPACE), 1, 16)
_FRONTEND_TLS = Obj(
    {
        "validation": Obj(
            {"caCertificateRefs": _CA_REFS, "mode": enum("AllowValidOnly", "AllowInsecureFallback")},
            required=("caCertificateRefs",),
        )
    }
)
_GATEWAY_TLS = Obj(
    {
        "backend": Obj({"clientCertificateRef": ref(namespace=NAMESPACE)}),
        "frontend": Obj(
            {
                "default": _FRONTEND_TLS,
                "perPort": sized(Obj({"port": PORT, "tls": _FRONTEND_TLS}, required=("port", "tls")), 0, 64),
            },
            required=("default",),
        ),
    }
)
_IGNORED = {
    "addresses": "the local gateway always listens on 127.0.0.1; addresses are ignored",
    "infrastructure": "the local gateway runs in the control plane; infrastructure is ignored",
    "allowedListeners": "the local runtime has no ListenerSets; allowedListeners is ignored",
    "tls": "the local gateway neither validates client certificates nor presents one to backends; spec.tls is ignored",
}


def _ignored(value: Mapping[str, Any], path: str, found: Found) -> None:
    for name, why in _IGNORED.items():
        if value.get(name) not in (None, {}, []):
            found.warn(at(path, name), why)


def _gateway(experimental: bool) -> Obj:
    fields: dict[str, Node] = {
        "gatewayClassName": string(1, 253),
        "listeners": sized(_LISTENER, 1, 64),
        "addresses": sized(Obj({"type": ADDRESS_TYPE, "value": string(0, 253)}, rules=(address,)), 0, 16),
        "infrastructure": Obj(
            {
                "labels": LabelMap(8, 63, values_are_labels=True),
                "annotations": LabelMap(16, 4096, values_are_labels=False),
                "parametersRef": ref(("group", "kind", "name")),
            },
        ),
        "allowedListeners": Obj(
            {"namespaces": Obj({"from": enum("All", "Selector", "Same", "None"), "selector": _SELECTOR})},
        ),
        "tls": _GATEWAY_TLS,
    }
    hints = {"backendTLS": "backendTLS is not a Gateway field in v1.6.1 (either channel): it is spec.tls.backend"}
    if experimental:
        return _top(
            Obj(
                {**fields, "defaultScope": DEFAULT_SCOPE},
                required=("gatewayClassName", "listeners"),
                rules=(listener_rules, addresses, _ignored, default_scope),
                hints=hints,
            )
        )
    return _top(
        Obj(
            fields,
            required=("gatewayClassName", "listeners"),
            rules=(listener_rules, addresses, _ignored),
            hints={**hints, "defaultScope": only_experimental("defaultScope")},
        )
    )


def _httproute(experimental: bool) -> Obj:
    fields: dict[str, Node] = {
        "parentRefs": sized(PARENT_REF, 0, 32),
        "hostnames": sized(HOSTNAME),
        "rules": sized(route_rule(experimental), 1, 16),
    }
    if experimental:
        return _top(
            Obj(
                {**fields, "useDefaultGateways": DefaultGateways()},
                rules=(rules, unique_rule_names, parent_refs_experimental),
            )
        )
    return _top(
        Obj(fields, rules=(rules, parent_refs), hints={"useDefaultGateways": only_experimental("useDefaultGateways")})
    )


def _schemas(experimental: bool) -> dict[str, Obj]:
    return {
        "GatewayClass": _GATEWAY_CLASS,
        "Gateway": _gateway(experimental),
        "HTTPRoute": _httproute(experimental),
        "ReferenceGrant": _REFERENCE_GRANT,
    }


_GATEWAY_CLASS = _top(
    Obj(
        {"controllerName": CONTROLLER_NAME, "parametersRef": ref(("group", "kind", "name"), namespace=NAMESPACE)},
        required=("controllerName",),
    )
)
_REFERENCE_GRANT = _top(
    Obj(
        {
            "from": sized(
                Obj({"group": GROUP, "kind": KIND, "namespace": NAMESPACE}, ("group", "kind", "namespace")), 1, 16
            ),
            "to": sized(Obj({"group": GROUP, "kind": KIND, "name": string(1, 253)}, ("group", "kind")), 1, 16),
        },
        required=("from", "to"),
    ),
    status=False,
)
# Per channel: what the API server checks with that channel's CRDs installed.
BY_CHANNEL: dict[str, dict[str, Obj]] = {STANDARD: _schemas(False), "experimental": _schemas(True)}
SCHEMAS = BY_CHANNEL[STANDARD]


def check(resource: Any, channel: str = STANDARD) -> Found:
    """Errors and warnings of one Gateway API resource on its own (other kinds: nothing),
    against the CRDs of ``channel`` (``standard`` or ``experimental``)."""
    found = Found()
    if not isinstance(resource, Mapping):
        found.error("", "expected an object (a YAML mapping)")
        return found
    kind = resource.get("kind")
    schema = BY_CHANNEL[channel_named(channel)].get(str(kind))
    if schema is None:
        return found
    served = SERVED[str(kind)]
    if resource.get("apiVersion") not in served:
        found.error("apiVersion", f'{kind} is served as {" or ".join(served)}, not "{resource.get("apiVersion")}"')
    schema.check(resource, "", found)
    return found


def validate(resource: Any, channel: str = STANDARD) -> list[str]:
    """Errors the API server (CRD schema and CEL rules) would refuse ``resource`` for.

    >>> validate({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"},
    ...           "spec": {"rules": [{"backendRefs": [{"name": "petstore-v1"}]}]}})
    ['spec.rules[0].backendRefs[0].port: Must have port for Service reference']
    """
    return check(resource, channel).errors
