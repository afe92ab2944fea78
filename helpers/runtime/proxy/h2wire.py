"""HTTP/2 as the proxy speaks it (``h2``): the proxy renders every exchange as an
HTTP/1.1 head, so these turn such a head into an HTTP/2 header list and back, and
``Outbox`` sends bodies no faster than the peer's flow-control windows allow.

HTTP/2 has no connection-specific headers (RFC 9113, section 8.2.2): ``connection``
and the headers it governs are dropped, ``host`` becomes ``:authority``, and every
name is lower case.
"""

from __future__ import annotations

from h2.connection import H2Connection
from h2.exceptions import StreamClosedError

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # a prior-knowledge client's first bytes

CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"http2-settings"}
)

Fields = list[tuple[bytes, bytes]]


def request_fields(head: bytes, scheme: bytes = b"http") -> Fields:
    """An HTTP/1.1 request head (as ``rewriting`` renders it) as HTTP/2 headers.

    >>> request_fields(b"GET /a HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\nX-A: 1\\r\\n\\r\\n")[:5]
    [(b':method', b'GET'), (b':scheme', b'http'), (b':authority', b'x'), (b':path', b'/a'), (b'x-a', b'1')]
    """
    lines = head.split(b"\r\n")
    method, target, _ = lines[0].split(b" ", 2)
    authority = b""
    fields: Fields = []
    for line in lines[1:]:
        if not line:
            break
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"host":
            authority = value
        elif name == b"te":  # the one connection header HTTP/2 keeps, and only as "trailers"
            if value.lower() == b"trailers":
                fields.append((name, value))
        elif name not in CONNECTION_SPECIFIC:
            fields.append((name, value))
    return [(b":method", method), (b":scheme", scheme), (b":authority", authority), (b":path", target), *fields]


def response_fields(status: int, headers: Fields) -> Fields:
    """A response's status and HTTP/1.1 header lines as HTTP/2 headers."""
    fields: Fields = [(b":status", b"%d" % status)]
    for name, value in headers:
        key = name.strip().lower()
        if key not in CONNECTION_SPECIFIC:
            fields.append((key, value.strip()))
    return fields


class Outbox:
    """Bodies waiting for flow-control window, per stream, on one connection.

    ``send`` queues data (and the end of the stream) and sends what the windows
    allow now; ``flush`` sends more after the peer opened a window."""

    __slots__ = ("conn", "waiting")

    def __init__(self, conn: H2Connection) -> None:
        self.conn = conn
        self.waiting: dict[int, tuple[bytearray, bool]] = {}

    def send(self, stream_id: int, data: bytes, end: bool) -> None:
        queued = self.waiting.get(stream_id)
        if queued is None:
            self.waiting[stream_id] = (bytearray(data), end)
        else:
            queued[0].extend(data)
            self.waiting[stream_id] = (queued[0], end or queued[1])
        self._push(stream_id)

    def flush(self) -> None:
        for stream_id in list(self.waiting):
            self._push(stream_id)

    def drop(self, stream_id: int) -> None:
        """The stream was reset: what it had queued will never be sent."""
        self.waiting.pop(stream_id, None)

    def _push(self, stream_id: int) -> None:
        buf, end = self.waiting[stream_id]
        conn = self.conn
        try:
            while buf:
                size = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size, len(buf))
                if size <= 0:
                    return  # the rest waits for a WINDOW_UPDATE
                conn.send_data(stream_id, bytes(buf[:size]))
                del buf[:size]
            if end:
                conn.end_stream(stream_id)
        except StreamClosedError:
            pass  # reset meanwhile: nothing more to send on it
        del self.waiting[stream_id]
