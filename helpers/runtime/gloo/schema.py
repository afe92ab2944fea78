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
and multi-field rules are in ``fields``, a route's shape in ``routeschema``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.kinds import GLOO_GATEWAY_V1, GLOO_V1
from helpers.runtime.gloo.fields import TRANSFORMATION, GlooObj, unique_domains
from helpers.runtime.gloo.routeschema import GROUP_WEIGHTED, ROUTE, VHOST_OPTIONS
from helpers.runtime.gloo.selectors import WEIGHT
from helpers.runtime.schema import (
    STR,
    Anything,
    Found,
    Ignored,
    ListOf,
    MapOf,
    Node,
    Obj,
    Refused,
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

# ── Gloo Edge 1.x resources (only the fields coalmine needs are checked deeply) ──

_SERVICE_SPEC = GlooObj(
    {
        "rest": GlooObj({"transformations": MapOf(TRANSFORMATION), "swaggerInfo": Anything()}),
        "grpc": Ignored(),
        "grpcJsonTranscoder": Ignored(),
        "graphql": Ignored(),
        "any": Ignored(),
    }
)
_METADATA = GlooObj(
    {"name": STR, "namespace": STR, "labels": MapOf(STR), "annotations": MapOf(STR)}, required=("name",), open=True
)  # open: the API server adds uid, resourceVersion, ...


def _top(spec: Node) -> Obj:
    return GlooObj(
        {"apiVersion": STR, "kind": STR, "metadata": _METADATA, "spec": spec, "status": Anything()},
        required=("metadata", "spec"),
    )


_UPSTREAM_TYPES = ("kube", "static", "pipe", "aws", "azure", "consul", "awsEc2", "gcp", "ai")


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
                        "routes": ListOf(ROUTE),
                        "options": VHOST_OPTIONS,
                        "optionsConfigRefs": Ignored(),
                    },
                    rules=(unique_domains,),
                    hints={"name": "virtualHost.name was removed in Gloo 1.x; delete it"},
                ),
                "displayName": STR,
                "sslConfig": Ignored("TLS is not served by the local gateway; ignored"),
                "namespacedStatuses": Anything(),
            },
            # No virtualHost: Gloo warns and serves nothing for it (``translating``).
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
                "disableIstioAutoMtls": Ignored("the local runtime has no Istio; ignored"),
                "discoveryMetadata": Anything(),
                "namespacedStatuses": Anything(),
                **{name: Ignored() for name in _UPSTREAM_IGNORED},
            },
            rules=(_upstream_type,),
        )
    ),
    "RouteTable": _top(GlooObj({"routes": ListOf(ROUTE), "weight": WEIGHT, "namespacedStatuses": Anything()})),
    # Only the CRD's schema checks an UpstreamGroup (Gloo 1.22.1 registers no webhook for
    # it): Gloo reports a missing upstream in the group's status, and a total weight
    # below 1 on the routes that use it (``groups``).
    "UpstreamGroup": _top(GlooObj({"destinations": ListOf(GROUP_WEIGHTED), "namespacedStatuses": Anything()})),
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
