"""One client request as the proxy handles it, and the request-line helpers the
client side needs (method names, absolute-form targets)."""

from __future__ import annotations

from time import perf_counter
from urllib.parse import urlsplit


class Request:
    """One complete request, as the proxy needs it."""

    __slots__ = (
        "body",
        "error",
        "framed",
        "headers",
        "http11",
        "keep_alive",
        "method",
        "path",
        "query",
        "received",
        "target",
        "upgrade",
    )

    def __init__(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        framed: bool,
        keep_alive: bool,
        http11: bool,
        error: int = 0,
        upgrade: bool = False,
    ) -> None:
        self.method = method
        self.target = target  # origin form, with the query
        path, _, query = target.partition("?")
        self.path = path
        self.query = query
        self.headers = headers  # lower-case names, repeats joined
        self.body = body
        self.framed = framed  # it came with Content-Length or chunked framing
        self.keep_alive = keep_alive
        self.http11 = http11
        self.received = perf_counter()
        self.error = error  # not 0: no request, answer this status and close
        self.upgrade = upgrade  # Connection: upgrade with an Upgrade header (a WebSocket handshake)


METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}


def origin_form(url: str, headers: dict[str, str]) -> str:
    # An absolute-form target (a client talking to us as to a forward proxy): its
    # authority wins over Host, as RFC 9112 says.
    if "://" not in url:
        return url  # "*" or junk: it will match no route
    parts = urlsplit(url)
    if parts.netloc:
        headers["host"] = parts.netloc
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
