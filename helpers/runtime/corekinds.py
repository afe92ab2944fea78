"""What the API server refuses in a Secret (v1) and an EndpointSlice (discovery.k8s.io/v1).

A Secret's ``data`` values are base64 (the API server decodes them), ``stringData``
values plain text merged into ``data``; a ``kubernetes.io/tls`` Secret needs the keys
``tls.crt`` and ``tls.key``. An EndpointSlice lists ``endpoints`` (each with 1 to 100
``addresses`` of its ``addressType``) and ``ports``; the label
``kubernetes.io/service-name`` ties it to its Service.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Mapping
from typing import Any

from helpers.runtime.objectmeta import label_problem, qualified_name_problem, subdomain_problem
from helpers.runtime.podspec import configmap_key_problem, is_int

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# Keys each built-in Secret type must hold (after stringData is merged into data).
_SECRET_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}
_SECRET_FIELDS = {"apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"}
_SLICE_FIELDS = {"apiVersion", "kind", "metadata", "addressType", "endpoints", "ports"}
_ENDPOINT_FIELDS = {
    "addresses",
    "conditions",
    "hostname",
    "targetRef",
    "nodeName",
    "zone",
    "hints",
    "deprecatedTopology",
}
_PORT_FIELDS = {"name", "port", "protocol", "appProtocol"}
_PROTOCOLS = ("TCP", "UDP", "SCTP")
MAX_ENDPOINTS, MAX_ADDRESSES, MAX_PORTS = 1000, 100, 20000


def _unknown(obj: Mapping[str, Any], known: set[str], where: str) -> list[str]:
    return [f'{where}{k}: unknown field "{k}" (strict field validation)' for k in obj if str(k) not in known]


def check_secret(obj: Mapping[str, Any]) -> list[str]:
    """Problems of a Secret: unknown fields, keys, base64 ``data``, the keys its ``type`` needs."""
    problems = _unknown(obj, _SECRET_FIELDS, "")
    keys: set[str] = set()
    for field in ("data", "stringData"):
        data = obj.get(field)
        if data is None:
            continue
        if not (isinstance(data, Mapping) and all(isinstance(v, str) for v in data.values())):
            problems.append(f"{field} must map key names to strings")
            continue
        for k, v in data.items():
            why = configmap_key_problem(k)
            if why:
                problems.append(f"{field}: {why}")
            elif field == "data":
                try:
                    base64.b64decode(v, validate=True)
                except (binascii.Error, ValueError):
                    problems.append(
                        f'data["{k}"] is not base64: write the value base64-encoded, or put it in stringData as is'
                    )
            keys.add(str(k))
    stype = obj.get("type", "Opaque")
    if not isinstance(stype, str):
        problems.append(f"type must be a string such as Opaque or kubernetes.io/tls, got {stype!r}")
    for needed in _SECRET_KEYS.get(str(stype), ()):
        if needed not in keys:
            problems.append(f'data["{needed}"] is required for a Secret of type {stype}')
    if obj.get("immutable") is not None and not isinstance(obj.get("immutable"), bool):
        problems.append("immutable must be true or false")
    return problems


def check_endpointslice(obj: Mapping[str, Any]) -> list[str]:
    """Problems of an EndpointSlice: addressType, endpoints and their addresses, ports."""
    problems = _unknown(obj, _SLICE_FIELDS, "")
    kind = obj.get("addressType")
    if kind is None:
        problems.append("addressType is required: IPv4, IPv6 or FQDN")
    elif kind not in ("IPv4", "IPv6", "FQDN"):
        problems.append(f'addressType "{kind}" is not one of IPv4, IPv6, FQDN')
    # The API server accepts a slice without ``endpoints`` (it decodes as none).
    endpoints = obj.get("endpoints", [])
    if endpoints is None:
        endpoints = []
    if not isinstance(endpoints, list):
        problems.append("endpoints must be a list of endpoints")
        endpoints = []
    elif len(endpoints) > MAX_ENDPOINTS:
        problems.append(f"endpoints: {len(endpoints)} items, at most {MAX_ENDPOINTS}")
    for i, ep in enumerate(endpoints):
        problems += _check_endpoint(ep, f"endpoints[{i}]", kind)
    ports = obj.get("ports")
    if ports is not None:
        problems += _check_ports(ports)
    return problems


def _check_endpoint(ep: Any, where: str, kind: Any) -> list[str]:
    if not isinstance(ep, Mapping):
        return [f"{where} must be an object with addresses"]
    problems = _unknown(ep, _ENDPOINT_FIELDS, f"{where}.")
    addresses = ep.get("addresses")
    if not isinstance(addresses, list) or not 1 <= len(addresses) <= MAX_ADDRESSES:
        problems.append(f"{where}.addresses must list 1 to {MAX_ADDRESSES} addresses")
        addresses = addresses if isinstance(addresses, list) else []
    for j, a in enumerate(addresses):
        why = _address_problem(a, kind)
        if why:
            problems.append(f"{where}.addresses[{j}]: {why}")
    conditions = ep.get("conditions")
    if conditions is not None:
        if not isinstance(conditions, Mapping):
            problems.append(f"{where}.conditions must be an object (ready, serving, terminating)")
        else:
            for k, v in conditions.items():
                if k not in ("ready", "serving", "terminating"):
                    problems.append(f'{where}.conditions.{k}: unknown field "{k}" (strict field validation)')
                elif v is not None and not isinstance(v, bool):
                    problems.append(f"{where}.conditions.{k} must be true or false")
    hostname = ep.get("hostname")
    if hostname is not None:
        why = label_problem(hostname, f"{where}.hostname") if isinstance(hostname, str) else "must be a string"
        if why:
            problems.append(why)
    return problems


def _address_problem(address: Any, kind: Any) -> str | None:
    if not isinstance(address, str):
        return "an address is a string"
    if kind == "FQDN":
        return subdomain_problem(address, "address")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f'"{address}" is not a valid IP address'
    if kind in ("IPv4", "IPv6") and ip.version != int(str(kind)[-1]):
        return f'"{address}" is not an {kind} address'
    return None


def _check_ports(ports: Any) -> list[str]:
    if not isinstance(ports, list):
        return ["ports must be a list"]
    if len(ports) > MAX_PORTS:
        return [f"ports: {len(ports)} items, at most {MAX_PORTS}"]
    problems: list[str] = []
    names: set[str] = set()
    for i, p in enumerate(ports):
        where = f"ports[{i}]"
        if not isinstance(p, Mapping):
            problems.append(f"{where} must be an object (name, port, protocol, appProtocol)")
            continue
        problems += _unknown(p, _PORT_FIELDS, f"{where}.")
        name = p.get("name") or ""
        if not isinstance(name, str):
            problems.append(f"{where}.name must be a string")
        elif name:
            why = label_problem(name, f"{where}.name")
            if why:
                problems.append(why)
        if name in names:
            problems.append(f'{where}.name "{name}" is listed twice: each port name may appear once')
        names.add(str(name))
        port = p.get("port")
        if port is not None and not (is_int(port) and 0 <= port <= 65535):
            problems.append(f"{where}.port must be a number from 1 to 65535, got {port!r}")
        if p.get("protocol", "TCP") not in _PROTOCOLS:
            problems.append(f'{where}.protocol "{p.get("protocol")}" is not one of {", ".join(_PROTOCOLS)}')
        app = p.get("appProtocol")
        if app is not None:
            why = qualified_name_problem(app, f"{where}.appProtocol") if isinstance(app, str) else "must be a string"
            if why:
                problems.append(why)
    return problems
