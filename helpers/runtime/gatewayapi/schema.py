"""The shape of Gateway API resources (standard channel), checked one at a time.

On a cluster, the API server checks a Gateway or HTTPRoute against the Gateway
API CRDs: the OpenAPI schema (types, enums, lengths, list sizes) and the CEL rules
written beside the Go types in ``apis/v1/*_types.go`` ("RequestRedirect filter
must not be used together with backendRefs", ...). ``check`` does the same for one
resource, naming the field in every message; what needs other objects (a parent
Gateway, a backend Service) is reported in the status by ``translating_gatewayapi``.

Fields the local runtime cannot honour without changing what the route does are
errors too (``Refused``), so a route is refused rather than served differently.
The node types are ``gloo_schema``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.kinds import GATEWAY_NETWORKING_V1
from helpers.runtime.gatewayapi.fields import (
    FILTER_FIELDS,
    HEADER_NAME,
    HOSTNAME,
    METHODS,
    PRECISE_HOSTNAME,
    SECTION_NAME,
    Duration,
    RedirectCode,
    backend_port,
    enum,
    filter_fields,
    header_filter,
    listeners,
    path_match,
    path_modifier,
    regex_value,
    rule,
    rules,
    sized,
    string,
    unique,
)
from helpers.runtime.schema import STR, Anything, Found, Ignored, ListOf, MapOf, Node, Obj, Refused, Scalar

CONTROLLER = "kgateway.dev/kgateway"


# ── the resources ────────────────────────────────────────────────────────────

_PARENT_REF = Obj(
    {
        "group": STR,
        "kind": STR,
        "namespace": SECTION_NAME,
        "name": string(1),
        "sectionName": SECTION_NAME,
        "port": Scalar("int", 1, 65535),
    },
    required=("name",),
)
_HEADER = Obj({"name": HEADER_NAME, "value": string(1, 4096)}, required=("name", "value"))
_HEADER_FILTER = Obj(
    {"set": sized(_HEADER), "add": sized(_HEADER), "remove": sized(HEADER_NAME)},
    rules=(unique("set", fold=True), unique("add", fold=True), header_filter),
)
_PATH_MODIFIER = Obj(
    {
        "type": enum("ReplaceFullPath", "ReplacePrefixMatch"),
        "replaceFullPath": string(0, 1024),
        "replacePrefixMatch": string(0, 1024),
    },
    required=("type",),
    rules=(path_modifier,),
)
_BACKEND_OBJECT = Obj(
    {"group": STR, "kind": STR, "name": string(1), "namespace": SECTION_NAME, "port": Scalar("int", 1, 65535)},
    required=("name",),
    rules=(backend_port,),
)
_FILTER = Obj(
    {
        "type": enum(*FILTER_FIELDS),
        "requestHeaderModifier": _HEADER_FILTER,
        "responseHeaderModifier": _HEADER_FILTER,
        "requestMirror": Ignored("request mirroring is not supported by the local runtime; no copy is sent"),
        "requestRedirect": Obj(
            {
                "scheme": enum("http", "https"),
                "hostname": PRECISE_HOSTNAME,
                "path": _PATH_MODIFIER,
                "port": Scalar("int", 1, 65535),
                "statusCode": RedirectCode(),
            }
        ),
        "urlRewrite": Obj({"hostname": PRECISE_HOSTNAME, "path": _PATH_MODIFIER}),
        "extensionRef": Refused("implementation-specific filters cannot be resolved locally"),
        "cors": Refused("answer CORS in the backend instead"),
    },
    required=("type",),
    rules=(filter_fields,),
)
_MATCH = Obj(
    {
        "path": Obj(
            {"type": enum("Exact", "PathPrefix", "RegularExpression"), "value": string(0, 1024)}, rules=(path_match,)
        ),
        "headers": sized(
            Obj(
                {"type": enum("Exact", "RegularExpression"), "name": HEADER_NAME, "value": string(1, 4096)},
                required=("name", "value"),
                rules=(regex_value,),
            )
        ),
        "queryParams": sized(
            Obj(
                {"type": enum("Exact", "RegularExpression"), "name": string(1, 256), "value": string(1, 1024)},
                required=("name", "value"),
                rules=(regex_value,),
            )
        ),
        "method": enum(*METHODS),
    },
    rules=(unique("headers"), unique("queryParams")),
)
_RULE = Obj(
    {
        "name": SECTION_NAME,
        "matches": sized(_MATCH, 0, 64),
        "filters": sized(_FILTER),
        "backendRefs": sized(
            Obj(
                {
                    "group": STR,
                    "kind": STR,
                    "name": string(1),
                    "namespace": SECTION_NAME,
                    "port": Scalar("int", 1, 65535),
                    "weight": Scalar("int", 0, 1000000),
                    "filters": Refused("per-backend filters are not implemented locally; put the filter on the rule"),
                },
                required=("name",),
                rules=(backend_port,),
            )
        ),
        "timeouts": Obj({"request": Duration(), "backendRequest": Duration()}),
        "retry": Obj(
            {"codes": ListOf(Scalar("int", 400, 599)), "attempts": Scalar("int", 0, 1000), "backoff": Duration()}
        ),
        "sessionPersistence": Refused(
            "sessionPersistence is in the experimental channel; the lab serves the standard one"
        ),
    },
    rules=(rule,),
)
_METADATA = Obj(
    {"name": STR, "namespace": STR, "labels": MapOf(STR), "annotations": MapOf(STR)}, required=("name",), open=True
)


def _top(spec: Node) -> Obj:
    return Obj(
        {"apiVersion": STR, "kind": STR, "metadata": _METADATA, "spec": spec, "status": Anything()},
        required=("metadata", "spec"),
    )


_ALLOWED_ROUTES = Obj(
    {
        "namespaces": Obj(
            {
                "from": enum("All", "Same", "Selector"),
                "selector": Obj(
                    {
                        "matchLabels": MapOf(STR),
                        "matchExpressions": Refused(
                            "use matchLabels: the local runtime selects namespaces by labels only"
                        ),
                    }
                ),
            }
        ),
        "kinds": ListOf(Obj({"group": STR, "kind": string(1)}, required=("kind",))),
    }
)
SCHEMAS: dict[str, Obj] = {
    "GatewayClass": _top(
        Obj(
            {"controllerName": string(1), "parametersRef": Anything(), "description": STR}, required=("controllerName",)
        )
    ),
    "Gateway": _top(
        Obj(
            {
                "gatewayClassName": string(1),
                "listeners": sized(
                    Obj(
                        {
                            "name": SECTION_NAME,
                            "hostname": HOSTNAME,
                            "port": Scalar("int", 1, 65535),
                            "protocol": string(1),
                            "tls": Anything(),
                            "allowedRoutes": _ALLOWED_ROUTES,
                        },
                        required=("name", "port", "protocol"),
                    ),
                    1,
                    64,
                ),
                "addresses": Ignored("the local gateway always listens on 127.0.0.1; addresses are ignored"),
                "infrastructure": Ignored("the local gateway runs in the control plane; infrastructure is ignored"),
                "backendTLS": Ignored(),
                "tls": Ignored(),
            },
            required=("gatewayClassName", "listeners"),
            rules=(listeners,),
        )
    ),
    "HTTPRoute": _top(
        Obj(
            {
                "parentRefs": sized(_PARENT_REF, 0, 32),
                "hostnames": sized(HOSTNAME),
                "rules": sized(_RULE, 1, 16),
            },
            rules=(rules,),
        )
    ),
}


def check(resource: Any) -> Found:
    """Errors and warnings of one Gateway API resource on its own (other kinds: nothing)."""
    found = Found()
    if not isinstance(resource, Mapping):
        found.error("", "expected an object (a YAML mapping)")
        return found
    kind = resource.get("kind")
    schema = SCHEMAS.get(str(kind))
    if schema is None:
        return found
    if resource.get("apiVersion") != GATEWAY_NETWORKING_V1:
        hint = (
            " (v1beta1 and v1alpha2 are older versions of the same API)"
            if str(resource.get("apiVersion", "")).startswith("gateway.networking.k8s.io/")
            else ""
        )
        found.error("apiVersion", f'{kind} is "{GATEWAY_NETWORKING_V1}", not "{resource.get("apiVersion")}"{hint}')
    schema.check(resource, "", found)
    return found


def validate(resource: Any) -> list[str]:
    """Errors the API server (CRD schema and CEL rules) would refuse ``resource`` for.

    >>> validate({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"},
    ...           "spec": {"rules": [{"backendRefs": [{"name": "petstore-v1"}]}]}})
    ['spec.rules[0].backendRefs[0].port: Must have port for Service reference']
    """
    return check(resource).errors
