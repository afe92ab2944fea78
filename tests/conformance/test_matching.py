"""HTTPRoute matching, ported from the Gateway API conformance suite (v1.6.1): paths,
headers, methods, query parameters, their precedence, and routes across namespaces.
One test per ``conformance/tests/httproute-*.go``; the manifests are ours, from its facts."""

from __future__ import annotations

from typing import Any

import pytest

from .base import INFRA, WEB
from .conftest import Suite
from .harness import Case, accepted, expect, resolved_refs

pytestmark = pytest.mark.integration
SAME = (INFRA, "same-namespace")
V1, V2, V3 = "infra-backend-v1", "infra-backend-v2", "infra-backend-v3"


def route(name: str, rules: str, ns: str = INFRA, parent: str = "{name: same-namespace}", extra: str = "") -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {ns}}}
spec:
  parentRefs: [{parent}]
  {extra}
  rules:
{rules}
"""


def to(*cases: tuple[str, str | None], **common: Any) -> list[Case]:
    """Cases for (path, backend): a backend answers 200 in the infra namespace, None is a 404."""
    return [
        Case(path, backend=b, namespace=INFRA, **common) if b else Case(path, status=(404,), **common)
        for path, b in cases
    ]


def test_simple_same_namespace(suite: Suite) -> None:
    suite.apply(route("gateway-conformance-infra-test", "  - backendRefs: [{name: infra-backend-v1, port: 8080}]"))
    gw = accepted(suite.lab, SAME, (INFRA, "gateway-conformance-infra-test"))
    resolved_refs(suite.lab, (INFRA, "gateway-conformance-infra-test"), SAME)
    expect(gw, [Case("/", backend=V1, namespace=INFRA)])


def test_cross_namespace(suite: Suite) -> None:
    suite.apply(
        route(
            "cross-namespace",
            "  - backendRefs: [{name: web-backend, port: 8080}]",
            ns=WEB,
            parent=f"{{name: backend-namespaces, namespace: {INFRA}}}",
        )
    )
    gw_ref = (INFRA, "backend-namespaces")
    gw = accepted(suite.lab, gw_ref, (WEB, "cross-namespace"))
    resolved_refs(suite.lab, (WEB, "cross-namespace"), gw_ref)
    expect(gw, [Case("/", backend="web-backend", namespace=WEB)])


def test_exact_path_matching(suite: Suite) -> None:
    suite.apply(
        route(
            "exact-matching",
            """  - matches: [{path: {type: Exact, value: /one}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: Exact, value: /two}}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]""",
        )
    )
    gw = accepted(suite.lab, SAME, (INFRA, "exact-matching"))
    resolved_refs(suite.lab, (INFRA, "exact-matching"), SAME)
    expect(gw, to(("/one", V1), ("/two", V2), ("/", None), ("/one/example", None), ("/two/", None), ("/Two", None)))


HEADER_RULES = """  - matches: [{headers: [{name: version, value: one}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{headers: [{name: version, value: two}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{headers: [{name: version, value: two}, {name: color, value: orange}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{headers: [{name: color, value: blue}]}, {headers: [{name: color, value: green}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{headers: [{name: color, value: red}]}, {headers: [{name: color, value: yellow}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]"""


def test_header_matching(suite: Suite) -> None:
    suite.apply(route("header-matching", HEADER_RULES))
    gw = accepted(suite.lab, SAME, (INFRA, "header-matching"))
    resolved_refs(suite.lab, (INFRA, "header-matching"), SAME)
    table: list[tuple[dict[str, str], str | None]] = [
        ({"Version": "one"}, V1),
        ({"Version": "two"}, V2),
        ({"Version": "two", "Color": "orange"}, V1),
        ({"Version": "two", "Color": "blue"}, V2),
        ({"Color": "orange"}, None),
        ({"Some-Other-Header": "one"}, None),
        ({"Color": "blue"}, V1),
        ({"Color": "green"}, V1),
        ({"Color": "red"}, V2),
        ({"Color": "yellow"}, V2),
        ({"Color": "purple"}, None),
    ]
    expect(gw, [to(("/", b), headers=h)[0] for h, b in table])


MATCHING_RULES = """  - matches: [{path: {type: PathPrefix, value: /}}, {headers: [{name: version, value: one}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /v2}}, {headers: [{name: version, value: two}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]"""


def test_matching(suite: Suite) -> None:
    suite.apply(route("matching", MATCHING_RULES))
    gw = accepted(suite.lab, SAME, (INFRA, "matching"))
    resolved_refs(suite.lab, (INFRA, "matching"), SAME)
    cases = to(("/", V1), ("/example", V1), ("/v2", V2), ("/v2/example", V2), ("/v2/", V2))
    cases += to(("/v2example", V1), ("/foo/v2/example", V1))
    cases += to(("/", V1), headers={"Version": "one"}) + to(("/", V2), headers={"Version": "two"})
    expect(gw, cases)


def test_matching_across_routes(suite: Suite) -> None:
    part1 = route(
        "matching-part1",
        """  - matches: [{path: {type: PathPrefix, value: /}}, {headers: [{name: version, value: one}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]""",
        extra="hostnames: [example.com, example.net]",
    )
    part2 = route(
        "matching-part2",
        """  - matches: [{path: {type: PathPrefix, value: /v2}}, {headers: [{name: version, value: two}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]""",
        extra="hostnames: [example.com]",
    )
    suite.apply(part1 + "---" + part2)
    gw = accepted(suite.lab, SAME, (INFRA, "matching-part1"), (INFRA, "matching-part2"))
    resolved_refs(suite.lab, (INFRA, "matching-part1"), SAME)
    resolved_refs(suite.lab, (INFRA, "matching-part2"), SAME)
    table: list[tuple[str, str, dict[str, str], str]] = [
        ("example.com", "/", {}, V1),
        ("example.com", "/example", {}, V1),
        ("example.net", "/example", {}, V1),
        ("example.com", "/example", {"Version": "one"}, V1),
        ("example.com", "/v2", {}, V2),
        ("example.net", "/v2", {}, V1),
        ("example.com", "/v2/example", {}, V2),
        ("example.com", "/", {"Version": "two"}, V2),
    ]
    expect(gw, [Case(p, host=h, headers=hd, backend=b, namespace=INFRA) for h, p, hd, b in table])


METHOD_RULES = """  - matches: [{method: POST}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{method: GET}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /path1}, method: GET}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{headers: [{name: version, value: one}], method: PUT}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /path2}, headers: [{name: version, value: two}], method: POST}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches:
    - {path: {type: PathPrefix, value: /path3}, method: PATCH}
    - {path: {type: PathPrefix, value: /path4}, headers: [{name: version, value: three}], method: DELETE}
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /path5}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{method: PATCH}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{headers: [{name: version, value: four}]}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]"""


def test_method_matching(suite: Suite) -> None:
    suite.apply(route("method-matching", METHOD_RULES))
    gw = accepted(suite.lab, SAME, (INFRA, "method-matching"))
    resolved_refs(suite.lab, (INFRA, "method-matching"), SAME)
    table: list[tuple[str, str, dict[str, str], str | None]] = [
        ("POST", "/", {}, V1),
        ("GET", "/", {}, V2),
        ("HEAD", "/", {}, None),
        ("GET", "/path1", {}, V1),
        ("PUT", "/", {"version": "one"}, V2),
        ("POST", "/path2", {"version": "two"}, V3),
        ("PATCH", "/path3", {}, V1),
        ("DELETE", "/path4", {"version": "three"}, V1),
        ("PUT", "/", {}, None),
        ("DELETE", "/path4", {}, None),
        ("PATCH", "/path5", {}, V1),
        ("PATCH", "/", {"version": "four"}, V2),
    ]
    expect(gw, [to((path, b), headers=h, method=m)[0] for m, path, h, b in table])


QUERY_RULES = """  - matches: [{queryParams: [{name: animal, value: whale}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{queryParams: [{name: animal, value: dolphin}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches:
    - queryParams: [{name: animal, value: dolphin}, {name: color, value: blue}]
    - queryParams: [{name: ANIMAL, value: Whale}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /path1}, queryParams: [{name: animal, value: whale}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{headers: [{name: version, value: one}], queryParams: [{name: animal, value: whale}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches:
    - path: {type: PathPrefix, value: /path2}
      headers: [{name: version, value: two}]
      queryParams: [{name: animal, value: whale}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches:
    - {path: {type: PathPrefix, value: /path3}, queryParams: [{name: animal, value: shark}]}
    - path: {type: PathPrefix, value: /path4}
      headers: [{name: version, value: three}]
      queryParams: [{name: animal, value: kraken}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /path5}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{queryParams: [{name: animal, value: hydra}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{headers: [{name: version, value: four}]}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]"""


def test_query_param_matching(suite: Suite) -> None:
    suite.apply(route("query-param-matching", QUERY_RULES))
    gw = accepted(suite.lab, SAME, (INFRA, "query-param-matching"))
    resolved_refs(suite.lab, (INFRA, "query-param-matching"), SAME)
    cases = to(
        ("/?animal=whale", V1),
        ("/?animal=dolphin", V2),
        ("/?animal=dolphin&color=blue", V3),
        ("/?ANIMAL=Whale", V3),
        ("/?animal=whale&otherparam=irrelevant", V1),
        ("/?animal=dolphin&color=yellow", V2),
        ("/?color=blue", None),
        ("/?animal=dog", None),
        ("/?animal=whaledolphin", None),
        ("/", None),
        ("/path1?animal=whale", V1),
    )
    cases += to(("/?animal=whale", V2), headers={"version": "one"})
    cases += to(("/path2?animal=whale", V3), headers={"version": "two"})
    cases += to(("/path3?animal=shark", V1))
    cases += to(("/path4?animal=kraken", V1), headers={"version": "three"})
    cases += to(("/?animal=shark", None), ("/path4?animal=kraken", None), ("/path5?animal=hydra", V1))
    cases += to(("/?animal=hydra", V3), headers={"version": "four"})
    expect(gw, cases)


def test_path_match_order(suite: Suite) -> None:
    rules = "\n".join(
        f"  - matches: [{{path: {{type: {kind}, value: {value}}}}}]\n    backendRefs: [{{name: {b}, port: 8080}}]"
        for kind, value, b in [
            ("Exact", "/match", V1),
            ("Exact", "/match/exact", V2),
            ("Exact", "/match/exact/one", V3),
            ("PathPrefix", "/match/", V3),
            ("PathPrefix", "/match/prefix/", V1),
            ("PathPrefix", "/match/prefix/one", V2),
        ]
    )
    suite.apply(route("path-matching-order", rules))
    gw = accepted(suite.lab, SAME, (INFRA, "path-matching-order"))
    resolved_refs(suite.lab, (INFRA, "path-matching-order"), SAME)
    expect(
        gw,
        to(
            ("/match/exact/one", V3),
            ("/match/exact", V2),
            ("/match", V1),
            ("/match/prefix/one/any", V2),
            ("/match/prefix/any", V1),
            ("/match/any", V3),
        ),
    )


def test_named_rule(suite: Suite) -> None:
    suite.apply(
        route(
            "http-named-rules",
            """  - name: named-rule
    matches: [{path: {type: PathPrefix, value: /named}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /unnamed}}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]""",
        )
    )
    gw = accepted(suite.lab, SAME, (INFRA, "http-named-rules"))
    resolved_refs(suite.lab, (INFRA, "http-named-rules"), SAME)
    expect(gw, [Case("/named", namespace=INFRA), Case("/unnamed", namespace=INFRA)])


def test_omitted_backendrefs(suite: Suite) -> None:
    suite.apply(
        route(
            "omitted-backendrefs",
            """  - matches: [{path: {type: Exact, value: /omitted-no-forward}}]
  - matches: [{path: {type: Exact, value: /empty-no-forward}}]
    backendRefs: []
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]""",
        )
    )
    gw = accepted(suite.lab, SAME, (INFRA, "omitted-backendrefs"))
    resolved_refs(suite.lab, (INFRA, "omitted-backendrefs"), SAME)
    expect(
        gw,
        [
            Case("/forward", backend=V1, namespace=INFRA),
            Case("/omitted-no-forward", status=(500,)),
            Case("/empty-no-forward", status=(500,)),
        ],
    )
