"""HTTPRoute filters and backends as the route table's shapes (``gatewayapi.actions``):
RequestMirror (``percent``, ``fraction``, several), CORS, per-backendRef header
modifiers and mirrors, and the Service port's ``appProtocol``.

The cases follow the Gateway API v1.6.1 conformance suite (httproute-request-mirror,
-request-multiple-mirrors, -request-percentage-mirror, -cors,
-request-header-modifier-backend-weights, -backend-protocol-h2c/-websocket); the
data plane that serves these shapes is tested in the proxy's own tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from helpers.runtime.gatewayapi.actions import mirror_percent
from helpers.runtime.matching import RequestView
from helpers.runtime.routes import Cors, HeaderOps, RouteAction

from .test_translating_gatewayapi_status import INFRA, condition, http_route, port_table, run, service, to


def mirror(name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": name, "port": 8080}, **extra}}


def action(*rules: dict[str, Any], extra: tuple[dict[str, Any], ...] = ()) -> RouteAction:
    r = run(*extra, http_route("r", [{"name": "same-namespace"}], list(rules)))
    found = port_table(r).select(RequestView("GET", "example.com", "/", {}, {}))
    assert found is not None and isinstance(found[0].action, RouteAction)
    return found[0].action


def cluster(name: str) -> str:
    return f"kube-svc:{INFRA}-{name}-8080"


def test_request_mirrors_copy_to_each_backend() -> None:
    a = action({**to("infra-backend-v1"), "filters": [mirror("infra-backend-v2"), mirror("infra-backend-v3")]})
    assert [(m.destination.cluster, m.percent) for m in a.mirrors] == [
        (cluster("infra-backend-v2"), 100.0),
        (cluster("infra-backend-v3"), 100.0),
    ]
    assert a.destinations[0].destination.cluster == cluster("infra-backend-v1")


@pytest.mark.parametrize(
    ("spec", "percent"),
    [
        ({"percent": 20}, 20.0),
        ({"fraction": {"numerator": 1, "denominator": 2}}, 50.0),
        ({"fraction": {"numerator": 35}}, 35.0),  # denominator defaults to 100
        ({}, 100.0),
    ],
)
def test_mirror_percent_from_percent_or_fraction(spec: dict[str, Any], percent: float) -> None:
    assert mirror_percent(spec) == percent
    assert (
        action({**to("infra-backend-v1"), "filters": [mirror("infra-backend-v2", **spec)]}).mirrors[0].percent
        == percent
    )


def test_a_mirror_to_a_missing_service_is_dropped_and_reported() -> None:
    r = run(http_route("r", [{"name": "same-namespace"}], [{**to("infra-backend-v1"), "filters": [mirror("ghost")]}]))
    assert condition(r, "r", "ResolvedRefs") == ("False", "BackendNotFound")
    found = port_table(r).select(RequestView("GET", "h", "/", {}, {}))
    assert found is not None and isinstance(found[0].action, RouteAction) and found[0].action.mirrors == ()


def test_cors_filter_becomes_the_actions_cors_with_the_default_max_age() -> None:
    spec = {
        "allowOrigins": ["https://www.foo.com", "https://*.bar.com"],
        "allowMethods": ["GET", "OPTIONS"],
        "allowHeaders": ["x-header-1"],
        "exposeHeaders": ["x-header-3"],
        "allowCredentials": True,
    }
    a = action({**to("infra-backend-v1"), "filters": [{"type": "CORS", "cors": spec}]})
    assert a.cors == Cors(
        ("https://www.foo.com", "https://*.bar.com"), ("GET", "OPTIONS"), ("x-header-1",), ("x-header-3",), True, 5
    )
    assert action({**to("infra-backend-v1"), "filters": [{"type": "CORS", "cors": {"maxAge": 3600}}]}).cors == Cors(
        max_age=3600
    )


def test_backend_ref_filters_apply_to_their_backend_only() -> None:
    header = {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "Backend", "value": "v1"}]}}
    answer = {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"remove": ["X-Drop"]}}
    rule = {
        "backendRefs": [
            {"name": "infra-backend-v1", "port": 8080, "weight": 50, "filters": [header, answer]},
            {"name": "infra-backend-v2", "port": 8080, "weight": 50, "filters": [mirror("infra-backend-v3")]},
        ]
    }
    first, second = action(rule).destinations
    assert first.header_ops == HeaderOps(request_add=(("backend", "v1", False),), response_remove=frozenset({"x-drop"}))
    assert first.mirrors == () and second.header_ops is None
    assert [m.destination.cluster for m in second.mirrors] == [cluster("infra-backend-v3")]
    assert action(rule).header_ops is None  # nothing on the rule itself


@pytest.mark.parametrize(
    ("app_protocol", "protocol"), [("kubernetes.io/h2c", "h2c"), ("kubernetes.io/ws", "ws"), (None, "http")]
)
def test_the_service_ports_app_protocol_says_how_to_speak_to_it(app_protocol: str | None, protocol: str) -> None:
    svc = service("proto", **({"appProtocol": app_protocol} if app_protocol else {}))
    a = action(to("proto"), extra=(svc,))
    assert a.destinations[0].destination.protocol == protocol
