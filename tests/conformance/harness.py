"""What the conformance suite's utilities do, for the local lab: send a request, compare
what came back (and what the echo backend saw) with a ``Case``, and wait on route and
Gateway status conditions.

``Case`` carries the suite's ``ExpectedResponse`` facts: the request (path with query,
host, method, headers, headers the echo should set on its answer), the statuses
allowed, the backend (pod name prefix) and namespace that must answer, what the backend
must have seen (``seen``, by default the request itself), response headers (exact,
one-of, absent) and a redirect's Location. ``expect`` sends a case until it holds three
times in a row, within a deadline (the suite's eventual consistency: 3 successes, here
within ``CONVERGENCE_S`` since the local control plane swaps tables before apply returns).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from helpers import Lab

from .base import CONTROLLER

CONVERGENCE_S = 5.0
STATUS_S = 10.0
CONSECUTIVE = 3
REQUEST_TIMEOUT_S = 10.0
POLL_S = 0.05


@dataclass
class Seen:
    """What the backend must have received (the suite's ExpectedRequest)."""

    path: str
    host: str = ""
    method: str = "GET"
    headers: Mapping[str, str] | None = None
    absent: tuple[str, ...] = ()


@dataclass
class Redirect:
    """A redirect's Location: None means "as the request" (the suite's defaults)."""

    scheme: str | None = None
    host: str | None = None
    port: str | None = None
    path: str | None = None


@dataclass
class Case:
    path: str
    host: str | None = None
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    echo_set: Mapping[str, str] = field(default_factory=dict)  # BackendSetResponseHeaders
    status: tuple[int, ...] = (200,)
    backend: str = ""
    namespace: str = ""
    seen: Seen | None = None
    response_headers: Mapping[str, str] = field(default_factory=dict)
    one_of: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # ValidHeaderValues
    response_absent: tuple[str, ...] = ()
    ignore_whitespace: bool = False
    redirect: Redirect | None = None
    sni: str | None = None


@dataclass
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: bytes
    echo: dict[str, Any]  # the echo's JSON, or {"method": <request method>} as the suite assumes


class _TLSConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with any SNI (the suite's serverName), trusting the lab's CA."""

    def __init__(self, port: int, context: ssl.SSLContext, sni: str) -> None:
        super().__init__("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S, context=context)
        self._sni, self._context = sni, context

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), REQUEST_TIMEOUT_S)
        self.sock = self._context.wrap_socket(raw, server_hostname=self._sni)


def send(address: str, case: Case, scheme: str = "http", tls: ssl.SSLContext | None = None) -> Answer:
    """One request, as the suite's round tripper sends it (never following redirects)."""
    host, _, port = address.rpartition(":")
    headers = {"Host": case.host or _default_host(address, scheme), **case.headers}
    headers["X-Echo-Set-Header"] = ",".join(f"{k}:{v}" for k, v in case.echo_set.items())
    if scheme == "https":
        assert tls is not None
        conn: http.client.HTTPConnection = _TLSConnection(int(port), tls, case.sni or case.host or host)
    else:
        conn = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT_S)
    try:
        conn.request(case.method, case.path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        found: dict[str, list[str]] = {}
        for name, value in resp.getheaders():
            found.setdefault(name.lower(), []).append(value)
    finally:
        conn.close()
    echo: dict[str, Any] = {"method": case.method}
    if (found.get("content-type") or [""])[0] == "application/json":
        echo = json.loads(body)
    return Answer(resp.status, found, body, echo)


def _default_host(address: str, scheme: str) -> str:
    host, _, port = address.rpartition(":")
    return host if (scheme, port) in (("http", "80"), ("https", "443")) else address


def compare(case: Case, answer: Answer, scheme: str = "http") -> str | None:
    """Why ``answer`` does not meet ``case`` (the suite's CompareRoundTrip), or None."""
    if answer.status not in case.status and not (answer.status in (408, 504) and {408, 504} & set(case.status)):
        return f"expected status {case.status}, got {answer.status}: {answer.body[:200]!r}"
    if answer.status in (200, 204):
        return _compare_success(case, answer)
    if 300 <= answer.status < 400 and case.redirect is not None:
        return _compare_redirect(case, answer, scheme)
    return None


def _compare_success(case: Case, answer: Answer) -> str | None:
    seen = case.seen or Seen(case.path, case.host or "", case.method, dict(case.headers) or None)
    echo = answer.echo
    if seen.host and seen.host != echo.get("host"):
        return f"expected host {seen.host!r}, got {echo.get('host')!r}"
    if seen.path != echo.get("path", ""):
        return f"expected path {seen.path!r}, got {echo.get('path', '')!r}"
    if seen.method != echo.get("method"):
        return f"expected method {seen.method!r}, got {echo.get('method')!r}"
    if case.namespace != echo.get("namespace", ""):
        return f"expected namespace {case.namespace!r}, got {echo.get('namespace', '')!r}"
    got = {k.lower(): v for k, v in (echo.get("headers") or {}).items()}
    for name, value in (seen.headers or {}).items():
        if name.lower() not in got:
            return f"expected the backend to see header {name}, it saw {sorted(got)}"
        if ",".join(got[name.lower()]) != value:
            return f"expected header {name}: {value!r} at the backend, got {','.join(got[name.lower()])!r}"
    for name in seen.absent:
        if name.lower() in got:
            return f"expected the backend not to see header {name}, got {got[name.lower()]}"
    problem = _compare_response_headers(case, answer)
    if problem:
        return problem
    if not str(echo.get("pod", "")).startswith(case.backend):
        return f"expected a pod of {case.backend!r} to answer, got {echo.get('pod', '')!r}"
    return None


def _compare_response_headers(case: Case, answer: Answer) -> str | None:
    def squeeze(text: str) -> str:
        return text.replace(" ", "") if case.ignore_whitespace else text

    for name, allowed in case.one_of.items():
        if name.lower() not in answer.headers:
            return f"expected response header {name}, got {sorted(answer.headers)}"
        value = squeeze(",".join(answer.headers[name.lower()]))
        if value not in [squeeze(a) for a in allowed]:
            return f"expected response header {name} to be one of {allowed}, got {value!r}"
    for name, want in case.response_headers.items():
        if name.lower() not in answer.headers:
            return f"expected response header {name}, got {sorted(answer.headers)}"
        value = ",".join(answer.headers[name.lower()])
        if squeeze(value) != squeeze(want):
            return f"expected response header {name}: {want!r}, got {value!r}"
    for name in case.response_absent:
        if name.lower() in answer.headers:
            return f"expected no response header {name}, got {answer.headers[name.lower()]}"
    return None


def _compare_redirect(case: Case, answer: Answer, scheme: str) -> str | None:
    assert case.redirect is not None
    location = urlsplit((answer.headers.get("location") or [""])[0])
    want = case.redirect
    got_port = str(location.port) if location.port else ""
    if (want.host or location.hostname or "") != (location.hostname or ""):
        return f"expected redirect host {want.host!r}, got {location.hostname!r}"
    if want.port is None:
        default = {"http": "80", "https": "443"}.get(location.scheme.lower())
        if default and got_port not in ("", default):
            return f"expected a redirect to {location.scheme} on port {default} or none, got {got_port!r}"
    elif want.port != got_port:
        return f"expected redirect port {want.port!r}, got {got_port!r}"
    if (want.scheme or scheme) != location.scheme:
        return f"expected redirect scheme {want.scheme or scheme!r}, got {location.scheme!r}"
    if (want.path or urlsplit(case.path).path) != location.path:
        return f"expected redirect path {want.path or urlsplit(case.path).path!r}, got {location.path!r}"
    return None


def expect(address: str, cases: Iterable[Case], scheme: str = "http", tls: ssl.SSLContext | None = None) -> None:
    """Each case must hold ``CONSECUTIVE`` times in a row within ``CONVERGENCE_S`` (after
    the first case that does not, the rest get one try each, to keep the run short); the
    test fails listing every case that did not."""
    failures: list[str] = []
    for i, case in enumerate(cases):
        deadline = time.monotonic() + (0 if failures else CONVERGENCE_S)
        in_a_row, problem = 0, None
        while True:
            try:
                problem = compare(case, send(address, case, scheme, tls), scheme)
            except (OSError, http.client.HTTPException, json.JSONDecodeError) as e:
                problem = f"request failed: {e!r}"
            in_a_row = 0 if problem else in_a_row + 1
            if in_a_row >= CONSECUTIVE or time.monotonic() >= deadline:
                break
        if problem:
            failures.append(f"case {i} ({case.method} {case.host or ''}{case.path}): {problem}")
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


# ── status ───────────────────────────────────────────────────────────────────


def get(lab: Lab, kind: str, ns: str, name: str) -> dict[str, Any]:
    found = lab.objects(kind, name, ns)
    assert found, f"{kind} {ns}/{name} not found"
    return found[0]


def condition(conditions: Iterable[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def has(
    obj: Mapping[str, Any], conditions: Iterable[Mapping[str, Any]], kind: str, status: str, reason: str = ""
) -> bool:
    """A condition of that type and status (and reason, if given), at the object's generation."""
    found = condition(conditions, kind)
    generation = (obj.get("metadata") or {}).get("generation")
    return bool(
        found
        and found.get("status") == status
        and (not reason or found.get("reason") == reason)
        and (generation is None or found.get("observedGeneration") == generation)
    )


def parent_status(route: Mapping[str, Any], gateway: tuple[str, str]) -> Mapping[str, Any] | None:
    for parent in (route.get("status") or {}).get("parents") or []:
        ref = parent.get("parentRef") or {}
        ns = ref.get("namespace") or route["metadata"]["namespace"]
        if (ns, ref.get("name")) == gateway and parent.get("controllerName") == CONTROLLER:
            return parent  # type: ignore[no-any-return]
    return None


def eventually(check: Callable[[], str | None], what: str, timeout: float = STATUS_S) -> None:
    """Wait until ``check`` reports no problem; fail with its last problem otherwise."""
    last: list[str | None] = [None]

    def ok() -> bool:
        last[0] = check()
        return last[0] is None

    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}: {last[0]}", pytrace=False)
        time.sleep(POLL_S)  # the poll interval of a wait on a condition, as wait_for's


def route_condition(
    lab: Lab, route: tuple[str, str], gateway: tuple[str, str], kind: str, status: str, reason: str = ""
) -> None:
    """The route's status for that Gateway has the condition (the suite's
    HTTPRouteMustHaveCondition)."""

    def check() -> str | None:
        obj = get(lab, "HTTPRoute", *route)
        parent = parent_status(obj, gateway)
        if parent is None:
            return f"no status.parents entry for Gateway {gateway[0]}/{gateway[1]}: {obj.get('status')}"
        if not has(obj, parent.get("conditions") or [], kind, status, reason):
            return f"conditions are {parent.get('conditions')}"
        return None

    eventually(check, f"HTTPRoute {route[0]}/{route[1]} {kind}={status} {reason}")


def resolved_refs(lab: Lab, route: tuple[str, str], gateway: tuple[str, str]) -> None:
    route_condition(lab, route, gateway, "ResolvedRefs", "True", "ResolvedRefs")


def accepted(lab: Lab, gateway: tuple[str, str], *routes: tuple[str, str], listener: str | None = None) -> str:
    """The Gateway is Programmed and every route Accepted by it (the suite's
    GatewayAndHTTPRoutesMustBeAccepted); returns the listener's local address."""

    def programmed() -> str | None:
        gw = get(lab, "Gateway", *gateway)
        conditions = (gw.get("status") or {}).get("conditions") or []
        return None if has(gw, conditions, "Programmed", "True") else f"conditions are {conditions}"

    eventually(programmed, f"Gateway {gateway[0]}/{gateway[1]} Programmed")
    for route in routes:
        route_condition(lab, route, gateway, "Accepted", "True")
    return address(lab, gateway, listener)


def address(lab: Lab, gateway: tuple[str, str], listener: str | None = None) -> str:
    """Where the local runtime serves a Gateway listener: 127.0.0.1 and its local port."""
    gw = get(lab, "Gateway", *gateway)
    for li in (gw.get("status") or {}).get("listeners") or []:
        if (listener is None or li.get("name") == listener) and li.get("localPort"):
            return f"127.0.0.1:{li['localPort']}"
    urls = lab.status().get("gatewayApi", {}).get("gateways", {}).get(f"{gateway[0]}/{gateway[1]}", {})
    url = urls.get(listener) if listener else next(iter(urls.values()), None)
    assert url, f"Gateway {gateway[0]}/{gateway[1]} listener {listener or '(any)'} is not served: {gw.get('status')}"
    return str(url).removeprefix("http://").removeprefix("https://")


def no_accepted_parents(lab: Lab, route: tuple[str, str]) -> None:
    """No parent, or exactly one that is not Accepted (HTTPRouteMustHaveNoAcceptedParents)."""

    def check() -> str | None:
        obj = get(lab, "HTTPRoute", *route)
        parents = (obj.get("status") or {}).get("parents") or []
        if not parents:
            return None
        if len(parents) > 1 or not has(obj, parents[0].get("conditions") or [], "Accepted", "False"):
            return f"parents are {parents}"
        return None

    eventually(check, f"HTTPRoute {route[0]}/{route[1]} with no accepted parent")


def zero_routes(lab: Lab, gateway: tuple[str, str]) -> None:
    """No listener, or one with no attached route (GatewayMustHaveZeroRoutes)."""

    def check() -> str | None:
        listeners = (get(lab, "Gateway", *gateway).get("status") or {}).get("listeners") or []
        if not listeners or (len(listeners) == 1 and listeners[0].get("attachedRoutes") == 0):
            return None
        return f"listeners are {listeners}"

    eventually(check, f"Gateway {gateway[0]}/{gateway[1]} with zero routes")
