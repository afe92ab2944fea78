"""petstore: the versioned pet store that the coalmine lab routes canary traffic to.

A small re-implementation of the go-swagger petstore example used by the 2019 post
"Canary Deployments with Solo.io Gloo": v1 has two pets, v2 three (status "v2"), v3 the
same three (status "v3", the lab's third release for automated canary analysis), and
``/swagger.json`` describes the API so that Gloo's function discovery finds the REST
functions findPets, findPetById, addPet and deletePet.

This file MUST stay a single, stdlib-only module (Python >= 3.11): in a cluster it runs
on a stock ``python:3.12-slim`` image, mounted from a ConfigMap at /app/petstore.py,
and the local runtime runs the very same file as a process. No third-party imports.

Settings come from the environment:

    VERSION            v1 | v2 | v3 (default v1)
    HOST, PORT         where to listen (default 0.0.0.0 and 8080; PORT=0 picks a free port)
    ERROR_RATE         fraction 0..1 of API requests (/api/...) answered 500 (default 0)
    LATENCY_MS         milliseconds added to every API request (default 0)
    KEEPALIVE_TIMEOUT  seconds an idle keep-alive connection is kept open (default 75)

The HTTP/1.1 server is an asyncio.Protocol: Content-Length and chunked request bodies,
keep-alive (HTTP/1.0 too, with ``Connection: keep-alive``), pipelined requests answered
in order, and a graceful stop on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Mapping
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote

SHUTDOWN_GRACE_S = 5.0  # in-flight requests get this long after SIGTERM
MAX_HEAD = 64 * 1024  # request line plus headers
MAX_BODY = 1024 * 1024
MAX_PIPELINE = 64  # requests queued per connection before we stop reading from it

PETS: dict[str, tuple[dict[str, Any], ...]] = {
    "v1": (
        {"id": 1, "name": "Dog", "status": "available"},
        {"id": 2, "name": "Cat", "status": "pending"},
    ),
    "v2": (
        {"id": 1, "name": "Dog", "status": "v2"},
        {"id": 2, "name": "Cat", "status": "v2"},
        {"id": 3, "name": "Parrot", "status": "v2"},
    ),
    "v3": (
        {"id": 1, "name": "Dog", "status": "v3"},
        {"id": 2, "name": "Cat", "status": "v3"},
        {"id": 3, "name": "Parrot", "status": "v3"},
    ),
}
DEFAULT_STATUS = {"v1": "available", "v2": "v2", "v3": "v3"}  # for pets added without a status

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HTTP_VERSION = re.compile(r"HTTP/([0-9])\.([0-9])")
_ABSOLUTE_FORM = re.compile(r"https?://[^/?#]*", re.IGNORECASE)
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
_HEAD_END = re.compile(rb"\r?\n\r?\n")  # bare LF is tolerated, as RFC 9112 allows
_LINE_END = re.compile(r"\r?\n")
_DIGITS = re.compile(r"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}")
_REASONS = {s.value: s.phrase for s in HTTPStatus}
JSON = "application/json"


# --- settings ----------------------------------------------------------------------


class Settings(NamedTuple):
    version: str
    host: str
    port: int
    error_rate: float
    latency_s: float
    keepalive_s: float


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read the settings; raise ValueError saying which variable is wrong and why."""

    def get(name: str, default: str) -> str:
        # An empty variable means "not set": Kubernetes and shells both produce those.
        return env.get(name, "").strip() or default

    def number(name: str, default: str, low: float, high: float) -> float:
        text = get(name, default)
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name}={text!r} is not a number") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"{name}={text!r} must be between {low:g} and {high:g}")
        return value

    version = get("VERSION", "v1")
    if version not in PETS:
        raise ValueError(f"VERSION={version!r} must be one of: {', '.join(PETS)}")
    port_text = get("PORT", "8080")
    if not _DIGITS.fullmatch(port_text) or int(port_text) > 65535:
        raise ValueError(f"PORT={port_text!r} must be an integer from 0 to 65535")
    return Settings(
        version=version,
        host=get("HOST", "0.0.0.0"),
        port=int(port_text),
        error_rate=number("ERROR_RATE", "0", 0, 1),
        latency_s=number("LATENCY_MS", "0", 0, 3_600_000) / 1000,
        keepalive_s=number("KEEPALIVE_TIMEOUT", "75", 0.1, 86_400),
    )


# --- the pet store (no I/O here) -----------------------------------------------------


class Reply(NamedTuple):
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


def dumps(value: Any) -> bytes:
    # Compact separators: the seed's expected output is byte-exact go-swagger style.
    return json.dumps(value, separators=(",", ":")).encode()


def error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, dumps({"code": status, "message": message}), headers=headers)


def swagger(version: str) -> dict[str, Any]:
    """The Swagger 2.0 document that Gloo's function discovery reads."""
    error_response = {"description": "unexpected error", "schema": {"$ref": "#/definitions/error"}}
    pet_id = {"name": "id", "in": "path", "required": True, "type": "integer", "format": "int64"}
    return {
        "swagger": "2.0",
        "info": {"title": "Petstore (coalmine)", "version": version},
        "basePath": "/api",
        "schemes": ["http"],
        "consumes": [JSON],
        "produces": [JSON],
        "paths": {
            "/pets": {
                "get": {
                    "operationId": "findPets",
                    "summary": "List the pets, optionally filtered by tag",
                    "parameters": [
                        {
                            "name": "tags",
                            "in": "query",
                            "required": False,
                            "type": "array",
                            "items": {"type": "string"},
                            "collectionFormat": "csv",
                        },
                        {"name": "limit", "in": "query", "required": False, "type": "integer", "format": "int32"},
                    ],
                    "responses": {
                        "200": {
                            "description": "the pets",
                            "schema": {"type": "array", "items": {"$ref": "#/definitions/pet"}},
                        },
                        "default": error_response,
                    },
                },
                "post": {
                    "operationId": "addPet",
                    "summary": "Add a pet",
                    "parameters": [
                        {"name": "pet", "in": "body", "required": True, "schema": {"$ref": "#/definitions/newPet"}}
                    ],
                    "responses": {
                        "201": {"description": "the new pet", "schema": {"$ref": "#/definitions/pet"}},
                        "default": error_response,
                    },
                },
            },
            "/pets/{id}": {
                "get": {
                    "operationId": "findPetById",
                    "summary": "Get one pet",
                    "parameters": [pet_id],
                    "responses": {
                        "200": {"description": "the pet", "schema": {"$ref": "#/definitions/pet"}},
                        "default": error_response,
                    },
                },
                "delete": {
                    "operationId": "deletePet",
                    "summary": "Delete a pet",
                    "parameters": [pet_id],
                    "responses": {"204": {"description": "deleted"}, "default": error_response},
                },
            },
        },
        "definitions": {
            "newPet": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "status": {"type": "string"}, "tag": {"type": "string"}},
            },
            "pet": {
                "type": "object",
                "required": ["id", "name"],
                "properties": {
                    "id": {"type": "integer", "format": "int64"},
                    "name": {"type": "string"},
                    "status": {"type": "string"},
                    "tag": {"type": "string"},
                },
            },
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "integer", "format": "int32"}, "message": {"type": "string"}},
            },
        },
    }


class Petstore:
    """The API: in-memory pets, per process."""

    def __init__(self, version: str, error_rate: float = 0.0) -> None:
        self.version = version
        self.error_rate = error_rate
        self.pets = {pet["id"]: dict(pet) for pet in PETS[version]}
        self.next_id = max(self.pets) + 1  # ids are never reused, even after a delete
        self.swagger = dumps(swagger(version))
        self._list: bytes | None = None  # the unfiltered list, cached: it is the hot path

    @staticmethod
    def is_api(target: str) -> bool:
        """API requests are the ones ERROR_RATE and LATENCY_MS apply to."""
        return target.startswith("/api/")

    def handle(self, method: str, target: str, body: bytes) -> Reply:
        path, _, query = target.partition("?")
        if self.error_rate and self.is_api(path) and random.random() < self.error_rate:
            return error(500, f"injected failure (ERROR_RATE={self.error_rate:g})")
        read = method in ("GET", "HEAD")
        if path == "/healthz":
            allowed = "GET, HEAD"
            if read:
                return Reply(200, b"ok", "text/plain; charset=utf-8")
        elif path == "/swagger.json":
            allowed = "GET, HEAD"
            if read:
                return Reply(200, self.swagger)
        elif path == "/api/pets":
            allowed = "GET, HEAD, POST"
            if read:
                return self.find_pets(query)
            if method == "POST":
                return self.add_pet(body)
        elif path.startswith("/api/pets/") and path[10:] and "/" not in path[10:]:
            allowed = "GET, HEAD, DELETE"
            if read or method == "DELETE":
                raw_id = unquote(path[10:])
                if not _DIGITS.fullmatch(raw_id):
                    return error(400, f"invalid pet id {raw_id!r}: must be an integer")
                if method == "DELETE":
                    return self.delete_pet(int(raw_id))
                return self.find_pet(int(raw_id))
        else:
            return error(404, f"not found: {path}")
        return error(405, f"method {method} not allowed on {path}", (("Allow", allowed),))

    def find_pets(self, query: str) -> Reply:
        tags: set[str] = set()
        limit: int | None = None
        # Gloo's findPets transformation always sends ?tags=&limit=; empty means unset.
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name == "tags":
                tags.update(tag for tag in value.split(",") if tag)
            elif name == "limit" and value:
                if not _DIGITS.fullmatch(value):
                    return error(400, f"invalid limit {value!r}: must be a non-negative integer")
                limit = int(value)
        if not tags and limit is None:
            if self._list is None:
                self._list = dumps(list(self.pets.values()))
            return Reply(200, self._list)
        pets = [pet for pet in self.pets.values() if not tags or pet.get("tag") in tags]
        return Reply(200, dumps(pets if limit is None else pets[:limit]))

    def find_pet(self, pet_id: int) -> Reply:
        pet = self.pets.get(pet_id)
        return Reply(200, dumps(pet)) if pet else error(404, f"not found: pet {pet_id}")

    def add_pet(self, body: bytes) -> Reply:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return error(400, "the body must be a JSON object")
        if not isinstance(data, dict):
            return error(400, "the body must be a JSON object")
        name, status, tag = data.get("name"), data.get("status"), data.get("tag")
        if not isinstance(name, str) or not name.strip():
            return error(400, "name is required and must be a non-empty string")
        if not isinstance(status, (str, type(None))) or not isinstance(tag, (str, type(None))):
            return error(400, "status and tag must be strings")
        pet: dict[str, Any] = {"id": self.next_id, "name": name, "status": status or DEFAULT_STATUS[self.version]}
        if tag:
            pet["tag"] = tag
        self.pets[self.next_id] = pet
        self.next_id += 1
        self._list = None
        return Reply(201, dumps(pet), headers=(("Location", f"/api/pets/{pet['id']}"),))

    def delete_pet(self, pet_id: int) -> Reply:
        if self.pets.pop(pet_id, None) is None:
            return error(404, f"not found: pet {pet_id}")
        self._list = None
        return Reply(204)


# --- HTTP/1.1 ----------------------------------------------------------------------


class HTTPError(Exception):
    """A request we refuse; the connection is closed after the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Request(NamedTuple):
    method: str
    target: str
    http10: bool
    keep_alive: bool
    expect_continue: bool
    chunked: bool
    length: int
    body: bytes = b""


def parse_head(raw: bytes) -> Request:
    """Parse a request line and headers (without the blank line that ends them)."""
    lines = _LINE_END.split(raw.decode("latin-1"))
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        raise HTTPError(400, "malformed request line")
    method, target, protocol = parts
    version = _HTTP_VERSION.fullmatch(protocol)
    if not version:
        raise HTTPError(400, "malformed HTTP version")
    if version[1] != "1":
        raise HTTPError(505, "only HTTP/1.0 and HTTP/1.1 are supported")
    if not target.startswith("/"):
        # absolute-form (what a forward proxy sends); we only need its path
        absolute = _ABSOLUTE_FORM.match(target)
        if not absolute:
            raise HTTPError(400, "the request target must be a path")
        target = "/" + target[absolute.end() :].lstrip("/")
    if _BAD_TARGET.search(target):
        raise HTTPError(400, "control characters in the request target")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            raise HTTPError(400, "obsolete header line folding is not supported")
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name) or "\r" in value or "\0" in value:
            raise HTTPError(400, "malformed header line")
        name, value = name.lower(), value.strip(" \t")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value

    http10 = version[2] == "0"
    connection = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    keep_alive = "keep-alive" in connection if http10 else "close" not in connection
    expect = headers.get("expect", "").lower()
    if expect and expect != "100-continue":
        raise HTTPError(417, f"unsupported expectation {expect!r}")
    transfer_encoding, content_length = headers.get("transfer-encoding"), headers.get("content-length")
    chunked, length = False, 0
    if transfer_encoding is not None:
        # Both framings at once is how request smuggling starts: refuse (RFC 9112 6.3).
        if content_length is not None or http10:
            raise HTTPError(400, "Transfer-Encoding with Content-Length or in HTTP/1.0")
        if [c.strip().lower() for c in transfer_encoding.split(",")] != ["chunked"]:
            raise HTTPError(501, f"transfer coding {transfer_encoding!r} is not supported")
        chunked = True
    elif content_length is not None:
        values = {v.strip() for v in content_length.split(",")}
        value = values.pop()
        if values or not _DIGITS.fullmatch(value):
            raise HTTPError(400, "invalid Content-Length")
        length = int(value)
    if length > MAX_BODY:
        raise HTTPError(413, f"request bodies are limited to {MAX_BODY} bytes")
    return Request(method, target, http10, keep_alive, expect == "100-continue" and not http10, chunked, length)


def parse_chunked(buf: bytearray) -> tuple[bytes, int] | None:
    """A complete chunked body at the start of ``buf``: (body, bytes used), or None
    if more data is needed. Chunk extensions and trailers are read and ignored."""
    parts: list[bytes] = []
    pos = size_total = 0
    while True:
        eol = buf.find(b"\n", pos)
        if eol < 0:
            if len(buf) - pos > 1024:
                raise HTTPError(400, "malformed chunk size line")
            return None
        size_text = bytes(buf[pos:eol]).rstrip(b"\r").split(b";", 1)[0].strip(b" \t")
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise HTTPError(400, "malformed chunk size")
        size, pos = int(size_text, 16), eol + 1
        if size == 0:
            break
        size_total += size
        if size_total > MAX_BODY:
            raise HTTPError(413, f"request bodies are limited to {MAX_BODY} bytes")
        if len(buf) < pos + size + 2:
            return None
        parts.append(bytes(buf[pos : pos + size]))
        pos += size
        if buf[pos : pos + 2] == b"\r\n":
            pos += 2
        elif buf[pos : pos + 1] == b"\n":
            pos += 1
        else:
            raise HTTPError(400, "chunk data does not end with CRLF")
    while True:  # trailer section, up to an empty line
        eol = buf.find(b"\n", pos)
        if eol < 0:
            if len(buf) - pos > MAX_HEAD:
                raise HTTPError(431, "trailers too large")
            return None
        line, pos = buf[pos:eol], eol + 1
        if not line or line == b"\r":
            return b"".join(parts), pos


class _Clock:
    """The Date header, formatted once a second rather than once a request."""

    second, text = -1, ""

    @classmethod
    def http_date(cls) -> str:
        now = int(time.time())
        if now != cls.second:
            cls.second, cls.text = now, formatdate(now, usegmt=True)
        return cls.text


def render(reply: Reply, version: str, *, keep_alive: bool, http10: bool, head: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, '')}",
        f"Date: {_Clock.http_date()}",
        f"x-petstore-version: {version}",
    ]
    if reply.status != 204:  # a 204 has no body and must not announce one
        lines += [f"Content-Type: {reply.content_type}", f"Content-Length: {len(reply.body)}"]
    lines += [f"{name}: {value}" for name, value in reply.headers]
    if not keep_alive:
        lines.append("Connection: close")
    elif http10:
        lines.append("Connection: keep-alive")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return data if head or reply.status == 204 else data + reply.body


class Connection(asyncio.Protocol):
    """One client connection: parse requests, answer them strictly in order.

    Requests without added latency are answered straight from data_received (the fast
    path); as soon as one must wait (LATENCY_MS), it and every request behind it go
    through a queue drained by one task, so pipelined answers never overtake.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set on connect
        self.buffer = bytearray()
        self.head: Request | None = None  # parsed head still waiting for its body
        self.sent_continue = False
        self.queue: deque[Request | HTTPError] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.stop_parsing = False  # after Connection: close, an error, or on shutdown
        self.eof = False
        self.write_paused = False
        self.reading = True
        self.last_active = self.loop.time()
        self.idle_timer: asyncio.TimerHandle | None = None

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(self)
        self.idle_timer = self.loop.call_later(self.server.settings.keepalive_s, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle_timer:
            self.idle_timer.cancel()
        if self.worker:
            self.worker.cancel()
        self.server.forget(self)

    def data_received(self, data: bytes) -> None:
        if self.stop_parsing:
            return
        self.buffer += data
        self.last_active = self.loop.time()
        self._process()

    def eof_received(self) -> bool:
        # The client finished sending; answer what it sent, then close.
        self.eof = True
        self._maybe_close()
        return True

    def pause_writing(self) -> None:
        # The client is not reading its answers: stop reading its requests too.
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._process()

    # request flow

    def _can_take_more(self) -> bool:
        return not self.stop_parsing and not self.write_paused and len(self.queue) < MAX_PIPELINE

    def _process(self) -> None:
        while self._can_take_more():
            item: Request | HTTPError | None
            try:
                item = self._next_request()
            except HTTPError as exc:
                item = exc
            if item is None:
                break
            if isinstance(item, HTTPError) or not item.keep_alive:
                self.stop_parsing = True
            self._dispatch(item)
        self._update_reading()
        self._maybe_close()

    def _next_request(self) -> Request | None:
        buf = self.buffer
        if self.head is None:
            if buf.startswith((b"\r", b"\n")):  # RFC 9112 2.2: ignore blank lines before a request
                del buf[: len(buf) - len(buf.lstrip(b"\r\n"))]
            end = _HEAD_END.search(buf)
            if end is None or end.start() > MAX_HEAD:
                if len(buf) > MAX_HEAD:
                    raise HTTPError(431, "request head too large")
                return None
            self.head = parse_head(bytes(buf[: end.start()]))
            self.sent_continue = False
            del buf[: end.end()]
        head = self.head
        body: bytes | None = None
        if head.chunked:
            chunked = parse_chunked(buf)
            if chunked:
                body, used = chunked
                del buf[:used]
        elif len(buf) >= head.length:
            body = bytes(buf[: head.length])
            del buf[: head.length]
        if body is None:
            # Only say "100 Continue" when it cannot overtake an earlier answer.
            if head.expect_continue and not self.sent_continue and not self.queue and not self.worker:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.sent_continue = True
            return None
        self.head = None
        return head._replace(body=body) if body else head

    def _dispatch(self, item: Request | HTTPError) -> None:
        if self.queue or self.worker or (isinstance(item, Request) and self.server.delays(item)):
            self.queue.append(item)
            if self.worker is None:
                self.worker = self.loop.create_task(self._drain())
        else:
            self._answer(item)

    async def _drain(self) -> None:
        try:
            while self.queue:
                item = self.queue[0]  # stays queued while it waits: it is in flight
                if isinstance(item, Request) and self.server.delays(item):
                    await asyncio.sleep(self.server.settings.latency_s)
                self.queue.popleft()
                self._answer(item)
                if self.transport.is_closing():
                    return
                self._process()  # the queue shrank: parse what is waiting in the buffer
        finally:
            self.worker = None
        self._maybe_close()

    def _answer(self, item: Request | HTTPError) -> None:
        if self.transport.is_closing():
            return
        version = self.server.app.version
        if isinstance(item, HTTPError):
            data = render(error(item.status, str(item)), version, keep_alive=False, http10=False, head=False)
            keep_alive = False
        else:
            try:
                reply = self.server.app.handle(item.method, item.target, item.body)
            except Exception:
                traceback.print_exc()
                reply = error(500, "internal error")
            # The last answer before we stop reading says so: Connection: close.
            keep_alive = item.keep_alive and not (self.stop_parsing and not self.queue)
            data = render(reply, version, keep_alive=keep_alive, http10=item.http10, head=item.method == "HEAD")
        self.transport.write(data)
        self.last_active = self.loop.time()
        if not keep_alive:
            self.transport.close()

    def _update_reading(self) -> None:
        want = self._can_take_more()
        if want != self.reading and not self.transport.is_closing():
            if want:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()
            self.reading = want

    def _maybe_close(self) -> None:
        """Close once every received request is answered, if no more will be read."""
        if self.queue or self.worker or self.write_paused or self.transport.is_closing():
            return
        if self.stop_parsing or self.eof:
            self.transport.close()

    def _check_idle(self) -> None:
        if self.transport.is_closing():
            return
        timeout = self.server.settings.keepalive_s
        idle_for = self.loop.time() - self.last_active
        if idle_for >= timeout and not self.queue and not self.worker:
            self.transport.close()
            return
        self.idle_timer = self.loop.call_later(max(timeout - idle_for, 0.5), self._check_idle)

    def shutdown(self) -> None:
        """Stop reading; close now if idle, else after the in-flight answers."""
        self.stop_parsing = True
        self._update_reading()
        self._maybe_close()


class Server:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = Petstore(settings.version, settings.error_rate)
        self.loop = asyncio.get_running_loop()
        self.connections: set[Connection] = set()
        self.all_closed = asyncio.Event()

    def delays(self, request: Request) -> bool:
        return self.settings.latency_s > 0 and self.app.is_api(request.target)

    def forget(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self.all_closed.set()

    async def run(self) -> int:
        settings = self.settings
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self.loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # Windows: no loop signal handlers
                signal.signal(sig, lambda *_: self.loop.call_soon_threadsafe(stop.set))
        try:
            listener = await self.loop.create_server(
                lambda: Connection(self), settings.host, settings.port, reuse_address=True, backlog=1024
            )
        except OSError as exc:
            print(f"petstore: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
            return 1
        port = listener.sockets[0].getsockname()[1]
        print(f"petstore {settings.version} listening on http://{settings.host}:{port}", file=sys.stderr, flush=True)
        await stop.wait()

        listener.close()  # stop accepting first, then let the connections finish
        self.all_closed.clear()
        for connection in list(self.connections):
            connection.shutdown()
        if self.connections:
            try:
                await asyncio.wait_for(self.all_closed.wait(), SHUTDOWN_GRACE_S)
            except TimeoutError:
                for connection in list(self.connections):
                    connection.transport.abort()
        try:
            await asyncio.wait_for(listener.wait_closed(), 1.0)
        except TimeoutError:
            pass
        print(f"petstore {settings.version} stopped", file=sys.stderr, flush=True)
        return 0


async def serve(settings: Settings) -> int:
    return await Server(settings).run()


def main() -> int:
    try:
        settings = load_settings(os.environ)
    except ValueError as exc:
        print(f"petstore: invalid setting: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
