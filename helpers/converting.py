"""Carry a Gloo VirtualService across to the Gateway API: one or more HTTPRoutes.

    result = convert(vs, upstreams=lab.objects("upstreams"))
    print(to_yaml(result.routes[0]))
    for warning in result.warnings: print(warning)

Much converts exactly: path, header, query and method matches, weighted destinations,
prefix rewrites, header manipulation, redirects, timeouts. What has no faithful
equivalent is converted as closely as it can be and comes with a warning that says what
changes: REST function destinations, first-match ordering that the Gateway API's
precedence rules would change, inverted or presence-only header matches, retries,
faults, direct responses. ``coalmine convert -f vs.yaml`` prints the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .precedence import ordering_changes

GATEWAY_API = "gateway.networking.k8s.io/v1"
DEFAULT_GATEWAY = "kgateway-system/http"
MAX_RULES = 16  # HTTPRoute.spec.rules maxItems
REDIRECT_CODES = {"MOVED_PERMANENTLY": 301, "FOUND": 302}
_TEMPLATE = re.compile(r"\{\{\s*default\((\w+),\s*\"\"\)\s*\}\}$")
_DISCOVERED = re.compile(r"^(?P<namespace>[a-z0-9]+)-(?P<service>[a-z0-9-]+)-(?P<port>\d+)$")


@dataclass
class Conversion:
    """The HTTPRoutes made from one VirtualService and a warning per difference."""

    routes: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Context:
    vs_name: str
    upstreams: dict[tuple[str, str], Mapping[str, Any]]
    groups: dict[tuple[str, str], Mapping[str, Any]]
    warnings: list[str]
    namespaces: set[str] = field(default_factory=set)

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{where}: {message}")


def convert(vs: Mapping[str, Any], upstreams: Iterable[Mapping[str, Any]] = (),
            upstream_groups: Iterable[Mapping[str, Any]] = (), gateway: str = DEFAULT_GATEWAY,
            namespace: str | None = None) -> Conversion:
    """HTTPRoute(s) attached to ``gateway`` ("namespace/name") that route like ``vs``.

    ``upstreams`` (and ``upstream_groups``) are looked up to find the Service behind each
    upstream; without them, discovered names (``default-petstore-v1-8080``) are read as
    namespace-service-port, with a warning. ``namespace`` is where the routes go
    (default: the namespace of their Services).
    """
    if vs.get("kind") != "VirtualService":
        raise ValueError(f"convert takes a VirtualService, not {vs.get('kind')!r}")
    meta = vs.get("metadata") or {}
    ctx = _Context(str(meta.get("name") or "virtualservice"),
                   {_key(u): u for u in upstreams}, {_key(g): g for g in upstream_groups}, [])
    host = (vs.get("spec") or {}).get("virtualHost") or {}
    rules: list[dict[str, Any]] = []
    for index, route in enumerate(host.get("routes") or []):
        rule = _rule(route, f"route {index} ({_describe(route)})", ctx)
        if rule is not None:
            rules.append(rule)
    for later, earlier, why in ordering_changes(rules):
        ctx.warn(later["_gloo_index"], f"in the VirtualService, {earlier['_gloo_index']} comes first and wins the "
                 f"requests both match; in the HTTPRoute this rule wins them ({why})")
    for rule in rules:
        rule.pop("_gloo_index", None)
    route_ns = namespace or (sorted(ctx.namespaces)[0] if len(ctx.namespaces) == 1 else meta.get("namespace")) \
        or "default"
    for rule in rules:
        for ref in rule.get("backendRefs") or []:
            if ref.get("namespace") == route_ns:
                del ref["namespace"]
            elif "namespace" in ref:
                ctx.warn("backendRefs", f"Service {ref['namespace']}/{ref['name']} is in another namespace than the "
                         f"route ({route_ns}): that namespace needs a ReferenceGrant allowing it")
    gw_ns, _, gw_name = gateway.rpartition("/")
    parent = {"name": gw_name, **({"namespace": gw_ns} if gw_ns else {})}
    hostnames = _hostnames(host.get("domains") or ["*"], ctx)
    chunks = [rules[i:i + MAX_RULES] for i in range(0, len(rules), MAX_RULES)] or [[]]
    if len(chunks) > 1:
        ctx.warn("routes", f"{len(rules)} rules split into {len(chunks)} HTTPRoutes (at most {MAX_RULES} rules "
                 "each); ties between them are broken by age, then name, not by list order")
    result = Conversion(warnings=list(dict.fromkeys(ctx.warnings)))  # each difference once
    for n, chunk in enumerate(chunks, start=1):
        name = ctx.vs_name if n == 1 else f"{ctx.vs_name}-{n}"
        spec: dict[str, Any] = {"parentRefs": [parent]}
        if hostnames:
            spec["hostnames"] = hostnames
        spec["rules"] = chunk
        result.routes.append({"apiVersion": GATEWAY_API, "kind": "HTTPRoute",
                              "metadata": {"name": name, "namespace": route_ns}, "spec": spec})
    return result


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or "gloo-system"), str(meta.get("name") or "")


def _describe(route: Mapping[str, Any]) -> str:
    matcher = (route.get("matchers") or [{}])[0]
    for kind in ("exact", "prefix", "regex"):
        if kind in matcher:
            return f"{kind} {matcher[kind]}"
    return "prefix /"


def _hostnames(domains: list[str], ctx: _Context) -> list[str]:
    names: list[str] = []
    for domain in domains:
        domain = str(domain)
        if domain == "*":
            return []  # no hostnames: every host the listener accepts
        host, _, port = domain.partition(":")
        if port:
            ctx.warn("domains", f'"{domain}": an HTTPRoute hostname has no port; the port is left to the listener')
        if "*" in host and not host.startswith("*."):
            ctx.warn("domains", f'"{domain}": only a leading "*." wildcard exists in the Gateway API; left out')
            continue
        if host not in names:
            names.append(host)
    return names


def _rule(route: Mapping[str, Any], where: str, ctx: _Context) -> dict[str, Any] | None:
    matches = [m for matcher in (route.get("matchers") or [{}]) for m in _matches(matcher, where, ctx)]
    rule: dict[str, Any] = {"_gloo_index": where, "matches": matches}
    options = route.get("options") or {}
    filters: list[dict[str, Any]] = []
    if "redirectAction" in route:
        filters.append(_redirect(route["redirectAction"], where, ctx))
    elif "routeAction" in route:
        action = route["routeAction"]
        refs = _backend_refs(action, where, ctx)
        if refs is None:
            return None
        rule["backendRefs"] = refs
        rewrite = _function_rewrite(action, matches, where, ctx)
        if "prefixRewrite" in options:
            rewrite = _prefix_rewrite(str(options["prefixRewrite"]), matches, where, ctx)
        if rewrite:
            filters.append({"type": "URLRewrite", "urlRewrite": {"path": rewrite}})
    else:
        what = "directResponseAction" if "directResponseAction" in route else "a route without an action"
        ctx.warn(where, f"{what} has no HTTPRoute equivalent; the route is left out")
        return None
    filters += _header_filters(options.get("headerManipulation") or {})
    if filters:
        rule["filters"] = filters
    if "timeout" in options:
        rule["timeouts"] = {"request": str(options["timeout"])}
    for option in sorted(set(options) - {"prefixRewrite", "headerManipulation", "timeout"}):
        ctx.warn(where, f"options.{option} has no equivalent in the HTTPRoute standard channel; left out "
                 "(kgateway offers some of these as policies)")
    return rule


def _matches(matcher: Mapping[str, Any], where: str, ctx: _Context) -> list[dict[str, Any]]:
    match: dict[str, Any] = {}
    if "exact" in matcher:
        match["path"] = {"type": "Exact", "value": matcher["exact"]}
    elif "regex" in matcher:
        match["path"] = {"type": "RegularExpression", "value": matcher["regex"]}
        ctx.warn(where, "a RegularExpression path is implementation-specific in the Gateway API; kgateway (Envoy) "
                 "matches the whole path with RE2, as Gloo does")
    else:
        prefix = str(matcher.get("prefix", "/"))
        value = prefix.rstrip("/") or "/"
        match["path"] = {"type": "PathPrefix", "value": value}
        if prefix != "/" and not prefix.endswith("/"):
            ctx.warn(where, f'prefix {prefix} also matches "{prefix}x..." in Gloo; PathPrefix {value} matches whole '
                     f'path segments only ({value} and {value}/...)')
        elif prefix != value:
            ctx.warn(where, f"PathPrefix {value} also matches {value} itself, which Gloo's prefix {prefix} does not")
    if matcher.get("caseSensitive") is False:
        ctx.warn(where, "caseSensitive: false has no equivalent; Gateway API paths match case-sensitively")
    headers = []
    for h in matcher.get("headers") or []:
        name = str(h.get("name"))
        if h.get("invertMatch"):
            ctx.warn(where, f"header {name} with invertMatch has no equivalent (no negative matches); left out, so "
                     "this rule now matches more requests")
            continue
        if "value" not in h or h.get("value") in (None, ""):
            headers.append({"type": "RegularExpression", "name": name, "value": ".*"})
            ctx.warn(where, f'header {name} "is present" is written as a RegularExpression ".*"; support for '
                     "RegularExpression header matches is implementation-specific")
        elif h.get("regex"):
            headers.append({"type": "RegularExpression", "name": name, "value": str(h["value"])})
            ctx.warn(where, f"header {name} regex: the Gateway API ranks a regex header match like an exact one when "
                     "it orders rules, and its support is implementation-specific")
        else:
            headers.append({"name": name, "value": str(h["value"])})
    if headers:
        match["headers"] = headers
    params = []
    for q in matcher.get("queryParameters") or []:
        kind = {"type": "RegularExpression"} if q.get("regex") else {}
        params.append({**kind, "name": str(q.get("name")), "value": str(q.get("value", ""))})
    if params:
        match["queryParams"] = params
    methods = [str(m).upper() for m in matcher.get("methods") or []]
    # One method per HTTPRouteMatch; matches are ORed, so a list becomes one match per method.
    return [{**match, "method": m} for m in methods] if methods else [match]


def _backend_refs(action: Mapping[str, Any], where: str, ctx: _Context) -> list[dict[str, Any]] | None:
    if "single" in action:
        pairs = [(action["single"], None)]
    elif "multi" in action:
        pairs = [(d.get("destination") or {}, int(d.get("weight", 0) or 0))
                 for d in (action["multi"].get("destinations") or [])]
    elif "upstreamGroup" in action:
        ref = action["upstreamGroup"]
        group = ctx.groups.get((str(ref.get("namespace") or "gloo-system"), str(ref.get("name"))))
        if group is None:
            ctx.warn(where, f"UpstreamGroup {ref.get('name')} was not given (pass it with -f); the route is left out")
            return None
        pairs = [(d.get("destination") or {}, int(d.get("weight", 0) or 0))
                 for d in (group.get("spec") or {}).get("destinations") or []]
    else:
        ctx.warn(where, "this routeAction has no HTTPRoute equivalent; the route is left out")
        return None
    refs = []
    for destination, weight in pairs:
        ref = _service_of(destination, where, ctx)
        if ref is None:
            return None
        if weight is not None:
            ref["weight"] = weight
        refs.append(ref)
    if refs and all(r.get("weight") == 0 for r in refs):
        ctx.warn(where, "every weight is 0: Gloo refuses this, an HTTPRoute answers 500")
    return refs


def _service_of(destination: Mapping[str, Any], where: str, ctx: _Context) -> dict[str, Any] | None:
    if "kube" in destination:
        kube = destination["kube"]
        ns = str((kube.get("ref") or {}).get("namespace") or "default")
        ctx.namespaces.add(ns)
        return {"name": str((kube.get("ref") or {}).get("name")), "namespace": ns, "port": int(kube.get("port", 80))}
    up = destination.get("upstream") or {}
    key = (str(up.get("namespace") or "gloo-system"), str(up.get("name")))
    found = ctx.upstreams.get(key)
    if found is not None and "kube" in (found.get("spec") or {}):
        kube = found["spec"]["kube"]
        ns, name, port = str(kube.get("serviceNamespace")), str(kube.get("serviceName")), int(kube.get("servicePort"))
    elif (m := _DISCOVERED.match(key[1])) is not None:
        ns, name, port = m["namespace"], m["service"], int(m["port"])
        if found is None:
            ctx.warn(where, f"upstream {key[1]} was not given; read as Service {ns}/{name} port {port} "
                     "(discovery's naming)")
    else:
        ctx.warn(where, f"upstream {key[1]} is not a Kubernetes Service; HTTPRoutes reach Services only; left out")
        return None
    ctx.namespaces.add(ns)
    return {"name": name, "namespace": ns, "port": port}


def _function_rewrite(action: Mapping[str, Any], matches: list[dict[str, Any]], where: str,
                      ctx: _Context) -> dict[str, Any] | None:
    destinations = [action["single"]] if "single" in action else _multi(action)
    rewrites = [_one_function(d, matches, where, ctx) for d in destinations
                if (d.get("destinationSpec") or {}).get("rest")]
    if not rewrites:
        return None
    if len(rewrites) == len(destinations) and all(r == rewrites[0] for r in rewrites):
        return rewrites[0]
    ctx.warn(where, "the destinations call different REST functions (or some none); an HTTPRoute rewrites the "
             "path once per rule, so requests keep their path")
    return None


def _one_function(destination: Mapping[str, Any], matches: list[dict[str, Any]], where: str,
                  ctx: _Context) -> dict[str, Any] | None:
    rest = destination["destinationSpec"]["rest"]
    function = str(rest.get("functionName"))
    upstream = destination.get("upstream") or {}
    found = ctx.upstreams.get((str(upstream.get("namespace") or "gloo-system"), str(upstream.get("name"))))
    transformation = (((found or {}).get("spec") or {}).get("kube", {}).get("serviceSpec", {}).get("rest", {})
                      .get("transformations", {}).get(function))
    if transformation is None:
        ctx.warn(where, f"REST function {function}: the Gateway API has no functions, and upstream "
                 f"{upstream.get('name')} was not given to look it up; requests keep their path")
        return None
    headers = transformation.get("headers") or {}
    method = str((headers.get(":method") or {}).get("text", "GET"))
    target, _, query = str((headers.get(":path") or {}).get("text", "")).partition("?")
    lost = f"{method} {target}" + (" (its query-parameter templates are dropped)" if query else "")
    path_param = ((rest.get("parameters") or {}).get("headers") or {}).get(":path")
    if "{{" not in target:
        ctx.warn(where, f"REST function {function} becomes a URLRewrite to {lost}; the method is not rewritten")
        return {"type": "ReplaceFullPath", "replaceFullPath": target}
    template = _TEMPLATE.search(target)
    prefix = matches[0]["path"] if matches else {}
    if (template and path_param and prefix.get("type") == "PathPrefix"
            and str(path_param) == f"{prefix['value'].rstrip('/')}/{{{template[1]}}}"):
        # The seed's /findPetWithId/{id} -> /api/pets/{id}: the parameter is the rest of the path.
        base = target[:template.start()].rstrip("/")
        ctx.warn(where, f"REST function {function} becomes a URLRewrite of the prefix to {base}; the method "
                 f"({method}) is not rewritten")
        return {"type": "ReplacePrefixMatch", "replacePrefixMatch": base or "/"}
    ctx.warn(where, f"REST function {function} ({lost}) takes template parameters an HTTPRoute cannot fill; "
             "requests keep their path")
    return None


def _multi(action: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [d.get("destination") or {} for d in ((action.get("multi") or {}).get("destinations") or [])]


def _prefix_rewrite(rewrite: str, matches: list[dict[str, Any]], where: str, ctx: _Context) -> dict[str, Any] | None:
    types = {m["path"]["type"] for m in matches}
    if types == {"PathPrefix"}:
        return {"type": "ReplacePrefixMatch", "replacePrefixMatch": rewrite}
    if types == {"Exact"}:
        return {"type": "ReplaceFullPath", "replaceFullPath": rewrite}
    ctx.warn(where, f"prefixRewrite {rewrite} on a regex or mixed match has no equivalent; left out")
    return None


def _header_filters(manipulation: Mapping[str, Any]) -> list[dict[str, Any]]:
    filters = []
    for side, kind in (("request", "RequestHeaderModifier"), ("response", "ResponseHeaderModifier")):
        modifier: dict[str, Any] = {}
        for item in manipulation.get(f"{side}HeadersToAdd") or []:
            header = item.get("header") or {}
            verb = "add" if item.get("append", True) else "set"
            modifier.setdefault(verb, []).append({"name": str(header.get("key")), "value": str(header.get("value"))})
        if manipulation.get(f"{side}HeadersToRemove"):
            modifier["remove"] = [str(h) for h in manipulation[f"{side}HeadersToRemove"]]
        if modifier:
            key = kind[0].lower() + kind[1:]
            filters.append({"type": kind, key: modifier})
    return filters


def _redirect(action: Mapping[str, Any], where: str, ctx: _Context) -> dict[str, Any]:
    redirect: dict[str, Any] = {}
    if action.get("httpsRedirect"):
        redirect["scheme"] = "https"
    if "hostRedirect" in action:
        redirect["hostname"] = action["hostRedirect"]
    if "pathRedirect" in action:
        redirect["path"] = {"type": "ReplaceFullPath", "replaceFullPath": action["pathRedirect"]}
    if "prefixRewrite" in action:
        redirect["path"] = {"type": "ReplacePrefixMatch", "replacePrefixMatch": action["prefixRewrite"]}
    code = str(action.get("responseCode", "MOVED_PERMANENTLY"))
    if code in REDIRECT_CODES:
        redirect["statusCode"] = REDIRECT_CODES[code]
    else:
        ctx.warn(where, f"redirect code {code}: the standard channel has 301 and 302 only; 302 is used")
        redirect["statusCode"] = 302
    return {"type": "RequestRedirect", "requestRedirect": redirect}
