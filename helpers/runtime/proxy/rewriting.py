"""What the gateway sends upstream: the client's request rewritten as its route says.

``upstream_request`` applies, in Envoy's order, the prefix rewrite, a REST
function's transformation (Gloo: variables from the request, templates rendered
into method, path, headers and body), the route's header manipulation, drops
hop-by-hop headers, adds the headers a gateway adds (``x-forwarded-for``,
``x-forwarded-proto``, ``x-request-id``) and sets the framing. The common case (no
rewrite of any kind) copies nothing. ``redirect_location`` says where a redirect
route points. Pure functions on a parsed request; no I/O.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import parse_qsl, quote

from helpers.runtime.matching import Matcher, RequestView
from helpers.runtime.proxy.request import Request
from helpers.runtime.proxy.wire import clean
from helpers.runtime.routes import HeaderOps, Redirect, RestCall, RestFunction, RouteAction
from helpers.runtime.templating import render

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)
# Request headers not passed on as they came: hop-by-hop, framing (set here), and
# the ones the gateway writes itself.
_REQUEST_DROP = HOP_BY_HOP | {"content-length", "expect", "x-forwarded-for", "x-forwarded-proto"}
_REST_IGNORED = frozenset({"content-length", "transfer-encoding"})  # framing is ours
_NO_QUERY: Mapping[str, str] = MappingProxyType({})
_getrandbits = random.getrandbits


def query_params(query: str) -> Mapping[str, str]:
    """Query parameters, percent-decoded, the first value of each name."""
    if not query:
        return _NO_QUERY
    found: dict[str, str] = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        found.setdefault(k, v)
    return found


def upstream_request(
    req: Request,
    view: RequestView,
    matcher: Matcher,
    action: RouteAction,
    cluster: str,
    peer: str,
    rest: RestCall | None = None,
    fn: RestFunction | None = None,
    *,
    backend_ops: HeaderOps | None = None,
    scheme: str = "http",
    upgrade: bool = False,
    shadow: bool = False,
) -> tuple[bytes, bytes]:
    """The request head and body to send to ``cluster`` for ``req`` from ``peer``.

    ``backend_ops`` are the picked backendRef's own header filters (applied before
    the route's, as Envoy applies weighted-cluster headers first); ``scheme`` is
    what the client used (``x-forwarded-proto``); ``upgrade`` keeps ``Connection:
    upgrade`` and ``Upgrade`` (a WebSocket handshake); ``shadow`` makes the copy a
    RequestMirror sends: its Host gets Envoy's ``-shadow`` suffix, before any port."""
    method, target, body, headers, framed = req.method, req.target, req.body, req.headers, req.framed
    original = None
    if action.prefix_rewrite is not None:
        original, target = target, _rewrite(req, matcher, action.prefix_rewrite)
    elif action.full_path_rewrite is not None:
        original, target = target, _with_query(action.full_path_rewrite, req.query)
    ops = action.header_ops
    if (
        fn is not None
        or original is not None
        or action.host_rewrite is not None
        or (ops is not None and (ops.request_add or ops.request_remove))
        or backend_ops is not None
        or shadow
    ):
        headers = dict(headers)  # the slow path: this request's headers change
        if original is not None:
            headers["x-envoy-original-path"] = original
        if action.host_rewrite is not None:
            headers["host"] = action.host_rewrite
        if fn is not None and rest is not None:
            method, target, body = _call_function(req, view, rest, fn, headers, target)
            framed = fn.body is None and framed  # a rendered body brings its own framing
        for each in (backend_ops, ops):
            if each is not None:
                _apply(each, headers)
        if shadow:
            headers["host"] = shadow_host(headers.get("host") or cluster)
    drop = _REQUEST_DROP
    connection = headers.get("connection")
    if connection is not None and connection.lower() not in ("close", "keep-alive"):
        drop = drop | {t.strip().lower() for t in connection.split(",")}  # the headers it names are hop-by-hop
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    for k, v in headers.items():
        if k not in drop:
            lines.append(f"{k}: {v}\r\n")
    if upgrade:
        lines.append(f"connection: upgrade\r\nupgrade: {clean(headers.get('upgrade', 'websocket'))}\r\n")
    xff = headers.get("x-forwarded-for")
    lines.append(f"x-forwarded-for: {xff}, {peer}\r\n" if xff else f"x-forwarded-for: {peer}\r\n")
    lines.append(f"x-forwarded-proto: {scheme}\r\n")
    if "x-request-id" not in headers:
        h = f"{_getrandbits(128):032x}"
        lines.append(f"x-request-id: {h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}\r\n")
    if "host" not in headers:  # an HTTP/1.0 client may leave it out; HTTP/1.1 needs one
        lines.append(f"host: {cluster}\r\n")
    if body or framed:
        lines.append(f"content-length: {len(body)}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1", "replace"), body


def _apply(ops: HeaderOps, headers: dict[str, str]) -> None:
    # Envoy: removals first, then additions
    for h in ops.request_remove:
        headers.pop(h, None)
    for h, value, append in ops.request_add:
        old = headers.get(h)
        headers[h] = f"{old},{clean(value)}" if append and old is not None else clean(value)


def shadow_host(host: str) -> str:
    """The Host of a mirrored copy, as Envoy's shadow writer makes it.

    >>> shadow_host("example.org:8080"), shadow_host("example.org")
    ('example.org-shadow:8080', 'example.org-shadow')
    """
    name, colon, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    if colon and port.isdigit():
        return f"{name}-shadow:{port}"
    return f"{host}-shadow"


def redirect_location(
    req: Request,
    view: RequestView,
    matcher: Matcher,
    action: Redirect,
    listener_port: int | None = None,
    scheme: str = "http",
) -> str:
    """Where a redirect route sends ``req``: the query is kept unless the new path has one.

    A Gateway API redirect without a port or scheme keeps ``listener_port``, the
    port of the listener the request came in on (the Host header's when unknown)."""
    if action.path is not None:
        path = action.path
    elif action.prefix_rewrite is not None:
        path = _rewrite(req, matcher, action.prefix_rewrite).partition("?")[0]
    else:
        path = req.path
    if req.query and "?" not in path:
        path = f"{path}?{req.query}"
    if action.gateway_api:
        return clean(f"{_gateway_api_origin(view.host, action, listener_port, scheme)}{path}")
    return clean(f"{action.scheme or scheme}://{action.host or view.host}{path}")


_WELL_KNOWN = {"http": 80, "https": 443}


def _gateway_api_origin(request_host: str, action: Redirect, listener_port: int | None, request_scheme: str) -> str:
    # HTTPRequestRedirectFilter.port: the given port; else the scheme's well-known
    # port if the scheme is set; else the listener's port (the one the request
    # came in on). http:80 and https:443 are not written.
    bare, _, port_text = request_host.rpartition(":") if request_host.count(":") == 1 else (request_host, "", "")
    scheme = action.scheme or request_scheme
    if action.port is not None:
        port: int | None = action.port
    elif action.scheme is not None:
        port = _WELL_KNOWN[action.scheme]
    elif listener_port is not None:
        port = listener_port
    else:
        port = int(port_text) if port_text.isdigit() else None
    host = action.host or bare
    shown = "" if port is None or _WELL_KNOWN.get(scheme) == port else f":{port}"
    return f"{scheme}://{host}{shown}"


def _rewrite(req: Request, matcher: Matcher, rewrite: str) -> str:
    # A prefix matcher's prefix is replaced, the rest of the path and the query
    # kept; an exact or regex matcher matched the whole path, so all of it goes.
    pm = matcher.path
    if pm.kind == "path_prefix":
        return _with_query(replace_prefix_match(req.path, pm.value, rewrite), req.query)
    path = rewrite + req.path[len(pm.value) :] if pm.kind == "prefix" else rewrite
    return _with_query(path, req.query)


def replace_prefix_match(path: str, prefix: str, replacement: str) -> str:
    """The Gateway API's ReplacePrefixMatch: ``prefix`` (a PathPrefix that matched
    ``path`` whole segments at a time) becomes ``replacement``; trailing slashes
    of both are ignored, and the result is never empty.

    >>> replace_prefix_match("/foo/bar", "/foo/", "/xyz/"), replace_prefix_match("/foo", "/foo", "")
    ('/xyz/bar', '/')
    """
    rest = path[len(prefix.rstrip("/")) :]
    return (replacement.rstrip("/") + rest) or "/"


def _with_query(path: str, query: str) -> str:
    return f"{path}?{query}" if query else path


def _call_function(
    req: Request, view: RequestView, rest: RestCall, fn: RestFunction, headers: dict[str, str], target: str
) -> tuple[str, str, bytes]:
    """Gloo's REST transformation: variables from a JSON object body's top-level
    fields, then the route's parameters (a parameter that does not match leaves
    its variable unset); render the function's method, path, headers and body.
    ``headers`` is changed in place."""
    variables: dict[str, str] = {}
    if req.body[:1] == b"{":
        try:
            doc = json.loads(req.body)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            for k, v in doc.items():
                variables[str(k)] = v if isinstance(v, str) else json.dumps(v)
    for header, pattern in rest.parameters:
        value = view.header(header)  # ":path" is the path without the query
        m = pattern.fullmatch(value) if value is not None else None
        if m is not None:
            variables.update({k: v for k, v in m.groupdict().items() if v is not None})
    method, body = req.method, req.body
    for header, template in fn.headers:
        if header in _REST_IGNORED:
            continue
        if not template:  # an empty template removes the header
            headers.pop(header, None)
            continue
        value = clean(render(template, variables))
        if header == ":method":
            method = value.strip().upper() or method
        elif header == ":path":
            target = quote(value, safe="/?&=%:@!$'()*+,;~-._") or "/"
        elif header == ":authority":
            headers["host"] = value
        elif not header.startswith(":"):
            headers[header] = value
    if fn.body is not None:
        body = render(fn.body, variables).encode() if fn.body else b""
    return method, target, body
