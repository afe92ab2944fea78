"""echo: a backend that answers with what it received, like the Gateway API suite's echo-basic.

The Gateway API conformance tests (tests/conformance) run it as every backend: each
answer is a JSON object with the request it saw (``path`` as sent, ``host``, ``method``,
``proto``, ``headers`` by canonical name) and where it ran (``namespace``, ``pod``,
``service``, ``ingress``, ``httpPort``), so a test can tell which backend and pod
answered and what the gateway changed on the way. Every echoed request is logged to
stdout as ``Echoing back request made to <path> to client (<address>)``, the line the
suite's mirror tests look for in a mirror backend's log.

This file MUST stay a single, stdlib-only module (Python >= 3.11): in a cluster it runs
on a stock python image, mounted from a ConfigMap at /app/echo.py, and the local
runtime runs the same file as a process.

Paths, as echo-basic's:

    /health               200 OK
    /status/NNN           answers status NNN (an empty body)
    /retry/?uuid=U&succeedAfter=N[&responseCode=C][&delayRetry=D]
                          the first N requests with uuid U are reset (TCP RST), or
                          answered C if given; later ones are echoed
    /ws                   WebSocket echo (text and binary messages; an Origin is required)
    anything else         the echo; ``?delay=1s`` waits that long first (Go durations)

The request header ``X-Echo-Set-Header: Name: value, Other: value`` makes the echo set
those response headers. Settings come from the environment: HOST and PORT (where to
listen, default 0.0.0.0 and HTTP_PORT or 3000), POD_NAME, NAMESPACE, SERVICE_NAME,
INGRESS_NAME (reported in every answer; the suite's Deployments set the first two from
the downward API), HTTP_PORT (reported as ``httpPort``, default 3000).

Not like echo-basic: no h2c port (HTTP/2 needs a frame and HPACK codec the standard
library does not have) and no TLS or gRPC, TCP or UDP modes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
MAX_WS_MESSAGE = 16 * 1024 * 1024
_STATUS = re.compile(r"/status/(\d\d\d)")
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def canonical(name: str) -> str:
    """A header name as Go's net/http shows it: ``x-foo-bar`` is ``X-Foo-Bar``."""
    if not _TOKEN.fullmatch(name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def duration(text: str) -> float:
    """Seconds in a Go duration (``1s``, ``500ms``, ``1m30s``); ValueError if not one."""
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f'time: invalid duration "{text}"')
    return sum(float(n) * _UNITS[u] for n, u in parts)


def response_headers(values: list[str]) -> list[tuple[str, str]]:
    """The headers ``X-Echo-Set-Header`` asks for; a repeated name joins with a comma."""
    found: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            name, _, setting = item.strip().partition(":")
            if not _TOKEN.fullmatch(name):
                continue  # Go's server drops a header with an invalid name
            found[name] = f"{found[name]},{setting.strip()}" if name in found else setting.strip()
    return list(found.items())


class Context:
    """Where this echo runs, as every answer reports it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.fields = {
            "namespace": env.get("NAMESPACE", ""),
            "ingress": env.get("INGRESS_NAME", ""),
            "service": env.get("SERVICE_NAME", ""),
            "pod": env.get("POD_NAME", ""),
        }
        self.http_port = env.get("HTTP_PORT") or "3000"


class Retries:
    """How often each ``/retry/`` uuid was seen (echo-basic's retry simulation)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.attempts: dict[str, int] = {}

    def fail_this_one(self, uuid: str, succeed_after: int) -> bool:
        with self.lock:
            if self.attempts.get(uuid, 0) < succeed_after:
                self.attempts[uuid] = self.attempts.get(uuid, 0) + 1
                return True
            return False


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "echo"
    context: Context
    retries: Retries

    def log_message(self, format: str, *args: Any) -> None:
        pass  # only the echo lines go to the log, as echo-basic's

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # every method is echoed, as echo-basic does
            return self.dispatch
        raise AttributeError(name)

    # ── dispatch ──────────────────────────────────────────────────────────────

    def dispatch(self) -> None:
        body_ok = self.drain_body()
        if not body_ok:
            self.reply(400, b'{"message":"malformed request body"}')
            self.close_connection = True
            return
        route = urlsplit(self.path).path.replace("//", "/")
        if route == "/health":
            self.reply(200, b"OK", content_type="text/plain; charset=utf-8")
        elif route.startswith("/status/"):
            match = _STATUS.fullmatch(self.path)
            self.reply(int(match.group(1)) if match else 400, b"", content_type=None)
        elif route.startswith("/retry/"):
            self.retry()
        elif route == "/ws":
            self.websocket()
        else:
            self.echo()

    def query(self, name: str) -> str:
        return (parse_qs(urlsplit(self.path).query).get(name) or [""])[0]

    def echo(self) -> None:
        print(f"Echoing back request made to {self.path} to client ({self.client_address[0]}:{self.client_address[1]})")
        try:
            if self.query("delay"):
                time.sleep(duration(self.query("delay")))
        except ValueError as e:
            self.reply(500, json.dumps({"message": str(e)}).encode())
            return
        headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            if name.lower() not in ("host", "transfer-encoding"):  # Go keeps these apart
                headers.setdefault(canonical(name), []).append(value)
        answer = {
            "path": self.path,
            "host": self.headers.get("Host", ""),
            "method": self.command,
            "proto": self.request_version,
            "headers": headers,
            "httpPort": self.context.http_port,
            **self.context.fields,
        }
        extra = response_headers(self.headers.get_all("X-Echo-Set-Header") or [])
        self.reply(200, json.dumps(answer, indent=1).encode(), extra=extra)

    def retry(self) -> None:
        uuid, succeed_after = self.query("uuid"), self.query("succeedAfter")
        if not uuid:
            self.reply(400, b"uuid is required", content_type="text/plain; charset=utf-8")
            return
        if not succeed_after.lstrip("-").isdigit():
            self.reply(400, b"succeedAfter is required", content_type="text/plain; charset=utf-8")
            return
        if not self.retries.fail_this_one(uuid, int(succeed_after)):
            self.echo()
            return
        try:
            if self.query("delayRetry"):
                time.sleep(duration(self.query("delayRetry")))
        except ValueError as e:
            self.reply(500, json.dumps({"message": str(e)}).encode())
            return
        code = self.query("responseCode")
        if code.isdigit():
            self.reply(int(code), b"", content_type=None)
        else:
            self.reset()

    def reset(self) -> None:
        """Drop the connection with a TCP RST (SO_LINGER 0), as echo-basic's retry does."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # its reference would keep the socket open past close()
        self.connection.close()
        self.close_connection = True

    # ── HTTP ──────────────────────────────────────────────────────────────────

    def drain_body(self) -> bool:
        """Read the request body (unused, as echo-basic's) so the next request starts clean."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                size_line = self.rfile.readline(1024).split(b";")[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    return False
                if size == 0:
                    while self.rfile.readline(1024).strip():
                        pass  # trailers
                    return True
                self.rfile.read(size + 2)
        length = self.headers.get("Content-Length")
        if length is None:
            return True
        if not length.isdigit():
            return False
        self.rfile.read(int(length))
        return True

    def reply(
        self,
        status: int,
        body: bytes,
        content_type: str | None = "application/json",
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        for name, value in extra or []:
            self.send_header(name, value)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
            self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # ── WebSocket (RFC 6455) ─────────────────────────────────────────────────

    def websocket(self) -> None:
        upgrade = (self.headers.get("Upgrade") or "").lower() == "websocket"
        connection = "upgrade" in (self.headers.get("Connection") or "").lower()
        key = self.headers.get("Sec-WebSocket-Key")
        if self.command != "GET":
            self.reply(405, b"", content_type=None)
            return
        if not (upgrade and connection and key):
            self.reply(400, b"", content_type=None)
            return
        if not self.headers.get("Origin"):  # golang.org/x/net/websocket's Handler refuses a null origin
            self.reply(403, b"", content_type=None)
            return
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response_only(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        print(f"established websocket connection {self.client_address[0]}:{self.client_address[1]}")
        self.close_connection = True
        try:
            self.echo_messages()
        except (ConnectionError, ValueError, struct.error):
            pass

    def echo_messages(self) -> None:
        message, opcode = b"", 0
        while True:
            fin, op, payload = self.read_frame()
            if op == 0x8:  # close: answer it, then stop
                self.write_frame(0x8, payload[:2])
                return
            if op == 0x9:
                self.write_frame(0xA, payload)
            elif op in (0x1, 0x2, 0x0):
                opcode = op or opcode
                message += payload
                if len(message) > MAX_WS_MESSAGE:
                    self.write_frame(0x8, struct.pack("!H", 1009))
                    return
                if fin:
                    self.write_frame(opcode, message)
                    message = b""

    def read_frame(self) -> tuple[bool, int, bytes]:
        head = self.read_exactly(2)
        fin, opcode, masked, length = head[0] >> 7, head[0] & 0x0F, head[1] >> 7, head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", self.read_exactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self.read_exactly(8))[0]
        if not masked or length > MAX_WS_MESSAGE:
            raise ValueError("a client frame must be masked and not too big")
        mask = self.read_exactly(4)
        data = self.read_exactly(length)
        return bool(fin), opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    def read_exactly(self, n: int) -> bytes:
        data = self.rfile.read(n)
        if len(data) < n:
            raise ConnectionResetError("the peer closed the connection")
        return data

    def write_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        self.wfile.write(head + payload)


def make_server(
    host: str, port: int, env: Mapping[str, str], handler: type[EchoHandler] = EchoHandler
) -> ThreadingHTTPServer:
    """An echo server bound to ``host:port`` (port 0 picks a free one), not yet serving;
    ``handler`` may be a subclass that speaks more (the conformance tests' h2c echo)."""
    bound = type("Handler", (handler,), {"context": Context(env), "retries": Retries()})
    server = ThreadingHTTPServer((host, port), bound)
    server.daemon_threads = True
    return server


def main(handler: type[EchoHandler] = EchoHandler, name: str = "echo", speaks: str = "http") -> int:
    env = os.environ
    port_text = env.get("PORT") or env.get("HTTP_PORT") or "3000"
    if not port_text.isdigit() or int(port_text) > 65535:
        print(f"{name}: invalid setting: PORT={port_text!r} must be an integer from 0 to 65535", file=sys.stderr)
        return 2
    server = make_server(env.get("HOST") or "0.0.0.0", int(port_text), env, handler)
    print(f"Starting server, listening on port {server.server_address[1]} ({speaks})", flush=True)

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.exit(main())
