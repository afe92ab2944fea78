"""The CORS filter, as Envoy's (and so kgateway's) applies the Gateway API's policy.

A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``)
is answered by the gateway itself and never reaches the backend: 200 with the
allowed methods, headers, max age and credentials, and for an allowed origin
``Access-Control-Allow-Origin`` (the origin, echoed) and the exposed headers too.
A preflight from another origin gets no ``Access-Control-Allow-Origin``, so the
browser refuses the real request (kgateway turns Envoy's
``forward_not_matching_preflights`` off, as the Gateway API spec asks). An actual
request from an allowed origin gets ``Access-Control-Allow-Origin``, credentials
and exposed headers added to the backend's answer; one from another origin is
forwarded untouched.

A ``*`` in the allowed methods or headers echoes what the browser asked for:
the spec allows that always and requires it with credentials. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from helpers.runtime.proxy.wire import clean
from helpers.runtime.routes import Cors

_DEFAULT_PORTS = {"http": "80", "https": "443"}


def origin_allowed(cors: Cors, origin: str) -> bool:
    """Whether ``origin`` (``scheme://host[:port]``) matches one of ``cors.allow_origins``.

    ``*`` alone allows every origin; a ``*`` in a host matches any number of DNS
    labels to its left. An origin without a port has its scheme's default port.

    >>> origin_allowed(Cors(allow_origins=("https://*.bar.com",)), "https://a.www.bar.com")
    True
    """
    seen = _split(origin)
    if seen is None:
        return False
    for allowed in cors.allow_origins:
        if allowed == "*":
            return True
        want = _split(allowed)
        if want is None or want[0] != seen[0] or want[2] != seen[2]:
            continue
        host, pattern = seen[1], want[1]
        if "*" in pattern:
            prefix, _, suffix = pattern.partition("*")
            if len(host) > len(prefix) + len(suffix) - 1 and host.startswith(prefix) and host.endswith(suffix):
                return True
        elif host == pattern:
            return True
    return False


def _split(origin: str) -> tuple[str, str, str] | None:
    scheme, sep, rest = origin.strip().lower().partition("://")
    if not sep or not rest:
        return None
    host, colon, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
    if not colon:
        host, port = rest, _DEFAULT_PORTS.get(scheme, "")
    return scheme, host, port


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    return method == "OPTIONS" and bool(headers.get("origin")) and bool(headers.get("access-control-request-method"))


def preflight_headers(cors: Cors, headers: Mapping[str, str], allowed: bool = True) -> bytes:
    """The CORS headers of the gateway's answer to a preflight; from an origin not
    ``allowed``, without the allowed origin and exposed headers (as Envoy's)."""
    lines = [_line("access-control-allow-origin", headers["origin"])] if allowed else []
    asked_method = headers.get("access-control-request-method", "")
    if cors.allow_methods == ("*",):
        if asked_method:
            lines.append(_line("access-control-allow-methods", asked_method))
    elif cors.allow_methods:
        lines.append(_line("access-control-allow-methods", ", ".join(cors.allow_methods)))
    asked_headers = headers.get("access-control-request-headers", "")
    if cors.allow_headers == ("*",):
        if asked_headers:
            lines.append(_line("access-control-allow-headers", asked_headers))
    elif cors.allow_headers:
        lines.append(_line("access-control-allow-headers", ", ".join(cors.allow_headers)))
    if cors.expose_headers and allowed:
        lines.append(_line("access-control-expose-headers", ", ".join(cors.expose_headers)))
    if cors.max_age is not None:
        lines.append(_line("access-control-max-age", str(cors.max_age)))
    if cors.allow_credentials:
        lines.append(b"access-control-allow-credentials: true\r\n")
    return b"".join(lines)


def response_headers(cors: Cors, origin: str) -> bytes:
    """The CORS headers added to the backend's answer to an allowed origin's request."""
    lines = [_line("access-control-allow-origin", origin)]
    if cors.allow_credentials:
        lines.append(b"access-control-allow-credentials: true\r\n")
    if cors.expose_headers:
        lines.append(_line("access-control-expose-headers", ", ".join(cors.expose_headers)))
    return b"".join(lines)


CORS_RESPONSE_HEADERS = frozenset(
    {"access-control-allow-origin", "access-control-allow-credentials", "access-control-expose-headers"}
)


def _line(name: str, value: str) -> bytes:
    return f"{name}: {clean(value)}\r\n".encode("latin-1", "replace")
