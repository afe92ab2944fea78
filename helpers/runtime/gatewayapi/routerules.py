"""An HTTPRoute rule's schema: matches, filters and backendRefs, per release channel.

The tables of the v1.6.1 CRDs (``gatewayapi.schema`` puts them together): the
standard channel's rule, and the experimental one's, with ``retry`` and
``sessionPersistence``, the ExternalAuth filter and stricter header values
(``channels``). Also the object references every kind uses.
"""

from __future__ import annotations

from helpers.runtime.gatewayapi.cel import mirror, wildcard_alone
from helpers.runtime.gatewayapi.channels import (
    EXTERNAL_AUTH,
    HEADER_VALUE,
    RETRY,
    SESSION_PERSISTENCE,
    only_experimental,
)
from helpers.runtime.gatewayapi.fields import (
    FILTER_FIELDS,
    GROUP,
    HEADER_NAME,
    KIND,
    METHODS,
    NAMESPACE,
    ORIGIN,
    PRECISE_HOSTNAME,
    SECTION_NAME,
    Duration,
    RedirectCode,
    backend_port,
    enum,
    filter_fields_of,
    filter_list,
    header_filter,
    path_match,
    path_modifier,
    regex_value,
    rule,
    sized,
    string,
    unique,
)
from helpers.runtime.schema import BOOL, STR, Node, Obj, Refused, Scalar

PORT = Scalar("int", 1, 65535)


def ref(required: tuple[str, ...] = ("name",), **extra: Node) -> Obj:
    """An object reference: group, kind and name, optionally namespace (patterns from the CRD)."""
    return Obj({"group": GROUP, "kind": KIND, "name": string(1, 253), **extra}, required=required)


PARENT_REF = ref(namespace=NAMESPACE, sectionName=SECTION_NAME, port=PORT)
_BACKEND_REF = Obj(
    {"group": GROUP, "kind": KIND, "name": string(1, 253), "namespace": NAMESPACE, "port": PORT},
    required=("name",),
    rules=(backend_port,),
)


def _header_filter(value: Node) -> Obj:
    header = Obj({"name": HEADER_NAME, "value": value}, required=("name", "value"))
    return Obj(
        {"set": sized(header), "add": sized(header), "remove": sized(STR)},
        rules=(unique("set"), unique("add"), unique("remove"), header_filter),
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


def _filter(experimental: bool) -> Obj:
    """A rule's (or a backendRef's) filter; the experimental channel adds ExternalAuth."""
    types = {**FILTER_FIELDS, "ExternalAuth": "externalAuth"} if experimental else FILTER_FIELDS
    headers = _header_filter(HEADER_VALUE if experimental else string(1, 4096))
    fields: dict[str, Node] = {
        "type": enum(*types),
        "requestHeaderModifier": headers,
        "responseHeaderModifier": headers,
        "requestMirror": Obj(
            {
                "backendRef": _BACKEND_REF,
                "percent": Scalar("int", 0, 100),
                "fraction": Obj(
                    {"numerator": Scalar("int", 0, 2**31 - 1), "denominator": Scalar("int", 1, 2**31 - 1)},
                    required=("numerator",),
                ),
            },
            required=("backendRef",),
            rules=(mirror,),
        ),
        "requestRedirect": Obj(
            {
                "scheme": enum("http", "https"),
                "hostname": PRECISE_HOSTNAME,
                "path": _PATH_MODIFIER,
                "port": PORT,
                "statusCode": RedirectCode(),
            }
        ),
        "urlRewrite": Obj({"hostname": PRECISE_HOSTNAME, "path": _PATH_MODIFIER}),
        "extensionRef": Refused("implementation-specific filters cannot be resolved locally"),
        "cors": Obj(
            {
                "allowOrigins": sized(ORIGIN, 0, 64),
                "allowMethods": sized(enum(*METHODS, "*"), 0, 9),
                "allowHeaders": sized(HEADER_NAME, 0, 64),
                "exposeHeaders": sized(HEADER_NAME, 0, 64),
                "allowCredentials": BOOL,
                "maxAge": Scalar("int", 1, 2**31 - 1),
            },
            rules=(wildcard_alone("the list is a set"),),
        ),
    }
    if experimental:
        fields["externalAuth"] = EXTERNAL_AUTH
    hints = {} if experimental else {"externalAuth": only_experimental("externalAuth")}
    return Obj(fields, required=("type",), rules=(filter_fields_of(types),), hints=hints)


def _match(experimental: bool) -> Obj:
    return Obj(
        {
            "path": Obj(
                {"type": enum("Exact", "PathPrefix", "RegularExpression"), "value": string(0, 1024)},
                rules=(path_match,),
            ),
            "headers": sized(
                Obj(
                    {
                        "type": enum("Exact", "RegularExpression"),
                        "name": HEADER_NAME,
                        "value": HEADER_VALUE if experimental else string(1, 4096),
                    },
                    required=("name", "value"),
                    rules=(regex_value,),
                )
            ),
            "queryParams": sized(
                Obj(
                    {"type": enum("Exact", "RegularExpression"), "name": HEADER_NAME, "value": string(1, 1024)},
                    required=("name", "value"),
                    rules=(regex_value,),
                )
            ),
            "method": enum(*METHODS),
        },
        rules=(unique("headers"), unique("queryParams")),
    )


def route_rule(experimental: bool) -> Obj:
    """One HTTPRoute rule; the experimental channel adds ``retry`` and ``sessionPersistence``."""
    filters = _filter(experimental)
    fields: dict[str, Node] = {
        "name": SECTION_NAME,
        "matches": sized(_match(experimental), 0, 64),
        "filters": sized(filters),
        "backendRefs": sized(
            Obj(
                {
                    "group": GROUP,
                    "kind": KIND,
                    "name": string(1, 253),
                    "namespace": NAMESPACE,
                    "port": PORT,
                    "weight": Scalar("int", 0, 1000000),
                    "filters": sized(filters),
                },
                required=("name",),
                rules=(backend_port, filter_list),
            )
        ),
        "timeouts": Obj({"request": Duration(), "backendRequest": Duration()}),
    }
    if experimental:
        return Obj({**fields, "retry": RETRY, "sessionPersistence": SESSION_PERSISTENCE}, rules=(rule,))
    hints = {
        "retry": only_experimental("retry"),
        "sessionPersistence": only_experimental("sessionPersistence", " (and the local runtime does not implement it)"),
    }
    return Obj(fields, rules=(rule,), hints=hints)
