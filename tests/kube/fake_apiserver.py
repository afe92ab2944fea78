"""A small Kubernetes API server on 127.0.0.1 for the backend's tests.

It speaks just what the kubernetes backend uses: GET of objects and lists (label
and field selectors), server-side apply (PATCH application/apply-patch+yaml with a
fieldManager), DELETE, API discovery, ``/version``, and the pod port-forward
websocket (v4.channel.k8s.io), behind which a tiny HTTP server answers with the pod
and port it reached. Every request is recorded as ``"METHOD /path?query"``.

Knobs: ``token`` (others get 401), ``forbid`` (paths that get 403),
``served_groups`` (API groups whose CRDs are "installed"), ``admission`` (a
function that may deny an object, as Gloo's validating webhook does).
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

from helpers.backends.kube.resources import KNOWN

BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public")
_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


def _status(code: int, message: str, reason: str = "") -> web.Response:
    return web.json_response(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason, "code": code},
        status=code,
    )


class FakeApiServer:
    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        self.forbid: set[str] = set()
        self.served_groups = {"", "apps", "discovery.k8s.io", "apiextensions.k8s.io"}
        self.admission: Callable[[dict[str, Any]], str | None] = lambda obj: None
        self._rv = 100
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
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = self._runner.addresses[0][1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.port

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ── state helpers for tests ──────────────────────────────────────────────

    def path_of(self, obj: dict[str, Any]) -> str:
        res = KNOWN[(obj["apiVersion"], obj["kind"])]
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
        self.objects[self.path_of(obj)] = obj
        return obj

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
            return web.json_response({"major": "1", "minor": "33", "gitVersion": "v1.33.1"})
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
            if self.objects.pop(path, None) is None:
                return _status(404, f'"{parts[-1]}" not found', "NotFound")
            return web.json_response({"kind": "Status", "status": "Success"})
        return _status(405, "method not allowed")

    def _discovery(self, parts: list[str]) -> web.Response:
        api_version = "/".join(parts[1:])
        resources = [
            {"name": r.plural, "kind": r.kind, "namespaced": r.namespaced}
            for (av, _), r in KNOWN.items()
            if av == api_version
        ]
        return web.json_response({"kind": "APIResourceList", "groupVersion": api_version, "resources": resources})

    def _list(self, path: str, query: Any) -> list[dict[str, Any]] | None:
        plural = path.rstrip("/").rsplit("/", 1)[-1]
        if plural not in {r.plural for r in KNOWN.values()}:
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
        body = json.loads(await request.text())
        parts = request.path.strip("/").split("/")
        if "namespaces" in parts and parts.index("namespaces") + 2 < len(parts):
            ns = parts[parts.index("namespaces") + 1]
            if ns not in BUILTIN_NAMESPACES and f"/api/v1/namespaces/{ns}" not in self.objects:
                return _status(404, f'namespaces "{ns}" not found', "NotFound")
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
            self.objects[request.path] = body
            return web.json_response(body, status=201)
        merged = copy.deepcopy(old)
        merged.update({k: v for k, v in body.items() if k not in ("metadata", "status")})
        merged["metadata"].update({k: v for k, v in body["metadata"].items() if k not in _SERVER_FIELDS})
        if merged != old:
            self._rv += 1
            merged["metadata"]["resourceVersion"] = str(self._rv)
            merged["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
            self.objects[request.path] = merged
        return web.json_response(self.objects[request.path])

    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        pod_path = request.path.rsplit("/", 1)[0]
        if pod_path not in self.objects:
            return _status(404, "pod not found", "NotFound")
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request)
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
        return ws
