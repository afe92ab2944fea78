"""h2c_echo: ``helpers/apps/echo.py`` plus HTTP/2 with prior knowledge (h2c) on the same port.

The suite's echo-basic serves h2c on a second container port (3001), which the
``infra-backend-v1`` Service's ``appProtocol: kubernetes.io/h2c`` port targets. A
local pod listens on one port only, so this serves both there: a connection whose
first bytes are the HTTP/2 connection preface is answered over HTTP/2 (the same
JSON as echo.py's, with ``proto`` "HTTP/2.0", as Go reports it), any other goes to
echo.py's own handler, unchanged. It needs the ``h2`` package, so it is for the
local lab (whose Python has it); it is mounted next to echo.py from the echo
ConfigMap and imports it from there. Answers are small: each fits the default
flow-control window, so no WINDOW_UPDATE is waited for.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Mapping
from http.server import ThreadingHTTPServer

import echo  # type: ignore[import-not-found]  # the file next to this one in the pod
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, DataReceived, RequestReceived, StreamEnded, StreamReset
from h2.exceptions import ProtocolError

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class H2cEchoHandler(echo.EchoHandler):  # type: ignore[misc]
    def handle(self) -> None:
        if self.opens_with_preface():
            self.serve_h2()
        else:
            super().handle()

    def opens_with_preface(self) -> bool:
        while True:
            try:
                seen = self.connection.recv(len(PREFACE), socket.MSG_PEEK)
            except OSError:
                return False
            if len(seen) >= len(PREFACE) or not seen or not PREFACE.startswith(seen):
                return seen.startswith(PREFACE)

    def serve_h2(self) -> None:
        sock = self.connection
        conn = H2Connection(config=H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        requests: dict[int, list[tuple[str, str]]] = {}
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                events = conn.receive_data(data)
            except ProtocolError:
                sock.sendall(conn.data_to_send())
                return
            for event in events:
                if isinstance(event, RequestReceived):
                    requests[event.stream_id] = list(event.headers)
                elif isinstance(event, DataReceived):  # the body is not echoed, only read
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, StreamEnded) and event.stream_id in requests:
                    self.answer(conn, event.stream_id, requests.pop(event.stream_id))
                elif isinstance(event, StreamReset):
                    requests.pop(event.stream_id, None)
                elif isinstance(event, ConnectionTerminated):
                    sock.sendall(conn.data_to_send())
                    return
            sock.sendall(conn.data_to_send())

    def answer(self, conn: H2Connection, stream_id: int, fields: list[tuple[str, str]]) -> None:
        pseudo = {name: value for name, value in fields if name.startswith(":")}
        path = pseudo.get(":path", "/")
        client = self.client_address
        print(f"Echoing back request made to {path} to client ({client[0]}:{client[1]})")
        headers: dict[str, list[str]] = {}
        for name, value in fields:
            if not name.startswith(":"):
                headers.setdefault(echo.canonical(name), []).append(value)
        answer = {
            "path": path,
            "host": pseudo.get(":authority", ""),
            "method": pseudo.get(":method", ""),
            "proto": "HTTP/2.0",
            "headers": headers,
            "httpPort": self.context.http_port,
            **self.context.fields,
        }
        body = json.dumps(answer, indent=1).encode()
        conn.send_headers(
            stream_id,
            [
                (":status", "200"),
                ("content-type", "application/json"),
                ("x-content-type-options", "nosniff"),
                ("content-length", str(len(body))),
            ],
        )
        size = conn.max_outbound_frame_size
        for at in range(0, len(body), size):
            conn.send_data(stream_id, body[at : at + size])
        conn.end_stream(stream_id)


def make_server(host: str, port: int, env: Mapping[str, str]) -> ThreadingHTTPServer:
    """An HTTP/1.1 and h2c echo server bound to ``host:port``, not yet serving."""
    server: ThreadingHTTPServer = echo.make_server(host, port, env, H2cEchoHandler)
    return server


def main() -> int:
    code: int = echo.main(H2cEchoHandler, "h2c_echo", "http, h2c")
    return code


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.exit(main())
