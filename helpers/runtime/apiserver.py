"""What the Kubernetes API server refuses in the built-in kinds the lab runs.

``check_object`` checks the size and depth of every object (``check_limits``: at
most 1 MiB as JSON, 100 levels), apiVersion/kind and metadata for every kind, and
the shape of Service, Deployment (its pod template in ``podspec``), ConfigMap,
Secret and EndpointSlice (``corekinds``), so that the local runtime refuses at apply
what a cluster's API server would. Metadata rules are in ``objectmeta``.

A kind may be served in more than one version (``SERVED``): the Gateway API's
``v1beta1`` HTTPRoute is still served by v1.6.1's CRDs; ``stored`` gives the object
as the API server keeps it, in the kind's storage version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from helpers.kinds import BY_NAME, GATEWAY_NETWORKING_V1, GATEWAY_NETWORKING_V1BETA1, KINDS, MAX_OBJECT_BYTES
from helpers.runtime.corekinds import check_endpointslice, check_secret
from helpers.runtime.objectmeta import metadata_problems
from helpers.runtime.podspec import check_pod_template, configmap_key_problem, is_port

# Spellings from older Kubernetes releases that a learner may still find in posts
# (the seed itself uses extensions/v1beta1).
_OLD_API_VERSIONS = {
    ("Deployment", "extensions/v1beta1"),
    ("Deployment", "apps/v1beta1"),
    ("Deployment", "apps/v1beta2"),
}

# Every object: at most 1 MiB as JSON (Kubernetes' limit on a ConfigMap's data; etcd's
# request limit, 1.5 MiB, bounds the others), nested at most 100 levels (the lab's
# own limit: real manifests need fewer than 20, and it keeps every later step,
# copying, hashing and saving it, clear of Python's recursion limit).
MAX_DEPTH = 100
# Versions the API server also serves besides ``Kind.api_version`` (Gateway API v1.6.1
# CRDs: HTTPRoute, Gateway and GatewayClass serve v1beta1; ReferenceGrant serves v1).
# Each is converted to the storage version (``Kind.api_version``) when stored.
SERVED = {
    "HTTPRoute": (GATEWAY_NETWORKING_V1BETA1,),
    "Gateway": (GATEWAY_NETWORKING_V1BETA1,),
    "GatewayClass": (GATEWAY_NETWORKING_V1BETA1,),
    "ReferenceGrant": (GATEWAY_NETWORKING_V1,),
}


def check_object(obj: Any) -> list[str]:
    """Problems the API server would refuse ``obj`` for (empty when fine).

    Checks apiVersion/kind and metadata for every kind, and the shape of the
    built-in kinds the lab runs (Service, Deployment, ConfigMap, Namespace).
    """
    if not isinstance(obj, Mapping):
        return [f"expected an object (a YAML mapping), got {type(obj).__name__}"]
    limits = check_limits(obj)
    if limits:
        return limits
    kind_name, api_version = obj.get("kind"), obj.get("apiVersion")
    if not kind_name:
        return ["kind is missing: every object needs `kind:` (e.g. Deployment)"]
    if not api_version or not isinstance(api_version, str):
        return [f"apiVersion is missing or not a string on the {kind_name}: add `apiVersion: ...`"]
    kind = BY_NAME.get(str(kind_name))
    if kind is None:
        known = ", ".join(f"{k.api_version} {k.name}" for k in KINDS if not k.readonly)
        return [f'no matches for kind "{kind_name}" in version "{api_version}": the local runtime knows {known}']
    if kind.readonly:
        return [f"{kind.name} objects are made by the runtime from Deployments; apply a Deployment instead"]
    if api_version != kind.api_version and api_version not in SERVED.get(kind.name, ()):
        hint = f"use apiVersion: {kind.api_version}"
        if (kind.name, api_version) in _OLD_API_VERSIONS:
            hint += f" ({api_version} was removed from Kubernetes)"
        return [f'no matches for kind "{kind.name}" in version "{api_version}": {hint}']
    problems = metadata_problems(obj.get("metadata"), kind.name)
    checker = _CHECKERS.get(kind.name)
    if checker is not None and not problems:
        problems += checker(obj)
    return problems


def stored(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` as the API server stores it: in its kind's storage version (a v1beta1
    HTTPRoute is kept, and read back, as v1; the fields are the same)."""
    kind = BY_NAME.get(str(obj.get("kind")))
    if kind is None or obj.get("apiVersion") == kind.api_version:
        return dict(obj)
    return {**obj, "apiVersion": kind.api_version}


def _check_service(obj: Mapping[str, Any]) -> list[str]:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return ["spec is required on a Service"]
    problems = []
    stype = spec.get("type", "ClusterIP")
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        problems.append(f'spec.type "{stype}" is not one of ClusterIP, NodePort, LoadBalancer, ExternalName')
    ports = spec.get("ports")
    if not isinstance(ports, list) or not ports:
        return [*problems, "spec.ports: at least one port is required"]
    for i, p in enumerate(ports):
        if not isinstance(p, Mapping) or not is_port(p.get("port")):
            problems.append(f"spec.ports[{i}].port must be a number from 1 to 65535")
            continue
        target = p.get("targetPort", p["port"])
        if not (is_port(target) or (isinstance(target, str) and target)):
            problems.append(f"spec.ports[{i}].targetPort must be a port number or a container port name")
    if len(ports) > 1 and any(isinstance(p, Mapping) and not p.get("name") for p in ports):
        problems.append("spec.ports: every port needs a name when there is more than one")
    selector = spec.get("selector")
    if selector is not None and not (
        isinstance(selector, Mapping) and all(isinstance(v, str) for v in selector.values())
    ):
        problems.append("spec.selector must map label names to strings")
    return problems


def _check_deployment(obj: Mapping[str, Any]) -> list[str]:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return ["spec is required on a Deployment"]
    problems = []
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        problems.append("spec.replicas must be a whole number >= 0")
    match = ((spec.get("selector") or {}).get("matchLabels")) if isinstance(spec.get("selector"), Mapping) else None
    if not isinstance(match, Mapping) or not match:
        problems.append("spec.selector.matchLabels is required (apps/v1): e.g. {app: petstore-v1}")
    template = spec.get("template")
    if not isinstance(template, Mapping):
        return [*problems, "spec.template is required"]
    meta = template.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    labels = labels if isinstance(labels, Mapping) else {}
    if isinstance(match, Mapping) and any(labels.get(k) != v for k, v in match.items()):
        problems.append("spec.template.metadata.labels must include every label of spec.selector.matchLabels")
    return [*problems, *check_pod_template(template)]


def _check_configmap(obj: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for field in ("data", "binaryData"):
        data = obj.get(field)
        if data is None:
            continue
        if not (isinstance(data, Mapping) and all(isinstance(v, str) for v in data.values())):
            problems.append(f"{field} must map file names to strings")
            continue
        for k in data:
            why = configmap_key_problem(k)
            if why:
                problems.append(f"{field}: {why}")
            elif k in seen:
                problems.append(f'{field}: key "{k}" is also in data: a key may appear once')
            seen.add(str(k))
    return problems


def check_limits(obj: Any) -> list[str]:
    """What no object may be: nested deeper than ``MAX_DEPTH``, or bigger than
    ``MAX_OBJECT_BYTES`` as JSON (both checked without recursion)."""
    depth = _depth(obj)
    if depth > MAX_DEPTH:
        return [f"the object is nested more than {MAX_DEPTH} levels deep: at most {MAX_DEPTH} are accepted"]
    try:
        size = len(json.dumps(obj, allow_nan=False, separators=(",", ":")).encode())
    except (TypeError, ValueError) as e:
        return [f"the object holds a value JSON cannot carry: {e}"]
    if size > MAX_OBJECT_BYTES:
        return [
            f"the object is {size:,} bytes as JSON: at most {MAX_OBJECT_BYTES:,} (1 MiB) are accepted, "
            "the size Kubernetes allows a ConfigMap and, in round figures, etcd allows any object "
            "(its request limit is 1.5 MiB); split it into smaller objects"
        ]
    return []


def _depth(obj: Any) -> int:
    deepest, todo = 0, [(obj, 1)]
    while todo:
        value, level = todo.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            return level
        if isinstance(value, Mapping):
            todo.extend((v, level + 1) for v in value.values())
        elif isinstance(value, list):
            todo.extend((v, level + 1) for v in value)
    return deepest


_CHECKERS = {
    "Service": _check_service,
    "Deployment": _check_deployment,
    "ConfigMap": _check_configmap,
    "Secret": check_secret,
    "EndpointSlice": check_endpointslice,
}
