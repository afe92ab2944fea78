"""The load tester (helpers/apps/loadtester.py) without sockets: the hey parser, Flagger's
loadtester API (answers, gates, refusals), the lab's service table, and the manifests
that ship it (manifests/flagger/)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers.apps import loadtester
from helpers.apps.loadtester import HeyError, Loadtester, ServiceTable, parse_duration, parse_hey

ROOT = Path(__file__).resolve().parents[1]
FLAGGER = ROOT / "manifests" / "flagger"
URL = "http://petstore-canary.default/api/pets"


def payload(metadata: dict[str, Any] | None = None, name: str = "petstore", namespace: str = "default") -> bytes:
    body: dict[str, Any] = {"name": name, "namespace": namespace, "phase": "Progressing"}
    if metadata is not None:
        body["metadata"] = metadata
    return json.dumps(body).encode()


# --- hey commands ---------------------------------------------------------------------


def test_a_flagger_docs_command_is_understood() -> None:
    hey = parse_hey(f"hey -z 1m -q 10 -c 2 {URL}")
    assert (hey.duration_s, hey.qps, hey.workers, hey.rate) == (60.0, 10.0, 2, 20.0)
    assert (hey.method, hey.host, hey.port, hey.target, hey.timeout_s) == (
        "GET",
        "petstore-canary.default",
        80,
        "/api/pets",
        20.0,
    )
    assert hey.request_bytes() == (
        b"GET /api/pets HTTP/1.1\r\nHost: petstore-canary.default\r\n"
        b"Content-Type: text/html\r\nUser-Agent: hey/0.0.1\r\n\r\n"
    )


def test_every_supported_flag() -> None:
    hey = parse_hey(
        "/usr/local/bin/hey --z=1m30s -q 2.5 -c 4 -m post -H 'x-canary: true' -H 'User-Agent: flagger' "
        '-host shop.example -t 0 -d \'{"name": "Rex"}\' -T application/json -A application/json '
        "-a user:pw -disable-compression -disable-redirects -disable-keepalive -cpus 2 "
        "http://gateway-proxy.gloo-system:8080/api/pets?limit=1"
    )
    assert (hey.duration_s, hey.rate, hey.method, hey.port, hey.timeout_s) == (90.0, 10.0, "POST", 8080, None)
    assert hey.keep_alive is False
    assert hey.request_bytes() == (
        b"POST /api/pets?limit=1 HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/json\r\n"
        b"Accept: application/json\r\nAuthorization: Basic dXNlcjpwdw==\r\nx-canary: true\r\n"
        b"User-Agent: flagger hey/0.0.1\r\nContent-Length: 15\r\nConnection: close\r\n\r\n"
        b'{"name": "Rex"}'
    )


def test_non_ascii_is_sent_as_go_sends_it() -> None:
    hey = parse_hey("hey -z 1s -q 1 -H 'x-pet: Café' http://petstore/api/pets/Café?tag=é")
    assert hey.target == "/api/pets/Caf%C3%A9?tag=%C3%A9"
    assert "x-pet: Café".encode() in hey.request_bytes()
    with pytest.raises(HeyError, match="characters that cannot be sent"):
        parse_hey("hey -z 1s -q 1 -H 'x-pet: \ud800' http://petstore/")


def test_hey_defaults_to_fifty_workers() -> None:
    # hey's -q is per worker and -c defaults to 50: -q 2 alone is 100 requests a second.
    assert parse_hey(f"hey -z 10s -q 2 {URL}").rate == 100.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("1m", 60.0), ("1m30s", 90.0), ("1.5s", 1.5), ("500ms", 0.5), ("1h", 3600.0), ("0", 0.0)],
)
def test_durations_read_as_go_does(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "30", "s", "1x", "1m 30s", "ten seconds"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("cmd", "message"),
    [
        (f"curl -s {URL}", "'curl' is not run by the local load tester: it runs hey commands only"),
        ("bash -c 'hey -z 1s -q 1 -c 1 http://x/'", "'bash' is not run"),
        (f"hey -z 1s -q 1 -c 1 {URL}; rm -rf /", "';': the local load tester runs one hey command, without a shell"),
        (f"hey -z 1s -q 1 -c 1 {URL} | tee out", "'|'"),
        (f"hey -z $DURATION -q 1 -c 1 {URL}", "$variables and `commands` are not expanded"),
        (f"hey -n 200 -c 2 {URL}", "hey flag -n: a request count is not supported: give a duration with -z"),
        (f"hey -z 1s -q 1 -h2 {URL}", "hey flag -h2: HTTP/2 is not supported"),
        (f"hey -z 1s -q 1 -o csv {URL}", "hey flag -o"),
        (
            f"hey -z 1s -q 1 -foo 1 {URL}",
            "hey flag -foo is not supported by the local load tester (it understands -z, -q",
        ),
        (f"hey -q 1 -c 1 {URL}", "-z is required"),
        (f"hey -z 1s -c 1 {URL}", "-q is required"),
        (f"hey -z soon -q 1 {URL}", "-z 'soon' is not a duration"),
        (f"hey -z 2h -q 1 {URL}", "-z 2h must be longer than 0s and at most 1h"),
        (f"hey -z 0s -q 1 {URL}", "-z 0s must be longer than 0s"),
        (f"hey -z 1s -q 0 {URL}", "-q 0 must be more than 0"),
        (f"hey -z 1s -q many {URL}", "-q 'many' is not a number"),
        (f"hey -z 1s -q 1 -c 0 {URL}", "-c 0: -c cannot be smaller than 1"),
        (f"hey -z 1s -q 1 -c two {URL}", "-c 'two' is not a whole number"),
        (
            f"hey -z 1s -q 100 -c 50 {URL}",
            "-q 100 x -c 50 = 5000 requests a second: the local load tester sends at most",
        ),
        (f"hey -z 1s -q 1 -t -1 {URL}", "-t -1: -t is whole seconds"),
        (f"hey -z 1s -q 1 -m 'GE T' {URL}", "is not an HTTP method"),
        ("hey -z 1s -q 1 https://petstore.default/", "https is not supported by the local load tester: use http://"),
        ("hey -z 1s -q 1 ftp://petstore.default/", "must be http://HOST[:PORT]/PATH"),
        ("hey -z 1s -q 1 http://petstore.default:99999/", "has an invalid port"),
        ("hey -z 1s -q 1 http://u:p@petstore.default/", "use -a user:password"),
        ("hey -z 1s -q 1 -c 1", "hey needs a URL after its flags"),
        (f"hey {URL} -z 1s", "hey reads its flags before the URL"),
        (f"hey -z 1s -q 1 -H nocolon {URL}", "-H 'nocolon' is not a header: write -H 'Name: value'"),
        (f"hey -z 1s -q 1 -H 'Host: shop' {URL}", "set the Host header with -host NAME"),
        (f"hey -z 1s -q 1 -H 'Content-Length: 3' {URL}", "the load tester sets this header itself"),
        (f"hey -z 1s -q 1 -a nopassword {URL}", "-a must be user:password"),
        (f"hey -z 1s -q 1 -disable-keepalive=maybe {URL}", "a boolean flag takes true or false"),
        (f"hey -z 1s -q 1 -c {URL}", "is not a whole number"),
        ("hey -z 1s -q", "flag needs an argument: -q"),
        ("hey -z 1s -q 1 'http://x/", "cannot split the command into words"),
        ("", "metadata.cmd is empty"),
        (f"hey ---z 1s {URL}", "bad flag syntax: ---z"),
    ],
)
def test_refused_commands_say_why(cmd: str, message: str) -> None:
    with pytest.raises(HeyError) as refused:
        parse_hey(cmd)
    assert message in str(refused.value)


# --- the API: answers, refusals and gates ----------------------------------------------


@pytest.fixture
def app() -> Loadtester:
    return Loadtester(ServiceTable(None, "default"))


def test_health_approve_and_halt(app: Loadtester) -> None:
    assert app.answer("/healthz", b"") == (200, "OK")
    assert app.answer("/gate/approve", b"") == (200, "OK")
    assert app.answer("/gate/halt", payload()) == (403, "Forbidden")


def test_gates_start_closed_and_are_keyed_by_canary(app: Loadtester) -> None:
    assert app.answer("/gate/check", payload()) == (403, "Forbidden")
    assert app.answer("/gate/open", payload()) == (202, "")
    assert app.answer("/gate/check", payload()) == (200, "Approved")
    assert app.answer("/gate/check", payload(namespace="test")) == (403, "Forbidden")  # another canary
    assert app.answer("/rollback/check", payload()) == (403, "Forbidden")  # the rollback gate is separate
    assert app.answer("/gate/close", payload()) == (202, "")
    assert app.answer("/gate/check", payload()) == (403, "Forbidden")


def test_the_rollback_gate(app: Loadtester) -> None:
    assert app.answer("/rollback/open", payload()) == (202, "")
    assert app.answer("/rollback/check", payload()) == (200, "Approved")
    assert app.answer("/gate/check", payload()) == (403, "Forbidden")
    assert app.answer("/rollback/close", payload()) == (202, "")
    assert app.answer("/rollback/check", payload()) == (403, "Forbidden")
    assert app.gates.state == {"rollback.petstore.default": False, "petstore.default": False}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/", payload(), "metadata not found in payload"),
        ("/", payload({}), "metadata not found in payload"),
        ("/", payload({"type": "bash", "cmd": "bats /tests"}), "task type bash is not run by the local load tester"),
        ("/", payload({"type": "helmv3", "cmd": "test podinfo"}), "task type helmv3 is not run"),
        ("/", payload({"type": "grpc", "cmd": "ghz x"}), "unknown task type grpc"),
        ("/", payload({"logCmdOutput": "true"}), "cmd not found in metadata"),
        ("/", payload({"cmd": f"curl {URL}"}), "'curl' is not run by the local load tester"),
        (
            "/",
            payload({"cmd": f"hey -z 1s -q 1 -c 1 {URL}", "logCmdOutput": True}),
            "metadata.logCmdOutput must be a string",
        ),
        ("/", b"not json", "the body must be JSON"),
        ("/", b"[1, 2]", "the body must be a JSON object"),
        ("/gate/open", b'{"name": 7}', "name must be a string"),
        ("/gate/check", b"", "the body must be JSON"),
        ("/", b'{"metadata": ["cmd"]}', "metadata must be an object"),
    ],
)
def test_refusals_are_400_with_a_message(app: Loadtester, path: str, body: bytes, message: str) -> None:
    status, text = app.answer(path, body)
    assert status == 400 and message in text
    assert app.running == {}


def test_the_same_command_runs_once_per_canary(app: Loadtester, capsys: pytest.CaptureFixture[str]) -> None:
    cmd = "hey -z 30s -q 1 -c 1 http://127.0.0.1:9/"  # the discard port: nothing needs to answer

    async def scenario() -> None:
        assert app.answer("/", payload({"cmd": cmd})) == (202, "")
        assert app.answer("/", payload({"cmd": cmd})) == (202, "")  # Flagger answers 202 and skips it
        assert app.answer("/", payload({"cmd": cmd}, name="other")) == (202, "")
        assert sorted(app.running) == [f"other.default {cmd}", f"petstore.default {cmd}"]
        tasks = list(app.running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert app.running == {}

    asyncio.run(scenario())
    out = capsys.readouterr().out
    assert f"petstore.default command skipped {cmd} is already running" in out
    assert out.count("command skipped") == 1


def test_webhook_payload_decoding() -> None:
    assert loadtester.decode_payload(b"null") == (".", {})  # Go decodes null into an empty payload
    assert loadtester.decode_payload(b'{"name": "a", "namespace": "b", "metadata": {"x": null}}') == ("a.b", {"x": ""})


def test_latency_percentiles_are_within_one_percent() -> None:
    latencies = loadtester.Latencies()
    for ms in range(1, 101):
        latencies.add(ms / 1000)
    assert latencies.percentile(50) == pytest.approx(50, rel=0.01)
    assert latencies.percentile(99) == pytest.approx(99, rel=0.01)
    assert loadtester.Latencies().percentile(50) is None


def test_summary_line() -> None:
    stats = loadtester.Stats()
    stats.sent, stats.skipped = 3, 1
    stats.statuses.update([200, 200])
    stats.errors["connection refused"] += 1
    stats.latencies.add(0.002)
    stats.latencies.add(0.004)
    line = stats.summary(1.0)
    assert line.startswith(
        "summary: 3 requests in 1.0s, responses 2 (200: 2), errors 1 (connection refused: 1), skipped 1, p50 2.0 ms"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"), [("PORT", "http", "PORT='http'"), ("POD_NAMESPACE", "Not_A_Name", "POD_NAMESPACE")]
)
def test_bad_settings_are_named(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        loadtester.load_settings({name: value})


def test_settings_defaults() -> None:
    assert loadtester.load_settings({}) == ("0.0.0.0", 8080, None, "default")


# --- names through the lab's service table ------------------------------------------------


def write_services(path: Path, services: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": 1, "services": services}))
    os.replace(tmp, path)  # atomic, as the control plane writes it


@pytest.fixture
def services(tmp_path: Path) -> tuple[ServiceTable, Path]:
    path = tmp_path / "services.json"
    write_services(
        path,
        {
            "petstore.default": {"80": ["127.0.0.1:40001", "127.0.0.1:40002"]},
            "gateway-proxy.gloo-system": {"80": ["127.0.0.1:8080"]},
            "empty.default": {"80": []},
        },
    )
    return ServiceTable(str(path), "default"), path


@pytest.mark.parametrize(
    "host",
    ["gateway-proxy.gloo-system", "gateway-proxy.gloo-system.svc", "gateway-proxy.gloo-system.svc.cluster.local"],
)
def test_service_names_resolve_as_cluster_dns(services: tuple[ServiceTable, Path], host: str) -> None:
    table, _ = services
    assert table.resolve(host, 80) == ("127.0.0.1", 8080)
    assert table.resolve(host.upper() + ".", 80) == ("127.0.0.1", 8080)


def test_a_bare_name_is_in_the_pods_namespace(tmp_path: Path, services: tuple[ServiceTable, Path]) -> None:
    table, path = services
    assert table.resolve("petstore", 80) == ("127.0.0.1", 40001)
    elsewhere = ServiceTable(str(path), "gloo-system")
    assert elsewhere.resolve("gateway-proxy", 80) == ("127.0.0.1", 8080)
    assert elsewhere.resolve("petstore", 80) == ("petstore", 80)  # no petstore in gloo-system: real DNS


def test_endpoints_take_turns(services: tuple[ServiceTable, Path]) -> None:
    table, _ = services
    picked = [table.resolve("petstore.default", 80)[1] for _ in range(4)]
    assert picked == [40001, 40002, 40001, 40002]


def test_other_names_are_left_to_real_dns(services: tuple[ServiceTable, Path]) -> None:
    table, _ = services
    assert table.resolve("example.com", 80) == ("example.com", 80)
    assert table.resolve("a.b.c", 81) == ("a.b.c", 81)
    assert table.resolve("127.0.0.1", 5000) == ("127.0.0.1", 5000)
    assert ServiceTable(None, "default").resolve("petstore", 80) == ("petstore", 80)  # on a cluster


def test_a_service_without_endpoints_on_the_port_fails(services: tuple[ServiceTable, Path]) -> None:
    table, _ = services
    with pytest.raises(LookupError, match=re.escape("service petstore.default has no ready endpoint on port 8080")):
        table.resolve("petstore", 8080)
    with pytest.raises(LookupError, match=re.escape("service empty.default has no ready endpoint on port 80")):
        table.resolve("empty", 80)


def test_the_table_is_reread_when_the_file_changes(services: tuple[ServiceTable, Path]) -> None:
    table, path = services
    assert table.resolve("petstore", 80) == ("127.0.0.1", 40001)
    write_services(path, {"petstore.default": {"80": ["127.0.0.1:40009"]}})
    assert table.resolve("petstore", 80) == ("127.0.0.1", 40009)
    path.write_text('{"version": 1, "serv')  # a torn file keeps the last good table
    assert table.resolve("petstore", 80) == ("127.0.0.1", 40009)
    path.unlink()  # no file: no Services
    assert table.resolve("petstore", 80) == ("petstore", 80)


# --- the manifests --------------------------------------------------------------------------


def documents(name: str) -> dict[str, dict[str, Any]]:
    with (FLAGGER / name).open(encoding="utf-8") as f:
        return {doc["kind"]: doc for doc in yaml.safe_load_all(f) if doc}


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_the_loadtester_manifest() -> None:
    docs = documents("loadtester.yaml")
    assert sorted(docs) == ["ConfigMap", "Deployment", "Service"]
    source = (ROOT / "helpers" / "apps" / "loadtester.py").read_bytes().decode("utf-8")
    assert docs["ConfigMap"]["metadata"]["name"] == "flagger-loadtester-app"
    assert docs["ConfigMap"]["data"] == {"loadtester.py": source}
    service = docs["Service"]
    assert service["metadata"]["name"] == "flagger-loadtester"
    assert service["spec"]["selector"] == {"app": "flagger-loadtester"}
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
    deployment = docs["Deployment"]
    assert deployment["metadata"]["name"] == "flagger-loadtester"
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "/app/loadtester.py"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_the_flagger_petstore_has_no_service() -> None:
    docs = documents("petstore.yaml")
    assert sorted(docs) == ["ConfigMap", "Deployment"]  # Flagger makes the Services
    assert docs["ConfigMap"]["metadata"]["name"] == "petstore-app"
    deployment = docs["Deployment"]
    assert deployment["metadata"]["name"] == "petstore"
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "petstore"}}
    assert env_of(deployment) == {"VERSION": "v1", "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.mark.parametrize(
    ("name", "env"),
    [
        ("rollout-good.yaml", {"VERSION": "v2"}),
        ("rollout-bad.yaml", {"VERSION": "v3", "ERROR_RATE": "0.3"}),
        ("rollout-slow.yaml", {"VERSION": "v3", "LATENCY_MS": "1000"}),
    ],
)
def test_rollouts_change_only_the_env(name: str, env: dict[str, str]) -> None:
    [rollout] = documents(name).values()
    assert env_of(rollout) == {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    original = documents("petstore.yaml")["Deployment"]
    for deployment in (rollout, original):
        deployment["spec"]["template"]["spec"]["containers"][0].pop("env")
    assert rollout == original
