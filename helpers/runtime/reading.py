"""What the control plane answers when asked, changing nothing: objects with their live
status (``get``), events, what ``coalmine wait`` waits for (``ready``), the lab at a
glance (``status``) and the served routes. ``ControlPlane`` inherits it; it reads only
the parts the control plane holds.
"""

from __future__ import annotations

from typing import Any

from helpers import kinds
from helpers.kinds import BUILTIN_NAMESPACES, BY_NAME, GLOO_NAMESPACE, KGATEWAY_NAMESPACE, key
from helpers.runtime.flagger.controller import CanaryController
from helpers.runtime.flagger.events import EventLog
from helpers.runtime.gatewayapi.kgateway import Kgateway
from helpers.runtime.gloo.edge import Gloo
from helpers.runtime.home import LabHome
from helpers.runtime.prometheus import PrometheusServer
from helpers.runtime.statsserver import GatewayStats
from helpers.runtime.store import Store
from helpers.runtime.supervising import Supervisor


class Reading:
    """The control plane's read-only answers (mixed into ``ControlPlane``)."""

    home: LabHome
    store: Store
    supervisor: Supervisor
    gloo: Gloo
    kgateway: Kgateway
    flagger: CanaryController
    events: EventLog
    prometheus: PrometheusServer
    stats: GatewayStats

    @property
    def proxy_port(self) -> int | None:
        """The port of Gloo's gateway proxy, once installed."""
        return self.gloo.proxy_port

    def namespaces(self) -> set[str]:
        found = set(BUILTIN_NAMESPACES) | {o["metadata"]["name"] for o in self.store.list("Namespace")}
        if self.gloo.installed:
            found.add(GLOO_NAMESPACE)
        if self.kgateway.installed:
            found.add(KGATEWAY_NAMESPACE)
        return found

    def get(self, kind_name: str, namespace: str | None, name: str | None) -> list[dict[str, Any]]:
        """Objects of a kind with their live status; ``namespace`` None means all."""
        kind = kinds.lookup(kind_name)
        kind_name = kind.name  # "services", "svc" and "Service" name the same kind
        if kind_name == "Pod":
            objects = [p.to_object() for p in self.supervisor.pods()]
        elif kind_name == "Namespace":
            objects = [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}, "status": {"phase": "Active"}}
                for n in sorted(self.namespaces())
            ]
        else:
            objects = [self._with_status(o) for o in self.store.list(kind_name)]
        if kind.namespaced and namespace is not None:
            objects = [o for o in objects if o["metadata"].get("namespace") == namespace]
        if name is not None:
            objects = [o for o in objects if o["metadata"]["name"] == name]
        return objects

    def _with_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = dict(obj)
        k = key(obj)
        status: dict[str, Any] | None = None
        if obj["kind"] == "Deployment":
            status = self.supervisor.deployment_status(k[1], k[2])
        elif obj["kind"] == "Service":
            eps = self.supervisor.endpoints(obj, self.store.list("EndpointSlice"))
            status = {
                "loadBalancer": {},
                "localEndpoints": {str(p): [f"{e.host}:{e.port}" for e in es] for p, es in eps.items()},
            }
        elif obj["kind"] == "Canary":
            status = self.flagger.status_of(k[1], k[2])
        elif BY_NAME[obj["kind"]].gateway_api:
            status = self.kgateway.status_of(k)
        elif BY_NAME[obj["kind"]].gloo:
            status = self.gloo.status_of(k)
        if status is not None:
            obj["status"] = status
        return obj

    def events_of(self, namespace: str | None) -> list[dict[str, Any]]:
        """Events (core/v1 shape), oldest first; ``namespace`` None means all."""
        return self.events.list(namespace)

    def ready(self) -> dict[str, Any]:
        """What ``coalmine wait`` waits for: deployments ready, gateway serving,
        function discovery done for every service with ready endpoints."""
        deployments = []
        for dep in self.store.list("Deployment"):
            k = key(dep)
            st = self.supervisor.deployment_status(k[1], k[2])
            want = int(dep["spec"].get("replicas", 1))
            deployments.append(
                {
                    "name": f"{k[1]}/{k[2]}",
                    "ready": st.get("availableReplicas", 0),
                    "desired": want,
                    "done": st.get("availableReplicas", 0) >= want and st.get("replicas", 0) == want,
                }
            )
        pending = self.gloo.discovery_pending()
        serving = self.gloo.proxy is not None
        gateway = {"installed": self.gloo.installed, "serving": serving, "port": self.proxy_port}
        listeners = self.kgateway.pending()
        done = all(d["done"] for d in deployments) and not pending and (serving or not self.gloo.installed)
        return {
            "ready": done and not listeners,
            "deployments": deployments,
            "discoveryPending": pending,
            "gateway": gateway,
            "listenersPending": listeners,
        }

    def status(self) -> dict[str, Any]:
        pods = self.supervisor.pods()
        return {
            "home": str(self.home.root),
            "gateway": {"installed": self.gloo.installed, "url": self.gloo.proxy_url()},
            "objects": len(list(self.store)),
            "pods": {"total": len(pods), "ready": sum(p.ready for p in pods)},
            "routeTableVersion": self.gloo.table.version,
            "gatewayApi": {
                "installed": self.kgateway.installed,
                "channel": self.kgateway.channel if self.kgateway.installed else None,
                "gateways": self.kgateway.urls(),
            },
            "flagger": {"installed": self.flagger.installed},
            "prometheus": self.prometheus.status(),
            "stats_urls": self.stats.urls(),
        }

    def route_summary(self) -> list[dict[str, Any]]:
        """The served route tables, one row per route, for learners and tests."""
        return self.gloo.route_rows() + self.kgateway.route_rows()
