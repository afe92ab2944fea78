"""A port-forward to a gateway, like ``kubectl port-forward svc/gateway-proxy 8080:80``.

``Forwarder`` listens on 127.0.0.1 and carries each connection to a ready pod
behind the Service, through the API server's port-forward (the ``kubernetes``
client's ``stream.portforward``). It looks the pod up again for every connection,
so a restarted proxy pod does not break it. It works where a LoadBalancer has no
address, as on kind.

It runs as its own process for the lab's lifetime (``coalmine down`` stops it), so
the CLI and every notebook kernel share one URL::

    python -m helpers.backends.kube.forwarding --namespace gloo-system \\
        --service gateway-proxy --port 80 --state <home>/forward-gloo.json [--context C]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from helpers.backends.kube.connecting import KubeApi, connect
from helpers.backends.kube.resources import by_kind
from helpers.errors import NotFound

_CHUNK = 64 * 1024


class Forwarder:
    """127.0.0.1:<port> → a ready pod of Service ``namespace/service`` on ``port``
    (or, with ``pod``, that one pod's ``port``, like ``kubectl port-forward pod/NAME``)."""

    def __init__(
        self, api: KubeApi, namespace: str, service: str | None, port: int, pod: str | None = None, log: bool = False
    ) -> None:
        self.api, self.namespace, self.service, self.port, self.pod = api, namespace, service, port, pod
        self.log = log  # print why a connection failed (the forward process's log file)
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self.last_error: str | None = None

    def start(self, local_port: int = 0) -> int:
        """Listen (on 127.0.0.1 only) and serve in a background thread; returns the port."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", local_port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, name="coalmine-forward", daemon=True).start()
        return int(listener.getsockname()[1])

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._carry, args=(conn,), daemon=True).start()

    def target(self) -> tuple[str, int]:
        """(pod name, container port): a ready pod behind the Service right now."""
        if self.pod is not None:
            return self.pod, self.port
        if self.service is None:
            raise NotFound("a port-forward needs a pod or a service to reach")
        svc_res, pod_res = by_kind("Service"), by_kind("Pod")
        svc = self.api.request("GET", svc_res.path(self.namespace, self.service), what=svc_res.ref(self.service))
        if svc is None:
            raise NotFound(f"service {self.namespace}/{self.service} not found: is the gateway installed?")
        spec = svc.get("spec") or {}
        port = next((p for p in spec.get("ports") or [] if int(p.get("port", 0)) == self.port), None)
        if port is None:
            raise NotFound(f"service {self.namespace}/{self.service} has no port {self.port}")
        selector = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items())
        pods = (
            self.api.request("GET", pod_res.path(self.namespace), {"labelSelector": selector}, what="pods") or {}
        ).get("items") or []
        for pod in pods:
            if _ready(pod):
                return pod["metadata"]["name"], _container_port(pod, port.get("targetPort", self.port))
        raise NotFound(f"no ready pod behind service {self.namespace}/{self.service}: `coalmine wait`")

    def _carry(self, conn: socket.socket) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import portforward

        remote: Any = None
        try:
            pod, port = self.target()
            # portforward swaps call_api on the ApiClient it is given while it connects, so
            # on the shared client every other thread's request would become a websocket
            # (and fail with "Missing required parameter `ports`"): each connection gets its own.
            with client.ApiClient(self.api.connection.client.configuration) as own:
                pf = portforward(
                    client.CoreV1Api(own).connect_get_namespaced_pod_portforward, pod, self.namespace, ports=str(port)
                )
            remote = pf.socket(port)
            remote.setblocking(True)
            _pump(conn, remote, self._stop)
        except ApiException as e:
            self._report(self.api.unreachable(e.reason or e) if not e.status else e)
        except Exception as e:  # one failed connection must not end the forward, nor go unexplained
            self._report(e)
        finally:
            conn.close()
            if remote is not None:
                remote.close()

    def _report(self, error: Exception) -> None:
        """Keep why a connection could not be carried: the caller only sees it closed."""
        self.last_error = str(error)
        if self.log:
            print(f"port-forward to {self.namespace}/{self.service or self.pod}: {error}", file=sys.stderr, flush=True)


def _ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _container_port(pod: dict[str, Any], target: Any) -> int:
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target:
                return int(p["containerPort"])
    raise NotFound(f'pod {pod["metadata"]["name"]} has no container port named "{target}"')


def _pump(a: Any, b: Any, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes."""
    ends = [a, b]
    while not stop.is_set():
        readable, _, _ = select.select(ends, [], [], 0.5)
        for sock in readable:
            data = sock.recv(_CHUNK)
            if not data:
                return
            (b if sock is a else a).sendall(data)


def serve(argv: list[str] | None = None) -> int:
    """Run a forwarder until SIGTERM; write ``{pid, port, ...}`` to ``--state`` once listening."""
    parser = argparse.ArgumentParser(prog="python -m helpers.backends.kube.forwarding")
    parser.add_argument("--context")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", required=True)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    forwarder = Forwarder(KubeApi(connect(args.context)), args.namespace, args.service, args.port, log=True)
    port = forwarder.start()
    state = Path(args.state)
    tmp = state.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "port": port,
                "context": args.context,
                "target": f"{args.namespace}/{args.service}:{args.port}",
            }
        )
    )
    os.replace(tmp, state)
    try:
        stop.wait()
    finally:
        forwarder.close()
        state.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(serve())
