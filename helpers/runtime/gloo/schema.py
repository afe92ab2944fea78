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

The node types are the generic engine in ``runtime.schema``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from helpers.runtime.templating import compile_parameter
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
    at,
    compile_regex,
    one_of,
    shown,
)
from helpers.kinds import GLOO_GATEWAY_V1, GLOO_V1

API_VERSIONS = {"VirtualService": GLOO_GATEWAY_V1, "Upstream": GLOO_V1, "UpstreamGroup": GLOO_V1}
REDIRECT_CODES = {"MOVED_PERMANENTLY": 301, "FOUND": 302, "SEE_OTHER": 303,
                  "TEMPORARY_REDIRECT": 307, "PERMANENT_REDIRECT": 308}

# Field names from Gloo 0.x (the 2019 blog post era) that moved in Gloo 1.0.
_RENAMED = {
    "matcher": "use `matchers: [...]` (Gloo 1.x): a list of matchers",
    "routePlugins": "use `options` (Gloo 1.x renamed routePlugins to options)",
    "virtualHostPlugins": "use `options` (Gloo 1.x renamed virtualHostPlugins to options)",
    "upstreamSpec": "fields moved under `spec` in Gloo 1.x (e.g. `spec.kube`, not `spec.upstreamSpec.kube`)",
}


def GlooObj(fields: dict[str, Node], required: tuple[str, ...] = (), rules: tuple[Rule, ...] = (),
            hints: Mapping[str, str] | None = None, open: bool = False) -> Obj:
    """An ``Obj`` of Gloo's schema: an unknown field with a Gloo 0.x name says what it became."""
    return Obj(fields, required, rules, {**_RENAMED, **(hints or {})}, open)


# ── durations ────────────────────────────────────────────────────────────────

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")


def parse_duration(value: Any) -> float:
    """Seconds in a protobuf Duration as YAML holds it: ``"15s"``, ``"0.5s"``,
    ``"100ms"``, ``"1m30s"`` or ``{seconds: 1, nanos: 500000000}``.

    Raises ``ValueError`` with a message a learner can act on.
    """
    if isinstance(value, Mapping):
        unknown = set(value) - {"seconds", "nanos"}
        if unknown:
            raise ValueError(f"a duration object has only seconds and nanos, not {', '.join(sorted(unknown))}")
        seconds, nanos = value.get("seconds", 0) or 0, value.get("nanos", 0) or 0
        if isinstance(seconds, str) and seconds.isdigit():
            seconds = int(seconds)  # protobuf JSON writes int64 seconds as a string
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (seconds, nanos)):
            raise ValueError("seconds and nanos must be whole numbers")
        total = seconds + nanos / 1e9
    elif isinstance(value, str) and value.strip():
        text, total, pos = value.strip(), 0.0, 0
        for m in _DURATION_PART.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or pos == 0:
            raise ValueError(f'"{value}" is not a duration: write e.g. "15s", "0.5s" or "100ms"')
    else:
        hint = f' (write "{value}s")' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
        raise ValueError(f'expected a duration such as "15s" or "100ms", got {shown(value)}{hint}')
    if total < 0:
        raise ValueError("a duration cannot be negative")
    return total


class Duration(Node):
    def check(self, value: Any, path: str, found: Found) -> None:
        try:
            parse_duration(value)
        except ValueError as e:
            found.error(path, str(e))


class ParamTemplate(Node):
    """A REST parameter template such as ``/findPetWithId/{id}``."""

    def check(self, value: Any, path: str, found: Found) -> None:
        STR.check(value, path, found)
        if isinstance(value, str):
            try:
                compile_parameter(value)
            except re.error as e:
                found.error(path, f'invalid parameter template "{value}": {e}')


# ── rules that look at several fields of one object ──────────────────────────


def _weights(value: Mapping[str, Any], path: str, found: Found) -> None:
    # Gloo: "Weighted Destinations require a total weight that is greater than or
    # equal to 1" (a listener with such a route would be invalid in Envoy).
    dests = value.get("destinations")
    if not isinstance(dests, list):
        return
    if not dests:
        found.error(at(path, "destinations"), "at least one weighted destination is required")
        return
    weights = [d.get("weight") or 0 for d in dests if isinstance(d, Mapping)]
    if all(isinstance(w, int) and not isinstance(w, bool) for w in weights) and sum(weights) < 1:
        found.error(at(path, "destinations"),
                    "Weighted Destinations require a total weight that is greater than or equal to 1")


def _regex_value(value: Mapping[str, Any], path: str, found: Found) -> None:
    # With `regex: true` the value is a regex that must match the whole value.
    if value.get("regex") is True and isinstance(value.get("value"), str):
        compile_regex(value["value"], at(path, "value"), found)


def _methods(value: Mapping[str, Any], path: str, found: Found) -> None:
    methods = value.get("methods")
    for i, m in enumerate(methods if isinstance(methods, list) else []):
        if isinstance(m, str) and m != m.upper():
            found.warn(f"{at(path, 'methods')}[{i}]", f'HTTP methods are case-sensitive: "{m}" never matches; write "{m.upper()}"')


def _delay(value: Mapping[str, Any], path: str, found: Found) -> None:
    try:
        seconds = parse_duration(value.get("fixedDelay") or "0s")
    except ValueError:
        return  # already reported by the Duration node
    if seconds < 1:
        found.error(at(path, "fixedDelay"), f"a fault delay must be at least 1s, got {seconds:g}s "
                    "(Gloo rejects shorter delays)")


def _header_key(value: Mapping[str, Any], path: str, found: Found) -> None:
    key = value.get("key")
    if isinstance(key, str) and (key.startswith(":") or key.lower() == "host"):
        found.error(at(path, "key"), f'"{key}" cannot be added: pseudo-headers and host are set by the proxy')


_RETRY_ON = {"5xx", "gateway-error", "reset", "connect-failure", "retriable-status-codes",
             "retriable-4xx", "refused-stream", "retriable-headers", "envoy-ratelimited",
             "http3-post-connect-failure", "reset-before-request"}


def _retry_on(value: Mapping[str, Any], path: str, found: Found) -> None:
    text = value.get("retryOn")
    if not isinstance(text, str) or not text.strip():
        found.warn(at(path, "retryOn"), 'no retry conditions: nothing is retried (e.g. "5xx,connect-failure")')
        return
    for cond in (c.strip() for c in text.split(",")):
        if cond and cond not in _RETRY_ON:
            found.warn(at(path, "retryOn"), f'"{cond}" is not a retry condition Envoy knows; ignored')


def _unique_domains(value: Mapping[str, Any], path: str, found: Found) -> None:
    domains = value.get("domains")
    seen: set[str] = set()
    for d in domains if isinstance(domains, list) else []:
        if isinstance(d, str):
            if d.lower() in seen:
                found.error(at(path, "domains"), f'domain "{d}" is listed twice')
            seen.add(d.lower())


# ── Gloo Edge 1.x resources (only the fields coalmine needs are checked deeply) ──

_REF = GlooObj({"name": STR, "namespace": STR}, required=("name",))
_TRANSFORMATION = GlooObj({"headers": MapOf(GlooObj({"text": STR})), "body": GlooObj({"text": STR}, open=True)}, open=True)
_SERVICE_SPEC = GlooObj({
    "rest": GlooObj({"transformations": MapOf(_TRANSFORMATION), "swaggerInfo": Anything()}),
    "grpc": Ignored(), "grpcJsonTranscoder": Ignored(), "graphql": Ignored(), "any": Ignored(),
})
_REST = GlooObj({
    "functionName": STR,
    "parameters": GlooObj({"headers": MapOf(ParamTemplate()), "path": ParamTemplate()}),
    "responseTransformation": Ignored(),
}, required=("functionName",))
_DESTINATION = GlooObj({
    "upstream": _REF,
    "kube": GlooObj({"ref": _REF, "port": Scalar("int", 1, 65535)}, required=("ref", "port")),
    "consul": Refused("route to an `upstream` or a `kube` Service instead"),
    "destinationSpec": GlooObj({"rest": _REST, "aws": Refused(), "azure": Refused(), "grpc": Refused()}),
    "subset": Ignored("subsets are not supported by the local runtime; the whole upstream is used"),
}, rules=(one_of(("upstream", "kube", "consul"), "a destination needs `upstream: {name, namespace}` or `kube: {ref, port}`"),))
_WEIGHTED = GlooObj({"destination": _DESTINATION, "weight": UINT, "options": Ignored()}, required=("destination",))
_MULTI = GlooObj({"destinations": ListOf(_WEIGHTED)}, required=("destinations",), rules=(_weights,))

_HEADER_VALUE = GlooObj({"header": GlooObj({"key": STR, "value": STR}, required=("key",), rules=(_header_key,)),
                     "append": BOOL, "headerSecretRef": Refused("put the value in `header.value`")},
                    required=("header",))
_HEADERS = GlooObj({"requestHeadersToAdd": ListOf(_HEADER_VALUE), "requestHeadersToRemove": ListOf(STR),
                "responseHeadersToAdd": ListOf(_HEADER_VALUE), "responseHeadersToRemove": ListOf(STR)})
_RETRIES = GlooObj({"retryOn": STR, "numRetries": UINT, "perTryTimeout": Duration(),
                "retriableStatusCodes": ListOf(Scalar("int", 100, 599)),
                "retryBackOff": Ignored(), "previousPriorities": Ignored()}, rules=(_retry_on,))
_FAULTS = GlooObj({
    "abort": GlooObj({"percentage": Scalar("number", 0, 100), "httpStatus": Scalar("int", 200, 599)},
                 required=("httpStatus",)),
    "delay": GlooObj({"percentage": Scalar("number", 0, 100), "fixedDelay": Duration()}, rules=(_delay,)),
})

# Real Gloo options the local runtime does not implement: accepted with a warning.
ROUTE_OPTIONS_IGNORED = (
    "transformations", "extensions", "tracing", "shadowing", "hostRewrite", "autoHostRewrite",
    "hostRewritePathRegex", "hostRewriteHeader", "appendXForwardedHost", "cors", "lbHash", "upgrades",
    "ratelimitBasic", "ratelimitEarly", "rateLimitEarlyConfigs", "ratelimit", "rateLimitConfigs",
    "ratelimitRegular", "rateLimitRegularConfigs", "waf", "jwt", "jwtStaged", "jwtProvidersStaged",
    "rbac", "extauth", "dlp", "bufferPerRoute", "csrf", "stagedTransformations", "envoyMetadata",
    "regexRewrite", "maxStreamDuration", "idleTimeout", "extProc", "ai",
)
VHOST_OPTIONS_IGNORED = (
    "extensions", "retries", "stats", "cors", "transformations", "ratelimitBasic", "ratelimitEarly",
    "rateLimitEarlyConfigs", "ratelimit", "rateLimitConfigs", "ratelimitRegular", "rateLimitRegularConfigs",
    "waf", "jwt", "jwtStaged", "rbac", "extauth", "dlp", "bufferPerRoute", "csrf",
    "includeRequestAttemptCount", "includeAttemptCountInResponse", "stagedTransformations", "extProc",
    "corsPolicyMergeSettings",
)
ROUTE_OPTIONS = GlooObj({
    "prefixRewrite": STR, "timeout": Duration(), "retries": _RETRIES, "faults": _FAULTS,
    "headerManipulation": _HEADERS, **{name: Ignored() for name in ROUTE_OPTIONS_IGNORED},
})
_VHOST_OPTIONS = GlooObj({"headerManipulation": _HEADERS, **{name: Ignored() for name in VHOST_OPTIONS_IGNORED}})

_MATCHER = GlooObj({
    "prefix": STR, "exact": STR, "regex": Regex(), "caseSensitive": BOOL,
    "connectMatcher": Refused("CONNECT requests are not proxied locally"),
    "headers": ListOf(GlooObj({"name": STR, "value": STR, "regex": BOOL, "invertMatch": BOOL},
                          required=("name",), rules=(_regex_value,))),
    "queryParameters": ListOf(GlooObj({"name": STR, "value": STR, "regex": BOOL},
                                  required=("name",), rules=(_regex_value,))),
    "methods": ListOf(STR),
}, rules=(one_of(("prefix", "exact", "regex", "connectMatcher")), _methods))

ACTIONS = ("routeAction", "directResponseAction", "redirectAction", "delegateAction", "graphqlApiRef")
_ROUTE = GlooObj({
    "matchers": ListOf(_MATCHER),
    "inheritableMatchers": BOOL, "inheritablePathMatchers": BOOL,
    "routeAction": GlooObj({
        "single": _DESTINATION, "multi": _MULTI, "upstreamGroup": _REF,
        "clusterHeader": Refused("name the upstream in `single` or `multi`"),
        "dynamicForwardProxy": Refused(),
    }, rules=(one_of(("single", "multi", "upstreamGroup", "clusterHeader", "dynamicForwardProxy"),
                     "routeAction needs one of single, multi or upstreamGroup"),)),
    "directResponseAction": GlooObj({"status": Scalar("int", 100, 599), "body": STR}, required=("status",)),
    "redirectAction": GlooObj({
        "hostRedirect": STR, "pathRedirect": STR, "prefixRewrite": STR, "httpsRedirect": BOOL,
        "responseCode": Scalar("string", choices=tuple(REDIRECT_CODES)),
        "stripQuery": Ignored(), "portRedirect": Ignored(), "regexRewrite": Ignored(),
    }, rules=(one_of(("pathRedirect", "prefixRewrite", "regexRewrite")),)),
    "delegateAction": Refused("delegation to RouteTables is not implemented; put the routes in the VirtualService"),
    "graphqlApiRef": Refused(),
    "options": ROUTE_OPTIONS,
    "optionsConfigRefs": Ignored(),
    "name": STR,
}, rules=(one_of(ACTIONS, "route has no action: add routeAction, directResponseAction or redirectAction"),))

_METADATA = GlooObj({"name": STR, "namespace": STR, "labels": MapOf(STR), "annotations": MapOf(STR)},
                required=("name",), open=True)  # open: the API server adds uid, resourceVersion, ...


def _top(spec: Node) -> Obj:
    return GlooObj({"apiVersion": STR, "kind": STR, "metadata": _METADATA, "spec": spec, "status": Anything()},
               required=("metadata", "spec"))


_UPSTREAM_TYPES = ("kube", "static", "pipe", "aws", "azure", "consul", "awsEc2", "gcp")


def _upstream_type(value: Mapping[str, Any], path: str, found: Found) -> None:
    if "upstreamSpec" not in value:  # the 0.x spelling is already explained
        one_of(_UPSTREAM_TYPES, "an upstream needs a type: `kube: {serviceName, serviceNamespace, "
               "servicePort}` or `static: {hosts: [{addr, port}]}`")(value, path, found)


_UNSUPPORTED_TYPE = Refused("the local runtime serves `kube` and `static` upstreams")
_UPSTREAM_IGNORED = (
    "sslConfig", "circuitBreakers", "loadBalancerConfig", "connectionConfig", "healthChecks",
    "outlierDetection", "useHttp2", "failover", "initialStreamWindowSize", "initialConnectionWindowSize",
    "maxConcurrentStreams", "httpProxyHostname", "httpConnectSslConfig", "httpConnectHeaders",
    "ignoreHealthOnHostRemoval", "respectDnsTtl", "dnsRefreshRate", "proxyProtocolVersion",
    "preconnectPolicy", "protocolSelection", "overrideStreamErrorOnInvalidHttpMessage",
)
SCHEMAS: dict[str, Obj] = {
    "VirtualService": _top(GlooObj({
        "virtualHost": GlooObj({
            "domains": ListOf(STR), "routes": ListOf(_ROUTE), "options": _VHOST_OPTIONS,
            "optionsConfigRefs": Ignored(),
        }, rules=(_unique_domains,), hints={"name": "virtualHost.name was removed in Gloo 1.x; delete it"}),
        "displayName": STR, "sslConfig": Ignored("TLS is not served by the local gateway; ignored"),
        "metadata": Anything(), "namespacedStatuses": Anything(),
    }, required=("virtualHost",))),
    "Upstream": _top(GlooObj({
        "kube": GlooObj({"serviceName": STR, "serviceNamespace": STR, "servicePort": Scalar("int", 1, 65535),
                     "selector": MapOf(STR), "serviceSpec": _SERVICE_SPEC, "subsetSpec": Ignored()},
                    required=("serviceName", "servicePort")),
        "static": GlooObj({"hosts": ListOf(GlooObj({"addr": STR, "port": Scalar("int", 1, 65535),
                                            "sniAddr": Anything(), "loadBalancingWeight": Ignored(),
                                            "healthCheckConfig": Ignored(), "metadata": Anything()},
                                           required=("addr", "port"))),
                       "useTls": Ignored("TLS to upstreams is not supported locally; ignored"),
                       "serviceSpec": _SERVICE_SPEC, "autoSniRewrite": Anything()}, required=("hosts",)),
        **{t: _UNSUPPORTED_TYPE for t in _UPSTREAM_TYPES[2:]},
        "discoveryMetadata": Anything(), "namespacedStatuses": Anything(),
        **{name: Ignored() for name in _UPSTREAM_IGNORED},
    }, rules=(_upstream_type,))),
    "UpstreamGroup": _top(GlooObj({"destinations": ListOf(_WEIGHTED), "namespacedStatuses": Anything()},
                              required=("destinations",), rules=(_weights,))),
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
            found.error("kind", f'{kind} is not supported by the local runtime (it serves '
                        f'{", ".join(SCHEMAS)})')
        return found
    if api_version != API_VERSIONS[str(kind)]:
        found.error("apiVersion", f'{kind} is "{API_VERSIONS[str(kind)]}", not "{api_version}"')
    schema.check(resource, "", found)
    return found


def validate(resource: Any) -> list[str]:
    """Schema errors of ONE resource alone (unknown fields, wrong types, bad regex,
    ...), as the API server and Gloo's webhook would refuse it. Empty when fine.

    >>> validate({"apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
    ...           "metadata": {"name": "x"}, "spec": {"upstreamSpec": {}}})[0]
    'spec.upstreamSpec: unknown field; fields moved under `spec` in Gloo 1.x (e.g. `spec.kube`, not `spec.upstreamSpec.kube`)'
    """
    return check(resource).errors
