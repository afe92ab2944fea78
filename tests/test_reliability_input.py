"""Issue 12: bad input gets one clear line, never a traceback, and refuses at apply
what would only fail later (a spinning supervisor, a stalled gateway).

Reading (``load_manifests``): dates, ``!!binary``, ``!!set``, deep nesting, alias
bombs, an empty input, a List of non-objects, a file that is not UTF-8. Applying
(``apiserver.check_object``): the API server's own checks on pod templates and
ConfigMaps, and the 1 MiB / 100-level limits on every object. The CLI turns each
into one line and exit code 1.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import pytest

from helpers.cli import main
from helpers.errors import ManifestError
from helpers.loading import load_manifests
from helpers.runtime import apiserver

# 314 bytes of YAML whose aliases expand to 9**9 (387 million) values.
BOMB = "kind: ConfigMap\na: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
)


def configmap(data: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data or {}, **extra}


def deployment(**container: Any) -> dict[str, Any]:
    c = {"name": "c", "image": "python:3.12-slim", "command": ["python", "/app/x.py"], **container}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [c]}},
        },
    }


def with_pod(dep: dict[str, Any], **pod: Any) -> dict[str, Any]:
    dep = copy.deepcopy(dep)
    dep["spec"]["template"]["spec"].update(pod)
    return dep


# ── reading ──────────────────────────────────────────────────────────────────


def test_a_date_stays_the_string_it_was_written_as() -> None:
    [obj] = load_manifests(["kind: ConfigMap\ndata:\n  when: 2020-01-01\n  at: 2001-12-14t21:59:43.10-05:00\n"])
    assert obj["data"] == {"when": "2020-01-01", "at": "2001-12-14t21:59:43.10-05:00"}


@pytest.mark.parametrize(
    "text, said",
    [
        ("kind: A\nb: !!binary aGVsbG8=\n", "line 2, column 4: !!binary is not a JSON value"),
        ("kind: A\ns: !!set {a, b}\n", "line 2, column 4: !!set is not a JSON value: write a list"),
        ("kind: A\nx: .nan\n", 'line 2, column 4: ".nan" is not a number JSON can hold'),
        ("kind: A\nx: " + "[" * 300 + "]" * 300 + "\n", "nested more than 100 levels deep"),
        ("kind: A\nx:\n" + "".join("  " * i + "- \n" for i in range(1, 300)), "nested more than 100 levels deep"),
        (BOMB, "document contains excessive aliasing"),
        ("kind: A\nx: &a [*a]\n", "an anchor contains an alias of itself"),
        ("kind: List\nitems:\n- kind: X\n- 3\n", "items[1] of the List is not an object"),
        ("# only a comment\n", "no objects found (<text>): the input is empty"),
        ("---\n---\n", "no objects found"),
    ],
)
def test_what_kubectl_would_not_read_is_one_line_naming_the_place(text: str, said: str) -> None:
    with pytest.raises(ManifestError) as refused:
        load_manifests([text])
    message = str(refused.value)
    assert said in message and message.endswith("nothing was applied")
    assert "\n" not in message and "Traceback" not in message


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("kind: ConfigMap\ndata: {a: caf\xe9}\n".encode("latin-1"))
    with pytest.raises(ManifestError, match=r"latin1\.yaml: byte 29 is not UTF-8"):
        load_manifests([bad])


def test_a_dict_json_cannot_carry_is_refused_before_it_travels() -> None:
    with pytest.raises(ManifestError, match="a value JSON cannot carry"):
        load_manifests([{"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": {1, 2}}}])


@pytest.mark.parametrize(
    "stdin, said",
    [
        ("kind: ConfigMap\nwhen: !!set {a}\n", "!!set is not a JSON value"),
        ("", "no objects found (<stdin>)"),
        (BOMB, "document contains excessive aliasing"),
    ],
)
def test_the_cli_says_one_line_and_exits_1(
    stdin: str, said: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(["--home", str(tmp_path / "no-lab"), "apply", "-f", "-"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and said in err and "Traceback" not in err


# ── applying: the API server's checks ────────────────────────────────────────


@pytest.mark.parametrize(
    "obj, said",
    [
        (deployment(env=[{"value": "x"}]), "spec.template.spec.containers[0].env[0].name is required"),
        (deployment(env=[{"name": "A=B", "value": "x"}]), 'env[0].name "A=B" is invalid'),
        (deployment(env=[{"name": "PORT_NUMBER", "value": 8080}]), 'env[0].value must be a string (quote it: "8080")'),
        (deployment(ports=[{"containerPort": 0}]), "ports[0].containerPort must be a number from 1 to 65535"),
        (deployment(ports=[{"containerPort": 70000}]), "ports[0].containerPort must be a number from 1 to 65535"),
        (deployment(readinessProbe={"periodSeconds": -1}), "readinessProbe.periodSeconds must be a whole number >= 0"),
        (deployment(readinessProbe={"periodSeconds": "10s"}), "readinessProbe.periodSeconds must be a whole number"),
        (deployment(livenessProbe={"httpGet": {"port": 0}}), "livenessProbe.httpGet.port must be a port number"),
        (deployment(volumeMounts=[{"name": "app", "mountPath": "/app"}]), 'volumeMounts[0].name: Not found: "app"'),
        (
            with_pod(deployment(), volumes=[{"name": "root", "hostPath": {"path": "/"}}]),
            "volumes[0].hostPath: volumes from the host are forbidden",
        ),
        (
            with_pod(deployment(), volumes=[{"name": "app", "configMap": {"name": "c", "items": [{"key": "a"}]}}]),
            "configMap.items[0].path is required",
        ),
        (
            with_pod(
                deployment(),
                volumes=[{"name": "app", "configMap": {"name": "c", "items": [{"key": "a", "path": "../../x"}]}}],
            ),
            'items[0].path "../../x" must be a relative path without ".." elements',
        ),
        (configmap({"a\x00b": "x"}), "is invalid: use letters, digits"),
        (configmap({"a": "1", "a/b": "2"}), 'key "a/b" is invalid'),
        (configmap({"..": "x"}), 'key ".." is invalid'),
        (configmap({"big": "x" * (1024 * 1024)}), "bytes as JSON: at most 1,048,576 (1 MiB) are accepted"),
        (configmap({"a": "1"}, binaryData={"a": "MQ=="}), 'key "a" is also in data'),
    ],
)
def test_the_api_servers_refusals(obj: dict[str, Any], said: str) -> None:
    problems = apiserver.check_object(obj)
    assert any(said in p for p in problems), problems


def test_every_object_is_at_most_1_mib_and_100_levels() -> None:
    routes = [{"matchers": [{"prefix": f"/r{i}"}], "directResponseAction": {"status": 200}} for i in range(100_000)]
    vs = {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "huge", "namespace": "gloo-system"},
        "spec": {"virtualHost": {"domains": ["*"], "routes": routes}},
    }
    [problem] = apiserver.check_object(vs)
    assert "bytes as JSON: at most 1,048,576 (1 MiB) are accepted" in problem
    deep: dict[str, Any] = configmap()
    inner = deep
    for _ in range(5000):  # deeper than Python's recursion limit: checked without recursion
        inner["x"] = {}
        inner = inner["x"]
    [problem] = apiserver.check_object(deep)
    assert "nested more than 100 levels deep: at most 100 are accepted" in problem


def test_the_lab_manifests_pass() -> None:
    for obj in load_manifests([Path(__file__).resolve().parents[1] / "manifests"]):
        assert apiserver.check_object(obj) == [], obj["metadata"]["name"]
