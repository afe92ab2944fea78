"""In-lab DNS: the service table and how a URL resolves through it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.runtime.routes import Endpoint
from helpers.runtime.servicedns import GLOO_GATEWAY, NoEndpoints, ServiceTable, build_table, load, resolve

SVC = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "tester", "namespace": "default"},
    "spec": {"selector": {"app": "tester"}, "ports": [{"port": 80, "targetPort": 8080}, {"port": 9090}]},
}


def table() -> dict[str, object]:
    endpoints = {("default", "tester", 80): (Endpoint("127.0.0.1", 4100), Endpoint("127.0.0.1", 4101))}
    return build_table([SVC], endpoints, {GLOO_GATEWAY: {80: 8080}})


def test_table_lists_service_ports_and_the_gateway() -> None:
    t = table()
    assert t == {
        "version": 1,
        "services": {
            "gateway-proxy.gloo-system": {"80": ["127.0.0.1:8080"]},
            "tester.default": {"80": ["127.0.0.1:4100", "127.0.0.1:4101"], "9090": []},
        },
    }


@pytest.mark.parametrize(
    "host", ["tester", "tester.default", "tester.default.svc", "tester.default.svc.cluster.local", "TESTER.default."]
)
def test_every_cluster_dns_form_resolves(host: str) -> None:
    url = resolve(f"http://{host}/gate/check?x=1", "default", table())
    assert url in ("http://127.0.0.1:4100/gate/check?x=1", "http://127.0.0.1:4101/gate/check?x=1")


def test_a_bare_name_is_in_the_callers_namespace() -> None:
    assert resolve("http://tester/", "test", table()) == "http://tester/"  # no tester.test


def test_endpoints_are_taken_in_turn() -> None:
    t = table()
    seen = {resolve("http://tester.default/", "default", t) for _ in range(4)}
    assert seen == {"http://127.0.0.1:4100/", "http://127.0.0.1:4101/"}


def test_the_gateway_and_other_names() -> None:
    t = table()
    assert resolve("http://gateway-proxy.gloo-system/api/pets", "default", t) == "http://127.0.0.1:8080/api/pets"
    assert resolve("https://example.com/x", "default", t) == "https://example.com/x"  # real DNS


def test_a_service_without_ready_endpoints_refuses() -> None:
    with pytest.raises(NoEndpoints, match=r"tester\.default has no ready endpoints for port 9090"):
        resolve("http://tester.default:9090/", "default", table())
    with pytest.raises(NoEndpoints, match="has no port 81"):
        resolve("http://tester.default:81/", "default", table())


def test_the_file_is_written_whole_and_only_on_change(tmp_path: Path) -> None:
    path = tmp_path / "services.json"
    kept = ServiceTable(path)
    kept.update(table())
    assert json.loads(path.read_text()) == table() == load(path)
    stamp = path.stat().st_mtime_ns
    kept.update(table())
    assert path.stat().st_mtime_ns == stamp
    assert load(tmp_path / "missing.json") == {"version": 1, "services": {}}
