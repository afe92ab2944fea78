"""In-lab DNS: Service names resolve to their ready pods on loopback, as cluster DNS would.

In a cluster, ``http://flagger-loadtester.default/`` reaches the Service's pods and
``http://gateway-proxy.gloo-system/`` the gateway. In the lab every pod listens on
its own 127.0.0.1 port, so the control plane keeps a table of them in
``<lab home>/services.json`` (written whole, and only when it changes)::

    {"version": 1,
     "services": {"petstore.default": {"80": ["127.0.0.1:40123"]},
                  "gateway-proxy.gloo-system": {"80": ["127.0.0.1:8080"]}}}

Pods find it through ``COALMINE_SERVICES`` (and their namespace in ``POD_NAMESPACE``);
the canary controller uses ``resolve`` for its webhooks. The rule, on both sides: the
host ``name``, ``name.ns``, ``name.ns.svc`` or ``name.ns.svc.cluster.local`` (a bare
``name`` is in the caller's namespace), the URL's port (80 for http, 443 for https),
one ready endpoint in turn; a name that is no Service is left to real DNS.

The lab's Prometheus (``install prometheus``) is the Service Flagger's Helm chart makes
for its own, ``flagger-prometheus`` in Flagger's namespace, port 9090: a MetricTemplate's
``address: http://flagger-prometheus.gloo-system:9090`` reaches it here as on a cluster.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from helpers.kinds import GLOO_NAMESPACE
from helpers.runtime.home import write_text_atomic
from helpers.runtime.routes import Endpoint

FILE_NAME = "services.json"
GLOO_GATEWAY = f"gateway-proxy.{GLOO_NAMESPACE}"  # Gloo's gateway Service and its port 80
PROMETHEUS = f"flagger-prometheus.{GLOO_NAMESPACE}"  # the lab's Prometheus, named as Flagger's chart names its own
PROMETHEUS_PORT = 9090
PROMETHEUS_URL = f"http://{PROMETHEUS}:{PROMETHEUS_PORT}"
Table = Mapping[str, Any]
_turns: dict[tuple[str, str], itertools.count[int]] = {}


class NoEndpoints(LookupError):
    """The name is a Service, but nothing ready serves that port: the connection
    would be refused in a cluster too."""


def services_file(home_root: Path) -> Path:
    """Where the table of a lab home is kept."""
    return home_root / FILE_NAME


def build_table(
    services: Sequence[Mapping[str, Any]],
    endpoints: Mapping[tuple[str, str, int], Sequence[Endpoint]],
    gateways: Mapping[str, Mapping[int, int]],
) -> dict[str, Any]:
    """The table: every Service's ports with their ready endpoints, and each gateway
    (``"name.namespace"`` -> {service port: local port}) as the Service it is in a cluster."""
    table: dict[str, dict[str, list[str]]] = {}
    for svc in services:
        meta = svc.get("metadata") or {}
        ns, name = meta.get("namespace") or "default", meta.get("name")
        ports = table.setdefault(f"{name}.{ns}", {})
        for p in (svc.get("spec") or {}).get("ports") or []:
            eps = endpoints.get((ns, str(name), int(p["port"]))) or ()
            ports[str(p["port"])] = [f"{e.host}:{e.port}" for e in eps]
    for host, listeners in gateways.items():
        table[host] = {str(port): [f"127.0.0.1:{local}"] for port, local in sorted(listeners.items())}
    return {"version": 1, "services": dict(sorted(table.items()))}


def _service_of(host: str, namespace: str) -> str:
    """``name.ns`` for the forms cluster DNS answers; the host itself otherwise."""
    host = host.lower().rstrip(".")
    for suffix in (".svc.cluster.local", ".svc"):
        if host.endswith(suffix):
            return host[: -len(suffix)]
    return host if "." in host else f"{host}.{namespace}"


def resolve(url: str, namespace: str, table: Table) -> str:
    """``url`` with a Service's name replaced by one of its ready endpoints (in turn);
    unchanged when the host is not a Service. Raises ``NoEndpoints`` when it is one
    but no ready pod serves that port.

    >>> t = {"version": 1, "services": {"tester.default": {"80": ["127.0.0.1:4100"]}}}
    >>> resolve("http://tester/gate/check", "default", t)
    'http://127.0.0.1:4100/gate/check'
    """
    parts = urlsplit(url)
    if not parts.hostname:
        return url
    service = _service_of(parts.hostname, namespace)
    ports: Mapping[str, list[str]] | None = (table.get("services") or {}).get(service)
    if ports is None:
        return url
    port = str(parts.port or (443 if parts.scheme == "https" else 80))
    eps = ports.get(port) or []
    if not eps:
        why = f"has no port {port}" if port not in ports else f"has no ready endpoints for port {port}"
        raise NoEndpoints(f"service {service} {why}")
    turn = next(_turns.setdefault((service, port), itertools.count()))
    netloc = str(eps[turn % len(eps)])
    if parts.username:
        netloc = f"{parts.username}{':' + parts.password if parts.password else ''}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def load(path: Path) -> dict[str, Any]:
    """The table in ``path``; an empty one when it is missing or unreadable."""
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"version": 1, "services": {}}
    return table if isinstance(table, dict) else {"version": 1, "services": {}}


class ServiceTable:
    """The lab's table, kept in ``path``: ``update`` writes it only when it changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.table: dict[str, Any] = {"version": 1, "services": {}}
        self._text = ""

    def update(self, table: dict[str, Any]) -> None:
        text = json.dumps(table, sort_keys=True, separators=(",", ":"))
        self.table = table
        if text != self._text:
            write_text_atomic(self.path, text)
            self._text = text
