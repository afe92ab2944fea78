"""The HTTPRoute Flagger's Gateway API router writes (``provider: gatewayapi:v1``).

Flagger 1.44's ``GatewayAPIRouter`` (pkg/router/gateway_api.go) makes one HTTPRoute
per Canary, named after the apex Service, in the Canary's namespace:

- ``parentRefs``: ``service.gatewayRefs`` (the CRD's defaults: group
  ``gateway.networking.k8s.io``, kind ``Gateway``); ``hostnames``: ``service.hosts``;
- one rule matching ``service.match`` (else every path, ``PathPrefix /``), with the
  ``<apex>-primary`` and ``<apex>-canary`` Services as weighted backendRefs, filters from
  ``service.headers``, ``rewrite``, ``mirror`` and ``corsPolicy``, and ``timeouts``
  from ``service.timeout`` / ``backendTimeout`` (``service.retries`` is not copied);
- A/B testing (``analysis.match``): that rule's matches become every pair of an
  analysis match and a service match (the analysis match's headers and query
  parameters over the service match), and a second rule with the service matches
  sends the rest to the primary alone.

Setting weights rewrites the whole spec (``SetRoutes``); a refresh (``Reconcile``)
rewrites it only when it differs other than in the weights, and then at 100/0. The
weights are read back from the rule with two backendRefs (``GetRoutes``). Header
matches are sorted by name (Go's map order is random) so a refresh is stable.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from helpers.durations import parse_duration
from helpers.kinds import GATEWAY_NETWORKING_GROUP, GATEWAY_NETWORKING_V1
from helpers.runtime import regex
from helpers.runtime.flagger.objects import Names, owned_by, owner_reference

PROVIDER = "gatewayapi:v1"
# Flagger marks what it manages so Flux does not undo it (pkg/router/util.go).
FLUX_ANNOTATIONS = {
    "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
    "helm.toolkit.fluxcd.io/driftDetection": "disabled",
}
_INITIAL = (100, 0)


class MatchError(ValueError):
    """A request match the Gateway API cannot say (Flagger's words)."""


def _typed(kind: str, value: str) -> dict[str, str]:
    return {"type": kind, "value": value}


def route_matches(requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Istio-style ``match`` entries as HTTPRoute matches (Flagger's ``mapRouteMatches``):
    uri exact/prefix/regex, method exact, headers and query parameters exact/regex;
    an entry that says none of these is dropped."""
    found = []
    for request in requests:
        match: dict[str, Any] = {}
        uri = request.get("uri")
        if uri:
            for how, kind in (("regex", "RegularExpression"), ("exact", "Exact"), ("prefix", "PathPrefix")):
                if uri.get(how):
                    match["path"] = _typed(kind, str(uri[how]))
                    break
            else:
                raise MatchError(f"Gateway API doesn't support the specified path matching selector: {dict(uri)}")
        method = request.get("method")
        if method:
            if not method.get("exact"):
                raise MatchError(f"Gateway API doesn't support the specified method matching selector: {dict(method)}")
            match["method"] = str(method["exact"])
        for field, out in (("headers", "headers"), ("queryParams", "queryParams")):
            items = []
            for name, rule in sorted((request.get(field) or {}).items()):
                if rule.get("exact"):
                    items.append({"name": name, **_typed("Exact", str(rule["exact"]))})
                elif rule.get("regex"):
                    items.append({"name": name, **_typed("RegularExpression", str(rule["regex"]))})
                else:
                    raise MatchError(f"Gateway API doesn't support the specified {field} matching selector: {name}")
            if items:
                match[out] = items
        if match:
            found.append(match)
    return found


def merge_matches(analysis: list[dict[str, Any]], service: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every (analysis, service) pair: the service match with the analysis match's
    headers and query parameters in place of its own (``mergeMatchConditions``)."""
    if not analysis:
        return service
    if not service:
        return analysis
    merged = []
    for a in analysis:
        for s in service:
            one = copy.deepcopy(s)
            for field in ("headers", "queryParams"):
                if a.get(field):
                    one[field] = copy.deepcopy(a[field])
            merged.append(one)
    return merged


def _header_filter(kind: str, ops: Mapping[str, Any]) -> dict[str, Any]:
    modifier: dict[str, Any] = {}
    for op in ("add", "set"):
        if ops.get(op):
            modifier[op] = [{"name": k, "value": str(v)} for k, v in sorted(ops[op].items())]
    if ops.get("remove"):
        modifier["remove"] = list(ops["remove"])
    field = kind[0].lower() + kind[1:]
    return {"type": kind, field: modifier}


def _cors(policy: Mapping[str, Any]) -> dict[str, Any]:
    cors: dict[str, Any] = {}
    for source, target in (
        ("allowOrigin", "allowOrigins"),
        ("allowMethods", "allowMethods"),
        ("allowHeaders", "allowHeaders"),
        ("exposeHeaders", "exposeHeaders"),
    ):
        if policy.get(source):
            cors[target] = list(policy[source])
    if policy.get("allowCredentials"):
        cors["allowCredentials"] = True
    if policy.get("maxAge"):
        try:
            cors["maxAge"] = int(parse_duration(str(policy["maxAge"])))
        except ValueError:
            pass  # Flagger drops a maxAge Go cannot parse
    return cors


def filters(service: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rule's filters, in Flagger's order: request and response headers, the URL
    rewrite, each mirror, CORS (``makeFilters``)."""
    found = []
    headers = service.get("headers") or {}
    if headers.get("request") is not None:
        found.append(_header_filter("RequestHeaderModifier", headers["request"]))
    if headers.get("response") is not None:
        found.append(_header_filter("ResponseHeaderModifier", headers["response"]))
    rewrite = service.get("rewrite")
    if rewrite is not None:
        url: dict[str, Any] = {}
        if rewrite.get("authority"):
            url["hostname"] = rewrite["authority"]
        if rewrite.get("uri"):
            if rewrite.get("type") == "ReplacePrefixMatch":
                url["path"] = {"type": "ReplacePrefixMatch", "replacePrefixMatch": rewrite["uri"]}
            else:
                url["path"] = {"type": "ReplaceFullPath", "replaceFullPath": rewrite["uri"]}
        found.append({"type": "URLRewrite", "urlRewrite": url})
    for mirror in service.get("mirror") or []:
        found.append({"type": "RequestMirror", "requestMirror": {"backendRef": dict(mirror.get("backendRef") or {})}})
    if service.get("corsPolicy") is not None:
        found.append({"type": "CORS", "cors": _cors(service["corsPolicy"])})
    return found


def parent_refs(gateway_refs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``service.gatewayRefs`` as the route's parentRefs, with the CRD's defaults."""
    return [{"group": GATEWAY_NETWORKING_GROUP, "kind": "Gateway", **dict(ref)} for ref in gateway_refs]


def backend_ref(name: str, weight: int, port: int) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": name, "port": port, "weight": weight}


def route_spec(canary: Mapping[str, Any], primary_weight: int, canary_weight: int) -> dict[str, Any]:
    """The HTTPRoute's spec with ``primary_weight``/``canary_weight`` on the weighted rule.

    Raises ``MatchError`` when ``service.match`` cannot be said in the Gateway API (the
    Canary's schema refuses it first)."""
    names = Names.of(canary)
    spec = canary.get("spec") or {}
    service = spec.get("service") or {}
    matches = route_matches(service.get("match") or []) or [{"path": _typed("PathPrefix", "/")}]

    def rule(backends: list[dict[str, Any]], rule_matches: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"matches": copy.deepcopy(rule_matches)}
        found = filters(service)
        if found:
            out["filters"] = found
        out["backendRefs"] = backends
        if service.get("timeout") or service.get("backendTimeout"):
            timeouts = {"request": service.get("timeout"), "backendRequest": service.get("backendTimeout")}
            out["timeouts"] = {k: v for k, v in timeouts.items() if v}
        return out

    weighted = [
        backend_ref(names.primary, primary_weight, names.port),
        backend_ref(names.canary, canary_weight, names.port),
    ]
    rules = [rule(weighted, matches)]
    analysis_match = (spec.get("analysis") or {}).get("match") or []
    if analysis_match:
        try:
            ab = route_matches(analysis_match)
        except MatchError:
            ab = []  # Flagger ignores the error here: the rule keeps the service matches
        rules[0]["matches"] = merge_matches(ab, matches)
        rules.append(rule([backend_ref(names.primary, 100, names.port)], matches))
    out: dict[str, Any] = {"parentRefs": parent_refs(service.get("gatewayRefs") or [])}
    if service.get("hosts"):
        out["hostnames"] = list(service["hosts"])
    out["rules"] = rules
    return out


def _metadata(canary: Mapping[str, Any], existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """New: the apex's labels and annotations, owned by the Canary. Existing: its own
    metadata with the apex's labels and the annotations merged in (Flagger keeps other
    controllers' annotations, and never adds an owner to a route it did not create)."""
    names = Names.of(canary)
    apex = ((canary.get("spec") or {}).get("service") or {}).get("apex") or {}
    labels = dict(apex.get("labels") or {})
    annotations = {**(apex.get("annotations") or {}), **FLUX_ANNOTATIONS}
    if existing is None:
        meta: dict[str, Any] = {"name": names.apex, "namespace": names.namespace}
        if labels:
            meta["labels"] = labels
        meta["annotations"] = annotations
        meta["ownerReferences"] = [owner_reference(canary)]
        return meta
    meta = copy.deepcopy(dict(existing.get("metadata") or {}))
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    meta.pop("labels", None)
    if labels:
        meta["labels"] = labels
    if owned_by(existing, canary):
        meta["ownerReferences"] = [owner_reference(canary)]
    return meta


def http_route(
    canary: Mapping[str, Any], primary_weight: int, canary_weight: int, existing: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The HTTPRoute ``<apex>`` with the given weights (``SetRoutes``); ``existing``
    is the route already in the store, whose metadata Flagger updates in place."""
    return {
        "apiVersion": GATEWAY_NETWORKING_V1,
        "kind": "HTTPRoute",
        "metadata": _metadata(canary, existing),
        "spec": route_spec(canary, primary_weight, canary_weight),
    }


def _without_weights(spec: Any) -> Any:
    if isinstance(spec, Mapping):
        return {k: _without_weights(v) for k, v in spec.items() if k != "weight" and v not in (None, [], {})}
    if isinstance(spec, list):
        return [_without_weights(v) for v in spec]
    return spec


def reconciled(canary: Mapping[str, Any], existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """The route a refresh writes (``Reconcile``): the current one when only its weights
    differ from what the Canary says, else the Canary's at 100/0."""
    if existing is not None:
        current = weights(existing, canary)
        if current is not None and _without_weights(existing.get("spec")) == _without_weights(
            route_spec(canary, *_INITIAL)
        ):
            return http_route(canary, *current, existing=existing)
    return http_route(canary, *_INITIAL, existing=existing)


def weights(route: Mapping[str, Any], canary: Mapping[str, Any]) -> tuple[int, int] | None:
    """(primary, canary) weights of the rule with two backendRefs (``GetRoutes``);
    None when the route has no such rule."""
    names = Names.of(canary)
    found = None
    for rule in (route.get("spec") or {}).get("rules") or []:
        refs = rule.get("backendRefs") or []
        if len(refs) == 2:
            by_name = {r.get("name"): int(r.get("weight", 1)) for r in refs}
            if names.primary in by_name and names.canary in by_name:
                found = (by_name[names.primary], by_name[names.canary])
    return found


def canary_cluster_pattern(namespace: str, target: str) -> str:
    """The regex (RE2) of the kgateway clusters of the canary Service, as the local
    gateway names them (``kube-svc:<namespace>-<service>-<port>``)."""
    return rf"kube-svc:{regex.escape(namespace)}-{regex.escape(target)}-canary-[0-9]+"
