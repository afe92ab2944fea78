"""A small Kubernetes API server on 127.0.0.1 for the backend's tests.

It speaks just what the kubernetes backend uses: GET of objects and lists (label
and field selectors), server-side apply (PATCH application/apply-patch+yaml with a
fieldManager), DELETE, API discovery, ``/version``, and the pod port-forward
websocket (v4.channel.k8s.io), behind which a tiny HTTP server answers with the pod
and port it reached. Every request is recorded as ``"METHOD /path?query"``.

Where the backend's bugs lived, it is as strict as a real API server:

- request bodies are decoded as the API server decodes them: a DELETE body must be
  a JSON object (DeleteOptions), an apply patch must be YAML (or JSON) of the object
  whose name is in the URL; anything else is a 400, as on a cluster;
- a Service gets a cluster IP, and a LoadBalancer one gets no ingress address unless
  ``load_balancer_ip`` is set (kind, and minikube without a tunnel, never set one):
  ``ready_for_helm`` says whether Helm 3's ``--wait`` would count it ready;
- requests are served concurrently, also while a port-forward is connecting
  (``hold_portforwards`` keeps port-forward handshakes open until it is set);
- CRDs serve their API group while they exist, and deleting one deletes its objects;
- an apply with ``fieldValidation=Strict`` refuses an unknown top-level field (400,
  "strict decoding error"); without it the field is dropped with a Warning header.

Knobs: ``token`` (others get 401), ``forbid`` (paths that get 403),
``served_groups`` (API groups the cluster serves), ``admission`` (a function that
may deny an object, as Gloo's validating webhook does), ``webhook_down`` (Gloo's
webhook does not answer and fails closed), ``version`` (Kubernetes major, minor),
``tls`` (serve HTTPS with the test certificate in ``tls/``).

Error messages follow the API server's where the backend reads them, and are
paraphrased elsewhere.
"""

from __future__ import annotations

import asyncio
import copy
import json
import ssl
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml
from aiohttp import WSMsgType, web

from helpers.backends.kube.resources import KNOWN, Resource

# The kinds it serves: the lab's, and core/v1 Events (which controllers such as Flagger write).
KINDS = {**KNOWN, ("v1", "Event"): Resource("v1", "Event", "events")}
BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public")
_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")
TLS_DIR = Path(__file__).parent / "tls"
# Self-signed for IP 127.0.0.1, valid until 2126, made once with: openssl req -x509 -newkey rsa:2048 -nodes
# -days 36500 -subj /CN=coalmine-fake-apiserver -addext subjectAltName=IP:127.0.0.1
# -addext basicConstraints=critical,CA:TRUE -keyout apiserver.key -out apiserver.crt
CERTIFICATE = TLS_DIR / "apiserver.crt"
PROPAGATION_POLICIES = ("Orphan", "Background", "Foreground")
# What an object may hold at its top level (the kinds the lab applies); the rest is an
# unknown field, refused under fieldValidation=Strict and dropped with a warning otherwise.
_TOP_LEVEL_FIELDS = {
    "apiVersion",
    "kind",
    "metadata",
    "spec",
    "status",
    "data",
    "binaryData",
    "stringData",
    "type",
    "immutable",
}
_GO_TYPE = {str: "string", list: "array", bool: "bool", int: "number", float: "number"}


def ready_for_helm(service: Mapping[str, Any]) -> bool:
    """Whether Helm 3's ``--wait`` counts this Service ready (helm v3.21.4
    ``pkg/kube/ready.go``, ``serviceReady``): an ExternalName one always; any other
    needs a cluster IP, and a LoadBalancer also an ingress address or ``spec.externalIPs``."""
    spec = service.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    if kind == "ExternalName":
        return True
    if not spec.get("clusterIP"):
        return False
    if kind == "LoadBalancer" and not spec.get("externalIPs"):
        return ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") is not None
    return True


def _status(code: int, message: str, reason: str = "") -> web.Response:
    return web.json_response(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason, "code": code},
        status=code,
    )


class FakeApiServer:
    def __init__(self, token: str = "test-token", tls: bool = False) -> None:
        self.token = token
        self.tls = tls
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        self.deleted: dict[str, dict[str, Any]] = {}  # path -> the DeleteOptions it was deleted with
        self.forbid: set[str] = set()
        self.served_groups = {"", "apps", "discovery.k8s.io", "apiextensions.k8s.io", "admissionregistration.k8s.io"}
        self.admission: Callable[[dict[str, Any]], str | None] = lambda obj: None
        self.webhook_down = False
        self.version = (1, 33)
        self.load_balancer_ip: str | None = None
        self.hold_portforwards: threading.Event | None = None
        self.portforwards_held = 0
        self._rv = 100
        self._ips = 0
        self._websockets: set[web.WebSocketResponse] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ── lifecycle ────────────────────────────────────────────────────────────

    def start(self) -> int:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application(middlewares=[self._auth])
            app.router.add_route("*", "/{tail:.*}", self._handle)
            app.on_shutdown.append(self._close_websockets)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            context = None
            if self.tls:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(CERTIFICATE, TLS_DIR / "apiserver.key")
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
            loop.run_until_complete(site.start())
            self.port = self._runner.addresses[0][1]
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.port

    def stop(self) -> None:
        if self.hold_portforwards is not None:
            self.hold_portforwards.set()
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _shutdown(self) -> None:
        assert self._runner is not None and self._runner.server is not None
        for handler in list(self._runner.server.connections):
            # A TLS connection would otherwise wait for its peer's close_notify after the loop is gone.
            if handler.transport is not None:
                handler.transport.abort()
        await self._runner.cleanup()

    async def _close_websockets(self, app: web.Application) -> None:
        for ws in list(self._websockets):
            await ws.close()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    # ── state helpers for tests ──────────────────────────────────────────────

    def path_of(self, obj: dict[str, Any]) -> str:
        res = KINDS[(obj["apiVersion"], obj["kind"])]
        return res.path(obj["metadata"].get("namespace"), obj["metadata"]["name"])

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object as the cluster would have it (a pod, a status ...)."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        self._rv += 1
        meta.setdefault("uid", f"uid-{self._rv}")
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        meta["resourceVersion"] = str(self._rv)
        meta.setdefault("generation", 1)
        self._admit(obj)
        self.objects[self.path_of(obj)] = obj
        return obj

    def _admit(self, obj: dict[str, Any]) -> None:
        """What the cluster adds to a new object: a Service's cluster IP and status; a
        CRD's group starts being served."""
        if obj.get("kind") == "Service":
            spec = obj.setdefault("spec", {})
            if spec.get("type") != "ExternalName" and "clusterIP" not in spec:
                self._ips += 1
                spec["clusterIP"] = f"10.96.0.{self._ips}"
            balancer = obj.setdefault("status", {}).setdefault("loadBalancer", {})
            if spec.get("type") == "LoadBalancer" and self.load_balancer_ip and "ingress" not in balancer:
                balancer["ingress"] = [{"ip": self.load_balancer_ip}]
        if obj.get("kind") == "CustomResourceDefinition":
            self.served_groups.add(str((obj.get("spec") or {}).get("group", "")))

    def _forget_crd(self, crd: dict[str, Any]) -> None:
        """A deleted CRD takes its objects with it, and its group when it was the last one."""
        group = str((crd.get("spec") or {}).get("group", ""))
        plural = str((crd.get("spec") or {}).get("names", {}).get("plural") or crd["metadata"]["name"].split(".")[0])
        for path in [p for p in self.objects if p.startswith(f"/apis/{group}/") and f"/{plural}/" in p]:
            del self.objects[path]
        others = [o for o in self.objects.values() if o.get("kind") == "CustomResourceDefinition"]
        if not any((o.get("spec") or {}).get("group") == group for o in others):
            self.served_groups.discard(group)

    def get(self, obj_or_path: dict[str, Any] | str) -> dict[str, Any] | None:
        path = obj_or_path if isinstance(obj_or_path, str) else self.path_of(obj_or_path)
        return self.objects.get(path)

    # ── HTTP ─────────────────────────────────────────────────────────────────

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        query = urlencode(sorted((k, v) for k, v in request.query.items()))
        self.requests.append(f"{request.method} {request.path}" + (f"?{query}" if query else ""))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _status(401, "Unauthorized", "Unauthorized")
        if any(request.path.startswith(p) for p in self.forbid):
            return _status(
                403, f'{request.path} is forbidden: User "learner" cannot {request.method.lower()} it', "Forbidden"
            )
        return await handler(request)

    def _group_served(self, path: str) -> bool:
        parts = path.strip("/").split("/")
        return parts[0] == "api" or (len(parts) > 1 and parts[1] in self.served_groups)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/version":
            major, minor = self.version
            return web.json_response({"major": str(major), "minor": str(minor), "gitVersion": f"v{major}.{minor}.1"})
        if path.endswith("/portforward"):
            return await self._portforward(request)
        if "/proxy/" in path:
            return web.json_response(self.objects.get(path, {}), status=200 if path in self.objects else 404)
        if not self._group_served(path):
            return _status(404, "the server could not find the requested resource", "NotFound")
        parts = path.strip("/").split("/")
        if (parts[0] == "apis" and len(parts) == 3) or (parts[0] == "api" and len(parts) == 2):
            return self._discovery(parts)
        if request.method == "GET":
            if path in self.objects:
                return web.json_response(self.objects[path])
            items = self._list(path, request.query)
            if items is not None:
                return web.json_response({"kind": "List", "items": items})
            return _status(404, f'"{parts[-1]}" not found', "NotFound")
        if request.method == "PATCH":
            return await self._apply(request)
        if request.method == "DELETE":
            return await self._delete(request)
        return _status(405, "method not allowed")

    async def _delete(self, request: web.Request) -> web.Response:
        raw = await request.read()
        options: Any = {}
        if raw.strip():
            try:
                options = json.loads(raw)
            except ValueError as e:
                return _status(400, f"couldn't get version/kind; json parse error: {e}", "BadRequest")
            if not isinstance(options, dict):
                # what the API server says when DeleteOptions arrive JSON-encoded twice
                return _status(
                    400,
                    f"couldn't get version/kind; json parse error: json: cannot unmarshal "
                    f"{_GO_TYPE.get(type(options), 'value')} into Go value of type struct "
                    '{ APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }',
                    "BadRequest",
                )
        for key in ("propagationPolicy", "gracePeriodSeconds", "dryRun"):
            if key in request.query:
                options.setdefault(key, request.query[key])
        policy = options.get("propagationPolicy")
        if policy is not None and policy not in PROPAGATION_POLICIES:
            return _status(
                422,
                f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "{policy}"',
                "Invalid",
            )
        found = self.objects.pop(request.path, None)
        if found is None:
            return _status(404, f'"{request.path.rsplit("/", 1)[-1]}" not found', "NotFound")
        self.deleted[request.path] = options
        if found.get("kind") == "CustomResourceDefinition":
            self._forget_crd(found)
        return web.json_response({"kind": "Status", "status": "Success"})

    def _discovery(self, parts: list[str]) -> web.Response:
        api_version = "/".join(parts[1:])
        resources = [
            {"name": r.plural, "kind": r.kind, "namespaced": r.namespaced}
            for (av, _), r in KINDS.items()
            if av == api_version
        ]
        return web.json_response({"kind": "APIResourceList", "groupVersion": api_version, "resources": resources})

    def _list(self, path: str, query: Any) -> list[dict[str, Any]] | None:
        plural = path.rstrip("/").rsplit("/", 1)[-1]
        if plural not in {r.plural for r in KINDS.values()}:
            return None
        scoped = "/namespaces/" in path
        group_version = path.split("/namespaces/")[0] if scoped else path.rsplit("/", 1)[0]
        namespace = path.split("/namespaces/")[1].split("/")[0] if scoped else None
        found = []
        for p, obj in self.objects.items():
            if p.rsplit("/", 2)[1] != plural or not p.startswith(group_version + "/"):
                continue
            if namespace is not None and f"/namespaces/{namespace}/" not in p:
                continue
            labels = obj.get("metadata", {}).get("labels") or {}
            selector = query.get("labelSelector")
            if selector and any(labels.get(k) != v for k, v in (kv.split("=", 1) for kv in selector.split(","))):
                continue
            field = query.get("fieldSelector")
            if field and field.startswith("metadata.name=") and obj["metadata"]["name"] != field.split("=", 1)[1]:
                continue
            item = copy.deepcopy(obj)
            item.pop("apiVersion", None)
            item.pop("kind", None)
            found.append(item)
        return found

    async def _apply(self, request: web.Request) -> web.Response:
        if request.content_type != "application/apply-patch+yaml":
            return _status(415, f"unsupported patch type {request.content_type}")
        if request.query.get("fieldManager") != "coalmine":
            return _status(400, "fieldManager is required for apply patch")
        try:
            body = yaml.safe_load(await request.text())
        except yaml.YAMLError as e:
            return _status(400, f"error decoding YAML: {e}", "BadRequest")
        parts = request.path.strip("/").split("/")
        if not isinstance(body, dict):
            return _status(
                400,
                f"error decoding YAML: cannot unmarshal {_GO_TYPE.get(type(body), 'value')} into an object",
                "BadRequest",
            )
        if not body.get("apiVersion") or not body.get("kind"):
            return _status(400, "apiVersion and kind must be set in an apply patch", "BadRequest")
        name = (body.get("metadata") or {}).get("name")
        if name != parts[-1]:
            return _status(
                400, f"the name of the object ({name}) does not match the name on the URL ({parts[-1]})", "BadRequest"
            )
        if "namespaces" in parts and parts.index("namespaces") + 2 < len(parts):
            ns = parts[parts.index("namespaces") + 1]
            if ns not in BUILTIN_NAMESPACES and f"/api/v1/namespaces/{ns}" not in self.objects:
                return _status(404, f'namespaces "{ns}" not found', "NotFound")
        unknown = sorted(set(body) - _TOP_LEVEL_FIELDS)
        warn_headers: dict[str, str] = {}
        if unknown and request.query.get("fieldValidation") == "Strict":
            fields = ", ".join(f'unknown field "{f}"' for f in unknown)
            return _status(400, f"strict decoding error: {fields}", "BadRequest")
        if unknown:  # fieldValidation unset means Warn: the field is dropped, with a warning
            for f in unknown:
                body.pop(f)
            warn_headers["Warning"] = f'299 - "unknown field \\"{unknown[0]}\\""'
        group = parts[1] if parts[0] == "apis" else ""
        if self.webhook_down and group.endswith(".solo.io"):
            return _status(
                500,
                'Internal error occurred: failed calling webhook "gloo.gloo-system.svc": failed to call webhook: '
                'Post "https://gloo.gloo-system.svc:443/validation?timeout=10s": dial tcp 10.96.0.9:443: '
                "connect: connection refused",
                "InternalError",
            )
        denied = self.admission(body)
        if denied:
            return _status(403, f'admission webhook "gloo.gloo-system.svc" denied the request: {denied}')
        old = self.objects.get(request.path)
        if old is None:
            self._rv += 1
            body["metadata"].update(
                uid=f"uid-{self._rv}",
                resourceVersion=str(self._rv),
                generation=1,
                creationTimestamp="2026-01-01T00:00:00Z",
                managedFields=[{"manager": "coalmine", "operation": "Apply"}],
            )
            self._admit(body)
            self.objects[request.path] = body
            return web.json_response(body, status=201, headers=warn_headers)
        merged = copy.deepcopy(old)
        merged.update({k: v for k, v in body.items() if k not in ("metadata", "status")})
        merged["metadata"].update({k: v for k, v in body["metadata"].items() if k not in _SERVER_FIELDS})
        if old.get("kind") == "Service" and "clusterIP" in old.get("spec", {}):
            merged["spec"].setdefault("clusterIP", old["spec"]["clusterIP"])  # the server's field: kept
        if merged != old:
            self._rv += 1
            merged["metadata"]["resourceVersion"] = str(self._rv)
            merged["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
            self.objects[request.path] = merged
        return web.json_response(self.objects[request.path], headers=warn_headers)

    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        pod_path = request.path.rsplit("/", 1)[0]
        if pod_path not in self.objects:
            return _status(404, "pod not found", "NotFound")
        if self.hold_portforwards is not None:
            # The client is inside portforward() until the handshake ends: hold it there.
            self.portforwards_held += 1
            await asyncio.get_running_loop().run_in_executor(None, self.hold_portforwards.wait, 30)
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request)
        self._websockets.add(ws)
        port = int(request.query["ports"])
        header = port.to_bytes(2, "little")
        await ws.send_bytes(b"\x00" + header)
        await ws.send_bytes(b"\x01" + header)
        buffered = b""
        pod = pod_path.rsplit("/", 1)[-1]
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data or msg.data[0] != 0:
                continue
            buffered += msg.data[1:]
            while b"\r\n\r\n" in buffered:
                head, buffered = buffered.split(b"\r\n\r\n", 1)
                target = head.split(b" ")[1].decode()
                payload = json.dumps({"pod": pod, "port": port, "path": target}).encode()
                await ws.send_bytes(
                    b"\x00"
                    + b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
        self._websockets.discard(ws)
        return ws
