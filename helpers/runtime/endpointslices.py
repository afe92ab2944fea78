"""A Service's endpoints from EndpointSlices, as kube-proxy and the gateways read them.

Every EndpointSlice labelled ``kubernetes.io/service-name: <service>`` in the Service's
namespace lists endpoints of it; this is how a Service without a selector gets any
(slices written by hand), and a Service with one gets them in addition to its pods. A
service port takes the slice port of the same ``name`` (both unnamed matches too). An
endpoint counts unless ``conditions.ready`` is false, and only its first address, as
kube-proxy does; FQDN slices are ignored, as kube-proxy ignores them.

On loopback a pod's IP is 127.0.0.1 for every pod, so an endpoint whose ``targetRef``
names a running pod is that pod's own loopback port (what the slice's container port
means in a cluster). Any other loopback address is used as written (something the
learner runs on 127.0.0.1 themselves). Addresses of other machines are left out: the
local lab reaches nothing beyond 127.0.0.1 (``unreachable`` lists them).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from helpers.runtime.pods import Pod
from helpers.runtime.routes import Endpoint

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def slices_of(service: Mapping[str, Any], slices: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The EndpointSlices that belong to ``service`` (by label, same namespace)."""
    meta = service.get("metadata") or {}
    ns, name = meta.get("namespace") or "default", meta.get("name")
    found = []
    for s in slices:
        smeta = s.get("metadata") or {}
        if (smeta.get("namespace") or "default") == ns and (smeta.get("labels") or {}).get(SERVICE_NAME_LABEL) == name:
            found.append(s)
    return found


def endpoints(
    service: Mapping[str, Any], slices: Iterable[Mapping[str, Any]], pods: Iterable[Pod]
) -> dict[int, list[Endpoint]]:
    """Endpoints the slices give each port of ``service``, by service port number."""
    mine = slices_of(service, slices)
    running = {
        (p.namespace, p.name): p
        for p in pods
        if not p.terminating and p.port and p.process is not None and p.process.returncode is None
    }
    ns = (service.get("metadata") or {}).get("namespace") or "default"
    result: dict[int, list[Endpoint]] = {}
    for port in (service.get("spec") or {}).get("ports") or []:
        found: list[Endpoint] = []
        for s in mine:
            if s.get("addressType") == "FQDN":
                continue
            wanted = port.get("name") or ""
            slice_port = next((p for p in s.get("ports") or [] if (p.get("name") or "") == wanted), None)
            if slice_port is None or not isinstance(slice_port.get("port"), int):
                continue
            for e in s.get("endpoints") or []:
                endpoint = _endpoint(e, int(slice_port["port"]), ns, running)
                if endpoint is not None and endpoint not in found:
                    found.append(endpoint)
        result[int(port["port"])] = found
    return result


def unreachable(service: Mapping[str, Any], slices: Iterable[Mapping[str, Any]]) -> list[str]:
    """Addresses in ``service``'s slices that the local lab leaves out (not loopback)."""
    return [
        str(e["addresses"][0])
        for s in slices_of(service, slices)
        if s.get("addressType") != "FQDN"
        for e in s.get("endpoints") or []
        if e.get("addresses") and not _loopback(str(e["addresses"][0]))
    ]


def _endpoint(e: Mapping[str, Any], port: int, ns: str, running: Mapping[tuple[str, str], Pod]) -> Endpoint | None:
    if (e.get("conditions") or {}).get("ready") is False or not e.get("addresses"):
        return None
    address = str(e["addresses"][0])
    if not _loopback(address):
        return None
    target = e.get("targetRef") or {}
    if target.get("kind", "Pod") == "Pod" and target.get("name"):
        pod = running.get((target.get("namespace") or ns, target["name"]))
        if pod is not None:
            return Endpoint("127.0.0.1", pod.port, tuple(sorted(pod.labels.items())))
        return None  # a pod that is gone answers nowhere
    return Endpoint(address, port)


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
