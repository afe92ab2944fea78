"""HTTPRoute filters, ported from the Gateway API conformance suite (v1.6.1): redirects
(status, host, path, port, scheme), request and response header modifiers (per rule and
per backendRef), URL rewrites and CORS."""

from __future__ import annotations

from typing import Any

import pytest

from .base import INFRA, gateway, listener
from .conftest import Suite
from .harness import Case, Redirect, Seen, accepted, expect, resolved_refs, send
from .test_matching import SAME, V1, V2, route

pytestmark = pytest.mark.integration


def redirects(*rules: tuple[str, str]) -> str:
    """Rules of (path prefix, requestRedirect body in flow YAML)."""
    return "\n".join(
        f"  - matches: [{{path: {{type: PathPrefix, value: {p}}}}}]\n"
        f"    filters: [{{type: RequestRedirect, requestRedirect: {body}}}]"
        for p, body in rules
    )


def redirect_test(suite: Suite, name: str, rules: str, cases: list[Case]) -> None:
    suite.apply(route(name, rules))
    gw = accepted(suite.lab, SAME, (INFRA, name))
    resolved_refs(suite.lab, (INFRA, name), SAME)
    expect(gw, cases)


@pytest.mark.parametrize(
    ("code", "path", "method"), [(303, "/see-other", "POST"), (307, "/temporary", "GET"), (308, "/permanent", "GET")]
)
def test_status_redirect(suite: Suite, code: int, path: str, method: str) -> None:
    """httproute-303-redirect, -307-redirect and -308-redirect."""
    rules = redirects((path, f"{{statusCode: {code}}}"))
    redirect_test(
        suite,
        f"{code}-redirect",
        rules,
        [Case(path, method=method, status=(code,), redirect=Redirect(path=path), namespace=INFRA)],
    )


def test_redirect_host_and_status(suite: Suite) -> None:
    rules = redirects(
        ("/hostname-redirect", "{hostname: example.org}"),
        ("/host-and-status", "{statusCode: 301, hostname: example.org}"),
    )
    redirect_test(
        suite,
        "redirect-host-and-status",
        rules,
        [
            Case("/hostname-redirect", status=(302,), redirect=Redirect(host="example.org")),
            Case("/host-and-status", status=(301,), redirect=Redirect(host="example.org")),
        ],
    )


def test_redirect_path(suite: Suite) -> None:
    prefix = "path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}"
    rules = redirects(
        ("/original-prefix", f"{{{prefix}}}"),
        ("/full", "{path: {type: ReplaceFullPath, replaceFullPath: /full-path-replacement}}"),
        ("/path-and-host", f"{{hostname: example.org, {prefix}}}"),
        ("/path-and-status", f"{{{prefix}, statusCode: 301}}"),
        (
            "/full-path-and-host",
            "{hostname: example.org, path: {type: ReplaceFullPath, replaceFullPath: /replacement-full}}",
        ),
        (
            "/full-path-and-status",
            "{path: {type: ReplaceFullPath, replaceFullPath: /replacement-full}, statusCode: 301}",
        ),
    )
    redirect_test(
        suite,
        "redirect-path",
        rules,
        [
            Case("/original-prefix/lemon", status=(302,), redirect=Redirect(path="/replacement-prefix/lemon")),
            Case("/full/path/original", status=(302,), redirect=Redirect(path="/full-path-replacement")),
            Case("/path-and-host", status=(302,), redirect=Redirect(host="example.org", path="/replacement-prefix")),
            Case("/path-and-status", status=(301,), redirect=Redirect(path="/replacement-prefix")),
            Case("/full-path-and-host", status=(302,), redirect=Redirect(host="example.org", path="/replacement-full")),
            Case("/full-path-and-status", status=(301,), redirect=Redirect(path="/replacement-full")),
        ],
    )


def test_redirect_port(suite: Suite) -> None:
    rules = redirects(
        ("/port", "{port: 8083}"),
        ("/port-and-host", "{hostname: example.org, port: 8083}"),
        ("/port-and-status", "{port: 8083, statusCode: 301}"),
        ("/port-and-host-and-status", "{port: 8083, hostname: example.org, statusCode: 302}"),
    )
    redirect_test(
        suite,
        "redirect-port",
        rules,
        [
            Case("/port", status=(302,), redirect=Redirect(port="8083")),
            Case("/port-and-host", status=(302,), redirect=Redirect(host="example.org", port="8083")),
            Case("/port-and-status", status=(301,), redirect=Redirect(port="8083")),
            Case("/port-and-host-and-status", status=(302,), redirect=Redirect(host="example.org", port="8083")),
        ],
    )


def test_redirect_scheme(suite: Suite) -> None:
    rules = redirects(
        ("/scheme", '{scheme: "https"}'),
        ("/scheme-and-host", '{hostname: example.org, scheme: "https"}'),
        ("/scheme-and-status", '{scheme: "https", statusCode: 301}'),
        ("/scheme-and-host-and-status", '{scheme: "https", statusCode: 302, hostname: example.org}'),
    )
    redirect_test(
        suite,
        "redirect-scheme",
        rules,
        [
            Case("/scheme", status=(302,), redirect=Redirect(scheme="https")),
            Case("/scheme-and-host", status=(302,), redirect=Redirect(host="example.org", scheme="https")),
            Case("/scheme-and-status", status=(301,), redirect=Redirect(scheme="https")),
            Case("/scheme-and-host-and-status", status=(302,), redirect=Redirect(scheme="https", host="example.org")),
        ],
    )


def scheme_port_rules(*paths: str) -> str:
    """Redirects to example.org named after what they set: /scheme-<s>-and-port-<p>."""
    bodies = []
    for path in paths:
        _, scheme, _, _, port = path.strip("/").split("-")
        body = (
            "hostname: example.org"
            + (f', scheme: "{scheme}"' if scheme != "nil" else "")
            + (f", port: {port}" if port != "nil" else "")
        )
        bodies.append((path, f"{{{body}}}"))
    return redirects(*bodies)


def test_redirect_port_and_scheme(suite: Suite) -> None:
    on8080 = "same-namespace-with-http-listener-on-8080"
    suite.apply([gateway(on8080, listener("http", 8080))])
    suite.apply(
        route(
            "http-route-for-listener-on-port-80",
            scheme_port_rules(
                *(
                    f"/scheme-{s}-and-port-{p}"
                    for s, p in [
                        ("nil", "nil"),
                        ("nil", "80"),
                        ("nil", "8080"),
                        ("https", "nil"),
                        ("https", "443"),
                        ("https", "8443"),
                    ]
                )
            ),
        )
        + "---"
        + route(
            "http-route-for-listener-on-port-8080",
            scheme_port_rules("/scheme-nil-and-port-nil", "/scheme-nil-and-port-80", "/scheme-https-and-port-nil"),
            parent=f"{{name: {on8080}}}",
        )
        + "---"
        + route(
            "http-route-for-listener-on-port-443",
            scheme_port_rules(
                *(
                    f"/scheme-{s}-and-port-{p}"
                    for s, p in [
                        ("nil", "nil"),
                        ("nil", "443"),
                        ("nil", "8443"),
                        ("http", "nil"),
                        ("http", "80"),
                        ("http", "8080"),
                    ]
                )
            ),
            parent="{name: same-namespace-with-https-listener}",
        )
    )
    https_gw = (INFRA, "same-namespace-with-https-listener")
    gw80 = accepted(suite.lab, SAME, (INFRA, "http-route-for-listener-on-port-80"))
    gw8080 = accepted(suite.lab, (INFRA, on8080), (INFRA, "http-route-for-listener-on-port-8080"))
    gw443 = accepted(suite.lab, https_gw, (INFRA, "http-route-for-listener-on-port-443"), listener="https")
    resolved_refs(suite.lab, (INFRA, "http-route-for-listener-on-port-80"), SAME)
    resolved_refs(suite.lab, (INFRA, "http-route-for-listener-on-port-8080"), (INFRA, on8080))
    resolved_refs(suite.lab, (INFRA, "http-route-for-listener-on-port-443"), https_gw)

    def to(path: str, scheme: str, port: str | None = None, **request: Any) -> Case:
        return Case(path, status=(302,), redirect=Redirect(scheme=scheme, host="example.org", port=port), **request)

    expect(
        gw80,
        [
            to("/scheme-nil-and-port-nil", "http"),
            to("/scheme-nil-and-port-80", "http"),
            to("/scheme-nil-and-port-8080", "http", "8080"),
            to("/scheme-https-and-port-nil", "https"),
            to("/scheme-https-and-port-443", "https"),
            to("/scheme-https-and-port-8443", "https", "8443"),
        ],
    )
    expect(
        gw8080,
        [
            to("/scheme-nil-and-port-nil", "http", "8080"),
            to("/scheme-nil-and-port-80", "http"),
            to("/scheme-https-and-port-nil", "https"),
        ],
    )
    expect(
        gw443,
        [
            to("/scheme-nil-and-port-nil", "https", host="example.org"),
            to("/scheme-nil-and-port-443", "https", host="example.org"),
            to("/scheme-nil-and-port-8443", "https", "8443", host="example.org"),
            to("/scheme-http-and-port-nil", "http", host="example.org"),
            to("/scheme-http-and-port-80", "http", host="example.org"),
            to("/scheme-http-and-port-8080", "http", "8080", host="example.org"),
        ],
        scheme="https",
        tls=suite.tls(),
    )


# ── header modifiers ─────────────────────────────────────────────────────────

MODIFIER_RULES = [
    ("/set", "{set: [{name: X-Header-Set, value: set-overwrites-values}]}"),
    ("/add", "{add: [{name: X-Header-Add, value: add-appends-values}]}"),
    ("/remove", "{remove: [X-Header-Remove]}"),
    (
        "/multiple",
        "{set: [{name: X-Header-Set-1, value: header-set-1}, {name: X-Header-Set-2, value: header-set-2}], "
        "add: [{name: X-Header-Add-1, value: header-add-1}, {name: X-Header-Add-2, value: header-add-2}, "
        "{name: X-Header-Add-3, value: header-add-3}], remove: [X-Header-Remove-1, X-Header-Remove-2]}",
    ),
    (
        "/case-insensitivity",
        "{set: [{name: X-Header-Set, value: header-set}], add: [{name: X-Header-Add, value: header-add}], "
        "remove: [X-Header-Remove]}",
    ),
]


def request_modifier_cases() -> list[Case]:
    def c(path: str, sent: dict[str, str], seen: dict[str, str] | None, absent: tuple[str, ...] = ()) -> Case:
        return Case(path, headers=sent, backend=V1, namespace=INFRA, seen=Seen(path, headers=seen, absent=absent))

    return [
        c("/set", {"Some-Other-Header": "val"}, {"Some-Other-Header": "val", "X-Header-Set": "set-overwrites-values"}),
        c(
            "/set",
            {"Some-Other-Header": "val", "X-Header-Set": "some-other-value"},
            {"Some-Other-Header": "val", "X-Header-Set": "set-overwrites-values"},
        ),
        c("/add", {"Some-Other-Header": "val"}, {"Some-Other-Header": "val", "X-Header-Add": "add-appends-values"}),
        c(
            "/add",
            {"Some-Other-Header": "val", "X-Header-Add": "some-other-value"},
            {"Some-Other-Header": "val", "X-Header-Add": "some-other-value,add-appends-values"},
        ),
        c("/remove", {"X-Header-Remove": "val"}, None, ("X-Header-Remove",)),
        c(
            "/multiple",
            {
                "X-Header-Set-2": "set-val-2",
                "X-Header-Add-2": "add-val-2",
                "X-Header-Remove-2": "remove-val-2",
                "Another-Header": "another-header-val",
            },
            {
                "X-Header-Set-1": "header-set-1",
                "X-Header-Set-2": "header-set-2",
                "X-Header-Add-1": "header-add-1",
                "X-Header-Add-2": "add-val-2,header-add-2",
                "X-Header-Add-3": "header-add-3",
                "Another-Header": "another-header-val",
            },
            ("X-Header-Remove-1", "X-Header-Remove-2"),
        ),
        c(
            "/case-insensitivity",
            {
                "x-header-set": "original-val-set",
                "x-header-add": "original-val-add",
                "x-header-remove": "original-val-remove",
                "Another-Header": "another-header-val",
            },
            {
                "X-Header-Set": "header-set",
                "X-Header-Add": "original-val-add,header-add",
                "Another-Header": "another-header-val",
            },
            ("x-header-remove", "X-Header-Remove"),
        ),
    ]


def test_request_header_modifier(suite: Suite) -> None:
    rules = "\n".join(
        f"  - matches: [{{path: {{type: PathPrefix, value: {p}}}}}]\n"
        f"    filters: [{{type: RequestHeaderModifier, requestHeaderModifier: {m}}}]\n"
        "    backendRefs: [{name: infra-backend-v1, port: 8080}]"
        for p, m in MODIFIER_RULES
    )
    redirect_test(suite, "request-header-modifier", rules, request_modifier_cases())


def test_request_header_modifier_backend(suite: Suite) -> None:
    """The same cases with the filters on the backendRef (httproute-request-header-modifier-backend.yaml)."""
    rules = "\n".join(
        f"  - matches: [{{path: {{type: PathPrefix, value: {p}}}}}]\n"
        "    backendRefs:\n"
        f"    - {{name: infra-backend-v1, port: 8080, "
        f"filters: [{{type: RequestHeaderModifier, requestHeaderModifier: {m}}}]}}"
        for p, m in MODIFIER_RULES
    )
    redirect_test(suite, "request-header-modifier", rules, request_modifier_cases())


def test_request_header_modifier_backend_weights(suite: Suite) -> None:
    backends = ", ".join(
        f"{{name: {b}, port: 8080, weight: 10, filters: [{{type: RequestHeaderModifier, "
        f"requestHeaderModifier: {{set: [{{name: Backend, value: {b}}}]}}}}]}}"
        for b in (V1, V2)
    )
    name = "request-header-modifier-backend-weights"
    redirect_test(suite, name, f"  - backendRefs: [{backends}]", [Case("/", namespace=INFRA)])
    gw = accepted(suite.lab, SAME, (INFRA, name))
    for _ in range(100):
        echo = send(gw, Case("/")).echo
        backend = (echo.get("headers") or {}).get("Backend") or []
        assert len(backend) == 1, f"expected one Backend header at the backend, got {backend}"
        assert str(echo.get("pod", "")).startswith(backend[0]), f"{echo.get('pod')} got the headers of {backend[0]}"


def test_response_header_modifier(suite: Suite) -> None:
    request_modifier = (
        "{type: RequestHeaderModifier, requestHeaderModifier: "
        "{set: [{name: X-Header-Set, value: set-overwrites-values}], "
        "add: [{name: X-Header-Add, value: header-val-1}, {name: X-Header-Add-Append, value: header-val-2}], "
        "remove: [X-Header-Remove]}}"
    )
    both = (
        "{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Header-Set-1, value: header-set-1}, "
        "{name: X-Header-Set-2, value: header-set-2}], add: [{name: X-Header-Add-1, value: header-add-1}, "
        "{name: X-Header-Add-2, value: header-add-2}], remove: [X-Header-Remove-1, X-Header-Remove-2]}}, "
        + request_modifier
    )
    case_rules = [
        *MODIFIER_RULES[:4],
        (
            "/case-insensitivity",
            "{set: [{name: X-Header-Set, value: header-set}], add: [{name: X-Header-Add, value: header-add}, "
            "{name: x-lowercase-add, value: lowercase-add}, {name: x-Mixedcase-ADD-1, value: mixedcase-add-1}, "
            "{name: X-mixeDcase-add-2, value: mixedcase-add-2}, {name: X-UPPERCASE-ADD, value: uppercase-add}], "
            "remove: [X-Header-Remove]}",
        ),
    ]
    rules = "\n".join(
        f"  - matches: [{{path: {{type: PathPrefix, value: {p}}}}}]\n"
        f"    filters: [{{type: ResponseHeaderModifier, responseHeaderModifier: {m}}}]\n"
        "    backendRefs: [{name: infra-backend-v1, port: 8080}]"
        for p, m in case_rules
    )
    rules += (
        "\n  - matches: [{path: {type: PathPrefix, value: /response-and-request-header-modifiers}}]\n"
        f"    filters: [{both}]\n    backendRefs: [{{name: infra-backend-v1, port: 8080}}]"
    )

    def c(
        path: str, backend_sets: dict[str, str], answer: dict[str, str], absent: tuple[str, ...] = (), **more: Any
    ) -> Case:
        return Case(
            path,
            echo_set=backend_sets,
            response_headers=answer,
            response_absent=absent,
            backend=V1,
            namespace=INFRA,
            **more,
        )

    cases = [
        c("/set", {"Some-Other-Header": "val"}, {"Some-Other-Header": "val", "X-Header-Set": "set-overwrites-values"}),
        c(
            "/set",
            {"Some-Other-Header": "val", "X-Header-Set": "some-other-value"},
            {"Some-Other-Header": "val", "X-Header-Set": "set-overwrites-values"},
        ),
        c("/add", {"Some-Other-Header": "val"}, {"Some-Other-Header": "val", "X-Header-Add": "add-appends-values"}),
        c(
            "/add",
            {"Some-Other-Header": "val", "X-Header-Add": "some-other-value"},
            {"Some-Other-Header": "val", "X-Header-Add": "some-other-value,add-appends-values"},
        ),
        c("/remove", {"X-Header-Remove": "val"}, {}, ("X-Header-Remove",)),
        c(
            "/multiple",
            {
                "X-Header-Set-2": "set-val-2",
                "X-Header-Add-2": "add-val-2",
                "X-Header-Remove-2": "remove-val-2",
                "Another-Header": "another-header-val",
                "X-Header-Remove-1": "val",
            },
            {
                "X-Header-Set-1": "header-set-1",
                "X-Header-Set-2": "header-set-2",
                "X-Header-Add-1": "header-add-1",
                "X-Header-Add-2": "add-val-2,header-add-2",
                "X-Header-Add-3": "header-add-3",
                "Another-Header": "another-header-val",
            },
            ("X-Header-Remove-1", "X-Header-Remove-2"),
        ),
        c(
            "/case-insensitivity",
            {
                "x-header-set": "original-val-set",
                "x-header-add": "original-val-add",
                "x-header-remove": "original-val-remove",
                "Another-Header": "another-header-val",
            },
            {
                "X-Header-Set": "header-set",
                "X-Header-Add": "original-val-add,header-add",
                "X-Lowercase-Add": "lowercase-add",
                "X-Mixedcase-Add-1": "mixedcase-add-1",
                "X-Mixedcase-Add-2": "mixedcase-add-2",
                "X-Uppercase-Add": "uppercase-add",
                "Another-Header": "another-header-val",
            },
            ("x-header-remove", "X-Header-Remove"),
        ),
        c(
            "/response-and-request-header-modifiers",
            {
                "X-Header-Set-2": "set-val-2",
                "X-Header-Add-2": "add-val-2",
                "X-Header-Remove-2": "remove-val-2",
                "Another-Header": "another-header-val",
                "X-Header-Remove-1": "remove-val-1",
                "X-Header-Echo": "echo",
            },
            {
                "X-Header-Set-1": "header-set-1",
                "X-Header-Set-2": "header-set-2",
                "X-Header-Add-1": "header-add-1",
                "X-Header-Add-2": "add-val-2,header-add-2",
                "Another-Header": "another-header-val",
                "X-Header-Echo": "echo",
            },
            ("X-Header-Remove-1", "X-Header-Remove-2"),
            headers={"X-Header-Remove": "remove-val", "X-Header-Add-Append": "append-val-1", "X-Header-Echo": "echo"},
            seen=Seen(
                "/response-and-request-header-modifiers",
                headers={
                    "X-Header-Add": "header-val-1",
                    "X-Header-Set": "set-overwrites-values",
                    "X-Header-Add-Append": "append-val-1,header-val-2",
                    "X-Header-Echo": "echo",
                },
                absent=("X-Header-Remove",),
            ),
        ),
    ]
    redirect_test(suite, "response-header-modifier", rules, cases)


# ── rewrites ─────────────────────────────────────────────────────────────────

MODIFY = (
    "{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Header-Set, value: set-overwrites-values}], "
    "add: [{name: X-Header-Add, value: header-val-1}, {name: X-Header-Add-Append, value: header-val-2}], "
    "remove: [X-Header-Remove]}}"
)
MODIFIED = {
    "X-Header-Add": "header-val-1",
    "X-Header-Add-Append": "append-val-1,header-val-2",
    "X-Header-Set": "set-overwrites-values",
}


def test_rewrite_host(suite: Suite) -> None:
    rules = f"""  - matches: [{{path: {{type: PathPrefix, value: /one}}}}]
    filters: [{{type: URLRewrite, urlRewrite: {{hostname: one.example.org}}}}]
    backendRefs: [{{name: infra-backend-v1, port: 8080}}]
  - filters: [{{type: URLRewrite, urlRewrite: {{hostname: example.org}}}}]
    backendRefs: [{{name: infra-backend-v2, port: 8080}}]
  - matches: [{{path: {{type: PathPrefix, value: /rewrite-host-and-modify-headers}}}}]
    filters: [{{type: URLRewrite, urlRewrite: {{hostname: test.example.org}}}}, {MODIFY}]
    backendRefs: [{{name: infra-backend-v2, port: 8080}}]"""
    suite.apply(route("rewrite-host", rules, extra='hostnames: ["rewrite.example"]'))
    gw = accepted(suite.lab, SAME, (INFRA, "rewrite-host"))
    resolved_refs(suite.lab, (INFRA, "rewrite-host"), SAME)
    sent = {"X-Header-Remove": "remove-val", "X-Header-Add-Append": "append-val-1"}
    expect(
        gw,
        [
            Case(
                "/one", host="rewrite.example", backend=V1, namespace=INFRA, seen=Seen("/one", host="one.example.org")
            ),
            Case("/two", host="rewrite.example", backend=V2, namespace=INFRA, seen=Seen("/two", host="example.org")),
            Case(
                "/rewrite-host-and-modify-headers",
                host="rewrite.example",
                headers=sent,
                backend=V2,
                namespace=INFRA,
                seen=Seen(
                    "/rewrite-host-and-modify-headers",
                    host="test.example.org",
                    headers=MODIFIED,
                    absent=("X-Header-Remove",),
                ),
            ),
        ],
    )


def test_rewrite_path(suite: Suite) -> None:
    def rule(prefix: str, rewrite: str, more: str = "") -> str:
        return (
            f"  - matches: [{{path: {{type: PathPrefix, value: {prefix}}}}}]\n"
            f"    filters: [{{type: URLRewrite, urlRewrite: {{path: {rewrite}}}}}{more}]\n"
            "    backendRefs: [{name: infra-backend-v1, port: 8080}]"
        )

    rules = "\n".join(
        [
            rule("/prefix/one", "{type: ReplacePrefixMatch, replacePrefixMatch: /one}"),
            rule("/strip-prefix", "{type: ReplacePrefixMatch, replacePrefixMatch: /}"),
            rule("/full/one", "{type: ReplaceFullPath, replaceFullPath: /one}"),
            rule(
                "/full/rewrite-path-and-modify-headers",
                "{type: ReplaceFullPath, replaceFullPath: /test}",
                ", " + MODIFY,
            ),
            rule(
                "/prefix/rewrite-path-and-modify-headers",
                "{type: ReplacePrefixMatch, replacePrefixMatch: /prefix}",
                ", " + MODIFY,
            ),
        ]
    )
    suite.apply(route("rewrite-path", rules))
    gw = accepted(suite.lab, SAME, (INFRA, "rewrite-path"))
    resolved_refs(suite.lab, (INFRA, "rewrite-path"), SAME)
    sent = {"X-Header-Remove": "remove-val", "X-Header-Add-Append": "append-val-1", "X-Header-Set": "set-val"}

    def c(path: str, seen: str, modified: bool = False) -> Case:
        return Case(
            path,
            headers=sent if modified else {},
            backend=V1,
            namespace=INFRA,
            seen=Seen(seen, headers=MODIFIED if modified else None, absent=("X-Header-Remove",) if modified else ()),
        )

    expect(
        gw,
        [
            c("/prefix/one/two", "/one/two"),
            c("/strip-prefix/three", "/three"),
            c("/strip-prefix", "/"),
            c("/full/one/two", "/one"),
            c("/full/rewrite-path-and-modify-headers/test", "/test", True),
            c("/prefix/rewrite-path-and-modify-headers/one", "/prefix/one", True),
        ],
    )


# ── CORS ─────────────────────────────────────────────────────────────────────


def cors_rule(prefix: str, cors: str) -> str:
    return (
        f"  - filters: [{{type: CORS, cors: {cors}}}]\n"
        f"    matches: [{{path: {{type: PathPrefix, value: {prefix}}}}}]\n"
        "    backendRefs: [{name: infra-backend-v1, port: 8080}]"
    )


def test_cors(suite: Suite) -> None:
    suite.apply(
        "---".join(
            [
                route(
                    "cors-multiple-origins-methods-headers",
                    cors_rule(
                        "/cors-1",
                        '{allowOrigins: ["https://www.foo.com", "https://*.bar.com"], allowMethods: [GET, OPTIONS], '
                        "allowHeaders: [x-header-1, x-header-2], exposeHeaders: [x-header-3, x-header-4], "
                        "allowCredentials: true, maxAge: 3600}",
                    ),
                ),
                route(
                    "cors-wildcard-methods",
                    cors_rule("/cors-2", '{allowOrigins: ["https://www.foo.com"], allowMethods: ["*"]}'),
                ),
                route(
                    "cors-wildcard-origin",
                    cors_rule(
                        "/cors-wildcard-origin", '{allowOrigins: ["*"], allowMethods: [PUT], allowCredentials: false}'
                    ),
                ),
                route(
                    "cors-wildcard-methods-headers",
                    cors_rule(
                        "/cors-wildcard-methods-headers",
                        '{allowOrigins: ["*"], allowMethods: ["*"], allowHeaders: ["*"], allowCredentials: true}',
                    )
                    + "\n"
                    + cors_rule(
                        "/cors-wildcard-methods-headers-unauth",
                        '{allowOrigins: ["*"], allowMethods: ["*"], allowHeaders: ["*"], allowCredentials: false}',
                    ),
                ),
            ]
        )
    )
    names = [
        "cors-multiple-origins-methods-headers",
        "cors-wildcard-methods",
        "cors-wildcard-origin",
        "cors-wildcard-methods-headers",
    ]
    gw = accepted(suite.lab, SAME, *((INFRA, n) for n in names[:2]))
    for n in names:
        resolved_refs(suite.lab, (INFRA, n), SAME)
    preflight_seen = Seen("", method="OPTIONS")  # answered by the gateway: nothing echoed
    asked = {"access-control-request-method": "GET", "access-control-request-headers": "x-header-1, x-header-2"}
    full = {
        "access-control-allow-methods": ("GET, OPTIONS", "OPTIONS, GET"),
        "access-control-allow-headers": ("x-header-1, x-header-2", "x-header-2, x-header-1"),
        "access-control-expose-headers": ("x-header-3, x-header-4", "x-header-4, x-header-3"),
        "access-control-max-age": ("3600",),
        "access-control-allow-credentials": ("true",),
    }

    def preflight(path: str, origin: str, headers: dict[str, str], **more: Any) -> Case:
        return Case(
            path,
            method="OPTIONS",
            headers={"Origin": origin, **headers},
            seen=preflight_seen,
            status=(200, 204),
            **more,
        )

    def simple(path: str, origin: str, method: str = "GET", headers: dict[str, str] | None = None, **more: Any) -> Case:
        return Case(
            path,
            method=method,
            headers={"Origin": origin, **(headers or {})},
            namespace=INFRA,  # the backend must see the request as sent (no ExpectedRequest)
            **more,
        )

    wildcard_headers = ("x-header-1, x-header-2", "x-header-2, x-header-1")
    expect(
        gw,
        [
            preflight(
                "/cors-1",
                "https://www.foo.com",
                asked,
                one_of={"access-control-allow-origin": ("https://www.foo.com",), **full},
                ignore_whitespace=True,
            ),
            preflight(
                "/cors-1",
                "https://www.bar.com",
                asked,
                one_of={"access-control-allow-origin": ("https://www.bar.com",), **full},
                ignore_whitespace=True,
            ),
            preflight(
                "/cors-1",
                "https://xpto.www.bar.com",
                asked,
                one_of={"access-control-allow-origin": ("https://xpto.www.bar.com",), **full},
                ignore_whitespace=True,
            ),
            Case(
                "/cors-1",
                method="OPTIONS",
                headers={"Origin": "https://foobar.com", "access-control-request-method": "GET"},
                seen=preflight_seen,
                status=(200, 204, 403),
                response_absent=("access-control-allow-origin",),
            ),
            simple(
                "/cors-1",
                "https://www.foo.com",
                headers=asked,
                response_headers={"access-control-allow-origin": "https://www.foo.com"},
            ),
            simple(
                "/cors-1",
                "https://www.bar.com",
                headers=asked,
                response_headers={"access-control-allow-origin": "https://www.bar.com"},
            ),
            simple(
                "/cors-1",
                "https://foobar.com",
                headers={"access-control-request-method": "GET"},
                response_absent=("access-control-allow-origin",),
            ),
            preflight(
                "/cors-2",
                "https://www.foo.com",
                {"access-control-request-method": "POST"},
                one_of={"access-control-allow-methods": ("POST", "*")},
                response_headers={"access-control-allow-origin": "https://www.foo.com"},
                response_absent=("access-control-allow-credentials",),
            ),
            preflight(
                "/cors-2",
                "https://www.foo.com",
                {"access-control-request-method": "POST"},
                response_absent=("Access-Control-Allow-Credentials",),
            ),
            preflight(
                "/cors-wildcard-origin",
                "https://foobar.com",
                {"access-control-request-method": "PUT"},
                one_of={
                    "access-control-allow-origin": ("https://foobar.com", "*"),
                    "access-control-allow-methods": ("PUT",),
                },
                response_absent=("Access-Control-Allow-Credentials",),
            ),
            preflight(
                "/cors-wildcard-origin",
                "https://foobar.com:12345",
                {"access-control-request-method": "PUT"},
                one_of={
                    "access-control-allow-origin": ("https://foobar.com:12345", "*"),
                    "access-control-allow-methods": ("PUT",),
                },
                response_absent=("Access-Control-Allow-Credentials",),
            ),
            simple(
                "/cors-wildcard-origin",
                "https://foobar.com:12345",
                "PUT",
                one_of={"access-control-allow-origin": ("https://foobar.com:12345", "*")},
            ),
            simple(
                "/cors-wildcard-origin",
                "https://foobar.com",
                "PUT",
                one_of={"access-control-allow-origin": ("https://foobar.com", "*")},
                response_absent=("Access-Control-Allow-Credentials",),
            ),
            preflight(
                "/cors-wildcard-methods-headers",
                "https://other.foo.com",
                {"access-control-request-method": "PUT", "access-control-request-headers": "x-header-1, x-header-2"},
                one_of={
                    "access-control-allow-origin": ("https://other.foo.com",),
                    "access-control-allow-methods": ("PUT",),
                    "access-control-allow-headers": wildcard_headers,
                    "access-control-allow-credentials": ("true",),
                },
                ignore_whitespace=True,
            ),
            preflight(
                "/cors-wildcard-methods-headers-unauth",
                "https://other.foo.com",
                {"access-control-request-method": "PUT", "access-control-request-headers": "x-header-1, x-header-2"},
                one_of={
                    "access-control-allow-origin": ("https://other.foo.com", "*"),
                    "access-control-allow-methods": ("PUT", "*"),
                    "access-control-allow-headers": (*wildcard_headers, "*"),
                },
                response_absent=("access-control-allow-credentials",),
                ignore_whitespace=True,
            ),
            simple(
                "/cors-wildcard-methods-headers",
                "https://other.foo.com",
                one_of={
                    "access-control-allow-origin": ("https://other.foo.com",),
                    "access-control-allow-credentials": ("true",),
                },
            ),
            simple(
                "/cors-wildcard-methods-headers-unauth",
                "https://other.foo.com",
                one_of={"access-control-allow-origin": ("https://other.foo.com", "*")},
                response_absent=("access-control-allow-credentials",),
            ),
        ],
    )
