"""The objects a Canary makes, as Flagger's Kubernetes deployment controller and its
Gloo router make them (pure functions: the controller writes what they return).

For a Canary ``petstore`` whose target Deployment ``petstore`` selects ``app: petstore``:

- ``petstore-primary``: a Deployment running a copy of the target's pod template, its
  selector label set to ``petstore-primary``; the ConfigMaps the template uses are
  copied to ``<name>-primary`` and the copy uses those (Flagger's config tracking);
- Services ``petstore`` (the apex, selecting the primary's pods), ``petstore-primary``
  and ``petstore-canary`` (selecting the target's pods);
- Upstreams ``<ns>-petstore-primaryupstream-<port>`` and ``...-canaryupstream-<port>``
  (``kube`` with the Service's selector), in the Canary's namespace;
- the RouteTable ``petstore``: one route, primary weight 100, canary 0, with the
  ``analysis.match`` headers as its matchers.

Each carries an owner reference to the Canary (a controller reference), which is
what deleting the Canary follows, as Kubernetes' garbage collector does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from helpers.kinds import FLAGGER_V1BETA1, GLOO_GATEWAY_V1, GLOO_V1

# Flagger's default -selector-labels: the first of these in the target's matchLabels.
SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")
_TOOLKIT_MARKER = "toolkit.fluxcd.io"  # Flux's own metadata, never copied
_ID_ANNOTATION = "flagger-id"
_TRACKING = "flagger.app/config-tracking"


class ObjectError(Exception):
    """The target cannot be made into a canary (Flagger's message)."""


@dataclass(frozen=True)
class Names:
    """The names Flagger derives from a Canary (``GetServiceNames`` and the router's)."""

    namespace: str
    target: str
    apex: str
    port: int

    @classmethod
    def of(cls, canary: Mapping[str, Any]) -> Names:
        spec = canary.get("spec") or {}
        target = str((spec.get("targetRef") or {}).get("name"))
        service = spec.get("service") or {}
        ns = str((canary.get("metadata") or {}).get("namespace") or "default")
        return cls(ns, target, str(service.get("name") or target), int(service.get("port") or 0))

    @property
    def primary(self) -> str:
        return f"{self.apex}-primary"

    @property
    def canary(self) -> str:
        return f"{self.apex}-canary"

    @property
    def primary_deployment(self) -> str:
        return f"{self.target}-primary"

    @property
    def primary_upstream(self) -> str:
        return f"{self.namespace}-{self.apex}-primaryupstream-{self.port}"

    @property
    def canary_upstream(self) -> str:
        return f"{self.namespace}-{self.apex}-canaryupstream-{self.port}"


def owner_reference(canary: Mapping[str, Any]) -> dict[str, Any]:
    meta = canary.get("metadata") or {}
    return {
        "apiVersion": FLAGGER_V1BETA1,
        "kind": "Canary",
        "name": meta.get("name"),
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(obj: Mapping[str, Any], canary: Mapping[str, Any]) -> bool:
    """Whether ``obj`` has ``canary`` as its controller (same kind, name and uid)."""
    want = owner_reference(canary)
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(
        r.get("kind") == "Canary" and r.get("name") == want["name"] and r.get("uid") == want["uid"] for r in refs
    )


def _clean(meta: Mapping[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (meta or {}).items() if _TOOLKIT_MARKER not in k}


def _primary_labels(labels: Mapping[str, str] | None, label: str, value: str) -> dict[str, str]:
    return {**{k: v for k, v in _clean(labels).items() if k != label}, label: value}


def selector_label(target: Mapping[str, Any]) -> tuple[str, str]:
    """(label, value) of the target's pod selector Flagger builds on."""
    match = ((target.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    for label in SELECTOR_LABELS:
        if label in match:
            return label, str(match[label])
    meta = target.get("metadata") or {}
    raise ObjectError(
        f"deployment {meta.get('name')}.{meta.get('namespace', 'default')} spec.selector.matchLabels "
        f"must contain one of [{' '.join(SELECTOR_LABELS)}]"
    )


def configmap_refs(template: Mapping[str, Any]) -> list[str]:
    """The ConfigMaps a pod template uses (volumes, envFrom, env valueFrom), in order."""
    spec = template.get("spec") or {}
    found: list[str] = []
    for volume in spec.get("volumes") or []:
        if "configMap" in volume:
            found.append(str(volume["configMap"].get("name")))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "configMap" in source:
                found.append(str(source["configMap"].get("name")))
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for env_from in container.get("envFrom") or []:
            if "configMapRef" in env_from:
                found.append(str(env_from["configMapRef"].get("name")))
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
            if ref:
                found.append(str(ref.get("name")))
    return list(dict.fromkeys(found))


def tracked(template: Mapping[str, Any], configmaps: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The ConfigMaps Flagger tracks for ``template``: those it uses that exist and are
    not annotated ``flagger.app/config-tracking: disabled``."""
    found = {}
    for name in configmap_refs(template):
        cm = configmaps.get(name)
        annotations = (cm or {}).get("metadata", {}).get("annotations") or {}
        if cm is not None and not str(annotations.get(_TRACKING, "")).startswith("disable"):
            found[name] = dict(cm)
    return found


def revision(template: Mapping[str, Any], configs: Mapping[str, Mapping[str, Any]]) -> str:
    """What a rollout is of: the pod template and the data of the ConfigMaps it tracks."""
    data = {"template": template, "configs": {n: cm.get("data") or {} for n, cm in sorted(configs.items())}}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _rename_configmaps(spec: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The pod spec with each tracked ConfigMap replaced by its ``-primary`` copy."""
    spec = copy.deepcopy(spec)

    def renamed(ref: dict[str, Any]) -> None:
        if ref.get("name") in names:
            ref["name"] = f"{ref['name']}-primary"

    for volume in spec.get("volumes") or []:
        if "configMap" in volume:
            renamed(volume["configMap"])
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "configMap" in source:
                renamed(source["configMap"])
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for env_from in container.get("envFrom") or []:
            if "configMapRef" in env_from:
                renamed(env_from["configMapRef"])
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
            if ref:
                renamed(ref)
    return spec


def primary_configmaps(canary: Mapping[str, Any], configs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``<name>-primary`` copies of the tracked ConfigMaps, owned by the Canary."""
    ns = Names.of(canary).namespace
    out = []
    for name, cm in sorted(configs.items()):
        annotations = _clean((cm.get("metadata") or {}).get("annotations"))
        meta: dict[str, Any] = {"name": f"{name}-primary", "namespace": ns}
        if annotations:
            meta["annotations"] = annotations
        meta["ownerReferences"] = [owner_reference(canary)]
        out.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": copy.deepcopy(cm.get("data") or {})}
        )
    return out


def primary_deployment(
    canary: Mapping[str, Any], target: Mapping[str, Any], configs: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """``<target>-primary``: the target's pod template under the primary's label, its
    tracked ConfigMaps renamed, and a fresh ``flagger-id`` so its pods roll."""
    names = Names.of(canary)
    label, value = selector_label(target)
    primary_value = f"{value}-primary"
    spec = target.get("spec") or {}
    template = spec.get("template") or {}
    tmeta = template.get("metadata") or {}
    annotations = {k: v for k, v in _clean(tmeta.get("annotations")).items() if k != _ID_ANNOTATION}
    annotations[_ID_ANNOTATION] = str(uuid.uuid4())
    replicas = spec.get("replicas")
    out_spec: dict[str, Any] = {
        "replicas": replicas if isinstance(replicas, int) and replicas > 0 else 1,
        "selector": {"matchLabels": {label: primary_value}},
        "template": {
            "metadata": {
                "labels": _primary_labels(tmeta.get("labels"), label, primary_value),
                "annotations": annotations,
            },
            "spec": _rename_configmaps(dict(template.get("spec") or {}), list(configs)),
        },
    }
    for field in ("progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit", "strategy"):
        if field in spec:
            out_spec[field] = copy.deepcopy(spec[field])
    meta: dict[str, Any] = {
        "name": names.primary_deployment,
        "namespace": names.namespace,
        "labels": {label: primary_value},
        "ownerReferences": [owner_reference(canary)],
    }
    target_annotations = _clean((target.get("metadata") or {}).get("annotations"))
    if target_annotations:
        meta["annotations"] = target_annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": out_spec}


def services(
    canary: Mapping[str, Any], target: Mapping[str, Any], existing: Mapping[str, Mapping[str, Any] | None]
) -> list[dict[str, Any]]:
    """The canary, primary and apex ClusterIP Services, in the order Flagger makes them.

    One that exists and the Canary does not own (a Service the user wrote) keeps its
    metadata: only its selector and ports change, as Flagger's router does."""
    names = Names.of(canary)
    label, value = selector_label(target)
    service = (canary.get("spec") or {}).get("service") or {}
    port: dict[str, Any] = {
        "name": service.get("portName") or "http",
        "protocol": "TCP",
        "port": names.port,
        "targetPort": service.get("targetPort") or names.port,
    }
    if service.get("appProtocol"):
        port["appProtocol"] = service["appProtocol"]
    out = []
    for name, selects, custom in (
        (names.canary, value, service.get("canary")),
        (names.primary, f"{value}-primary", service.get("primary")),
        (names.apex, f"{value}-primary", service.get("apex")),
    ):
        spec = {"type": "ClusterIP", "selector": {label: selects}, "ports": [dict(port)]}
        old = existing.get(name)
        if old is not None and not owned_by(old, canary):
            updated = copy.deepcopy(dict(old))
            updated["spec"] = {**(updated.get("spec") or {}), "selector": spec["selector"], "ports": spec["ports"]}
            out.append(updated)
            continue
        meta: dict[str, Any] = {
            "name": name,
            "namespace": names.namespace,
            "labels": {**_clean((custom or {}).get("labels")), label: name},
            "ownerReferences": [owner_reference(canary)],
        }
        annotations = _clean((custom or {}).get("annotations"))
        if annotations:
            meta["annotations"] = annotations
        out.append({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec})
    return out


def upstreams(canary: Mapping[str, Any], target: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The primary and canary Upstreams the Gloo router writes (``kube`` with a selector)."""
    names = Names.of(canary)
    label, value = selector_label(target)
    out = []
    for name, service, selects in (
        (names.primary_upstream, names.primary, f"{value}-primary"),
        (names.canary_upstream, names.canary, value),
    ):
        out.append(
            {
                "apiVersion": GLOO_V1,
                "kind": "Upstream",
                "metadata": {"name": name, "namespace": names.namespace, "ownerReferences": [owner_reference(canary)]},
                "spec": {
                    "kube": {
                        "serviceName": service,
                        "serviceNamespace": names.namespace,
                        "servicePort": names.port,
                        "selector": {label: selects},
                    }
                },
            }
        )
    return out


def matchers(canary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The route's matchers from ``analysis.match``: headers (exact or regex) and methods."""
    headers: list[dict[str, Any]] = []
    methods: list[str] = []
    for match in ((canary.get("spec") or {}).get("analysis") or {}).get("match") or []:
        for name, rule in (match.get("headers") or {}).items():
            if rule.get("regex"):
                headers.append({"name": name, "value": rule["regex"], "regex": True})
            else:
                headers.append({"name": name, "value": rule.get("exact", "")})
        if (match.get("method") or {}).get("exact"):
            methods.append(match["method"]["exact"])
    if not headers and not methods:
        return []
    matcher: dict[str, Any] = {}
    if headers:
        matcher["headers"] = headers
    if methods:
        matcher["methods"] = methods
    return [matcher]


def route_table(canary: Mapping[str, Any], primary_weight: int, canary_weight: int) -> dict[str, Any]:
    """The RouteTable ``<apex>``: all of the Canary's traffic, split by weight."""
    names = Names.of(canary)
    apex = ((canary.get("spec") or {}).get("service") or {}).get("apex") or {}
    route: dict[str, Any] = {"inheritablePathMatchers": True}
    found = matchers(canary)
    if found:
        route["matchers"] = found
    route["routeAction"] = {
        "multi": {
            "destinations": [
                {"destination": {"upstream": {"name": up, "namespace": names.namespace}}, "weight": weight}
                for up, weight in ((names.primary_upstream, primary_weight), (names.canary_upstream, canary_weight))
            ]
        }
    }
    meta: dict[str, Any] = {"name": names.apex, "namespace": names.namespace}
    if apex.get("labels"):
        meta["labels"] = _clean(apex["labels"])
    if apex.get("annotations"):
        meta["annotations"] = _clean(apex["annotations"])
    meta["ownerReferences"] = [owner_reference(canary)]
    return {"apiVersion": GLOO_GATEWAY_V1, "kind": "RouteTable", "metadata": meta, "spec": {"routes": [route]}}


def weights(table: Mapping[str, Any], canary: Mapping[str, Any]) -> tuple[int, int] | None:
    """(primary, canary) weights of a RouteTable the router wrote, as its ``GetRoutes``
    reads them (canary = 100 - primary); None when it has no such destinations."""
    names = Names.of(canary)
    routes = (table.get("spec") or {}).get("routes") or []
    dests = (((routes[0] if routes else {}).get("routeAction") or {}).get("multi") or {}).get("destinations") or []
    for d in dests:
        if ((d.get("destination") or {}).get("upstream") or {}).get("name") == names.primary_upstream:
            primary = int(d.get("weight") or 0)
            return primary, 100 - primary
    return None
