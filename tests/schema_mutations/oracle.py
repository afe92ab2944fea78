"""The oracle: what the real API server says about an object, from the vendored CRDs.

``verdict(obj)`` applies the CRD's defaults, then checks the object against the CRD's
``openAPIV3Schema`` as a structural schema (types, enums, patterns, lengths, list
sizes and list keys, unknown fields refused as under ``kubectl apply``'s strict field
validation), Kubernetes' own metadata rules, and the CEL rules in ``CEL`` (a table:
each entry is one ``x-kubernetes-validations`` rule of the CRD, by its message, written
as a Python predicate). Independent of the lab's code on purpose: it reads the CRDs.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.schema_mutations.cel import CEL

CRDS = Path(__file__).parent / "crds"
FILES = {
    "HTTPRoute": "gatewayapi-httproutes.yaml",
    "Gateway": "gatewayapi-gateways.yaml",
    "GatewayClass": "gatewayapi-gatewayclasses.yaml",
    "ReferenceGrant": "gatewayapi-referencegrants.yaml",
    "VirtualService": "gloo-virtualservices.yaml",
    "RouteTable": "gloo-routetables.yaml",
    "Upstream": "gloo-upstreams.yaml",
    "UpstreamGroup": "gloo-upstreamgroups.yaml",
}
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_DNS_LABEL = re.compile(rf"^{_LABEL}$")
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_META = set(
    "name generateName namespace selfLink uid resourceVersion generation creationTimestamp deletionTimestamp "
    "deletionGracePeriodSeconds labels annotations ownerReferences finalizers managedFields".split()
)


@functools.cache
def schema(kind: str, api_version: str) -> dict[str, Any] | None:
    """The openAPIV3Schema the CRD serves ``api_version`` with (None: not served)."""
    crd = yaml.load((CRDS / FILES[kind]).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    group = crd["spec"]["group"]
    for v in crd["spec"]["versions"]:
        if v["served"] and f"{group}/{v['name']}" == api_version:
            return dict(v["schema"]["openAPIV3Schema"])
    return None


def verdict(obj: Mapping[str, Any]) -> list[str]:
    """Why the real API server refuses ``obj`` (empty: accepted)."""
    s = schema(str(obj.get("kind")), str(obj.get("apiVersion")))
    if s is None:
        return [f"{obj.get('apiVersion')} {obj.get('kind')} is not served"]
    problems = _metadata(obj.get("metadata"))
    value = copy.deepcopy(dict(obj))
    _default(value, s)
    _check(value, s, "", problems, top=True)
    if problems:  # CEL rules run on values of the right shape; the verdict is already "refused"
        return problems
    for kind, path, message, broken in CEL:
        if kind == obj.get("kind"):
            for where, node in _at(value, path):
                if broken(node):
                    problems.append(f"{where}: {message}")
    return problems


def _metadata(meta: Any) -> list[str]:
    if not isinstance(meta, Mapping):
        return ["metadata: required"]
    out = [f"metadata.{k}: unknown field" for k in meta if k not in _META]
    name = meta.get("name")
    if not isinstance(name, str) or len(name) > 253 or not _SUBDOMAIN.match(name):
        out.append("metadata.name: not a DNS-1123 subdomain")
    ns = meta.get("namespace")
    if ns is not None and (not isinstance(ns, str) or len(ns) > 63 or not _DNS_LABEL.match(ns)):
        out.append("metadata.namespace: not a DNS-1123 label")
    for k, v in (meta.get("labels") or {}).items():
        prefix, _, name = str(k).rpartition("/")
        if (prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix))) or len(name) > 63 or not _NAME.match(name):
            out.append(f"metadata.labels: key {k!r} is not a qualified name")
        if not isinstance(v, str) or len(v) > 63 or (v and not _NAME.match(v)):
            out.append(f"metadata.labels[{k}]: not a label value")
    return out


def _default(value: Any, s: Mapping[str, Any]) -> None:
    if isinstance(value, dict):
        for name, sub in (s.get("properties") or {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _default(value[name], sub)
        extra = s.get("additionalProperties")
        if isinstance(extra, Mapping):
            for v in value.values():
                _default(v, extra)
    elif isinstance(value, list) and isinstance(s.get("items"), Mapping):
        for v in value:
            _default(v, s["items"])


def _type_ok(value: Any, s: Mapping[str, Any]) -> bool:
    if value is None:
        return bool(s.get("nullable"))
    if s.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    t = s.get("type")
    return {
        "object": isinstance(value, Mapping),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        None: True,
    }[t]


def _check(value: Any, s: Mapping[str, Any], path: str, out: list[str], top: bool = False) -> None:
    if not _type_ok(value, s):
        out.append(f"{path}: wrong type, expected {s.get('type')}")
        return
    if value is None:
        return
    if "enum" in s and value not in s["enum"]:
        out.append(f"{path}: not one of {s['enum']}")
    if isinstance(value, str):
        if len(value) > s.get("maxLength", 1 << 30) or len(value) < s.get("minLength", 0):
            out.append(f"{path}: length")
        if "pattern" in s and not re.search(s["pattern"], value):
            out.append(f"{path}: pattern")
        fmt = s.get("format")
        if fmt in ("ipv4", "ipv6") and not _is_ip(value, int(fmt[-1])):
            out.append(f"{path}: format {fmt}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value > s.get("maximum", float("inf")) or value < s.get("minimum", float("-inf")):
            out.append(f"{path}: range")
    if isinstance(value, list):
        if len(value) > s.get("maxItems", 1 << 30) or len(value) < s.get("minItems", 0):
            out.append(f"{path}: items")
        keys = s.get("x-kubernetes-list-map-keys")
        kind = s.get("x-kubernetes-list-type")
        if kind in ("map", "set"):
            seen = [repr([v.get(k) for k in keys]) if keys and isinstance(v, Mapping) else repr(v) for v in value]
            if len(set(seen)) != len(seen):
                out.append(f"{path}: duplicate entries")
        for i, v in enumerate(value):
            _check(v, s.get("items") or {}, f"{path}[{i}]", out)
    if isinstance(value, Mapping):
        _check_object(value, s, path, out, top)
    for branch in ("oneOf", "anyOf"):
        if branch in s:
            hits = sum(1 for b in s[branch] if _matches(value, b))
            if (branch == "oneOf" and hits != 1) or (branch == "anyOf" and not hits):
                out.append(f"{path}: {branch}")


def _check_object(value: Mapping[str, Any], s: Mapping[str, Any], path: str, out: list[str], top: bool) -> None:
    if len(value) > s.get("maxProperties", 1 << 30):
        out.append(f"{path}: too many properties")
    for name in s.get("required") or []:
        if name not in value:
            out.append(f"{path}.{name}: required")
    props = s.get("properties") or {}
    extra = s.get("additionalProperties")
    for k, v in value.items():
        if top and k in ("apiVersion", "kind", "metadata"):
            continue
        if k in props:
            _check(v, props[k], f"{path}.{k}", out)
        elif isinstance(extra, Mapping):
            _check(v, extra, f"{path}.{k}", out)
        elif not s.get("x-kubernetes-preserve-unknown-fields"):
            out.append(f"{path}.{k}: unknown field")


def _matches(value: Any, s: Mapping[str, Any]) -> bool:
    """A value against a oneOf/anyOf branch (the value-validation subset the CRDs use;
    Flagger's Canary puts ``required`` lists in the branches of ``analysis``)."""
    if isinstance(value, Mapping) and any(name not in value for name in s.get("required") or []):
        return False
    if "not" in s:
        return not _matches(value, s["not"])
    if "anyOf" in s:
        return any(_matches(value, b) for b in s["anyOf"])
    if "enum" in s and value not in s["enum"]:
        return False
    if s.get("format") in ("ipv4", "ipv6") and isinstance(value, str):
        return _is_ip(value, int(s["format"][-1]))
    if isinstance(value, Mapping):
        return all(_matches(value[k], b) for k, b in (s.get("properties") or {}).items() if k in value)
    return True


def _is_ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


def _at(value: Any, path: str) -> list[tuple[str, Any]]:
    """Every node at ``path`` (``spec.rules[].filters[]``: ``[]`` is each list item)."""
    nodes: list[tuple[str, Any]] = [("", value)]
    for part in path.split("."):
        name, each = part.removesuffix("[]"), part.endswith("[]")
        nxt = []
        for where, node in nodes:
            if isinstance(node, Mapping) and name in node and node[name] is not None:
                child, w = node[name], f"{where}.{name}" if where else name
                if each and isinstance(child, list):
                    nxt += [(f"{w}[{i}]", c) for i, c in enumerate(child) if isinstance(c, Mapping)]
                elif not each:
                    nxt.append((w, child))
        nodes = nxt
    return nodes
