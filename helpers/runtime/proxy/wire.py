"""HTTP/1.1 on the wire, as the proxy writes it: header names, status lines, the
Connection header, header values that cannot break a head, and the error for a port
the proxy cannot bind."""

from __future__ import annotations

import errno
import os
from http import HTTPStatus

NAMES: dict[bytes, str] = {}  # header name as sent → lower-case str, for the names peers use
_STATUS_LINES: dict[int, bytes] = {}


def lower_name(name: bytes) -> str:
    """A header name in lower case (remembered in ``NAMES``, up to a bound: peers choose them)."""
    key = name.decode("latin-1").lower()
    if len(NAMES) < 4096:
        NAMES[name] = key
    return key


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        line = f"HTTP/1.1 {status} {phrase}\r\n".encode()
        if len(_STATUS_LINES) < 1024:
            _STATUS_LINES[status] = line
    return line


def connection_header(http11: bool, keep: bool) -> bytes:
    """The Connection header the response needs (if any) and the blank line ending the head."""
    if keep:
        return b"\r\n" if http11 else b"connection: keep-alive\r\n\r\n"
    return b"connection: close\r\n\r\n"


def clean(value: str) -> str:
    """A header value that cannot break the head (configured or rendered text)."""
    return value.replace("\r", " ").replace("\n", " ")


class ListenError(OSError):
    """The gateway proxy cannot listen where asked (most often: the port is in use)."""

    def __init__(self, code: int | None, host: str, port: int) -> None:
        reason = (
            "address already in use"
            if code == errno.EADDRINUSE
            else (os.strerror(code).lower() if code else "cannot bind")
        )
        super().__init__(code, reason)
        self.host, self.port = host, port

    def __str__(self) -> str:
        hint = (
            f"; another program (or another lab) listens on port {self.port}: stop it or pick another port"
            if self.errno == errno.EADDRINUSE
            else ""
        )
        return f"gateway-proxy cannot listen on {self.host}:{self.port}: {self.strerror}{hint}"
