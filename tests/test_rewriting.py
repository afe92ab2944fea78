"""What the gateway sends upstream and where a redirect points: the pure functions of
``proxy.rewriting``, on requests built by hand (no sockets).

Each test builds a ``Request`` (as ``downstreams`` parses it), the ``RequestView``
routing saw, the ``Matcher`` that selected the route and its action, then reads
the request head ``upstream_request`` wrote back as lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest

from helpers.apps.petstore import swagger
from helpers.runtime.gloo.functions import function_from_transformation, transformations_from_swagger
from helpers.runtime.matching import Matcher, PathMatcher, RequestView
from helpers.runtime.proxy.request import Request
from helpers.runtime.proxy.rewriting import (
    HOP_BY_HOP,
    query_params,
    redirect_location,
    replace_prefix_match,
    upstream_request,
)
from helpers.runtime.routes import (
    Destination,
    HeaderOps,
    Redirect,
    RestCall,
    RestFunction,
    RouteAction,
    WeightedDestination,
)
from helpers.runtime.templating import compile_parameter

CLUSTER = "default-petstore-v1-8080"
PEER = "127.0.0.9"


def request(
    target: str = "/",
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    framed: bool | None = None,
    http11: bool = True,
) -> Request:
    """A parsed client request; headers lower-case, as downstreams keeps them."""
    hs = {"host": "gw.test"} if headers is None else {k.lower(): v for k, v in headers.items()}
    return Request(method, target, hs, body, bool(body) if framed is None else framed, True, http11)


def view(req: Request) -> RequestView:
    return RequestView(req.method, req.headers.get("host", ""), req.path, query_params(req.query), req.headers)


def action(**options: object) -> RouteAction:
    return RouteAction((WeightedDestination(Destination(CLUSTER), 1),), **options)  # type: ignore[arg-type]


PREFIX_ROOT = Matcher(PathMatcher("prefix", "/"))


def prefix(value: str, kind: str = "prefix") -> Matcher:
    return Matcher(PathMatcher(kind, value))


class Sent:
    """The head ``upstream_request`` wrote, read back."""

    def __init__(self, head: bytes, body: bytes) -> None:
        assert head.endswith(b"\r\n\r\n"), head
        lines = head.decode("latin-1").split("\r\n")[:-2]
        self.method, self.target, version = lines[0].split(" ")
        assert version == "HTTP/1.1"
        self.lines = [tuple(line.split(": ", 1)) for line in lines[1:]]
        self.body = body

    @property
    def names(self) -> list[str]:
        return [k for k, _ in self.lines]

    def get(self, name: str) -> str | None:
        values = [v for k, v in self.lines if k == name]
        assert len(values) <= 1, f"{name} sent {len(values)} times: {self.lines}"
        return values[0] if values else None


def send(
    req: Request,
    act: RouteAction | None = None,
    matcher: Matcher = PREFIX_ROOT,
    rest: RestCall | None = None,
    fn: RestFunction | None = None,
) -> Sent:
    head, body = upstream_request(req, view(req), matcher, act or action(), CLUSTER, PEER, rest, fn)
    return Sent(head, body)


# ── the common case: headers passed on, gateway headers added ────────────────


def test_plain_request_keeps_target_method_and_end_to_end_headers() -> None:
    sent = send(
        request("/api/pets?limit=2", headers={"host": "gw.test", "accept": "application/json", "x-canary": "true"})
    )
    assert (sent.method, sent.target) == ("GET", "/api/pets?limit=2")
    assert sent.get("host") == "gw.test" and sent.get("accept") == "application/json"
    assert sent.get("x-canary") == "true"
    assert sent.get("x-forwarded-for") == PEER and sent.get("x-forwarded-proto") == "http"
    assert sent.get("content-length") is None and sent.body == b""  # a bodiless GET gets no framing
    assert sent.get("x-envoy-original-path") is None


def test_request_id_is_added_unless_the_client_sent_one() -> None:
    first, second = send(request("/")), send(request("/"))
    rid = first.get("x-request-id")
    assert rid is not None and re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", rid)
    assert second.get("x-request-id") != rid
    kept = send(request("/", headers={"host": "h", "x-request-id": "mine"}))
    assert kept.get("x-request-id") == "mine"


def test_forwarded_for_is_appended_to_the_clients_chain() -> None:
    sent = send(request("/", headers={"host": "h", "x-forwarded-for": "10.0.0.1", "x-forwarded-proto": "https"}))
    assert sent.get("x-forwarded-for") == f"10.0.0.1, {PEER}"
    assert sent.get("x-forwarded-proto") == "http"  # the gateway's own view, not the client's claim


def test_host_is_added_for_a_client_that_sent_none() -> None:
    sent = send(request("/", headers={}, http11=False))
    assert sent.get("host") == CLUSTER


@pytest.mark.parametrize("name", sorted(HOP_BY_HOP))
def test_hop_by_hop_headers_are_not_passed_on(name: str) -> None:
    sent = send(request("/", headers={"host": "h", name: "whatever", "x-kept": "1"}))
    assert name not in sent.names and sent.get("x-kept") == "1"


def test_headers_named_by_connection_are_hop_by_hop_too() -> None:
    sent = send(
        request(
            "/",
            headers={"host": "h", "connection": "x-secret, X-Other", "x-secret": "s", "x-other": "o", "x-kept": "1"},
        )
    )
    assert "x-secret" not in sent.names and "x-other" not in sent.names and "connection" not in sent.names
    assert sent.get("x-kept") == "1"


def test_body_is_passed_with_its_length_and_client_framing_dropped() -> None:
    body = b'{"name": "Fish"}'
    sent = send(
        request(
            "/api/pets",
            "POST",
            {"host": "h", "content-length": "999", "transfer-encoding": "chunked", "expect": "100-continue"},
            body,
        )
    )
    assert sent.body == body
    assert sent.get("content-length") == str(len(body))
    assert "transfer-encoding" not in sent.names and "expect" not in sent.names


def test_an_empty_framed_body_is_sent_with_length_zero() -> None:
    sent = send(request("/api/pets", "POST", {"host": "h", "content-length": "0"}, b"", framed=True))
    assert sent.get("content-length") == "0"


# ── path rewrites ────────────────────────────────────────────────────────────


def test_prefix_rewrite_replaces_the_matched_prefix_and_keeps_the_query() -> None:
    sent = send(request("/petstore/1?x=1"), action(prefix_rewrite="/api/pets"), prefix("/petstore"))
    assert sent.target == "/api/pets/1?x=1"
    assert sent.get("x-envoy-original-path") == "/petstore/1?x=1"


def test_prefix_rewrite_of_the_bare_prefix() -> None:
    sent = send(request("/petstore"), action(prefix_rewrite="/api/pets"), prefix("/petstore"))
    assert sent.target == "/api/pets"


def test_prefix_rewrite_under_an_exact_or_regex_matcher_replaces_the_whole_path() -> None:
    exact = send(request("/findPets?limit=1"), action(prefix_rewrite="/api/pets"), prefix("/findPets", "exact"))
    assert exact.target == "/api/pets?limit=1"
    regex = Matcher(PathMatcher("regex", "/pets/[0-9]+", pattern=re.compile("/pets/[0-9]+")))
    assert send(request("/pets/12"), action(prefix_rewrite="/api/pets"), regex).target == "/api/pets"


def test_gateway_api_prefix_rewrite_follows_replace_prefix_match() -> None:
    sent = send(request("/petstore/1?q=a"), action(prefix_rewrite="/api/pets/"), prefix("/petstore/", "path_prefix"))
    assert sent.target == "/api/pets/1?q=a"


def test_full_path_rewrite_keeps_the_query() -> None:
    sent = send(request("/anything/here?limit=3"), action(full_path_rewrite="/api/pets"))
    assert sent.target == "/api/pets?limit=3"
    assert sent.get("x-envoy-original-path") == "/anything/here?limit=3"


# The table of HTTPPathModifier.ReplacePrefixMatch in the Gateway API's httproute_types.go.
@pytest.mark.parametrize(
    ("path", "prefix_value", "replacement", "expected"),
    [
        ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
        ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
        ("/foo", "/foo", "/xyz", "/xyz"),
        ("/foo/", "/foo", "/xyz", "/xyz/"),
        ("/foo/bar", "/foo", "", "/bar"),
        ("/foo/", "/foo", "", "/"),
        ("/foo", "/foo", "", "/"),
        ("/foo/", "/foo", "/", "/"),
        ("/foo", "/foo", "/", "/"),
    ],
)
def test_replace_prefix_match_follows_the_spec_table(
    path: str, prefix_value: str, replacement: str, expected: str
) -> None:
    assert replace_prefix_match(path, prefix_value, replacement) == expected


# ── header manipulation ──────────────────────────────────────────────────────


def test_host_rewrite_sets_the_host_header() -> None:
    sent = send(request("/", headers={"host": "gw.test"}), action(host_rewrite="petstore.internal"))
    assert sent.get("host") == "petstore.internal"


def test_header_ops_remove_first_then_add_or_append() -> None:
    ops = HeaderOps(
        request_add=(("x-set", "new", False), ("x-list", "b", True), ("x-fresh", "f", True)),
        request_remove=frozenset({"x-secret", "x-set"}),
    )
    sent = send(
        request("/", headers={"host": "h", "x-set": "old", "x-list": "a", "x-secret": "s"}), action(header_ops=ops)
    )
    assert sent.get("x-set") == "new" and sent.get("x-list") == "a,b" and sent.get("x-fresh") == "f"
    assert "x-secret" not in sent.names


def test_added_header_values_cannot_break_the_head() -> None:
    ops = HeaderOps(request_add=(("x-evil", "a\r\nx-injected: 1", False),))
    sent = send(request("/"), action(header_ops=ops))
    assert "x-injected" not in sent.names
    assert sent.get("x-evil") == "a  x-injected: 1"


def test_the_clients_headers_are_not_changed_by_a_rewrite() -> None:
    req = request("/petstore/1", headers={"host": "h", "x-secret": "s"})
    before = dict(req.headers)
    send(
        req,
        action(
            prefix_rewrite="/api/pets",
            host_rewrite="other",
            header_ops=HeaderOps(request_add=(("x-a", "1", False),), request_remove=frozenset({"x-secret"})),
        ),
        prefix("/petstore"),
    )
    assert req.headers == before


# ── REST function calls (Gloo's transformation) ──────────────────────────────

# The petstore's own swagger, as discovery reads it from a pod.
SWAGGER = swagger("v1")
FUNCTIONS = {name: function_from_transformation(name, t) for name, t in transformations_from_swagger(SWAGGER).items()}


def call(function: str, req: Request, parameters: dict[str, str] | None = None, matcher: Matcher = PREFIX_ROOT) -> Sent:
    rest = RestCall(function, tuple((h, compile_parameter(t)) for h, t in (parameters or {}).items()))
    return send(req, action(), matcher, rest, FUNCTIONS[function])


def test_function_path_is_rendered_from_a_path_parameter() -> None:
    sent = call(
        "findPetById",
        request("/findPetWithId/2", "POST", {"host": "h", "content-type": "text/plain"}, b"ignored", framed=True),
        {":path": "/findPetWithId/{id}"},
    )
    assert (sent.method, sent.target) == ("GET", "/api/pets/2")
    # No body parameter: the body is dropped and content-type removed (an empty template).
    assert sent.body == b"" and sent.get("content-length") is None and sent.get("content-type") is None


def test_function_variables_come_from_a_json_body_and_parameters_win() -> None:
    from_body = call("findPetById", request("/findPetById", "POST", {"host": "h"}, b'{"id": 3}'))
    assert from_body.target == "/api/pets/3"
    both = call(
        "findPetById",
        request("/findPetWithId/7", "POST", {"host": "h"}, b'{"id": 3}'),
        {":path": "/findPetWithId/{id}"},
    )
    assert both.target == "/api/pets/7"


def test_function_without_variables_renders_defaults() -> None:
    sent = call("findPets", request("/findPets?limit=99"))
    assert (sent.method, sent.target) == ("GET", "/api/pets?tags=&limit=")


def test_function_query_values_are_percent_encoded() -> None:
    sent = call("findPets", request("/findPets", "POST", {"host": "h"}, b'{"tags": "a b", "limit": 2}'))
    assert sent.target == "/api/pets?tags=a%20b&limit=2"


def test_function_with_a_body_parameter_passes_the_body_through() -> None:
    body = b'{"id": 3, "name": "Fish"}'
    sent = call("addPet", request("/addPet", "POST", {"host": "h", "content-type": "text/plain"}, body))
    assert (sent.method, sent.target) == ("POST", "/api/pets")
    assert sent.body == body and sent.get("content-length") == str(len(body))
    assert sent.get("content-type") == "application/json"


def test_function_that_does_not_match_its_parameter_leaves_the_variable_unset() -> None:
    sent = call("deletePet", request("/other/path", "GET", {"host": "h"}), {":path": "/deletePet/{id}"})
    assert (sent.method, sent.target) == ("DELETE", "/api/pets/")


def test_function_renders_method_authority_and_body_templates() -> None:
    fn = RestFunction(
        "custom",
        (
            (":method", " put "),
            (":authority", "{{ svc }}.internal"),
            ("x-pet", "{{ name }}"),
            (":path", "{{ nothing }}"),
        ),
        body='{"pet": "{{ name }}"}',
    )
    sent = send(
        request("/custom", "POST", {"host": "gw"}, b'{"name": "Fish", "svc": "store"}'),
        action(),
        PREFIX_ROOT,
        RestCall("custom"),
        fn,
    )
    assert (sent.method, sent.target) == ("PUT", "/")  # :path rendered empty is the root
    assert sent.get("host") == "store.internal" and sent.get("x-pet") == "Fish"
    assert sent.body == b'{"pet": "Fish"}' and sent.get("content-length") == str(len(sent.body))


# ── redirects ────────────────────────────────────────────────────────────────


def test_gloo_redirect_to_another_host_keeps_path_and_query() -> None:
    req = request("/pets?x=1", headers={"host": "gw.test:8080"})
    assert redirect_location(req, view(req), PREFIX_ROOT, Redirect(host="example.org")) == "http://example.org/pets?x=1"
    assert redirect_location(req, view(req), PREFIX_ROOT, Redirect(scheme="https")) == "https://gw.test:8080/pets?x=1"


def test_redirect_path_replaces_the_path_and_a_query_in_it_wins() -> None:
    req = request("/old?x=1")
    assert redirect_location(req, view(req), PREFIX_ROOT, Redirect(path="/new")) == "http://gw.test/new?x=1"
    assert redirect_location(req, view(req), PREFIX_ROOT, Redirect(path="/new?y=2")) == "http://gw.test/new?y=2"


def test_redirect_prefix_rewrite_keeps_the_query_once() -> None:
    req = request("/petstore/1?x=1")
    where = redirect_location(req, view(req), prefix("/petstore"), Redirect(prefix_rewrite="/api/pets"))
    assert where == "http://gw.test/api/pets/1?x=1"


@pytest.mark.parametrize(
    ("host", "redirect", "expected"),
    [
        ("gw.test:8080", Redirect(gateway_api=True, host="example.org"), "http://example.org:8080/p"),
        ("gw.test:8080", Redirect(gateway_api=True, scheme="https"), "https://gw.test/p"),
        ("gw.test:8080", Redirect(gateway_api=True, scheme="http"), "http://gw.test/p"),
        ("gw.test:8080", Redirect(gateway_api=True, scheme="https", port=8443), "https://gw.test:8443/p"),
        ("gw.test:8080", Redirect(gateway_api=True, port=80), "http://gw.test/p"),
        ("gw.test", Redirect(gateway_api=True), "http://gw.test/p"),
    ],
)
def test_gateway_api_redirect_port_rules(host: str, redirect: Redirect, expected: str) -> None:
    req = request("/p", headers={"host": host})
    assert redirect_location(req, view(req), PREFIX_ROOT, redirect) == expected


def test_redirect_location_cannot_break_the_head() -> None:
    req = request("/p")
    assert "\n" not in redirect_location(req, view(req), PREFIX_ROOT, Redirect(host="a\r\nset-cookie: x"))


# ── query parameters ─────────────────────────────────────────────────────────


def test_query_params_first_value_decoded_blank_kept() -> None:
    assert dict(query_params("a=1&a=2&b=&c=%20x%2F&d")) == {"a": "1", "b": "", "c": " x/", "d": ""}


def test_empty_query_is_an_empty_read_only_mapping() -> None:
    found = query_params("")
    assert dict(found) == {}
    with pytest.raises(TypeError):
        found["a"] = "1"  # type: ignore[index]
