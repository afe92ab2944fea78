"""Gateway listeners: what each accepts, and how listeners sharing a port are served.

Each listener says which route kinds it takes (``allowedRoutes.kinds``, else the
kinds of its protocol: HTTPRoute for HTTP and HTTPS) and from which namespaces
(``allowedRoutes.namespaces``). A kind the protocol cannot carry makes the listener's
ResolvedRefs False (``InvalidRouteKinds``) and is left out of ``supportedKinds``.

Listeners of one Gateway on the same port share one socket, as on a cluster: the
local runtime serves them with one proxy (``PortTable``). The request's Host picks the
listener whose hostname matches it most specifically (an exact name, then the longest
wildcard, then the listener without a hostname), and only that listener's routes can
answer: a request for ``b.example.com`` never falls through to another listener's
routes when a listener ``*.example.com`` exists ("listener isolation"). For HTTPS, the
client's SNI name picks the certificate the same way (``certificates``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from helpers.kinds import GATEWAY_NETWORKING_GROUP
from helpers.runtime.gatewayapi.certificates import KeyPair, ListenerTLS
from helpers.runtime.gatewayapi.precedence import hostname_covers, hostname_rank
from helpers.runtime.routes import Cluster, RouteTable, VirtualHost

SERVED_PROTOCOLS = ("HTTP", "HTTPS")
_PROTOCOL_KINDS = {"HTTP": ("HTTPRoute",), "HTTPS": ("HTTPRoute",), "TLS": ("TLSRoute",), "TCP": ("TCPRoute",)}
_PROTOCOL_KINDS["UDP"] = ("UDPRoute",)
PortKey = tuple[str, str, int]  # (namespace, gateway, port)


@dataclass
class ListenerState:
    """What the translator learnt about one listener, for its status and serving."""

    name: str
    protocol: str
    port: int
    hostname: str | None
    kinds: tuple[str, ...]  # supportedKinds (in the Gateway API group)
    invalid_kinds: tuple[str, ...] = ()
    tls: ListenerTLS | None = None
    conflict: str | None = None  # ProtocolConflict or HostnameConflict
    attached: int = 0

    @property
    def served(self) -> bool:
        """Whether the local runtime serves requests on it."""
        if self.protocol not in SERVED_PROTOCOLS or self.conflict:
            return False
        return self.protocol == "HTTP" or (self.tls is not None and self.tls.pair is not None)


def listener_state(listener: Mapping[str, Any]) -> ListenerState:
    """A listener's kinds, before TLS and conflicts are looked at."""
    protocol = str(listener.get("protocol"))
    native = _PROTOCOL_KINDS.get(protocol, ())
    listed = (listener.get("allowedRoutes") or {}).get("kinds")
    if listed is None:
        kinds: tuple[str, ...] = native
        invalid: tuple[str, ...] = ()
    else:
        ok = [k.get("kind", "") for k in listed if k.get("group", GATEWAY_NETWORKING_GROUP) == GATEWAY_NETWORKING_GROUP]
        kinds = tuple(dict.fromkeys(k for k in ok if k in native))
        invalid = tuple(
            f"{k.get('kind')}.{k.get('group', GATEWAY_NETWORKING_GROUP) or 'core'}"
            for k in listed
            if k.get("group", GATEWAY_NETWORKING_GROUP) != GATEWAY_NETWORKING_GROUP or k.get("kind") not in native
        )
    return ListenerState(
        str(listener.get("name")), protocol, int(listener.get("port") or 0), listener.get("hostname"), kinds, invalid
    )


def mark_conflicts(states: Sequence[ListenerState]) -> None:
    """Listeners sharing a port must agree on the protocol and differ in hostname;
    the first in the list keeps the port, later ones are Conflicted."""
    seen: dict[int, list[ListenerState]] = {}
    for state in states:
        before = seen.setdefault(state.port, [])
        if any(b.protocol != state.protocol for b in before):
            state.conflict = "ProtocolConflict"
        elif any(b.hostname == state.hostname for b in before):
            state.conflict = "HostnameConflict"
        else:
            before.append(state)


def namespace_allowed(
    listener: Mapping[str, Any], route_ns: str, gateway_ns: str, labels: Mapping[str, Mapping[str, str]]
) -> bool:
    """Whether ``allowedRoutes.namespaces`` lets a route of ``route_ns`` attach."""
    namespaces = (listener.get("allowedRoutes") or {}).get("namespaces") or {}
    source = namespaces.get("from", "Same")
    if source == "All":
        return True
    if source == "Same":
        return route_ns == gateway_ns
    want = (namespaces.get("selector") or {}).get("matchLabels") or {}
    have = labels.get(route_ns) or {}
    return all(have.get(n) == v for n, v in want.items())


@dataclass(frozen=True)
class PortTable:
    """One port of a Gateway: its listeners (by name), the merged table they serve
    and, for HTTPS, each listener's ``(hostname, certificate)`` for SNI."""

    listeners: tuple[str, ...]
    table: RouteTable
    scheme: str = "http"
    certificates: tuple[tuple[str | None, KeyPair], ...] = field(default=())


def merge(
    listeners: Sequence[tuple[ListenerState, Sequence[VirtualHost]]],
    clusters: Mapping[str, Cluster],
    version: int,
    name: str,
) -> RouteTable:
    """One table for listeners sharing a port, isolated as the module doc says."""
    hosts = [state.hostname for state, _ in listeners]
    kept: list[VirtualHost] = []
    for state, vhosts in listeners:
        owner = state.hostname or ""
        for vh in vhosts:
            domains = tuple(d for d in vh.domains if _owner(hosts, d) == state.hostname)
            if domains:
                kept.append(VirtualHost(vh.name, domains, vh.routes, listener=owner))
        if state.hostname and not any(state.hostname in vh.domains for vh in vhosts):
            # Nothing of its own there: still the listener's, so a 404, not another listener's routes.
            kept.append(VirtualHost(f"{name}/{state.name} {state.hostname}", (state.hostname,), (), listener=owner))
    # Several listeners on one port: a request is routed among its own listener's hosts
    # only (SNI, else Host), and a Host of another listener there is misdirected (421).
    shared = tuple(h or "" for h in hosts) if len(hosts) > 1 else ()
    return RouteTable(tuple(kept), clusters, version, listener_hostnames=shared)


def _owner(hostnames: Sequence[str | None], domain: str) -> str | None:
    """The hostname of the most specific listener whose hostname covers ``domain``."""
    covering = [h for h in hostnames if hostname_covers(h, domain)]
    return min(covering, key=hostname_rank) if covering else None
