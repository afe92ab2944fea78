"""The kubernetes backend: the lab's operations on a real cluster.

Same protocol and the same results as the local backend (``helpers.backends.base``),
so the notebooks and the CLI do not change. The parts: ``connecting`` (client and
errors), ``resources`` (REST paths), ``applying`` (server-side apply, delete),
``reading`` (objects as the tables expect them, rollout status), ``installing``
(what both gateways share), ``gloo`` and ``kgateway`` (each one's install), ``flagger``
(Flagger's and its loadtester's charts),
``pins`` (the versions installed), ``forwarding`` (the gateway's URL without a load balancer),
``ledger`` (what to undo) and ``tools`` (the helm/glooctl/kubectl seam).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers.backends.base import describe_not_ready
from helpers.backends.kube.applying import apply_one, delete_one, wait_served
from helpers.backends.kube.connecting import KubeApi, connect
from helpers.backends.kube.flagger import FlaggerInstaller, prometheus_status
from helpers.backends.kube.forwarding import Forwarder
from helpers.backends.kube.gloo import GlooInstaller, write_upstreams
from helpers.backends.kube.installing import GATEWAY_DEPLOYMENTS, PROXIES, Installer
from helpers.backends.kube.kgateway import KgatewayInstaller
from helpers.backends.kube.ledger import Ledger
from helpers.backends.kube.reading import discovery_pending, get_events, get_objects, rollout
from helpers.backends.kube.resources import Resources, by_kind
from helpers.backends.kube.tools import Tools
from helpers.backends.processes import alive, spawn_detached
from helpers.errors import InvalidArgument, LabStartError, NotFound, Unsupported, WaitTimeout
from helpers.kinds import GLOO_NAMESPACE
from helpers.runtime.home import LabHome

_FORWARD_START_S = 20.0
_FORWARD_MODULE = "helpers.backends.kube.forwarding"


class KubernetesBackend:
    """A real cluster: the kubeconfig's current context, or ``context``.

    ``namespace`` is where objects without one go (default: the context's, else
    ``default``). ``COALMINE_CONTEXT`` and ``COALMINE_NAMESPACE`` set both too.
    """

    name = "kubernetes"

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        context: str | None = None,
        namespace: str | None = None,
        tools: Tools | None = None,
    ) -> None:
        self.home = LabHome.resolve(home)
        conn = connect(context or os.environ.get("COALMINE_CONTEXT") or None)
        self.api = KubeApi(conn)
        self.namespace = namespace or os.environ.get("COALMINE_NAMESPACE") or conn.namespace
        self.tools = tools or Tools()
        self.resources = Resources(self.api)
        self.ledger = Ledger(self.home.root, conn.context)
        self.installers: dict[str, Installer] = {
            cls.component: cls(self.api, self.tools, self.ledger, self._apply_and_remember)
            for cls in (GlooInstaller, KgatewayInstaller, FlaggerInstaller)
        }
        self._pod_forwards: dict[tuple[str, str, int], tuple[Forwarder, int]] = {}

    def __repr__(self) -> str:
        return f"KubernetesBackend(context={self.api.context!r}, namespace={self.namespace!r})"

    # ── lifecycle ────────────────────────────────────────────────────────────

    def up(self) -> dict[str, Any]:
        """Check that the API server answers (and accepts us); nothing is started."""
        self.home.ensure()
        self.api.request("GET", "/version", what="the API server's version")
        return self.status()

    def down(self, forget: bool = False) -> str:
        """Stop the lab's port-forwards. The cluster is left as it is, unless ``forget``:
        then what the lab applied and installed is removed too (``reset``)."""
        if forget:
            undone = self.reset()
            return f"undid what the lab did to the cluster ({len(undone)} changes) and stopped its port-forwards"
        for state in self.home.root.glob("forward-*.json"):
            _stop_forwarder(state)
        for forwarder, _ in self._pod_forwards.values():
            forwarder.close()
        self._pod_forwards.clear()
        return "stopped the lab's port-forwards; the cluster keeps what the lab applied (forget=True removes it)"

    def reset(self) -> list[str]:
        """Delete what the lab applied, uninstall what it installed, stop its port-forwards:
        the cluster is left as it was before the lab."""
        lines = []
        for ref in reversed(self.ledger.applied()):
            result = delete_one(self.api, ref, self.namespace)
            if "error" not in result or result.get("reason") == "NotFound":
                self.ledger.forget(ref)
            if "error" not in result:
                lines.append(f"{result['ref']} deleted")
        for component in ("flagger", "kgateway", "gloo"):  # Flagger before the gateway it routes through
            lines += self.uninstall(component) if component in self.ledger.installed() else []
        self.down()
        return lines

    def status(self) -> dict[str, Any]:
        pods = get_objects(self.api, "Pod", self.namespace, None)
        ready = sum(
            1 for p in pods if all(c.get("ready") for c in (p.get("status") or {}).get("containerStatuses") or [{}])
        )
        installed = self.ledger.installed()
        url = None
        component = _gateway_of(installed)
        if component is not None:
            state = self._forward_state(component)
            url = f"http://127.0.0.1:{state['port']}" if state else None
        return {
            "home": str(self.home.root),
            "backend": self.name,
            "context": self.api.context,
            "server": self.api.connection.server,
            "namespace": self.namespace,
            "gateway": {"installed": component is not None, "component": component, "url": url},
            "objects": len(self.ledger.applied()),
            "pods": {"total": len(pods), "ready": ready},
        }

    # ── objects ──────────────────────────────────────────────────────────────

    def _apply_and_remember(self, obj: dict[str, Any]) -> dict[str, Any]:
        result = apply_one(self.api, self.resources, obj, self.namespace)
        key = result.pop("key", None)
        if key is not None:
            self.ledger.remember(key)
        return result

    def apply(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self._apply_and_remember(obj) for obj in objects]

    def delete(self, refs: list[dict[str, str]]) -> list[dict[str, Any]]:
        results = []
        for ref in refs:
            result = delete_one(self.api, ref, self.namespace)
            key = result.pop("key", None)
            if key is not None:
                self.ledger.forget(key)
            results.append(result)
        return results

    def get(self, kind: str, namespace: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        objects = get_objects(self.api, kind, namespace, name)
        if kind == "Pod":
            for pod in objects:
                self._forward_pod(pod)
        return objects

    def _forward_pod(self, pod: dict[str, Any]) -> None:
        """``status.localPort``: a port-forward on 127.0.0.1 to a ready pod's first
        container port, as the local runtime's pods have, open while this process runs."""
        ports = [p for c in (pod.get("spec") or {}).get("containers") or [] for p in c.get("ports") or []]
        status = pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        if not ports or not ready:
            return
        key = (pod["metadata"].get("namespace", ""), pod["metadata"]["name"], int(ports[0]["containerPort"]))
        if key not in self._pod_forwards:
            forwarder = Forwarder(self.api, key[0], None, key[2], pod=key[1])
            self._pod_forwards[key] = (forwarder, forwarder.start())
        status["localPort"] = self._pod_forwards[key][1]

    # ── gateways ─────────────────────────────────────────────────────────────

    def install(self, component: str, port: int | None = None, channel: str | None = None) -> dict[str, Any]:
        """Install ``gloo`` (Helm or glooctl), ``kgateway`` (Helm, Gateway API CRDs of ``channel``) or
        ``flagger`` (Helm: its chart with Prometheus, the loadtester's); a failed install is recorded
        as pending: running it again finishes it, ``reset`` undoes it. ``prometheus`` is Flagger's."""
        installer = self.installers.get(component)
        if channel is not None and not isinstance(installer, KgatewayInstaller):
            raise InvalidArgument(f"--channel goes with `install kgateway`, not with {component}")
        if installer is not None:
            return installer.install(channel) if isinstance(installer, KgatewayInstaller) else installer.install()
        if component == "prometheus":
            return prometheus_status(self.ledger)
        raise InvalidArgument(
            f'unknown component "{component}": the kubernetes backend installs "gloo", "kgateway" or "flagger"'
        )

    def uninstall(self, component: str) -> list[str]:
        """Remove what ``install(component)`` added (nothing that was there before)."""
        state = self.home.root / f"forward-{component}.json"
        if state.exists():
            _stop_forwarder(state)
        if component in self.installers:
            return self.installers[component].uninstall()
        raise InvalidArgument(f'unknown component "{component}": use "gloo", "kgateway" or "flagger"')

    def proxy_url(self, gateway: str | None = None) -> str:
        """The gateway's URL: its LoadBalancer address, else a port-forward on 127.0.0.1
        (started once, kept until ``down``), like ``glooctl proxy url`` but also on kind.
        ``gateway`` ("namespace/name") asks for a Gateway API Gateway's URL."""
        component = _component_of(gateway) if gateway else _gateway_of(self.ledger.installed())
        if component is None:
            raise NotFound("no gateway is installed by this lab: run `coalmine install gloo`")
        target = PROXIES[component]
        svc_res = by_kind("Service")
        svc = self.api.request("GET", svc_res.path(target.namespace, target.service), what=svc_res.ref(target.service))
        ingress = (((svc or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if ingress and (ingress[0].get("ip") or ingress[0].get("hostname")):
            host = ingress[0].get("ip") or ingress[0].get("hostname")
            return f"http://{host}" if target.port == 80 else f"http://{host}:{target.port}"
        state = self._forward_state(component) or self._start_forwarder(component)
        return f"http://127.0.0.1:{state['port']}"

    def _forward_state(self, component: str) -> dict[str, Any] | None:
        state_file = self.home.root / f"forward-{component}.json"
        try:
            state = json.loads(state_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if (
            not isinstance(state, dict)
            or not _is_forwarder(int(state.get("pid", 0)))
            or state.get("context") not in (self.api.context, None)
        ):
            state_file.unlink(missing_ok=True)
            return None
        return state

    def _start_forwarder(self, component: str) -> dict[str, Any]:
        target = PROXIES[component]
        self.home.ensure()
        state_file = self.home.root / f"forward-{component}.json"
        argv = [
            "--namespace",
            target.namespace,
            "--service",
            target.service,
            "--port",
            str(target.port),
            "--state",
            str(state_file),
        ]
        if self.api.context != "in-cluster":
            argv += ["--context", self.api.context]
        pid = spawn_detached(_FORWARD_MODULE, argv, self.home.root / f"forward-{component}.log")
        deadline = time.monotonic() + _FORWARD_START_S
        while time.monotonic() < deadline:
            state = self._forward_state(component)
            if state and state.get("pid") == pid:
                return state
            if not alive(pid):
                break
            time.sleep(0.05)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
        raise LabStartError(
            f"the port-forward to {target.namespace}/{target.service} did not start; "
            f"see {self.home.root / f'forward-{component}.log'}"
        )

    # ── readiness ────────────────────────────────────────────────────────────

    def ready(self) -> dict[str, Any]:
        """Deployments rolled out (the lab's and the gateway's), discovery done."""
        installed = self.ledger.installed()
        applied = self.ledger.applied()
        wanted = [(r["namespace"], r["name"]) for r in applied if r["kind"] == "Deployment"]
        for component in installed:
            wanted += GATEWAY_DEPLOYMENTS.get(component, [])
        deployments = []
        dep_res = by_kind("Deployment")
        for ns, name in wanted:
            dep = self.api.request("GET", dep_res.path(ns, name), what=dep_res.ref(name))
            deployments.append(
                rollout(dep) if dep else {"name": f"{ns}/{name}", "ready": 0, "desired": 1, "done": False}
            )
        pending: list[str] = []
        if "gloo" in installed:
            services = [
                s
                for r in applied
                if r["kind"] == "Service"
                for s in get_objects(self.api, "Service", r["namespace"], r["name"])
            ]
            if not installed["gloo"].get("discovery", True):
                write_upstreams(self.api, services, self._apply_and_remember)
            upstreams = get_objects(self.api, "Upstream", GLOO_NAMESPACE, None)
            pending = discovery_pending(services, upstreams)
        gateway_done = all(
            d["done"]
            for d in deployments
            if str(d["name"]).split("/")[0] in {ns for c in installed for ns, _ in GATEWAY_DEPLOYMENTS.get(c, [])}
        )
        gateway = {"installed": bool(installed), "serving": bool(installed) and gateway_done, "port": None}
        done = all(d["done"] for d in deployments) and not pending
        return {"ready": done, "deployments": deployments, "discoveryPending": pending, "gateway": gateway}

    def wait(self, timeout: float = 300.0) -> dict[str, Any]:
        """Block until ``ready()``; raise ``WaitTimeout`` naming what is not ready."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.ready()
            if state["ready"]:
                if state["gateway"]["installed"]:
                    state["gateway"]["url"] = self.proxy_url()
                return state
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"not ready after {timeout:g}s: {describe_not_ready(state)}")
            time.sleep(1.0)

    def wait_in_force(self, served: Callable[[], bool], timeout: float = 60.0) -> bool:
        """Poll the gateway (``served()``) until a route change is in force: Gloo and
        kgateway push it to Envoy a moment after the API server accepted it."""
        return wait_served(served, timeout)

    def routes(self) -> list[dict[str, Any]]:
        raise Unsupported(
            "the served route table is the local runtime's; on a cluster ask Envoy for its own: "
            "`glooctl proxy dump` (Gloo) or `kubectl -n gloo-system port-forward deploy/gateway-proxy "
            "19000` then http://127.0.0.1:19000/config_dump"
        )

    def events(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """The cluster's core/v1 Events (Flagger's among them), oldest first."""
        return get_events(self.api, namespace)

    def stats(self) -> dict[str, Any]:
        raise Unsupported(
            "per-upstream stats come from the local runtime; on a cluster read Envoy's own: "
            "`kubectl -n gloo-system port-forward deploy/gateway-proxy 19000` then "
            "http://127.0.0.1:19000/stats?filter=cluster"
        )

    def stats_url(self, gateway: str | None = None) -> str:
        # Envoy's admin port (19000) listens on the pod's loopback only: a port-forward reaches it.
        ns, name = gateway.split("/", 1) if gateway and "/" in gateway else ("gloo-system", "gateway-proxy")
        raise Unsupported(
            f"on a cluster each gateway's Envoy serves its stats on its admin port: run `kubectl -n {ns} "
            f"port-forward deploy/{name} 19000`, then read http://127.0.0.1:19000/stats/prometheus (no token); "
            "Flagger's Prometheus scrapes the gateway pods itself"
        )


def _gateway_of(installed: dict[str, Any]) -> str | None:
    return "gloo" if "gloo" in installed else ("kgateway" if "kgateway" in installed else None)


def _is_forwarder(pid: int) -> bool:
    if not alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return _FORWARD_MODULE in cmdline.read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return not Path("/proc").is_dir()  # no /proc (macOS): trust the state file


def _stop_forwarder(state_file: Path) -> None:
    try:
        pid = int(json.loads(state_file.read_text()).get("pid", 0))
    except (FileNotFoundError, ValueError):
        return
    if _is_forwarder(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    state_file.unlink(missing_ok=True)


def _component_of(gateway: str) -> str:
    """The installed component that serves Gateway ``namespace/name``."""
    kgateway = PROXIES["kgateway"]
    if gateway == f"{kgateway.namespace}/{kgateway.service}":
        return "kgateway"
    raise NotFound(
        f'Gateway "{gateway}": on a cluster the lab reaches the Gateway that `install kgateway` makes, '
        f"{kgateway.namespace}/{kgateway.service}"
    )
