"""The shape of a Gloo route, shared by VirtualServices and RouteTables.

Matchers, the four actions (``routeAction`` with its destinations, a direct response,
a redirect, a ``delegateAction``), and the route and virtual host ``options``, as
``Obj`` nodes of the schema engine (``runtime.schema``), so a message names the exact
field, e.g. ``spec.virtualHost.routes[2].routeAction.multi.destinations[0].weight``.
The resources that hold them are in ``schema``.
"""

from __future__ import annotations

from helpers.runtime.gloo.fields import (
    Duration,
    Enum,
    GlooObj,
    ParamTemplate,
    delay,
    header_key,
    methods,
    regex_value,
    retry_on,
    total_weight,
)
from helpers.runtime.gloo.selectors import DELEGATE_ACTION
from helpers.runtime.schema import BOOL, STR, UINT, Ignored, ListOf, MapOf, Obj, Refused, Regex, Scalar, one_of

REDIRECT_CODES = {
    "MOVED_PERMANENTLY": 301,
    "FOUND": 302,
    "SEE_OTHER": 303,
    "TEMPORARY_REDIRECT": 307,
    "PERMANENT_REDIRECT": 308,
}

# A destination's (or upstream group's) ref. Gloo does not require the name: without
# one, the upstream "<namespace>." is not found, a warning, and the route answers 503.
REF = GlooObj({"name": STR, "namespace": STR})
_DESTINATION_TYPES = ("upstream", "kube", "consul")


def _destination(in_group: bool) -> Obj:
    """A route's destination, or (``in_group``) an UpstreamGroup's.

    Gloo's webhook checks a route's (a destination type, a Service ref and port, a REST
    function name). Gloo 1.22.1's chart registers no webhook for UpstreamGroups: only
    the CRD's schema checks a group, and Gloo reports the rest in the group's status.
    """
    rest = GlooObj(
        {
            "functionName": STR,
            "parameters": GlooObj({"headers": MapOf(ParamTemplate()), "path": ParamTemplate()}),
            "responseTransformation": Ignored(),
        },
        required=() if in_group else ("functionName",),
    )
    # A group's kube port is the CRD's uint32: a port the Service lacks is "not found".
    port = UINT if in_group else Scalar("int", 1, 65535)
    kube = GlooObj({"ref": REF, "port": port}, required=() if in_group else ("ref", "port"))
    needed = None if in_group else "a destination needs `upstream: {name, namespace}` or `kube: {ref, port}`"
    return GlooObj(
        {
            "upstream": REF,
            "kube": kube,
            "consul": Refused("route to an `upstream` or a `kube` Service instead"),
            "destinationSpec": GlooObj({"rest": rest, "aws": Refused(), "azure": Refused(), "grpc": Refused()}),
            "subset": Ignored("subsets are not supported by the local runtime; the whole upstream is used"),
        },
        rules=(one_of(_DESTINATION_TYPES, needed),),
    )


_DESTINATION = _destination(in_group=False)
WEIGHTED = GlooObj({"destination": _DESTINATION, "weight": UINT, "options": Ignored()}, required=("destination",))
# An UpstreamGroup's destination: nothing beyond its CRD is refused (``groups``).
GROUP_WEIGHTED = GlooObj({"destination": _destination(in_group=True), "weight": UINT, "options": Ignored()})
_MULTI = GlooObj({"destinations": ListOf(WEIGHTED)}, required=("destinations",), rules=(total_weight,))

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
        "retriableStatusCodes": ListOf(UINT),
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
VHOST_OPTIONS = GlooObj({"headerManipulation": _HEADERS, **{name: Ignored() for name in VHOST_OPTIONS_IGNORED}})

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
ROUTE = GlooObj(
    {
        "matchers": ListOf(_MATCHER),
        "inheritableMatchers": BOOL,
        "inheritablePathMatchers": BOOL,
        "routeAction": GlooObj(
            {
                "single": _DESTINATION,
                "multi": _MULTI,
                "upstreamGroup": REF,
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
        # Envoy's DirectResponseAction takes a status from 200 to 599 (its proto's validation rule).
        "directResponseAction": GlooObj({"status": Scalar("int", 200, 599), "body": STR}, required=("status",)),
        "redirectAction": GlooObj(
            {
                "hostRedirect": STR,
                "pathRedirect": STR,
                "prefixRewrite": STR,
                "httpsRedirect": BOOL,
                "responseCode": Enum(tuple(REDIRECT_CODES)),
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
