"""What a Canary may say in the local runtime, checked as Flagger's CRD checks it.

On a cluster the API server checks a Canary against Flagger's CRD
(artifacts/flagger/crd.yaml, 1.44: types, enums, required fields, the duration
pattern ``^[0-9]+(m|s)``), with strict field validation refusing unknown fields.
``check_canary`` does the same for one Canary and adds what the local runtime
cannot honour: it refuses (one line naming the field) what would change the
analysis (a provider other than gloo and gatewayapi:v1, inline PromQL queries:
MetricTemplates carry them here) and warns about known Flagger fields it ignores.
A gatewayapi:v1 Canary is checked by ``gatewayschema``'s variant of the schema (its
``service`` fields). It also refuses what Flagger would accept but never progress
with (weights outside 0-100, decreasing ``stepWeights``, ``min`` above ``max``),
saying so. Durations are read as Go's time.ParseDuration (``runtime.durations``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from helpers.durations import parse_duration
from helpers.kinds import FLAGGER_V1BETA1
from helpers.runtime import regex
from helpers.runtime.flagger import gatewayschema
from helpers.runtime.flagger.httproutes import PROVIDER as GATEWAY_API
from helpers.runtime.flagger.templateschema import check_metric_template, flagger_object
from helpers.runtime.schema import (
    BOOL,
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
    at,
    compile_regex,
    one_of,
    shown,
)

BUILTIN_METRICS = ("request-success-rate", "request-duration")
PROVIDERS = tuple(
    "apisix appmesh appmesh:v1beta2 contour gatewayapi:v1 gatewayapi:v1beta1 gloo istio knative kubernetes "
    "kuma linkerd nginx osm skipper smi:v1alpha1 smi:v1alpha2 smi:v1alpha3 traefik".split()
)
HOOK_TYPES = (
    "",
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-promotion",
    "post-rollout",
    "event",
    "rollback",
    "confirm-traffic-increase",
)

_CRD_DURATION = regex.compile(r"[0-9]+(m|s).*")  # the CRD's pattern, unanchored at the end as written


class Duration(Node):
    """A duration as the CRD's pattern and Go accept it; at least ``low`` seconds."""

    def __init__(self, low: float = 0.0) -> None:
        self.low = low

    def check(self, value: Any, path: str, found: Found) -> None:
        if not isinstance(value, str):
            return found.error(path, f'expected a duration such as "10s" or "1m", got {shown(value)}')
        if not _CRD_DURATION.fullmatch(value):
            return found.error(path, f'"{value}" must start with whole seconds or minutes, e.g. "10s", "1m" or "1m30s"')
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            return found.error(path, str(e))
        if seconds < self.low:
            found.error(path, f'"{value}" is too short: it must be at least {self.low:g}s')
        return None


class Url(Node):
    def check(self, value: Any, path: str, found: Found) -> None:
        STR.check(value, path, found)
        if isinstance(value, str):
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                found.error(path, f'"{value}" is not an http:// URL, e.g. http://flagger-loadtester.test/')


class HookType(Node):
    def check(self, value: Any, path: str, found: Found) -> None:
        STR.check(value, path, found)
        if isinstance(value, str) and value not in HOOK_TYPES:
            found.error(path, f'"{value}" is not one of {", ".join(HOOK_TYPES[1:])} (no type means rollout)')


def _percent() -> Scalar:
    return Scalar("int", 0, 100)


_GLOO_UNUSED = "not used by Flagger's gloo provider; ignored (on a cluster too)"
_LOCAL_UNUSED = "not supported by the local runtime; ignored"


LOCAL_PROVIDERS = ("gloo", GATEWAY_API)


def _provider(value: Mapping[str, Any], path: str, found: Found) -> None:
    provider = value.get("provider")
    if provider == "gatewayapi:v1beta1":
        found.error(
            at(path, "provider"),
            '"gatewayapi:v1beta1" writes v1beta1 HTTPRoutes, for Gateway API CRDs older than v1.0; '
            "the local runtime serves gateway.networking.k8s.io/v1: use gatewayapi:v1",
        )
    elif isinstance(provider, str) and provider in PROVIDERS and provider not in LOCAL_PROVIDERS:
        found.error(
            at(path, "provider"),
            f'"{provider}": the local runtime\'s Flagger supports provider gloo (after `coalmine install gloo`) '
            "and gatewayapi:v1 (after `coalmine install kgateway`)",
        )


def _target(value: Mapping[str, Any], path: str, found: Found) -> None:
    kind, version = value.get("kind"), value.get("apiVersion")
    if kind in ("DaemonSet", "Service") or (kind == "Deployment" and version not in (None, "apps/v1")):
        found.error(path, f"{version}/{kind}: the local runtime's Flagger targets Deployments (apiVersion apps/v1)")


def _service_name(value: Mapping[str, Any], path: str, found: Found) -> None:
    target = ((value.get("targetRef") or {}) if isinstance(value.get("targetRef"), Mapping) else {}).get("name")
    service = value.get("service")
    name = service.get("name") if isinstance(service, Mapping) else None
    if name not in (None, "", target):
        found.error(
            at(at(path, "service"), "name"),
            f'"{name}": the local runtime names the generated Services and RouteTable after targetRef.name; remove it',
        )


def _steps(value: Mapping[str, Any], path: str, found: Found) -> None:
    steps = value.get("stepWeights")
    numbers = isinstance(steps, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in steps)
    if numbers and isinstance(steps, list) and any(b <= a for a, b in itertools.pairwise(steps)):
        found.error(at(path, "stepWeights"), f"{steps} must increase: each step a higher canary weight than the last")
    if steps and value.get("stepWeight"):
        found.warn(at(path, "stepWeights"), "ignored while stepWeight is set (as Flagger does)")
    if not (value.get("stepWeight") or steps or value.get("iterations")):
        found.warn(path, "no stepWeight, stepWeights or iterations: Flagger never shifts traffic to the canary")


def _range(value: Mapping[str, Any], path: str, found: Found) -> None:
    low, high = value.get("min"), value.get("max")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
        found.error(path, f"min {low:g} is above max {high:g}: every check would fail")


def _metric(value: Mapping[str, Any], path: str, found: Found) -> None:
    name = value.get("name")
    if "templateRef" in value:
        if not value.get("interval"):
            found.warn(
                at(path, "interval"),
                "missing: Flagger renders the template's {{ interval }} empty (only built-in checks default to 1m)",
            )
        if "thresholdRange" not in value:
            found.warn(path, "no thresholdRange: Flagger fails this check whenever the query returns more than 0")
        return
    if value.get("templateVariables"):
        found.warn(at(path, "templateVariables"), "used by MetricTemplates only; ignored")
    if "query" in value:
        return
    if isinstance(name, str) and name not in BUILTIN_METRICS:
        found.error(
            at(path, "name"),
            f'"{name}" is not a built-in metric: the local runtime has {" and ".join(BUILTIN_METRICS)}',
        )
    elif "thresholdRange" not in value and "threshold" not in value:
        found.warn(path, "no thresholdRange: this check fails only when the canary gets no traffic")


def _header_match(value: Mapping[str, Any], path: str, found: Found) -> None:
    if isinstance(value.get("regex"), str):
        compile_regex(value["regex"], at(path, "regex"), found)
    for how in ("prefix", "suffix"):
        if how in value:
            found.warn(
                at(path, how),
                "Flagger's gloo provider passes only exact and regex on: the route matches any request "
                "carrying this header (on a cluster too)",
            )


_METRIC = Obj(
    {
        "name": STR,
        "interval": Duration(),
        "thresholdRange": Obj({"min": Scalar("number"), "max": Scalar("number")}, rules=(_range,)),
        "threshold": Refused("deprecated in Flagger; use thresholdRange (min for success rate, max for duration)"),
        "query": Refused(
            "inline PromQL runs on Flagger's global metrics server; put the query in a MetricTemplate "
            "(provider prometheus) and name it in templateRef"
        ),
        "templateRef": Obj({"name": STR, "namespace": STR}, required=("name",)),
        "templateVariables": MapOf(STR),
    },
    required=("name",),
    rules=(_metric,),
)
_WEBHOOK = Obj(
    {
        "name": STR,
        "type": HookType(),
        "url": Url(),
        "timeout": Duration(),
        "retries": Scalar("int", 0),
        "metadata": MapOf(STR),
        "muteAlert": BOOL,
        "disableTLS": BOOL,
    },
    required=("name", "url"),
)
_HEADER = Obj(
    {"exact": STR, "prefix": STR, "suffix": STR, "regex": STR},
    rules=(
        one_of(("exact", "prefix", "suffix", "regex"), "a header match needs one of exact, prefix, suffix or regex"),
        _header_match,
    ),
)
_ANALYSIS = Obj(
    {
        "interval": Duration(low=1.0),
        "iterations": Scalar("int", 0),
        "threshold": Scalar("int", 0),
        "maxWeight": _percent(),
        "stepWeight": _percent(),
        "stepWeights": ListOf(Scalar("int", 1, 100)),
        "stepWeightPromotion": _percent(),
        "match": ListOf(
            Obj(
                {"headers": MapOf(_HEADER), "queryParams": Ignored(_GLOO_UNUSED), "sourceLabels": Ignored(_GLOO_UNUSED)}
            )
        ),
        "metrics": ListOf(_METRIC),
        "webhooks": ListOf(_WEBHOOK),
        "mirror": Ignored(_GLOO_UNUSED),
        "mirrorWeight": Ignored(_GLOO_UNUSED),
        "sessionAffinity": Ignored(_GLOO_UNUSED),
        "primaryReadyThreshold": Ignored("the local runtime waits for every replica (100%); ignored"),
        "canaryReadyThreshold": Ignored("the local runtime waits for every replica (100%); ignored"),
        "alerts": Ignored("alerts are not sent by the local runtime; ignored (an `event` webhook sees every event)"),
    },
    rules=(_steps,),
)


def _target_port(service: Mapping[str, Any], path: str, found: Found) -> None:
    value, path = service.get("targetPort"), at(path, "targetPort")
    if value is None:
        return
    if isinstance(value, str):
        if not value:
            found.error(path, "must not be empty: a port number or a container port name")
        return
    Scalar("int", 1, 65535).check(value, path, found)


_SERVICE = Obj(
    {
        "port": Scalar("int", 1, 65535),
        "targetPort": Anything(),  # int or port name: checked by _target_port
        "name": STR,
        "portName": STR,
        **{f: Ignored(_LOCAL_UNUSED) for f in "appProtocol trafficDistribution portDiscovery headless".split()},
        **{f: Ignored(_LOCAL_UNUSED) for f in "apex primary canary unmanagedMetadata".split()},
        **{
            f: Ignored(_GLOO_UNUSED)
            for f in (
                "timeout backendTimeout meshName backends hosts delegation match retries rewrite mirror headers "
                "gateways gatewayRefs corsPolicy trafficPolicy"
            ).split()
        },
    },
    required=("port",),
    rules=(_target_port,),
)


_SPEC = Obj(
    {
        "provider": Scalar("string", choices=PROVIDERS),
        "targetRef": Obj(
            {"apiVersion": STR, "kind": Scalar("string", choices=("DaemonSet", "Deployment", "Service")), "name": STR},
            required=("apiVersion", "kind", "name"),
            rules=(_target,),
        ),
        "service": _SERVICE,
        "analysis": _ANALYSIS,
        "progressDeadlineSeconds": Scalar("int", 0, 2147483647),
        "skipAnalysis": BOOL,
        "suspend": BOOL,
        "metricsServer": Ignored("the local runtime reads the gateway's own stats, not Prometheus; ignored"),
        "autoscalerRef": Ignored("no autoscalers in the local runtime; ignored"),
        "ingressRef": Ignored("used by the nginx provider only; ignored"),
        "routeRef": Ignored("used by the apisix provider only; ignored"),
        "upstreamRef": Ignored("the local runtime does not copy an Upstream's settings into Flagger's; ignored"),
        "revertOnDeletion": Ignored(_LOCAL_UNUSED),
    },
    required=("targetRef", "service", "analysis"),
    rules=(_provider, _service_name),
    hints={"canaryAnalysis": "spec.canaryAnalysis was renamed spec.analysis in Flagger's v1beta1"},
)
_CANARY = flagger_object(_SPEC)


def check_canary(obj: Any) -> tuple[list[str], list[str]]:
    """(errors, warnings) of one Canary: errors refuse it, warnings name the fields
    the local runtime accepts and ignores. Each message starts with the field path.
    A MetricTemplate (every Flagger kind comes here) is checked by ``templateschema``.
    """
    if isinstance(obj, Mapping) and obj.get("kind") == "MetricTemplate":
        return check_metric_template(obj)
    found = Found()
    if not isinstance(obj, Mapping):
        found.error("", f"expected an object (a YAML mapping), got {shown(obj)}")
        return found.errors, found.warnings
    spec = obj.get("spec")
    gateway_api = isinstance(spec, Mapping) and spec.get("provider") == GATEWAY_API
    if obj.get("apiVersion") != FLAGGER_V1BETA1:
        older = str(obj.get("apiVersion", "")).startswith("flagger.app/")
        hint = " (v1alpha3 is Flagger's older version of the same API)" if older else ""
        found.error("apiVersion", f'Canary is "{FLAGGER_V1BETA1}", not "{obj.get("apiVersion")}"{hint}')
    (_CANARY_GATEWAY_API if gateway_api else _CANARY).check(obj, "", found)
    if gateway_api and not found.errors:
        gatewayschema.check_route(obj, found)
    return found.errors, found.warnings


_CANARY_GATEWAY_API = gatewayschema.variant(_CANARY)
