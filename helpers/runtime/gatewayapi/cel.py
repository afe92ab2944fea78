"""More of the Gateway API CRDs' CEL rules (``x-kubernetes-validations``), as schema rules.

Each function is one or more rules of the v1.6.1 CRDs (standard channel unless it says), evaluated on
the object as the API server sees it: after its defaults (a parentRef's ``group`` is
``gateway.networking.k8s.io`` and ``kind`` ``Gateway``; a listener's ``tls.mode`` is
``Terminate``). The messages are the CRDs' own. ``fields`` holds the others.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from helpers.runtime.gatewayapi.fields import HOSTNAME
from helpers.runtime.schema import Found, at


def _items(value: Mapping[str, Any], field: str) -> list[Mapping[str, Any]]:
    items = value.get(field)
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


def _parent(ref: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
    return (
        ref.get("group", "gateway.networking.k8s.io"),
        ref.get("kind", "Gateway"),
        ref.get("name"),
        ref.get("namespace") or "",
    )


def _parent_refs(with_port: bool) -> Any:
    # The experimental channel also tells references to one parent apart by ``port``.
    what = "sectionName or port" if with_port else "sectionName"

    def section(ref: Mapping[str, Any]) -> tuple[Any, ...]:
        return (ref.get("sectionName") or "", (ref.get("port") or 0) if with_port else 0)

    def rule(value: Mapping[str, Any], path: str, found: Found) -> None:
        refs = _items(value, "parentRefs")
        where = at(path, "parentRefs")
        for p1 in refs:
            same = [p2 for p2 in refs if _parent(p2) == _parent(p1)]
            if any(tuple(map(bool, section(p1))) != tuple(map(bool, section(p2))) for p2 in same):
                found.error(
                    where, f"{what} must be specified when parentRefs includes 2 or more references to the same parent"
                )
                return
            if sum(1 for p2 in same if section(p2) == section(p1)) != 1:
                found.error(
                    where, f"{what} must be unique when parentRefs includes 2 or more references to the same parent"
                )
                return

    return rule


# HTTPRoute ``spec.parentRefs``: two references to one parent need distinct sectionNames
# (standard channel), or distinct sectionNames or ports (experimental channel).
parent_refs = _parent_refs(with_port=False)
parent_refs_experimental = _parent_refs(with_port=True)


def listener_rules(value: Mapping[str, Any], path: str, found: Found) -> None:
    """Gateway ``spec.listeners``: TLS by protocol, hostnames, unique names and combinations."""
    listeners = _items(value, "listeners")
    where = at(path, "listeners")
    protocols = [li.get("protocol") for li in listeners]
    tls = [li.get("tls") if isinstance(li.get("tls"), Mapping) else None for li in listeners]
    if any(p in ("HTTP", "TCP", "UDP") and "tls" in li for p, li in zip(protocols, listeners, strict=True)):
        found.error(where, "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']")
    if any(
        p == "HTTPS" and t is not None and t.get("mode", "Terminate") not in ("", "Terminate")
        for p, t in zip(protocols, tls, strict=True)
    ):
        found.error(where, "tls mode must be Terminate for protocol HTTPS")
    if any(
        p == "TLS" and not (t is not None and t.get("mode", "Terminate")) for p, t in zip(protocols, tls, strict=True)
    ):
        found.error(where, "tls mode must be set for protocol TLS")
    if any(p in ("TCP", "UDP") and li.get("hostname") for p, li in zip(protocols, listeners, strict=True)):
        found.error(where, "hostname must not be specified for protocols ['TCP', 'UDP']")
    names = [li.get("name") for li in listeners]
    if len(set(map(str, names))) != len(names):
        found.error(where, "Listener name must be unique within the Gateway")
    combos = [(li.get("port"), li.get("protocol"), li.get("hostname", None)) for li in listeners]
    if len({repr(c) for c in combos}) != len(combos):
        found.error(where, "Combination of port, protocol and hostname must be unique for each listener")


def listener_tls(value: Mapping[str, Any], path: str, found: Found) -> None:
    """A listener's ``tls``: terminating TLS needs certificateRefs or options."""
    if value.get("mode", "Terminate") == "Terminate" and not value.get("certificateRefs") and not value.get("options"):
        found.error(path, "certificateRefs or options must be specified when mode is Terminate")


def addresses(value: Mapping[str, Any], path: str, found: Found) -> None:
    """Gateway ``spec.addresses``: IP addresses are IPs, values unique per type."""
    where = at(path, "addresses")
    items = _items(value, "addresses")
    for i, a in enumerate(items):
        kind, text = a.get("type", "IPAddress"), a.get("value")
        if kind == "IPAddress" and isinstance(text, str):
            try:
                ipaddress.ip_address(text)
            except ValueError:
                found.error(f"{where}[{i}].value", f'"{text}" is not an IPv4 or IPv6 address')
    for kind in ("IPAddress", "Hostname"):
        values = [a.get("value") for a in items if a.get("type", "IPAddress") == kind and a.get("value") is not None]
        if len(set(map(str, values))) != len(values):
            found.error(where, f"{kind} values must be unique")


def address(value: Mapping[str, Any], path: str, found: Found) -> None:
    """An address of type Hostname holds a hostname."""
    if value.get("type") == "Hostname" and value.get("value"):
        HOSTNAME.check(value["value"], at(path, "value"), found)


def mirror(value: Mapping[str, Any], path: str, found: Found) -> None:
    """RequestMirror: percent or fraction, not both; a fraction at most 1."""
    if value.get("percent") is not None and value.get("fraction") is not None:
        found.error(path, "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter")
    fraction = value.get("fraction")
    if isinstance(fraction, Mapping):
        n, d = fraction.get("numerator"), fraction.get("denominator", 100)
        if isinstance(n, int) and isinstance(d, int) and n > d:
            found.error(at(path, "fraction"), "numerator must be less than or equal to denominator")


def wildcard_alone(what: str) -> Any:
    """CORS lists: ``*`` stands alone."""

    def rule(value: Mapping[str, Any], path: str, found: Found) -> None:
        for field, label in (("allowOrigins", "origins"), ("allowMethods", "methods"), ("allowHeaders", "methods")):
            items = value.get(field)
            if isinstance(items, list) and "*" in items and len(items) > 1:
                name = field[0].upper() + field[1:]
                found.error(at(path, field), f"{name} cannot contain '*' alongside other {label}")
            if isinstance(items, list):
                seen = [i for i in items if isinstance(i, str)]
                if len(set(seen)) != len(seen):
                    found.error(at(path, field), f"{what}: each value may be listed once")
        exposed = value.get("exposeHeaders")
        if isinstance(exposed, list) and len(set(map(str, exposed))) != len(exposed):
            found.error(at(path, "exposeHeaders"), f"{what}: each value may be listed once")

    return rule
