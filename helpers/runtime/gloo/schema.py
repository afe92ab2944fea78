"""The shape of Gloo's resources, checked one resource at a time.

On a cluster, the API server checks a VirtualService against Gloo's CRD schema
(unknown fields, wrong types) and Gloo's validation webhook checks what the schema
cannot say (a regex that does not compile, two route actions, weights adding up to
0). ``check`` does both for one resource alone, without looking at any other
object; cross-object problems (a missing upstream, a domain claimed twice) are the
translator's job (``translating``).

The schema is written as data: ``Obj``/``ListOf``/``MapOf`` nodes with leaf types,
so each message can name the exact field path, e.g.
``spec.virtualHost.routes[2].routeAction.multi.destinations[0].weight``.

The node types are the generic engine in ``runtime.schema``; Gloo's own leaf types
and multi-field rules are in ``fields``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.kinds import GLOO_GATEWAY_V1, GLOO_V1
from helpers.runtime.gloo.fields import (
    Duration,
    ParamTemplate,
    delay,
    header_key,
    methods,
    regex_value,
    retry_on,
    total_weight,
    unique_domains,
)
from helpers.runtime.gloo.selectors import DELEGATE_ACTION, WEIGHT
from helpers.runtime.schema import (
    BOOL,
    STR,
    UINT,
    Anything,
    Found,
    Ignored,
    ListOf,
    MapOf,
    Node,
    Obj,
    Refused,
    Regex,
    Rule,
    Scalar,
    one_of,
    shown,
)

API_VERSIONS = {
    "VirtualService": GLOO_GATEWAY_V1,
    "RouteTable": GLOO_GATEWAY_V1,
    "Upstream": GLOO_V1,
    "UpstreamGroup": GLOO_V1,
}
REDIRECT_CODES = {
    "MOVED_PERMANENTLY": 301,
    "FOUND": 302,
    "SEE_OTHER": 303,
    "TEMPORARY_REDIRECT": 307,
    "PERMANENT_REDIRECT": 308,
}

# Field names from Gloo 0.x (the 2019 blog post era) that moved in Gloo 1.0.
_RENAMED = {
    "matcher": "use `matchers: [...]` (Gloo 1.x): a list of matchers",
    "routePlugins": "use `options` (Gloo 1.x renamed routePlugins to options)",
    "virtualHostPlugins": "use `options` (Gloo 1.x renamed virtualHostPlugins to options)",
    "upstreamSpec": "fields moved under `spec` in Gloo 1.x (e.g. `spec.kube`, not `spec.upstreamSpec.kube`)",
}


def GlooObj(
    fields: dict[str, Node],
    required: tuple[str, ...] = (),
    rules: tuple[Rule, ...] = (),
    hints: Mapping[str, str] | None = None,
    open: bool = False,
) -> Obj:
    """An ``Obj`` of Gloo's schema: an unknown field with a Gloo 0.x name says what it became."""
    return Obj(fields, required, rules, {**_RENAMED, **(hints or {})}, open)


# ── Gloo Edge 1.x resources (only the fields coalmine needs are checked deeply) ──

_REF = GlooObj({"name": STR, "namespace": STR}, required=("name",))
_TRANSFORMATION = GlooObj(
    {"headers": MapOf(GlooObj({"text": STR})), "body": GlooObj({"text": STR}, open=True)}, open=True
)
_SERVICE_SPEC = GlooObj(
    {
        "rest": GlooObj({"transformations": MapOf(_TRANSFORMATION), "swaggerInfo": Anything()}),
        "grpc": Ignored(),
        "grpcJsonTranscoder": Ignored(),
        "graphql": Ignored(),
        "any": Ignored(),
    }
)
_REST = GlooObj(
    {
        "functionName": STR,
        "parameters": GlooObj({"headers": MapOf(ParamTemplate()), "path": ParamTemplate()}),
        "responseTransformation": Ignored(),
    },
    required=("functionName",),
)
_DESTINATION = GlooObj(
    {
        "upstream": _REF,
        "kube": GlooObj({"ref": _REF, "port": Scalar("int", 1, 65535)}, required=("ref", "port")),
        "consul": Refused("route to an `upstream` or a `kube` Service instead"),
        "destinationSpec": GlooObj({"rest": _REST, "aws": Refused(), "azure": Refused(), "grpc": Refused()}),
        "subset": Ignored("subsets are not supported by the local runtime; the whole upstream is used"),
    },
    rules=(
        one_of(
            ("upstream", "kube", "consul"), "a destination needs `upstream: {name, namespace}` or `kube: {ref, port}`"
        ),
    ),
)
_WEIGHTED = GlooObj({"destination": _DESTINATION, "weight": UINT, "options": Ignored()}, required=("destination",))
_MULTI = GlooObj({"destinations": ListOf(_WEIGHTED)}, required=("destinations",), rules=(total_weight,))

_HEADER_VALUE = GlooObj(
    {
        "header": GlooObj({"key": STR, "value": STR}, required=("key",), rules=(header_key,)),
        "append": BOOL,
        "headerSecretRef": Refused("put the value in `header.value`"),
    },
    required=("header",),
)
_HEADERS = GlooObj(
    {
        "requestHeadersToAdd": ListOf(_HEADER_VALUE),
        "requestHeadersToRemove": ListOf(STR),
        "responseHeadersToAdd": ListOf(_HEADER_VALUE),
        "responseHeadersToRemove": ListOf(STR),
    }
)
_RETRIES = GlooObj(
    {
        "retryOn": STR,
        "numRetries": UINT,
        "perTryTimeout": Duration(),
        "retriableStatusCodes": ListOf(Scalar("int", 100, 599)),
        "retryBackOff": Ignored(),
        "previousPriorities": Ignored(),
    },
    rules=(retry_on,),
)
_FAULTS = GlooObj(
    {
        "abort": GlooObj(
            {"percentage": Scalar("number", 0, 100), "httpStatus": Scalar("int", 200, 599)}, required=("httpStatus",)
        ),
        "delay": GlooObj({"percentage": Scalar("number", 0, 100), "fixedDelay": Duration()}, rules=(delay,)),
    }
)

# Real Gloo options the local runtime does not implement: accepted with a warning.
ROUTE_OPTIONS_IGNORED = tuple(
    "transformations extensions tracing shadowing hostRewrite autoHostRewrite hostRewritePathRegex "
    "hostRewriteHeader appendXForwardedHost cors lbHash upgrades ratelimitBasic ratelimitEarly "
    "rateLimitEarlyConfigs ratelimit rateLimitConfigs ratelimitRegular rateLimitRegularConfigs waf jwt "
    "jwtStaged jwtProvidersStaged rbac extauth dlp bufferPerRoute csrf stagedTransformations "
    "envoyMetadata regexRewrite maxStreamDuration idleTimeout extProc ai".split()
)
VHOST_OPTIONS_IGNORED = tuple(
    "extensions retries stats cors transformations ratelimitBasic ratelimitEarly rateLimitEarlyConfigs "
    "ratelimit rateLimitConfigs ratelimitRegular rateLimitRegularConfigs waf jwt jwtStaged rbac extauth "
    "dlp bufferPerRoute csrf includeRequestAttemptCount includeAttemptCountInResponse "
    "stagedTransformations extProc corsPolicyMergeSettings".split()
)
ROUTE_OPTIONS = GlooObj(
    {
        "prefixRewrite": STR,
        "timeout": Duration(),
        "retries": _RETRIES,
        "faults": _FAULTS,
        "headerManipulation": _HEADERS,
        **{name: Ignored() for name in ROUTE_OPTIONS_IGNORED},
    }
)
_VHOST_OPTIONS = GlooObj({"headerManipulation": _HEADERS, **{name: Ignored() for name in VHOST_OPTIONS_IGNORED}})

_MATCHER = GlooObj(
    {
        "prefix": STR,
        "exact": STR,
        "regex": Regex(),
        "caseSensitive": BOOL,
        "connectMatcher": Refused("CONNECT requests are not proxied locally"),
        "headers": ListOf(
            GlooObj(
                {"name": STR, "value": STR, "regex": BOOL, "invertMatch": BOOL},
                required=("name",),
                rules=(regex_value,),
            )
        ),
        "queryParameters": ListOf(
            GlooObj({"name": STR, "value": STR, "regex": BOOL}, required=("name",), rules=(regex_value,))
        ),
        "methods": ListOf(STR),
    },
    rules=(one_of(("prefix", "exact", "regex", "connectMatcher")), methods),
)

ACTIONS = ("routeAction", "directResponseAction", "redirectAction", "delegateAction", "graphqlApiRef")
_ROUTE = GlooObj(
    {
        "matchers": ListOf(_MATCHER),
        "inheritableMatchers": BOOL,
        "inheritablePathMatchers": BOOL,
        "routeAction": GlooObj(
            {
                "single": _DESTINATION,
                "multi": _MULTI,
                "upstreamGroup": _REF,
                "clusterHeader": Refused("name the upstream in `single` or `multi`"),
                "dynamicForwardProxy": Refused(),
            },
            rules=(
                one_of(
                    ("single", "multi", "upstreamGroup", "clusterHeader", "dynamicForwardProxy"),
                    "routeAction needs one of single, multi or upstreamGroup",
                ),
            ),
        ),
        "directResponseAction": GlooObj({"status": Scalar("int", 100, 599), "body": STR}, required=("status",)),
        "redirectAction": GlooObj(
            {
                "hostRedirect": STR,
                "pathRedirect": STR,
                "prefixRewrite": STR,
                "httpsRedirect": BOOL,
                "responseCode": Scalar("string", choices=tuple(REDIRECT_CODES)),
                "stripQuery": Ignored(),
                "portRedirect": Ignored(),
                "regexRewrite": Ignored(),
            },
            rules=(one_of(("pathRedirect", "prefixRewrite", "regexRewrite")),),
        ),
        "delegateAction": DELEGATE_ACTION,
        "graphqlApiRef": Refused(),
        "options": ROUTE_OPTIONS,
        "optionsConfigRefs": Ignored(),
        "name": STR,
    },
    rules=(
        one_of(ACTIONS, "route has no action: add routeAction, directResponseAction, redirectAction or delegateAction"),
    ),
)

_METADATA = GlooObj(
    {"name": STR, "namespace": STR, "labels": MapOf(STR), "annotations": MapOf(STR)}, required=("name",), open=True
)  # open: the API server adds uid, resourceVersion, ...


def _top(spec: Node) -> Obj:
    return GlooObj(
        {"apiVersion": STR, "kind": STR, "metadata": _METADATA, "spec": spec, "status": Anything()},
        required=("metadata", "spec"),
    )


_UPSTREAM_TYPES = ("kube", "static", "pipe", "aws", "azure", "consul", "awsEc2", "gcp")


def _upstream_type(value: Mapping[str, Any], path: str, found: Found) -> None:
    if "upstreamSpec" not in value:  # the 0.x spelling is already explained
        one_of(
            _UPSTREAM_TYPES,
            "an upstream needs a type: `kube: {serviceName, serviceNamespace, "
            "servicePort}` or `static: {hosts: [{addr, port}]}`",
        )(value, path, found)


_UNSUPPORTED_TYPE = Refused("the local runtime serves `kube` and `static` upstreams")
_UPSTREAM_IGNORED = tuple(
    "sslConfig circuitBreakers loadBalancerConfig connectionConfig healthChecks outlierDetection useHttp2 "
    "failover initialStreamWindowSize initialConnectionWindowSize maxConcurrentStreams httpProxyHostname "
    "httpConnectSslConfig httpConnectHeaders ignoreHealthOnHostRemoval respectDnsTtl dnsRefreshRate "
    "proxyProtocolVersion preconnectPolicy protocolSelection overrideStreamErrorOnInvalidHttpMessage".split()
)
SCHEMAS: dict[str, Obj] = {
    "VirtualService": _top(
        GlooObj(
            {
                "virtualHost": GlooObj(
                    {
                        "domains": ListOf(STR),
                        "routes": ListOf(_ROUTE),
                        "options": _VHOST_OPTIONS,
                        "optionsConfigRefs": Ignored(),
                    },
                    rules=(unique_domains,),
                    hints={"name": "virtualHost.name was removed in Gloo 1.x; delete it"},
                ),
                "displayName": STR,
                "sslConfig": Ignored("TLS is not served by the local gateway; ignored"),
                "metadata": Anything(),
                "namespacedStatuses": Anything(),
            },
            required=("virtualHost",),
        )
    ),
    "Upstream": _top(
        GlooObj(
            {
                "kube": GlooObj(
                    {
                        "serviceName": STR,
                        "serviceNamespace": STR,
                        "servicePort": Scalar("int", 1, 65535),
                        "selector": MapOf(STR),
                        "serviceSpec": _SERVICE_SPEC,
                        "subsetSpec": Ignored(),
                    },
                    required=("serviceName", "servicePort"),
                ),
                "static": GlooObj(
                    {
                        "hosts": ListOf(
                            GlooObj(
                                {
                                    "addr": STR,
                                    "port": Scalar("int", 1, 65535),
                                    "sniAddr": Anything(),
                                    "loadBalancingWeight": Ignored(),
                                    "healthCheckConfig": Ignored(),
                                    "metadata": Anything(),
                                },
                                required=("addr", "port"),
                            )
                        ),
                        "useTls": Ignored("TLS to upstreams is not supported locally; ignored"),
                        "serviceSpec": _SERVICE_SPEC,
                        "autoSniRewrite": Anything(),
                    },
                    required=("hosts",),
                ),
                **{t: _UNSUPPORTED_TYPE for t in _UPSTREAM_TYPES[2:]},
                "discoveryMetadata": Anything(),
                "namespacedStatuses": Anything(),
                **{name: Ignored() for name in _UPSTREAM_IGNORED},
            },
            rules=(_upstream_type,),
        )
    ),
    "RouteTable": _top(GlooObj({"routes": ListOf(_ROUTE), "weight": WEIGHT, "namespacedStatuses": Anything()})),
    "UpstreamGroup": _top(
        GlooObj(
            {"destinations": ListOf(_WEIGHTED), "namespacedStatuses": Anything()},
            required=("destinations",),
            rules=(total_weight,),
        )
    ),
}


def check(resource: Any) -> Found:
    """Errors and warnings of one Gloo resource on its own.

    Other kinds (Service, Deployment, ...) are not Gloo's: nothing is found.
    """
    found = Found()
    if not isinstance(resource, Mapping):
        found.error("", f"expected an object (a YAML mapping), got {shown(resource)}")
        return found
    kind, api_version = resource.get("kind"), resource.get("apiVersion")
    schema = SCHEMAS.get(str(kind))
    if schema is None:
        if isinstance(api_version, str) and api_version.split("/")[0] in ("gateway.solo.io", "gloo.solo.io"):
            found.error("kind", f"{kind} is not supported by the local runtime (it serves {', '.join(SCHEMAS)})")
        return found
    if api_version != API_VERSIONS[str(kind)]:
        found.error("apiVersion", f'{kind} is "{API_VERSIONS[str(kind)]}", not "{api_version}"')
    schema.check(resource, "", found)
    return found


def validate(resource: Any) -> list[str]:
    """Schema errors of ONE resource alone (unknown fields, wrong types, bad regex,
    ...), as the API server and Gloo's webhook would refuse it. Empty when fine.

    >>> print(validate({"apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
    ...                 "metadata": {"name": "x"}, "spec": {"upstreamSpec": {}}})[0])
    spec.upstreamSpec: unknown field; fields moved under `spec` in Gloo 1.x (e.g. `spec.kube`, ...
    """
    return check(resource).errors
