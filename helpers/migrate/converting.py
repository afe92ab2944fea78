"""Migration help: a Gloo VirtualService turned into Gateway API HTTPRoute(s).

    from helpers.migrate.converting import convert
    result = convert(routing.header_canary())
    print(result)              # the HTTPRoute YAML, then one line per warning
    lab.apply(*result.objects)

``coalmine convert -f vs.yaml`` does the same from a terminal. Every part of the
VirtualService that has no faithful Gateway API equivalent is named in a warning
with its field path, e.g. a REST function destination, a regex or presence header
match, a header that must be absent, a prefix that is not a whole path segment, a
fault, or a pair of routes whose winner changes because the Gateway API ranks
matches (exact path, longest prefix, method, most headers, ...) instead of taking
the first one in the list (``ordering``). Nothing is dropped silently.

A ``delegateAction`` becomes kgateway route delegation, and a RouteTable a child
HTTPRoute (``delegation``). ``channel`` is the Gateway API channel of the cluster the
routes are for: ``standard`` (the default) leaves retries out with a warning,
``experimental`` converts them to HTTPRoute ``retry``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from helpers.builders.httproutes import API_VERSION, GATEWAY_NAME, GATEWAY_NAMESPACE
from helpers.builders.routing import to_yaml
from helpers.errors import InvalidArgument
from helpers.kinds import GLOO_NAMESPACE
from helpers.migrate.delegation import Delegation, child_labels
from helpers.migrate.destinations import Destinations
from helpers.migrate.filters import CHANNELS, Filters
from helpers.migrate.ordering import Ranked, order_warnings

__all__ = ["Conversion", "convert", "convert_objects"]

MAX_RULES = 16  # per HTTPRoute (the CRD's limit)
_SUPPORTED_OPTIONS = {"prefixRewrite", "timeout", "retries", "headerManipulation"}


@dataclass
class Conversion:
    """The HTTPRoutes made from a VirtualService, and what could not be carried across."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_yaml(self) -> str:
        """The HTTPRoutes as one multi-document YAML text, ready for ``kubectl apply -f -``."""
        return "---\n".join(to_yaml(o) for o in self.objects)

    def __str__(self) -> str:
        notes = "\n".join(f"# WARNING: {w}" for w in self.warnings)
        return self.to_yaml() + (f"\n{notes}" if notes else "")


def convert(
    vs: Mapping[str, Any],
    upstreams: Iterable[Mapping[str, Any]] = (),
    gateway: tuple[str, str] = (GATEWAY_NAMESPACE, GATEWAY_NAME),
    namespace: str | None = None,
    channel: str = "standard",
) -> Conversion:
    """HTTPRoute(s) that do what ``vs`` does, as far as the Gateway API can, attached
    to ``gateway`` (namespace, name), with a warning for everything else.

    ``upstreams`` are Upstream and UpstreamGroup objects, used to find the Service
    behind an upstream (without them, discovery's ``<namespace>-<service>-<port>``
    naming is assumed, with a warning). The routes go into ``namespace``, by default
    the namespace of the Services they route to. ``channel``: the Gateway API channel
    the routes are for (``experimental`` converts retries; see the module doc).
    """
    return _Converter(vs, list(upstreams), gateway, namespace, channel).run()


def convert_objects(
    objects: Sequence[Mapping[str, Any]],
    gateway: tuple[str, str] = (GATEWAY_NAMESPACE, GATEWAY_NAME),
    namespace: str | None = None,
    channel: str = "standard",
) -> Conversion:
    """Convert every VirtualService and RouteTable among ``objects``, using the
    Upstreams and UpstreamGroups among them. Raises ``InvalidArgument`` if there is
    neither a VirtualService nor a RouteTable."""
    services = [o for o in objects if o.get("kind") in ("VirtualService", "RouteTable")]
    if not services:
        raise InvalidArgument(
            "no VirtualService or RouteTable to convert "
            "(kind: VirtualService or RouteTable, apiVersion: gateway.solo.io/v1)"
        )
    others = [o for o in objects if o.get("kind") in ("Upstream", "UpstreamGroup")]
    total = Conversion()
    selected: dict[tuple[str, str], str] = {}
    for vs in sorted(services, key=lambda o: o.get("kind") == "RouteTable"):  # parents first
        converter = _Converter(vs, others, gateway, namespace, channel)
        converter.delegated_labels = selected
        one = converter.run()
        if vs.get("kind") == "RouteTable" and child_labels(vs, selected):
            for o in one.objects:
                o["metadata"]["labels"] = child_labels(vs, selected)
        total.objects += one.objects
        total.warnings += one.warnings
    return total


class _Converter(Destinations, Filters, Delegation):
    def __init__(
        self,
        vs: Mapping[str, Any],
        upstreams: list[Mapping[str, Any]],
        gateway: tuple[str, str],
        namespace: str | None,
        channel: str = "standard",
    ) -> None:
        if channel not in CHANNELS:
            raise InvalidArgument(f'unknown Gateway API channel "{channel}": use "standard" or "experimental"')
        self.vs, self.gateway, self.namespace, self.channel = vs, gateway, namespace, channel
        meta = vs.get("metadata") or {}
        self.vs_ns, self.name = meta.get("namespace") or GLOO_NAMESPACE, meta.get("name") or "converted"
        self.upstreams = {
            ((u.get("metadata") or {}).get("namespace") or GLOO_NAMESPACE, u["metadata"]["name"]): u
            for u in upstreams
            if u.get("kind") == "Upstream"
        }
        self.groups = {
            ((u.get("metadata") or {}).get("namespace") or GLOO_NAMESPACE, u["metadata"]["name"]): u
            for u in upstreams
            if u.get("kind") == "UpstreamGroup"
        }
        self.warnings: list[str] = []
        self.delegated_labels: dict[tuple[str, str], str] = {}
        self.child = vs.get("kind") == "RouteTable"  # a RouteTable: a child HTTPRoute, no parentRefs
        self.service_namespaces: list[str] = []
        self.guessed: set[str] = set()

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}")

    def run(self) -> Conversion:
        spec = self.vs.get("spec") or {}
        vh = {"routes": spec.get("routes") or []} if self.child else (spec.get("virtualHost") or {})
        if self.child and spec.get("weight") is not None:
            self.warn(
                "spec.weight",
                "orders RouteTables picked by one selector; kgateway ranks child routes by Gateway API "
                "precedence instead: left out",
            )
        if spec.get("sslConfig"):
            self.warn(
                "spec.sslConfig",
                "TLS belongs to the Gateway's listener (protocol HTTPS, tls.certificateRefs); not carried across",
            )
        vh_options = dict(vh.get("options") or {})
        vh_headers = vh_options.pop("headerManipulation", None)
        for name in sorted(vh_options):
            self.warn(f"spec.virtualHost.options.{name}", "has no Gateway API equivalent; left out")
        hostnames = self.hostnames(vh.get("domains") or ["*"])
        rules: list[dict[str, Any]] = []
        ranked: list[Ranked] = []
        for i, route in enumerate(vh.get("routes") or []):
            for r in self.rules(route, f"spec.virtualHost.routes[{i}]", vh_headers):
                ranked += [Ranked(i, m, gloo) for m, gloo in zip(r["matches"], r.pop("_gloo"), strict=True)]
                rules.append(r)
        self.warnings += order_warnings(ranked)
        namespace = self.namespace or (self.service_namespaces[0] if self.service_namespaces else self.vs_ns)
        if self.child:  # the parent's backendRef names the RouteTable's own namespace
            namespace = self.vs_ns
        for ns in sorted(set(self.service_namespaces) - {namespace}):
            self.warn(
                "spec",
                f"routes to Services in namespace {ns}, not {namespace}: a ReferenceGrant in {ns} "
                "must allow it (the local runtime refuses cross-namespace backends)",
            )
        chunks = [rules[i : i + MAX_RULES] for i in range(0, len(rules), MAX_RULES)] or [[]]
        if len(chunks) > 1:
            self.warn(
                "spec.virtualHost.routes",
                f"{len(rules)} rules are more than the {MAX_RULES} one HTTPRoute may "
                f"hold: split into {len(chunks)} HTTPRoutes; across routes, ties go to the oldest route",
            )
        objects = []
        for n, chunk in enumerate(chunks):
            out_spec: dict[str, Any] = (
                {} if self.child else {"parentRefs": [{"name": self.gateway[1], "namespace": self.gateway[0]}]}
            )
            if hostnames:
                out_spec["hostnames"] = hostnames
            out_spec["rules"] = chunk or [{"backendRefs": []}]
            name = self.name if n == 0 else f"{self.name}-{n + 1}"
            objects.append(
                {
                    "apiVersion": API_VERSION,
                    "kind": "HTTPRoute",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": out_spec,
                }
            )
        kind = "routetable" if self.child else "virtualservice"
        return Conversion(objects, [f"{kind} {self.vs_ns}/{self.name}: {w}" for w in self.warnings])

    def hostnames(self, domains: list[str]) -> list[str]:
        found = []
        for d in domains:
            host = str(d).lower()
            if host == "*":
                return []  # every host: an HTTPRoute without hostnames
            if ":" in host:
                self.warn("spec.virtualHost.domains", f'"{d}": a hostname has no port; the port was dropped')
                host = host.split(":")[0]
            if host.endswith("*") or ("*" in host and not host.startswith("*.")):
                self.warn(
                    "spec.virtualHost.domains",
                    f'"{d}": only a leading "*." wildcard exists in the Gateway API; left out',
                )
                continue
            found.append(host)
        return list(dict.fromkeys(found))

    # ── one route → rules ────────────────────────────────────────────────────

    def rules(self, route: Mapping[str, Any], path: str, vh_headers: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        options = dict(route.get("options") or {})
        for name in sorted(set(options) - _SUPPORTED_OPTIONS):
            hint = " (inject faults in a test environment by other means)" if name == "faults" else ""
            self.warn(f"{path}.options.{name}", f"has no Gateway API equivalent; left out{hint}")
        if route.get("directResponseAction") is not None:
            self.warn(
                path,
                "directResponseAction has no standard Gateway API equivalent (kgateway offers a "
                "DirectResponse through an ExtensionRef filter); the route was left out",
            )
            return []
        filters = self.header_filters(options.get("headerManipulation"), vh_headers, path)
        backends: list[dict[str, Any]] = []
        if route.get("delegateAction") is not None:
            delegated = self.delegate(route, path)
            if delegated is None:
                return []
            backends = delegated
        elif route.get("redirectAction") is not None:
            filters.append(self.redirect(route["redirectAction"], path))
        elif route.get("routeAction") is not None:
            backends = self.backends(route["routeAction"], f"{path}.routeAction")
        matchers = route.get("matchers") or [{}]
        pairs = [(m, g) for k, g in enumerate(matchers) for m in self.match(g, f"{path}.matchers[{k}]")]
        rewrite = options.get("prefixRewrite")
        out = []
        groups = [[p] for p in pairs] if rewrite is not None else [pairs]
        for group in groups:
            rule: dict[str, Any] = {"matches": [m for m, _ in group]}
            rule_filters = copy.deepcopy(filters)
            if rewrite is not None:
                rule_filters.insert(0, self.rewrite(group[0][0], rewrite, f"{path}.options.prefixRewrite"))
            if rule_filters:
                rule["filters"] = rule_filters
            if route.get("redirectAction") is None:
                rule["backendRefs"] = copy.deepcopy(backends)
            timeouts = self.timeouts(options, path)
            if timeouts:
                rule["timeouts"] = timeouts
            retry = self.retry(options.get("retries"), f"{path}.options.retries")
            if retry:
                rule["retry"] = retry
            rule["_gloo"] = [g for _, g in group]
            out.append(rule)
        return [r for r in out if r["matches"]]

    def match(self, m: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
        if m.get("caseSensitive") is False:
            self.warn(
                f"{path}.caseSensitive", "Gateway API paths match case-sensitively; the match is now case-sensitive"
            )
        if m.get("exact") is not None:
            out: dict[str, Any] = {"path": {"type": "Exact", "value": m["exact"]}}
        elif m.get("regex") is not None:
            self.warn(
                f"{path}.regex",
                "RegularExpression paths are implementation-specific in the Gateway API "
                "(dialect and precedence); check the route on your gateway",
            )
            out = {"path": {"type": "RegularExpression", "value": m["regex"]}}
        else:
            prefix = m.get("prefix") or "/"
            if prefix != "/" and not prefix.endswith("/"):
                self.warn(
                    f"{path}.prefix",
                    f'PathPrefix "{prefix}" matches whole path segments only: {prefix} and '
                    f"{prefix}/..., but no longer {prefix}<more> (e.g. {prefix}x)",
                )
            out = {"path": {"type": "PathPrefix", "value": prefix}}
        headers, seen = [], set()
        for k, h in enumerate(m.get("headers") or []):
            where = f"{path}.headers[{k}]"
            if h["name"].lower() in seen:
                self.warn(
                    where,
                    f"a second condition on header {h['name']}: the Gateway API uses only the first; "
                    "combine both into one regular expression",
                )
                continue
            if h.get("invertMatch"):
                self.warn(
                    where,
                    f"invertMatch (header {h['name']} must NOT match) has no Gateway API equivalent; "
                    "the condition was dropped, so the rule matches more requests",
                )
                continue
            seen.add(h["name"].lower())
            headers.append(self.value_match(h, where, "header"))
        if headers:
            out["headers"] = headers
        query = [
            self.value_match(q, f"{path}.queryParameters[{k}]", "query parameter")
            for k, q in enumerate(m.get("queryParameters") or [])
        ]
        if query:
            out["queryParams"] = query
        methods = list(m.get("methods") or [])
        if len(methods) <= 1:
            if methods:
                out["method"] = methods[0]
            return [out]
        self.warn(f"{path}.methods", "one match per method: the Gateway API matches a single method per match")
        return [{**copy.deepcopy(out), "method": method} for method in methods]

    def value_match(self, h: Mapping[str, Any], where: str, what: str) -> dict[str, Any]:
        name, value = h["name"], h.get("value")
        if not value:
            self.warn(
                where,
                f"a {what} that only has to be present has no Gateway API equivalent; written as "
                'RegularExpression ".*" (implementation-specific)',
            )
            return {"type": "RegularExpression", "name": name, "value": ".*"}
        if h.get("regex"):
            if re.fullmatch(r"[\w~-]+", value):
                self.warn(where, f'regex "{value}" has no special characters: written as an Exact match')
                return {"name": name, "value": value}
            self.warn(
                where,
                f"regex {what} matches are implementation-specific in the Gateway API, and a regex "
                "match counts like an exact one in precedence (only the number of matches counts)",
            )
            return {"type": "RegularExpression", "name": name, "value": value}
        return {"name": name, "value": value}

    def rewrite(self, match: Mapping[str, Any], value: str, where: str) -> dict[str, Any]:
        kind = match["path"]["type"]
        if kind == "PathPrefix":
            return {
                "type": "URLRewrite",
                "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": value}},
            }
        if kind == "RegularExpression":
            self.warn(where, "a rewrite of a regex match replaces the whole path: written as ReplaceFullPath")
        return {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplaceFullPath", "replaceFullPath": value}}}
