"""Issue 12, "a regex freezes the lab": every regex is RE2's, as Envoy's.

A pattern that backtracks exponentially in Python's ``re`` (``(a+)+$``) is matched in
linear time, through a real proxy on 127.0.0.1; what RE2 refuses (backreferences,
look-around, a program over Envoy's size limit) is refused at validation, naming the
field; and no runtime module imports ``re`` at all.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

import pytest

from helpers.runtime import regex
from helpers.runtime.gatewayapi import schema as gatewayapi_schema
from helpers.runtime.gloo.translating import translate, validate
from helpers.runtime.proxy.proxying import GatewayProxy

from .test_proxying import fetch

RUNTIME = Path(__file__).resolve().parents[1] / "helpers" / "runtime"
# With Python's re, fullmatch of "a" * 40 + "b" against this takes longer than the
# age of the universe (about 4x per two more characters; 6.5 s at 29 bytes).
EVIL = "(a+)+$"
EVIL_INPUT = "a" * 40 + "b"


def vs(matcher: dict[str, Any], body: str = "matched") -> dict[str, Any]:
    return {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "evil", "namespace": "gloo-system"},
        "spec": {
            "virtualHost": {
                "domains": ["*"],
                "routes": [{"matchers": [matcher], "directResponseAction": {"status": 200, "body": body}}],
            }
        },
    }


def test_no_runtime_module_imports_python_re() -> None:
    offenders = []
    for path in sorted(RUNTIME.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module == "re":
                names = ["re"]
            if "re" in names:
                offenders.append(str(path.relative_to(RUNTIME)))
    assert offenders == []


@pytest.mark.timeout(30)  # a deadline: Python's re would never finish
def test_an_exponential_pattern_is_matched_in_linear_time() -> None:
    pattern = regex.user_pattern(EVIL)
    assert pattern.fullmatch(EVIL_INPUT) is None
    assert pattern.fullmatch("a" * 100_000) is not None
    assert pattern.fullmatch("a" * 100_000 + "b") is None


@pytest.mark.timeout(60)
def test_the_gateway_answers_an_evil_header_at_once(run: Any) -> None:
    """The seed's header matcher with ``regex: true``, a hostile value: the proxy
    answers (no match: 404; a match: 200) and keeps answering."""
    route = vs({"prefix": "/", "headers": [{"name": "x-canary", "value": EVIL, "regex": True}]})
    assert validate(route) == []
    table, reports = translate([route], {})
    assert reports[("VirtualService", "gloo-system", "evil")].errors == []

    async def scenario() -> list[int]:
        proxy = GatewayProxy(table)
        port = await proxy.start("127.0.0.1", 0)
        try:
            statuses = []
            for value in (EVIL_INPUT, "a" * 29, EVIL_INPUT * 100):
                response = await fetch(port, "/", headers={"x-canary": value})
                statuses.append(response.status)
            return statuses
        finally:
            await proxy.stop()

    assert run(asyncio.wait_for(scenario(), 20)) == [404, 200, 404]


@pytest.mark.parametrize(
    "pattern, why",
    [
        (r"(a)\1", "invalid escape sequence"),  # a backreference
        (r"/pets(?=/)", "invalid perl operator"),  # look-ahead
        (r"/pets(?<!x)", "invalid perl operator"),  # look-behind
        ("(" * 3, "missing )"),
        ("a{1000}", "program size"),  # over Envoy's re2.max_program_size.error_level (100)
    ],
)
def test_what_re2_refuses_is_refused_naming_the_field(pattern: str, why: str) -> None:
    header = vs({"prefix": "/", "headers": [{"name": "x", "value": pattern, "regex": True}]})
    [problem] = validate(header)
    assert problem.startswith("spec.virtualHost.routes[0].matchers[0].headers[0].value: invalid regex")
    assert why in problem
    path = vs({"regex": pattern})
    [problem] = validate(path)
    assert problem.startswith("spec.virtualHost.routes[0].matchers[0].regex: invalid regex") and why in problem
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "default"},
        "spec": {
            "parentRefs": [{"name": "http", "namespace": "kgateway-system"}],
            "rules": [{"matches": [{"path": {"type": "RegularExpression", "value": pattern}}]}],
        },
    }
    problems = gatewayapi_schema.validate(route)
    assert any(p.startswith("spec.rules[0].matches[0].path.value: invalid regular expression") for p in problems)
    assert any(why in p for p in problems)


def test_case_insensitive_paths_and_rest_templates_are_re2_too() -> None:
    assert regex.user_pattern("/Pets/[0-9]+", case_sensitive=False).fullmatch("/pets/12") is not None
    table, _ = translate([vs({"regex": "/PETS/[0-9]+", "caseSensitive": False})], {})
    [route] = table.virtual_hosts[0].routes
    pattern = route.matchers[0].path.pattern
    assert pattern is not None and pattern.fullmatch("/pets/7") is not None
    assert type(pattern).__module__ == "re2"
