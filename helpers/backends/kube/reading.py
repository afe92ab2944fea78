"""Reading the cluster into the same dicts the local backend returns.

So ``helpers.tables`` renders the same tables on both backends: Gloo's statuses
(any of the forms Gloo 1.x writes) become ``status.statuses.<ns>.state`` words
(Accepted / Warning / Rejected / Pending), Services carry their ready endpoints,
and ``rollout`` says what ``kubectl rollout status`` would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from helpers.backends.kube.connecting import KubeApi
from helpers.backends.kube.resources import Resource, by_kind
from helpers.kinds import GLOO_NAMESPACE
from helpers.runtime.gloo.discovering import upstream_name

STATES = {0: "Pending", 1: "Accepted", 2: "Rejected", 3: "Warning"}
FDS_LABEL = "discovery.solo.io/function_discovery"


def gloo_status(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Gloo's status in one form: ``{"statuses": {ns: {"state": "Accepted", ...}}}``.

    Gloo 1.x writes ``status.statuses.<ns>`` (newer), ``namespacedStatuses.statuses``
    (the proto's name) or a single ``{state, reason, reportedBy}`` (older); states may
    be words or numbers (0 Pending, 1 Accepted, 2 Rejected, 3 Warning).
    """
    status = dict(obj.get("status") or {})
    statuses = status.get("statuses")
    if statuses is None and isinstance(status.get("namespacedStatuses"), Mapping):
        statuses = status["namespacedStatuses"].get("statuses")
    if statuses is None and "state" in status:
        statuses = {GLOO_NAMESPACE: {k: v for k, v in status.items() if k != "statuses"}}
    words = {}
    for ns, one in (statuses or {}).items():
        one = dict(one or {})
        state = one.get("state", 0)
        one["state"] = STATES.get(state, state) if isinstance(state, int) else str(state).capitalize()
        words[ns] = one
    return {"statuses": words}


def _tidy(obj: dict[str, Any], res: Resource) -> dict[str, Any]:
    obj.setdefault("apiVersion", res.api_version)
    obj.setdefault("kind", res.kind)
    (obj.get("metadata") or {}).pop("managedFields", None)
    if res.group in ("gloo.solo.io", "gateway.solo.io"):
        obj["status"] = gloo_status(obj)
    return obj


def get_objects(api: KubeApi, kind: str, namespace: str | None, name: str | None) -> list[dict[str, Any]]:
    """Objects of ``kind`` (a kind name), in ``namespace`` (None: all), optionally one ``name``."""
    res = by_kind(kind)
    ns = namespace if res.namespaced else None
    if (name is not None and ns is not None) or (name is not None and not res.namespaced):
        found = api.request("GET", res.path(ns, name), what=res.ref(name))
        objects = [found] if found else []
    else:
        query = {"fieldSelector": f"metadata.name={name}"} if name is not None else None
        objects = (api.request("GET", res.path(ns), query, what=res.plural) or {}).get("items") or []
    objects = [_tidy(o, res) for o in objects]
    if kind == "Service" and objects:
        _add_endpoints(api, objects, ns)
    return objects


def _add_endpoints(api: KubeApi, services: list[dict[str, Any]], namespace: str | None) -> None:
    """``status.endpoints``: ready ``ip:port`` per service port, from EndpointSlices."""
    slices = (api.request("GET", by_kind("EndpointSlice").path(namespace), what="endpointslices") or {}).get(
        "items"
    ) or []
    ready: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for s in slices:
        meta = s.get("metadata") or {}
        svc = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if svc is None:
            continue  # a slice no Service owns
        for port in s.get("ports") or []:
            for ep in s.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready", True):
                    for ip in ep.get("addresses") or []:
                        ready[(meta.get("namespace", ""), svc)][str(port.get("port"))].append(
                            f"{ip}:{port.get('port')}"
                        )
    for svc in services:
        meta = svc["metadata"]
        found = ready.get((meta.get("namespace", ""), meta["name"]), {})
        svc.setdefault("status", {})["endpoints"] = {p: sorted(eps) for p, eps in found.items()}


_EVENTS = Resource("v1", "Event", "events")


def get_events(api: KubeApi, namespace: str | None) -> list[dict[str, Any]]:
    """core/v1 Events in ``namespace`` (None: all), oldest first, as ``kubectl get events``
    reads them; an event written with only ``eventTime`` (events.k8s.io) counts by it."""
    items = (api.request("GET", _EVENTS.path(namespace), what="events") or {}).get("items") or []
    events = [_tidy(e, _EVENTS) for e in items]
    for e in events:
        e.setdefault("lastTimestamp", e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp"))
        e["count"] = int(e.get("count") or 1)
    return sorted(events, key=lambda e: str(e.get("lastTimestamp") or ""))


def rollout(dep: Mapping[str, Any]) -> dict[str, Any]:
    """``{name, ready, desired, done}``: done as ``kubectl rollout status`` means it."""
    meta, spec, st = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
    want = int(spec.get("replicas", 1))
    updated, available = int(st.get("updatedReplicas", 0)), int(st.get("availableReplicas", 0))
    done = (
        int(st.get("observedGeneration", 0)) >= int(meta.get("generation", 1))
        and updated == want
        and int(st.get("replicas", 0)) == updated
        and available == updated
    )
    return {"name": f"{meta.get('namespace')}/{meta.get('name')}", "ready": available, "desired": want, "done": done}


def discovery_pending(services: list[dict[str, Any]], upstreams: list[dict[str, Any]]) -> list[str]:
    """Upstreams Gloo's discovery has yet to write: one per Service port, and REST
    functions for Services labelled for function discovery that have ready endpoints."""
    by_name = {u["metadata"]["name"]: u for u in upstreams}
    pending = []
    for svc in services:
        meta = svc["metadata"]
        wants_functions = (meta.get("labels") or {}).get(FDS_LABEL) == "enabled"
        has_endpoints = any((svc.get("status") or {}).get("endpoints", {}).values())
        for port in (svc.get("spec") or {}).get("ports") or []:
            name = upstream_name(meta.get("namespace", "default"), meta["name"], int(port["port"]))
            us = by_name.get(name)
            if us is None:
                pending.append(name)
            elif (
                wants_functions
                and has_endpoints
                and not (((us.get("spec") or {}).get("kube") or {}).get("serviceSpec") or {}).get("rest")
            ):
                pending.append(f"{name} (REST functions)")
    return pending
