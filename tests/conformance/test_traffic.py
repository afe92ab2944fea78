"""HTTPRoute traffic features, ported from the Gateway API conformance suite (v1.6.1):
weights, request mirroring (seen in the mirror backend's log), retries, timeouts, the
WebSocket and h2c backend protocols, and HTTPS listeners (certificates from ``base``).

Where the local lab differs from the suite's client: the misdirected-request test speaks
HTTP/1.1 over TLS (the suite uses HTTP/2; the standard library has no HTTP/2 client)."""

from __future__ import annotations

import base64
import math
import os
import re
import socket
import struct
import uuid
from urllib.parse import urlencode

import pytest

from .base import INFRA
from .conftest import Suite
from .harness import Case, Seen, accepted, compare, eventually, expect, resolved_refs, send
from .test_matching import SAME, V1, V2, V3, route

pytestmark = pytest.mark.integration
MIRROR_S = 10.0
MODIFY = (
    "{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Header-Set, value: set-overwrites-values}], "
    "add: [{name: X-Header-Add, value: header-val-1}, {name: X-Header-Add-Append, value: header-val-2}], "
    "remove: [X-Header-Remove]}}"
)
MODIFIED = {"X-Header-Add": "header-val-1", "X-Header-Add-Append": "append-val-1,header-val-2"}
MODIFIED["X-Header-Set"] = "set-overwrites-values"
SENT = {"X-Header-Remove": "remove-val", "X-Header-Add-Append": "append-val-1"}


def backend_name(pod: str) -> str:
    """The Deployment of a pod name (``name-hash-suffix``), as the suite's weight test reads it."""
    parts = pod.split("-")
    return "-".join(parts[:-2]) if len(parts) >= 3 else pod


def test_weight(suite: Suite) -> None:
    backends = ", ".join(f"{{name: {b}, port: 8080, weight: {w}}}" for b, w in ((V1, 70), (V2, 30), (V3, 0)))
    suite.apply(route("weighted-backends", f"  - backendRefs: [{backends}]"))
    gw = accepted(suite.lab, SAME, (INFRA, "weighted-backends"))
    resolved_refs(suite.lab, (INFRA, "weighted-backends"), SAME)
    expect(gw, [Case("/", namespace=INFRA)])
    want, total, tolerance = {V1: 0.7, V2: 0.3, V3: 0.0}, 500, 0.05
    problems: list[str] = []
    for _ in range(10):  # the suite's MaxTestRetries
        seen: dict[str, int] = {}
        for i in range(total):
            case = Case(f"/?entropy={i}", namespace=INFRA)  # the suite adds entropy to each request
            answer = send(gw, case)
            problem = compare(case, answer)
            assert problem is None, problem
            name = backend_name(str(answer.echo.get("pod", "")))
            assert name in want, f"an unexpected pod answered: {answer.echo.get('pod')}"
            seen[name] = seen.get(name, 0) + 1
        problems = [
            f"{b}: {seen.get(b, 0) / total:.3f} not within {p} ± {tolerance}"
            for b, p in want.items()
            if abs(seen.get(b, 0) / total - p) > tolerance
        ]
        if len(seen) != 2:
            problems.append(f"expected 2 backends to get traffic, got {sorted(seen)}")
        if not problems:
            return
    pytest.fail("; ".join(problems), pytrace=False)


def mirrors(suite: Suite, backends: tuple[str, ...], path: str) -> None:
    """Every mirror backend's log shows the request (the suite's ExpectMirroredRequest)."""
    line = re.compile(re.escape(f"Echoing back request made to {path} to client"))
    for backend in backends:
        eventually(
            lambda b=backend: None if line.search(suite.logs(b)) else f"not in the {b} pods' logs",  # type: ignore[misc]
            f"the mirrored request {path} in {backend}'s log",
            MIRROR_S,
        )


def mirror_filter(*backends: str, share: str = "") -> str:
    return ", ".join(
        f"{{type: RequestMirror, requestMirror: {{backendRef: {{name: {b}, namespace: {INFRA}, port: 8080}}{share}}}}}"
        for b in backends
    )


def mirror_rules(prefix: str, second: str, backends: tuple[str, ...]) -> str:
    to_v1 = f"    backendRefs: [{{name: infra-backend-v1, port: 8080, namespace: {INFRA}}}]"
    return (
        f"  - matches: [{{path: {{type: PathPrefix, value: {prefix}}}}}]\n"
        f"    filters: [{mirror_filter(*backends)}]\n{to_v1}\n"
        f"  - matches: [{{path: {{type: PathPrefix, value: {second}}}}}]\n"
        f"    filters: [{MODIFY}, {mirror_filter(*backends)}]\n{to_v1}"
    )


def mirror_cases(first: str, second: str) -> list[Case]:
    request_id = f"gateway-api-conformance-request-id={uuid.uuid4()}"
    one, two = f"{first}?{request_id}", f"{second}?{request_id}"
    return [
        Case(one, backend=V1, namespace=INFRA, seen=Seen(one)),
        Case(
            two,
            headers=SENT,
            backend=V1,
            namespace=INFRA,
            seen=Seen(two, headers=MODIFIED, absent=("X-Header-Remove",)),
        ),
    ]


@pytest.mark.parametrize(
    ("name", "first", "second", "backends"),
    [
        ("request-mirror", "/mirror", "/mirror-and-modify-headers", (V2,)),
        ("request-multiple-mirrors", "/multi-mirror", "/multi-mirror-and-modify-request-headers", (V2, V3)),
    ],
)
def test_request_mirror(suite: Suite, name: str, first: str, second: str, backends: tuple[str, ...]) -> None:
    """httproute-request-mirror and httproute-request-multiple-mirrors."""
    suite.apply(route(name, mirror_rules(first, second, backends)))
    gw = accepted(suite.lab, SAME, (INFRA, name))
    for case in mirror_cases(first, second):
        expect(gw, [case])
        mirrors(suite, backends, case.path)


def test_request_percentage_mirror(suite: Suite) -> None:
    to_v1 = f"    backendRefs: [{{name: infra-backend-v1, port: 8080, namespace: {INFRA}}}]"
    shares = [
        ("/percent-mirror", ", percent: 20", ""),
        ("/percent-mirror-fraction", ", fraction: {numerator: 25, denominator: 50}", ""),
        ("/percent-mirror-and-modify-headers", ", percent: 35", MODIFY + ", "),
    ]
    rules = "\n".join(
        f"  - matches: [{{path: {{type: PathPrefix, value: {p}}}}}]\n"
        f"    filters: [{before}{mirror_filter(V2, share=s)}]\n{to_v1}"
        for p, s, before in shares
    )
    suite.apply(route("request-percentage-mirror", rules))
    gw = accepted(suite.lab, SAME, (INFRA, "request-percentage-mirror"))
    resolved_refs(suite.lab, (INFRA, "request-percentage-mirror"), SAME)
    total, deviations = 500, 3.0
    for path, percent in (
        ("/percent-mirror", 20),
        ("/percent-mirror-fraction", 50),
        ("/percent-mirror-and-modify-headers", 35),
    ):
        modified = path.endswith("headers")
        outcome = ""
        for _ in range(5):  # the suite's numDistributionChecks
            tagged = f"{path}?gateway-api-conformance-request-id={uuid.uuid4()}"
            case = Case(
                tagged,
                headers=SENT if modified else {},
                backend=V1,
                namespace=INFRA,
                seen=Seen(
                    tagged, headers=MODIFIED if modified else None, absent=("X-Header-Remove",) if modified else ()
                ),
            )
            expect(gw, [case])
            for _ in range(total):
                problem = compare(case, send(gw, case))
                assert problem is None, problem
            p = percent / 100
            margin = deviations * math.sqrt(total * p * (1 - p))
            line = re.compile(re.escape(f"Echoing back request made to {tagged} to client"))
            # The mirrors are sent beside the answers: wait until the count stops short of nothing.
            eventually(
                lambda line=line: None if line.search(suite.logs(V2)) else "no mirrored request yet",  # type: ignore[misc]
                f"mirrors of {path}",
                MIRROR_S,
            )
            count = len(line.findall(suite.logs(V2)))
            outcome = f"{path}: {count} of {total + 3} mirrored, want {total * p:.0f} ± {margin:.1f}"
            if abs(count - total * p) <= margin:
                break
        else:
            pytest.fail(outcome, pytrace=False)


def test_retry(suite: Suite) -> None:
    rules = """  - matches: [{path: {type: PathPrefix, value: /retry/code-500-attempts-3}}]
    retry: {codes: [500], attempts: 3}
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /retry/code-all-attempts-2}}]
    retry: {codes: [500, 502, 503, 504], attempts: 2}
    backendRefs: [{name: infra-backend-v3, port: 8080}]"""
    suite.apply(route("retries", rules))
    gw = accepted(suite.lab, SAME, (INFRA, "retries"))
    resolved_refs(suite.lab, (INFRA, "retries"), SAME)
    table = [
        ("/retry/code-500-attempts-3", 500, 2, 200),
        ("/retry/code-500-attempts-3", 500, 4, 500),
        ("/retry/code-500-attempts-3", 503, 2, 503),
        ("/retry/code-all-attempts-2", 500, 1, 200),
        ("/retry/code-all-attempts-2", 500, 3, 500),
        ("/retry/code-all-attempts-2", 502, 1, 200),
        ("/retry/code-all-attempts-2", 502, 3, 502),
        ("/retry/code-all-attempts-2", 503, 1, 200),
        ("/retry/code-all-attempts-2", 503, 3, 503),
        ("/retry/code-all-attempts-2", 504, 1, 200),
        ("/retry/code-all-attempts-2", 504, 3, 504),
    ]
    cases = []
    for path, code, succeed_after, want in table:
        # A fresh uuid per case: the echo counts attempts per uuid (the suite: one per try).
        query = urlencode({"responseCode": code, "succeedAfter": succeed_after, "uuid": str(uuid.uuid4())})
        cases.append(Case(f"{path}?{query}", status=(want,), backend=V3, namespace=INFRA))
    for case in cases:
        answer = send(gw, case)
        assert compare(case, answer) is None, f"{case.path}: {compare(case, answer)}"


@pytest.mark.parametrize(
    ("name", "field", "prefix"),
    [("request-timeout", "request", "request"), ("backend-request-timeout", "backendRequest", "backend")],
)
def test_timeout(suite: Suite, name: str, field: str, prefix: str) -> None:
    """httproute-timeout-request and httproute-timeout-backend-request."""
    rules = f"""  - matches: [{{path: {{type: PathPrefix, value: /{prefix}-timeout}}}}]
    backendRefs: [{{name: infra-backend-v1, port: 8080}}]
    timeouts: {{{field}: 500ms}}
  - matches: [{{path: {{type: PathPrefix, value: /disable-{prefix}-timeout}}}}]
    backendRefs: [{{name: infra-backend-v1, port: 8080}}]
    timeouts: {{{field}: "0s"}}"""
    suite.apply(route(name, rules))
    gw = accepted(suite.lab, SAME, (INFRA, name))
    resolved_refs(suite.lab, (INFRA, name), SAME)
    expect(
        gw,
        [
            Case(f"/{prefix}-timeout", namespace=INFRA),
            Case(f"/{prefix}-timeout?delay=1s", status=(504,), namespace=INFRA),
            Case(f"/disable-{prefix}-timeout?delay=1s", namespace=INFRA),
        ],
    )


# ── backend protocols ────────────────────────────────────────────────────────


def _frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    head = struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) if len(payload) < 126 else b""
    assert head, "test messages are short"
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "the connection closed"
            data += chunk
        return data

    first, second = exactly(2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", exactly(2))[0]
    return first & 0x0F, exactly(length)


def websocket_echoes(address: str, origin: str) -> str | None:
    """Dial ws://ADDRESS/ws, send a text and a binary message, expect them back."""
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), 10) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET /ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                return f"closed during the handshake: {head!r}"
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            return f"handshake answered {head.splitlines()[0]!r}"
        for opcode, message in ((0x1, b"Websocket Support!"), (0x2, bytes([1, 2, 3, 4, 5, 6, 7]))):
            sock.sendall(_frame(opcode, message))
            got = _read_frame(sock)
            if got != (opcode, message):
                return f"sent {(opcode, message)}, got {got}"
        sock.sendall(_frame(0x8, struct.pack("!H", 1000)))
    return None


def test_backend_protocol_websocket(suite: Suite) -> None:
    suite.apply(route("backend-protocol-ws", "  - backendRefs: [{name: infra-backend-v1, port: 8082}]"))
    gw = accepted(suite.lab, SAME, (INFRA, "backend-protocol-ws"))
    eventually(
        lambda: websocket_echoes(gw, "ws://gateway/test_backend_protocol_websocket"),
        "WebSocket echo through the gateway",
    )


def test_backend_protocol_h2c(suite: Suite) -> None:
    """HTTP/2 with prior knowledge to the gateway, h2c to the backend's second port."""
    suite.apply(route("backend-protocol-h2c", "  - backendRefs: [{name: infra-backend-v1, port: 8081}]"))
    gw = accepted(suite.lab, SAME, (INFRA, "backend-protocol-h2c"))
    try:
        import h2.config  # type: ignore[import-not-found]
        import h2.connection  # type: ignore[import-not-found]
        import h2.events  # type: ignore[import-not-found]
    except ImportError:
        pytest.fail(
            "no HTTP/2 client: the h2 package is not installed (and helpers/apps/echo.py has no h2c)", pytrace=False
        )
    host, _, port = gw.rpartition(":")
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    with socket.create_connection((host, int(port)), 10) as sock:
        conn.initiate_connection()
        conn.send_headers(
            1, [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", gw)], end_stream=True
        )
        sock.sendall(conn.data_to_send())
        status, body, done = "", b"", False
        while not done:
            data = sock.recv(65536)
            assert data, "the gateway closed the connection"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers).get(b":status", b"").decode()
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset, h2.events.ConnectionTerminated)):
                    done = True
            sock.sendall(conn.data_to_send())
    assert status == "200", f"status {status}: {body[:200]!r}"
    echoed = __import__("json").loads(body)
    assert str(echoed.get("pod", "")).startswith(V1)
    # The pod serves HTTP/1.1 and h2c on its one local port: the h2c Service port must get HTTP/2.
    assert echoed.get("proto") == "HTTP/2.0", f"the backend was spoken to in {echoed.get('proto')}"


# ── HTTPS listeners ──────────────────────────────────────────────────────────

HTTPS_GW = (INFRA, "same-namespace-with-https-listener")


def test_https_listener(suite: Suite) -> None:
    parent = "{name: same-namespace-with-https-listener}"
    suite.apply(
        route(
            "httproute-https-test",
            "  - backendRefs: [{name: infra-backend-v1, port: 8080}]",
            parent=parent,
            extra="hostnames: [example.org]",
        )
        + "---"
        + route(
            "httproute-https-test-no-hostname",
            "  - backendRefs: [{name: infra-backend-v2, port: 8080}]",
            parent="{name: same-namespace-with-https-listener, sectionName: https-with-hostname}",
        )
    )
    routes = [(INFRA, "httproute-https-test"), (INFRA, "httproute-https-test-no-hostname")]
    gw = accepted(suite.lab, HTTPS_GW, *routes, listener="https")
    for rt in routes:
        resolved_refs(suite.lab, rt, HTTPS_GW)
    expect(
        gw,
        [
            Case("/", host="example.org", sni="example.org", backend=V1, namespace=INFRA),
            Case("/", host="unknown-example.org", sni="unknown-example.org", status=(404,)),
            Case("/", host="second-example.org", sni="second-example.org", backend=V2, namespace=INFRA),
        ],
        scheme="https",
        tls=suite.tls(),
    )


def test_https_listener_detect_misdirected_requests(suite: Suite) -> None:
    names = ["https", "https-with-hostname", "https-with-wildcard-hostname", "https-with-hostname-matching-wildcard"]
    backends = [V1, V2, V3, V1]
    suite.apply(
        "---".join(
            route(
                f"https-listener-detect-misdirected-requests-test-{i + 1}",
                "  - matches: [{path: {type: PathPrefix, value: /detect-misdirected-requests}}]\n"
                f"    backendRefs: [{{name: {b}, port: 8080}}]",
                parent=f"{{name: same-namespace-with-https-listener, sectionName: {n}}}",
                extra="hostnames: [example.org]" if i == 0 else "",
            )
            for i, (n, b) in enumerate(zip(names, backends, strict=True))
        )
    )
    routes = [(INFRA, f"https-listener-detect-misdirected-requests-test-{i}") for i in range(1, 5)]
    gw = accepted(suite.lab, HTTPS_GW, *routes, listener="https")
    for rt in routes:
        resolved_refs(suite.lab, rt, HTTPS_GW)
    table = [
        ("example.org", "example.org", 200, V1),
        ("example.org", "second-example.org", 421, ""),
        ("example.org", "unknown-example.org", 404, ""),
        ("second-example.org", "second-example.org", 200, V2),
        ("second-example.org", "example.org", 421, ""),
        ("second-example.org", "unknown-example.org", 421, ""),
        ("third-example.wildcard.org", "third-example.wildcard.org", 200, V3),
        ("third-example.wildcard.org", "fith-example.wildcard.org", 200, V3),
        ("third-example.wildcard.org", "fourth-example.wildcard.org", 421, ""),
        ("third-example.wildcard.org", "second-example.org", 421, ""),
        ("third-example.wildcard.org", "unknown-example.org", 421, ""),
        ("fourth-example.wildcard.org", "fourth-example.wildcard.org", 200, V1),
        ("fourth-example.wildcard.org", "fith-example.wildcard.org", 421, ""),
        ("unknown-example.org", "example.org", 200, V1),
        ("unknown-example.org", "unknown-example.org", 404, ""),
    ]
    expect(
        gw,
        [
            Case("/detect-misdirected-requests", host=host, sni=sni, status=(code,), backend=b, namespace=INFRA)
            for sni, host, code, b in table
        ],
        scheme="https",
        tls=suite.tls(),
    )
