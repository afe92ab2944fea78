"""Seeded mutations of every manifest, judged by the lab and by the real CRDs.

For each custom resource in ``manifests/`` (Gloo's and the Gateway API's kinds), a
seeded generator walks the object beside its CRD schema and makes small mutations:
remove a field, give it the wrong type, step outside a range or length, break a
pattern or an enum, add an unknown field, repeat a list item, break ``metadata``.
The oracle (``tests/schema_mutations/oracle.py``) says what the API server with the
vendored CRDs would answer; the lab's answer is ``apply``'s checks. They must agree,
except where ``KNOWN`` says the lab refuses what the CRD lets through because Gloo's
validation webhook or Envoy refuses it too (each row says why).
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers.runtime import apiserver
from helpers.runtime.gatewayapi import schema as gatewayapi_schema
from helpers.runtime.gloo import schema as gloo_schema
from tests.schema_mutations import oracle

ROOT = Path(__file__).resolve().parent.parent
SEED, PER_OBJECT = 20261130, 60
GLOO = {"VirtualService", "RouteTable", "Upstream", "UpstreamGroup"}

# (kind, path regex, mutation, why): the lab refuses, the CRD accepts, and the real
# cluster refuses anyway (Gloo's webhook or Envoy).
KNOWN: list[tuple[str, str, str, str]] = [
    (
        "VirtualService|RouteTable",
        r"\.routes\[\d+\]\.(routeAction|delegateAction|redirectAction|directResponseAction)$",
        "remove",
        'Gloo\'s webhook: a route without an action is invalid ("no action specified")',
    ),
    (
        "VirtualService|RouteTable",
        r"\.(single|destination)$",
        "remove|type",
        'Gloo\'s webhook: a destination must name an upstream ("no destination type specified")',
    ),
    (
        "VirtualService|RouteTable",
        r"\.(multi\.destinations|destinations)$",
        "remove|empty",
        "Gloo's webhook: a multi destination needs at least one destination (total weight < 1 is refused)",
    ),
    (
        "VirtualService",
        r"^spec\.virtualHost\.domains$",
        "duplicate",
        "Envoy: only unique values for domains are permitted (the route configuration is refused)",
    ),
    (
        "VirtualService|RouteTable",
        r"\.(single|destination)\.(upstream|kube)$",
        "remove",
        'Gloo\'s webhook: a destination must name an upstream ("no destination type specified")',
    ),
    (
        "VirtualService|RouteTable",
        r"\.destinationSpec\.rest\.functionName$",
        "remove",
        'Gloo\'s REST plugin: "unknown function " is an error on the route, which the webhook refuses',
    ),
    ("Upstream", r"^spec\.kube$", "remove", "Gloo's webhook: an upstream needs a type (kube, static, ...)"),
    (
        "Upstream",
        r"^spec\.kube\.(serviceName|servicePort)$",
        "remove",
        "Gloo's kube plugin: no Service name or port, no endpoints; Envoy refuses port 0 for a cluster",
    ),
    (
        "VirtualService|RouteTable",
        r"\.matchers\[\d+\]\.(headers|queryParameters)\[\d+\]\.name$",
        "remove",
        "Envoy: a header or query matcher needs a name (its proto requires min_len 1)",
    ),
    (
        "VirtualService|RouteTable",
        r"\.kube\.(ref|port)$",
        "remove",
        "Gloo's webhook: a kube destination needs the Service ref and port",
    ),
    (
        "VirtualService|RouteTable",
        r"\.headerManipulation\.\w+\[\d+\]\.header$",
        "remove",
        "Envoy: a HeaderValueOption needs its header (required by its proto)",
    ),
    (
        "VirtualService|RouteTable",
        r"\.directResponseAction\.status$",
        "remove|range",
        "Envoy: a direct response status must be 200 to 599",
    ),
    (
        "VirtualService|RouteTable",
        r"\.faults\.abort\.httpStatus$",
        "remove|range",
        "Envoy: a fault abort's status must be 200 to 599",
    ),
    (
        "VirtualService|RouteTable|Upstream",
        r"(Port|port)$",
        "range",
        "Envoy: a port is at most 65535 (SocketAddress.port_value)",
    ),
    (
        "VirtualService|RouteTable",
        r"\.(timeout|perTryTimeout|fixedDelay)$",
        "pattern|enum",
        "Gloo's JSON reader (golang/protobuf jsonpb): a duration must parse as Go's time.ParseDuration",
    ),
    (
        "VirtualService|RouteTable",
        r"\.(responseCode|operator)$",
        "enum|pattern",
        "Gloo's JSON reader: an unknown enum name is refused",
    ),
    (
        "VirtualService|RouteTable",
        r"\.(responseCode|operator)$",
        "type",
        "Envoy: an enum number that names no value is refused (defined_only)",
    ),
    (
        "VirtualService|RouteTable",
        r"\.routeAction\.(single|multi|upstreamGroup)$",
        "remove",
        "Gloo's webhook: a routeAction needs a destination (single, multi or upstreamGroup)",
    ),
    ("VirtualService|RouteTable", r"\.(regex|value)$", "pattern", "Envoy: a regex RE2 cannot compile is refused"),
    (
        "HTTPRoute",
        r"\.(path\.value|value)$",
        "pattern",
        "Envoy: a RegularExpression match RE2 cannot compile is refused (kgateway reports it)",
    ),
]


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    """Every custom resource in manifests/, and the seeds of the kinds they lack."""
    found = []
    seeds = Path(__file__).parent / "schema_mutations" / "seeds.yaml"
    for path in [*sorted((ROOT / "manifests").rglob("*.yaml")), seeds]:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") in oracle.FILES:
                found.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


def lab(obj: Mapping[str, Any]) -> list[str]:
    """What the lab's ``apply`` refuses ``obj`` for, on its own (empty: accepted)."""
    problems = apiserver.check_object(obj)
    if problems:
        return problems
    if obj.get("kind") in GLOO:
        return gloo_schema.check(obj).errors
    return gatewayapi_schema.validate(obj)


# ── the generator ────────────────────────────────────────────────────────────


def _places(value: Any, s: Mapping[str, Any], path: str) -> Iterator[tuple[str, Any, Mapping[str, Any]]]:
    """(path, value, schema) of every node below the object's spec."""
    yield path, value, s
    if isinstance(value, Mapping):
        props, extra = s.get("properties") or {}, s.get("additionalProperties")
        for k, v in value.items():
            sub = props.get(k) or (extra if isinstance(extra, Mapping) else None)
            if sub is not None:
                yield from _places(v, sub, f"{path}.{k}" if path else k)
    elif isinstance(value, list) and isinstance(s.get("items"), Mapping):
        for i, v in enumerate(value):
            yield from _places(v, s["items"], f"{path}[{i}]")


def _wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int):
        return str(value)  # a quoted number
    if isinstance(value, str):
        return 7
    return "x" if isinstance(value, (Mapping, list)) else {}


def _mutations(path: str, value: Any, s: Mapping[str, Any], parent_required: bool) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [("remove", None), ("type", _wrong_type(value))]
    if isinstance(value, Mapping) and not s.get("x-kubernetes-preserve-unknown-fields") and "properties" in s:
        out.append(("unknown", {**value, "bogusField": "x"}))
    if isinstance(value, list) and value:
        out.append(("duplicate", [*value, copy.deepcopy(value[0])]))
        out.append(("empty", []))
    if isinstance(value, str):
        if "maxLength" in s:
            out.append(("length", "a" * (s["maxLength"] + 1)))
        out.append(("pattern", "Not..Valid_!"))
        out.append(("enum", "NotAValue"))
    if isinstance(value, int) and not isinstance(value, bool):
        out.append(("range", s.get("maximum", 10**10) + 1))
        out.append(("range", s.get("minimum", 0) - 1))
    return out


def _set(obj: Any, path: str, new: Any) -> Any:
    copy_ = copy.deepcopy(obj)
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    node = copy_
    for p in parts[:-1]:
        node = node[int(p[1:-1])] if p.startswith("[") else node[p]
    last = parts[-1]
    key: Any = int(last[1:-1]) if last.startswith("[") else last
    if new is None:
        del node[key]
    else:
        node[key] = new
    return copy_


_META_MUTATIONS = [
    ("metadata.name", "a..b"),
    ("metadata.name", "Petstore"),
    ("metadata.labels", {"app": "x" * 64}),
    ("metadata.labels", {"bad key!": "v"}),
    ("metadata.labels", {"example.com/app": "ok"}),
    ("metadata.bogusField", "x"),
]


def cases() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(case id, mutation, path, mutated object) for every manifest, seeded."""
    rng = random.Random(SEED)
    out = []
    for where, doc in _manifests():
        s = oracle.schema(doc["kind"], doc["apiVersion"])
        assert s is not None
        spec_schema = (s.get("properties") or {})["spec"]
        places = list(_places(doc["spec"], spec_schema, "spec"))[1:]
        candidates = [(p, m, new) for p, v, sub in places for m, new in _mutations(p, v, sub, False)]
        for p, m, new in rng.sample(candidates, min(PER_OBJECT, len(candidates))):
            out.append((f"{where}:{m}:{p}", m, p, _set(doc, p, new)))
        for p, new in _META_MUTATIONS:
            mutated = copy.deepcopy(doc)
            field = p.split(".")[1]
            mutated["metadata"][field] = new
            out.append((f"{where}:meta:{p}={str(new)[:20]}", "meta", p, mutated))
    return out


# The classes issue 13 lists, each as one mutation of a seed (kind, path, new value).
ISSUE_CLASSES: list[tuple[str, str, Any]] = [
    ("HTTPRoute", "spec.parentRefs[0].namespace", "kgateway.system"),
    ("HTTPRoute", "spec.parentRefs[0].group", "Not_A_Group"),
    ("HTTPRoute", "spec.parentRefs[0].kind", "9Gateway"),
    ("HTTPRoute", "spec.parentRefs[1].sectionName", None),
    ("HTTPRoute", "spec.rules[0].backendRefs[0].namespace", "a.b"),
    ("HTTPRoute", "spec.rules[0].matches[0].queryParams[0].name", "bad name"),
    ("HTTPRoute", "spec.rules[0].matches", []),
    ("HTTPRoute", "spec.rules[0].retry", {"attempts": 2}),
    ("HTTPRoute", "spec.rules[0].sessionPersistence", {"sessionName": "s"}),
    ("HTTPRoute", "spec.rules[0].timeouts.request", "10 s"),
    ("HTTPRoute", "spec.rules[0].backendRefs[0].port", "8080"),
    ("Gateway", "spec.listeners[0].tls.certificateRefs", []),
    ("Gateway", "spec.listeners[0].tls.mode", "Passthrough"),
    ("Gateway", "spec.listeners[0].protocol", "HTTP S"),
    ("Gateway", "spec.listeners[0].protocol", "A" * 255),
    ("Gateway", "spec.listeners[0].protocol", "example.com/" + "a" * 250),
    ("Gateway", "spec.listeners[0].allowedRoutes.kinds", [{"kind": "HTTPRoute"}] * 9),
    ("Gateway", "spec.addresses", [{"type": "IPAddress", "value": "not-an-ip"}]),
    ("Gateway", "spec.addresses", [{"type": "Hostname", "value": "gw.example.com"}]),
    ("Gateway", "spec.backendTLS", {"clientCertificateRef": {"name": "c"}}),
    ("Gateway", "spec.allowedListeners", {"namespaces": {"from": "Same"}}),
    ("GatewayClass", "spec.controllerName", "kgateway"),
    ("GatewayClass", "spec.description", "a class"),
    ("ReferenceGrant", "spec.from[0].namespace", "Bad_NS"),
    ("ReferenceGrant", "spec.to", []),
    ("Upstream", "spec.disableIstioAutoMtls", True),
    ("Upstream", "spec.kube.serviceSpec", {"rest": {"transformations": {"f": {"bogus": 1}}}}),
    ("RouteTable", "spec.routes[0].options.timeout", {"seconds": 5}),
    ("RouteTable", "spec.routes[1].redirectAction.responseCode", 4),
    ("UpstreamGroup", "spec.destinations[0].weight", 0),
]


# The "too strict" classes issue 13 lists that Gloo 1.22.1 accepts (with a warning, or
# an error on the routes that use the object): both the CRD and the lab must accept them.
ACCEPTED: list[tuple[str, str, Any]] = [
    ("VirtualService", "spec.virtualHost", None),  # Gloo warns: "does not specify a virtual host"
    ("VirtualService", "spec.virtualHost.routes[0].routeAction.single.upstream.name", None),  # Gloo warns
    ("VirtualService", "spec.virtualHost.routes[1].routeAction.multi.destinations[0].destination.upstream.name", None),
    ("VirtualService", "spec.virtualHost.routes[2].routeAction.single.kube.ref.name", None),
    ("VirtualService", "spec.virtualHost.routes[3].routeAction.upstreamGroup.name", None),
    ("RouteTable", "spec.routes[0].routeAction.upstreamGroup.name", None),
    ("UpstreamGroup", "spec.destinations[0].destination.upstream.name", None),
    ("UpstreamGroup", "spec.destinations[0].weight", 0),  # with [1] at 0 too: the routes using it are refused
    ("UpstreamGroup", "spec.destinations", []),
    ("UpstreamGroup", "spec.destinations", None),
    # No webhook checks an UpstreamGroup: Gloo stores it and reports these in its status.
    ("UpstreamGroup", "spec.destinations[0].destination", None),  # "destination # 1: destination is nil"
    ("UpstreamGroup", "spec.destinations[0].destination.upstream", None),  # "no destination type specified"
    ("UpstreamGroup", "spec.destinations[2].destination.kube.ref", None),  # "upstream not found"
    ("UpstreamGroup", "spec.destinations[2].destination.kube.port", None),
    ("UpstreamGroup", "spec.destinations[2].destination.kube.port", 70000),
    ("UpstreamGroup", "spec.destinations[2].destination.destinationSpec.rest.functionName", None),
    ("VirtualService", "spec.virtualHost.routes[4].delegateAction.ref.name", None),  # "route table default. missing"
    # Gloo reads durations with golang/protobuf's jsonpb: Go's time.ParseDuration syntax.
    ("RouteTable", "spec.routes[0].options.timeout", "100ms"),
    ("RouteTable", "spec.routes[0].options.retries.perTryTimeout", "1m30s"),
    ("RouteTable", "spec.routes[0].options.timeout", "0"),
    ("RouteTable", "spec.routes[0].options.timeout", "1.5h"),
]


def _accepted_cases() -> list[tuple[str, dict[str, Any]]]:
    seeds = {doc["kind"]: doc for where, doc in _manifests() if where.startswith("seeds.yaml")}
    out = []
    for kind, path, new in ACCEPTED:
        doc = _set(seeds[kind], path, new)
        if kind == "UpstreamGroup" and path.endswith("weight"):
            doc = _set(doc, "spec.destinations[1].weight", 0)
        out.append((f"{kind}:{path}={new}", doc))
    return out


@pytest.mark.parametrize("case", _accepted_cases(), ids=[c[0] for c in _accepted_cases()])
def test_what_gloo_accepts_the_lab_accepts(case: tuple[str, dict[str, Any]]) -> None:
    _, obj = case
    assert oracle.verdict(obj) == []
    assert lab(obj) == []


def _issue_cases() -> list[tuple[str, str, str, dict[str, Any]]]:
    seeds = {doc["kind"]: doc for where, doc in _manifests() if where.startswith("seeds.yaml")}
    out = []
    for kind, path, new in ISSUE_CLASSES:
        doc = copy.deepcopy(seeds[kind])
        if new is not None and "." in path and not _exists(doc, path):
            parent, _, name = path.rpartition(".")
            node = _get(doc, parent)
            node[name] = new
            mutated = doc
        else:
            mutated = _set(doc, path, new)
        out.append((f"issue:{kind}:{path}={str(new)[:24]}", "issue", path, mutated))
    return out


def _get(obj: Any, path: str) -> Any:
    for p in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        obj = obj[int(p[1:-1])] if p.startswith("[") else obj[p]
    return obj


def _exists(obj: Any, path: str) -> bool:
    try:
        _get(obj, path)
    except (KeyError, IndexError, TypeError):
        return False
    return True


def _known(kind: str, path: str, mutation: str) -> str | None:
    for kinds, pattern, mutations, why in KNOWN:
        if kind in kinds.split("|") and mutation in mutations.split("|") and re.search(pattern, path):
            return why
    return None


CASES = cases() + _issue_cases()


def test_every_manifest_kind_has_its_crd_vendored_and_mutations_are_many() -> None:
    kinds = {c[3]["kind"] for c in CASES}
    assert kinds == set(oracle.FILES)
    assert len(CASES) > 500


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_the_lab_agrees_with_the_real_schema(case: tuple[str, str, str, dict[str, Any]]) -> None:
    _, mutation, path, obj = case
    real, mine = oracle.verdict(obj), lab(obj)
    if bool(real) == bool(mine):
        return
    why = _known(obj["kind"], path, mutation) if mine and not real else None
    assert why, f"the CRD says {real or 'accepted'}; the lab says {mine or 'accepted'}"


@pytest.mark.parametrize("where_doc", _manifests(), ids=[w for w, _ in _manifests()])
def test_every_manifest_is_accepted_by_both(where_doc: tuple[str, dict[str, Any]]) -> None:
    _, doc = where_doc
    assert oracle.verdict(doc) == []
    assert lab(doc) == []
