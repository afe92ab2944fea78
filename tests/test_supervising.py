"""Deployments as real processes: the pod supervisor (``supervising``) and one pod's
preparation and probe (``pods``).

The container of every Deployment here is a tiny stdlib HTTP server (``SERVER``)
kept in a ConfigMap mounted at /app, run as ``python /app/server.py``; it answers
``/healthz`` (503 while its ``READY_FILE`` is missing, when it has one) and, on any
other path, its pid, environment and argv as JSON. Each test waits on conditions
with a deadline and closes the supervisor it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import signal
import socket
import string
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from helpers.runtime.pods import NotYet, Pod, PodSpecError, free_port, prepare, probe_once, template_hash
from helpers.runtime.routes import Endpoint
from helpers.runtime.supervising import Supervisor
from tests.conftest import until as until_polled

T = TypeVar("T")
DEADLINE_S = 10.0

SERVER = """\
import http.server, json, os, signal, sys

if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.environ.get("EXIT_CODE"):
    sys.exit(int(os.environ["EXIT_CODE"]))
READY_FILE = os.environ.get("READY_FILE")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            ready = not READY_FILE or os.path.exists(READY_FILE)
            status, body = (200 if ready else 503), b"ok"
        else:
            status = 200
            body = json.dumps({"pid": os.getpid(), "env": dict(os.environ), "argv": sys.argv}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler).serve_forever()
"""

CONFIGMAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "web-app", "namespace": "default"},
    "data": {"server.py": SERVER},
}


def deployment(
    name: str = "web", replicas: int = 1, env: dict[str, str] | None = None, grace: float = 2
) -> dict[str, Any]:
    container = {
        "name": "web",
        "image": "python:3.12-slim",
        "command": ["python", "/app/server.py"],
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1, "timeoutSeconds": 1},
        "volumeMounts": [{"name": "app", "mountPath": "/app", "readOnly": True}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": grace,
                    "containers": [container],
                    "volumes": [{"name": "app", "configMap": {"name": "web-app"}}],
                },
            },
        },
    }


def service(name: str = "web", target: int | str = "http") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": target}]},
    }


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 30))


until = partial(until_polled, timeout=DEADLINE_S)


async def http_get(port: int, path: str = "/") -> tuple[int, bytes]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def gone(pid: int) -> bool:
    """The process has exited and been reaped: ``kill(pid, 0)`` finds no such process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class Lab:
    """A supervisor over ``tmp_path``, with the ConfigMaps it may mount and a count of
    ``on_change`` calls (each with a snapshot taken by ``watch``, if set)."""

    def __init__(self, root: Path, configmaps: list[dict[str, Any]] | None = None) -> None:
        self.configmaps = {
            (c["metadata"]["namespace"], c["metadata"]["name"]): c
            for c in ([CONFIGMAP] if configmaps is None else configmaps)
        }
        self.changes = 0
        self.snapshots: list[Any] = []
        self.watch: Callable[[], Any] | None = None
        self.sup = Supervisor(root / "pods", self._configmap, self._changed)

    def _configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.configmaps.get((namespace, name))

    def _changed(self) -> None:
        self.changes += 1
        if self.watch is not None:
            self.snapshots.append(self.watch())

    def pods(self, deployment: str = "web") -> list[Pod]:
        return [p for p in self.sup.pods() if p.deployment == deployment and not p.terminating]

    def ready_pods(self, deployment: str = "web", n: int = 1) -> list[Pod] | None:
        pods = [p for p in self.pods(deployment) if p.ready]
        return pods if len(pods) == n else None


@contextlib.asynccontextmanager
async def supervising(root: Path, configmaps: list[dict[str, Any]] | None = None) -> AsyncIterator[Lab]:
    lab = Lab(root, configmaps)
    try:
        yield lab
    finally:
        await asyncio.wait_for(lab.sup.close(), 15)


def pid_of(pod: Pod) -> int:
    assert pod.process is not None
    return pod.process.pid


# ── a pod's life ─────────────────────────────────────────────────────────────


def test_pod_becomes_ready_by_its_http_probe_and_only_then_is_an_endpoint(tmp_path: Path) -> None:
    ready_file = tmp_path / "ready"

    async def scenario() -> None:
        async with supervising(tmp_path) as lab:
            lab.sup.set_deployments([deployment(env={"READY_FILE": str(ready_file)})])
            (pod,) = lab.pods()
            await until(lambda: pod.process is not None and pod.status_word == "Running", "the pod's process to run")
            # Serving, but /healthz says 503: running, not ready, no endpoint.
            await until(lambda: pod.port and _answers(pod.port), "the server to listen")
            status, _ = await http_get(pod.port, "/healthz")
            assert status == 503
            assert not pod.ready and lab.sup.endpoints(service()) == {80: ()}
            assert lab.sup.deployment_status("default", "web") == {
                "replicas": 1,
                "readyReplicas": 0,
                "updatedReplicas": 1,
                "availableReplicas": 0,
            }
            changes = lab.changes
            ready_file.write_text("")
            await until(lambda: pod.ready, "the readiness probe to pass")
            assert lab.changes > changes  # endpoints moved: the control plane was told
            assert lab.sup.endpoints(service()) == {80: (Endpoint("127.0.0.1", pod.port),)}
            assert lab.sup.endpoints(service(target=8080)) == {80: (Endpoint("127.0.0.1", pod.port),)}
            assert lab.sup.endpoints(service(target=9999)) == {80: ()}  # no such container port
            assert lab.sup.endpoints(service(name="other")) == {80: ()}  # selects nothing
            assert lab.sup.deployment_status("default", "web") == {
                "replicas": 1,
                "readyReplicas": 1,
                "updatedReplicas": 1,
                "availableReplicas": 1,
            }
            obj = pod.to_object()
            assert obj["status"]["phase"] == "Running" and obj["status"]["localPort"] == pod.port
            assert obj["status"]["localPid"] == pid_of(pod)
            assert obj["status"]["containerStatuses"][0]["ready"] is True
            assert obj["metadata"]["labels"] == {"app": "web", "pod-template-hash": pod.template_hash}
            assert pod.name.startswith(f"web-{pod.template_hash}-")

    run(scenario())


def _answers(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_env_values_reach_the_process_and_host_port_are_the_runtimes(tmp_path: Path) -> None:
    async def scenario() -> dict[str, Any]:
        async with supervising(tmp_path) as lab:
            lab.sup.set_deployments([deployment(env={"VERSION": "v7", "GREETING": "hello world", "PORT": "1"})])
            (pod,) = await until(lab.ready_pods, "the pod to be ready")
            status, body = await http_get(pod.port, "/info")
            assert status == 200
            seen: dict[str, Any] = json.loads(body)
            assert seen["pid"] == pid_of(pod)
            return {**seen, "port": pod.port, "name": pod.name, "dir": str(pod.directory)}

    seen = run(scenario())
    env = seen["env"]
    assert env["VERSION"] == "v7" and env["GREETING"] == "hello world"
    assert env["HOST"] == "127.0.0.1" and env["PORT"] == str(seen["port"])  # the runtime's, not the template's
    assert env["HOSTNAME"] == seen["name"] and env["HOME"] == seen["dir"]
    assert seen["argv"] == [str(Path(seen["dir"]) / "volumes" / "app" / "server.py")]  # /app mapped


def test_a_killed_pod_process_is_restarted(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with supervising(tmp_path) as lab:
            lab.sup.set_deployments([deployment()])
            (pod,) = await until(lab.ready_pods, "the pod to be ready")
            first = pid_of(pod)
            os.kill(first, signal.SIGKILL)
            await until(
                lambda: pod.restarts == 1 and pod.ready and pid_of(pod) != first,
                "the pod to restart and be ready again",
            )
            assert gone(first)
            assert lab.pods() == [pod]  # the same pod, restarted in place
            status = pod.to_object()["status"]["containerStatuses"][0]
            assert status["restartCount"] == 1
            assert status["lastState"] == {"terminated": {"exitCode": -signal.SIGKILL}}
            assert (await http_get(pod.port, "/"))[0] == 200

    run(scenario())


def test_a_crashing_container_backs_off_and_reports_why(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with supervising(tmp_path) as lab:
            lab.sup.set_deployments([deployment(env={"EXIT_CODE": "3"})])
            (pod,) = lab.pods()
            await until(lambda: pod.restarts >= 2, "the pod to crash twice")
            assert pod.reason == "CrashLoopBackOff" and pod.last_exit == 3 and not pod.ready
            assert "exited with code 3" in pod.message
            assert lab.sup.endpoints(service()) == {80: ()}

    run(scenario())


def test_delete_pod_makes_a_new_pod(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with supervising(tmp_path) as lab:
            lab.sup.set_deployments([deployment()])
            (old,) = await until(lab.ready_pods, "the pod to be ready")
            old_pid = pid_of(old)
            lab.sup.delete_pod(old)
            assert old.terminating and not old.ready
            assert lab.sup.endpoints(service()) == {80: ()}  # out of the endpoints at once
            (new,) = await until(lab.ready_pods, "a new pod to be ready")
            assert new.name != old.name and new is not old
            await until(lambda: old.name not in {p.name for p in lab.sup.pods()}, "the deleted pod to go")
            await until(lambda: gone(old_pid), "the deleted pod's process to exit")

    run(scenario())


def test_a_changed_template_rolls_out_new_pod_ready_before_the_old_stops(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with supervising(tmp_path) as lab:
            lab.sup.set_deployments([deployment(env={"VERSION": "v1"})])
            (old,) = await until(lab.ready_pods, "the v1 pod to be ready")
            old_pid = pid_of(old)

            def snapshot() -> tuple[bool, bool, int]:
                new = [p for p in lab.pods() if p is not old]
                alive = old.process is not None and old.process.returncode is None
                return (bool(new and new[0].ready), alive, len(lab.sup.endpoints(service())[80]))

            lab.watch = snapshot
            lab.sup.set_deployments([deployment(env={"VERSION": "v2"})])
            assert not old.terminating  # kept until the new one is ready
            await until(lambda: old.name not in {p.name for p in lab.sup.pods()}, "the v1 pod to be gone")
            (new,) = lab.pods()
            assert new.template_hash != old.template_hash and new.ready
            assert gone(old_pid)
            # When the new pod turned ready the old process was still running, and
            # the service never had zero endpoints on the way.
            assert (True, True, 2) in lab.snapshots, lab.snapshots
            assert all(n >= 1 for _, _, n in lab.snapshots), lab.snapshots
            status, body = await http_get(new.port, "/")
            assert status == 200 and json.loads(body)["env"]["VERSION"] == "v2"

    run(scenario())


def test_scale_up_and_down_and_remove(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with supervising(tmp_path) as lab:
            lab.sup.set_deployments([deployment(replicas=2)])
            pods = await until(lambda: lab.ready_pods(n=2), "two ready pods")
            assert len({p.port for p in pods}) == 2
            assert sorted(e.port for e in lab.sup.endpoints(service())[80]) == sorted(p.port for p in pods)
            lab.sup.set_deployments([deployment(replicas=1)])
            assert len(lab.pods()) == 1 and len(lab.sup.endpoints(service())[80]) == 1
            pids = [pid_of(p) for p in pods]
            lab.sup.set_deployments([])
            assert lab.pods() == [] and lab.sup.endpoints(service()) == {80: ()}
            assert lab.sup.deployment_status("default", "web") == {}
            await until(lambda: lab.sup.pods() == [], "every pod to be gone")
            assert all(gone(pid) for pid in pids)

    run(scenario())


def test_scale_down_stops_the_youngest_ready_pod(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with supervising(tmp_path) as lab:
            lab.sup.set_deployments([deployment(replicas=2)])
            older, younger = await until(lambda: lab.ready_pods(n=2), "two ready pods")
            older.created, younger.created = "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z"
            lab.sup.set_deployments([deployment(replicas=1)])
            assert younger.terminating and not older.terminating

    run(scenario())


def test_a_missing_configmap_keeps_the_pod_creating_until_it_appears(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with supervising(tmp_path, configmaps=[]) as lab:
            lab.sup.set_deployments([deployment()])
            (pod,) = lab.pods()
            await until(lambda: "configmap" in pod.message, "the pod to report the missing ConfigMap")
            assert pod.reason == "ContainerCreating" and pod.process is None
            assert pod.to_object()["status"]["phase"] == "Pending"
            lab.configmaps[("default", "web-app")] = CONFIGMAP
            await until(lambda: pod.ready, "the pod to start once its ConfigMap exists")

    run(scenario())


def test_a_template_the_runtime_cannot_run_is_a_config_error(tmp_path: Path) -> None:
    bad = deployment()
    bad["spec"]["template"]["spec"]["containers"][0]["command"] = ["node", "/app/server.js"]

    async def scenario() -> None:
        async with supervising(tmp_path) as lab:
            lab.sup.set_deployments([bad])
            (pod,) = lab.pods()
            await until(lambda: pod.reason == "CreateContainerConfigError", "the pod to report a config error")
            assert '"node" is not python' in pod.message and pod.process is None

    run(scenario())


# ── close ────────────────────────────────────────────────────────────────────


def test_close_stops_every_process(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[int], list[Pod]]:
        lab = Lab(tmp_path)
        try:
            lab.sup.set_deployments([deployment(replicas=2), deployment("api")])
            web = await until(lambda: lab.ready_pods(n=2), "two web pods")
            api = await until(lambda: lab.ready_pods("api"), "the api pod")
            pods = [*web, *api]
            pids = [pid_of(p) for p in pods]
            assert all(psutil.pid_exists(pid) for pid in pids)
        finally:
            await asyncio.wait_for(lab.sup.close(), 15)
        assert lab.sup.pods() == []
        lab.sup.set_deployments([deployment()])  # closed: starts nothing
        assert lab.sup.pods() == []
        return pids, pods

    pids, pods = run(scenario())
    assert [pid for pid in pids if not gone(pid)] == []
    assert not any(p.ready for p in pods)
    assert not any((p.directory / "volumes").exists() for p in pods)  # mounted volumes cleaned up


def test_close_kills_a_process_that_ignores_sigterm_after_its_grace(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, float]:
        lab = Lab(tmp_path)
        try:
            lab.sup.set_deployments([deployment(env={"IGNORE_TERM": "1"}, grace=0.3)])
            (pod,) = await until(lab.ready_pods, "the pod to be ready")
            pid = pid_of(pod)
        finally:
            started = time.monotonic()
            await asyncio.wait_for(lab.sup.close(), 15)
        return pid, time.monotonic() - started

    pid, took = run(scenario())
    assert gone(pid)
    assert 0.25 <= took < 5, f"close took {took:.2f}s with a 0.3 s grace"


# ── prepare: what runs ───────────────────────────────────────────────────────


def pod_for(
    tmp_path: Path, container: dict[str, Any], volumes: list[dict[str, Any]] | None = None, port: int = 0
) -> Pod:
    template = {
        "metadata": {"labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", **container}], "volumes": volumes or []},
    }
    return Pod(
        name="x-abc-12345",
        namespace="default",
        deployment="x",
        template_hash=template_hash(template),
        template=template,
        directory=tmp_path / "pod",
        port=port,
    )


def lookup(*cms: dict[str, Any]) -> Callable[[str, str], dict[str, Any] | None]:
    found = {(c["metadata"].get("namespace", "default"), c["metadata"]["name"]): c for c in cms}
    return lambda ns, name: found.get((ns, name))


APP = [{"name": "app", "configMap": {"name": "web-app"}}]
MOUNT = [{"name": "app", "mountPath": "/app/"}]


def test_prepare_maps_mounted_paths_and_writes_the_configmap(tmp_path: Path) -> None:
    container = {
        "command": ["python3", "/app/server.py"],
        "args": ["--conf=/etc/x", "/app/sub/y.py", "/apple"],
        "volumeMounts": MOUNT,
    }
    pod = pod_for(tmp_path, container, APP)
    argv, env = prepare(pod, lookup(CONFIGMAP))
    volume = tmp_path / "pod" / "volumes" / "app"
    assert argv[:2] == [sys.executable, "-c"] and argv[3] == str(os.getpid())  # the launcher, then the command
    assert argv[4:] == [sys.executable, str(volume / "server.py"), "--conf=/etc/x", str(volume / "sub/y.py"), "/apple"]
    assert (volume / "server.py").read_text() == SERVER
    assert env["PORT"] == str(pod.port) and pod.port > 0 and env["HOST"] == "127.0.0.1"


def test_prepare_writes_chosen_items_and_makes_empty_dirs(tmp_path: Path) -> None:
    cm = {"metadata": {"name": "cfg"}, "data": {"a.txt": "A", "b.txt": "B"}}
    volumes = [
        {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "a.txt", "path": "conf/a.conf"}]}},
        {"name": "scratch", "emptyDir": {}},
    ]
    mounts = [{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "scratch", "mountPath": "/tmp/scratch"}]
    pod = pod_for(
        tmp_path, {"command": ["/usr/local/bin/python3.12", "-m", "http.server"], "volumeMounts": mounts}, volumes
    )
    prepare(pod, lookup(cm))
    volumes_dir = tmp_path / "pod" / "volumes"
    assert (volumes_dir / "cfg" / "conf" / "a.conf").read_text() == "A"
    assert not (volumes_dir / "cfg" / "b.txt").exists()
    assert (volumes_dir / "scratch").is_dir()


def test_prepare_passes_env_values_and_sets_its_own(tmp_path: Path) -> None:
    env_in = [
        {"name": "VERSION", "value": "v2"},
        {"name": "N", "value": 3},
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": True}}},
        {"name": "HOST", "value": "0.0.0.0"},
    ]
    pod = pod_for(tmp_path, {"command": ["python", "-c", "pass"], "env": env_in})
    _, env = prepare(pod, lookup(), lookup())
    assert env["VERSION"] == "v2" and env["N"] == "3" and "FROM_SECRET" not in env  # optional, and missing
    assert env["HOST"] == "127.0.0.1"  # loopback only, whatever the template says
    assert env["HOSTNAME"] == pod.name and env["HOME"] == str(pod.directory) and env["PYTHONUNBUFFERED"] == "1"
    assert env["POD_NAMESPACE"] == pod.namespace  # the in-lab DNS resolves bare names there
    assert set(env) == {
        *("PATH", "HOME", "HOSTNAME", "PYTHONUNBUFFERED", "VERSION", "N", "HOST", "PORT"),
        *("POD_NAMESPACE", "COALMINE_SERVICES"),
    }


def test_prepare_keeps_a_free_preferred_port(tmp_path: Path) -> None:
    wanted = free_port()
    pod = pod_for(tmp_path, {"command": ["python", "-c", "pass"]}, port=wanted)
    prepare(pod, lookup())
    assert pod.port == wanted


@pytest.mark.parametrize(
    ("container", "volumes", "message"),
    [
        ({"command": ["node", "/app/server.js"]}, [], '"node" is not python'),
        ({"command": ["/bin/sh", "-c", "python x.py"]}, [], '"/bin/sh" is not python'),
        ({"command": ["pythonw", "x.py"]}, [], "is not python"),
        ({"image": "python:3.12-slim"}, [], "no command"),
        ({"command": ["python", "/app/x.py"], "volumeMounts": MOUNT}, [], 'volumeMount "app" names no volume'),
        (
            {"command": ["python", "/app/x.py"], "volumeMounts": MOUNT},
            [{"name": "app", "hostPath": {"path": "/"}}],
            "configMap and emptyDir",
        ),
        (
            {"command": ["python", "/app/x.py"], "volumeMounts": MOUNT},
            [
                {
                    "name": "app",
                    "configMap": {"name": "web-app", "items": [{"key": "server.py", "path": "../../escape.py"}]},
                }
            ],
            "leaves the volume",
        ),
    ],
)
def test_prepare_refuses_what_cannot_run_here(
    tmp_path: Path, container: dict[str, Any], volumes: list[dict[str, Any]], message: str
) -> None:
    pod = pod_for(tmp_path, container, volumes)
    with pytest.raises(PodSpecError, match=message):
        prepare(pod, lookup(CONFIGMAP))
    assert not list(tmp_path.rglob("escape.py"))


def test_prepare_raises_not_yet_for_a_missing_configmap(tmp_path: Path) -> None:
    pod = pod_for(tmp_path, {"command": ["python", "/app/x.py"], "volumeMounts": MOUNT}, APP)
    with pytest.raises(NotYet, match='configmap "web-app" not found'):
        prepare(pod, lookup())
    other_namespace = dict(CONFIGMAP, metadata={"name": "web-app", "namespace": "other"})
    with pytest.raises(NotYet):
        prepare(pod, lookup(other_namespace))


# ── template_hash, free_port, probe_once ─────────────────────────────────────


def test_template_hash_is_stable_short_and_follows_content() -> None:
    template = deployment()["spec"]["template"]
    h = template_hash(template)
    assert len(h) == 10 and set(h) <= set(string.ascii_lowercase + string.digits)
    reordered = json.loads(json.dumps(template, sort_keys=True))
    assert template_hash(dict(reversed(list(reordered.items())))) == h
    changed = copy.deepcopy(template)
    changed["spec"]["containers"][0]["env"] = [{"name": "VERSION", "value": "v2"}]
    assert template_hash(changed) != h


def test_free_port_prefers_the_given_port_unless_taken() -> None:
    port = free_port()
    assert 0 < port < 65536 and free_port(port) == port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        other = free_port(taken)
        assert other != taken and other > 0


def _probe_pod(tmp_path: Path, port: int) -> Pod:
    return pod_for(tmp_path, {"command": ["python"]}, port=port)


def test_probe_once_http_status_tcp_and_refused(tmp_path: Path) -> None:
    answers = {"/ok": b"200 OK", "/moved": b"302 Found", "/bad": b"500 Internal Server Error"}
    seen: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append(head)
            path = head.split()[1].decode()
            writer.write(b"HTTP/1.1 " + answers[path] + b"\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def scenario() -> dict[str, bool]:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pod = _probe_pod(tmp_path, port)
        try:
            results = {p: await probe_once({"httpGet": {"path": p}}, pod) for p in answers}
            results["tcp"] = await probe_once({"tcpSocket": {"port": 8080}}, pod)
        finally:
            server.close()
            await server.wait_closed()
        results["refused"] = await probe_once({}, pod)  # nothing listens any more
        return results

    results = run(scenario())
    assert results == {"/ok": True, "/moved": True, "/bad": False, "tcp": True, "refused": False}
    assert all(b"User-Agent: kube-probe" in h for h in seen) and len(seen) == 3


def test_probe_once_times_out_on_a_server_that_never_answers(tmp_path: Path) -> None:
    async def scenario() -> tuple[bool, float]:
        stall = asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await stall.wait()
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        pod = _probe_pod(tmp_path, server.sockets[0].getsockname()[1])
        try:
            started = time.monotonic()
            ok = await probe_once({"httpGet": {"path": "/"}, "timeoutSeconds": 0.2}, pod)
            return ok, time.monotonic() - started
        finally:
            stall.set()
            server.close()
            await server.wait_closed()

    ok, took = run(scenario())
    assert ok is False and 0.15 < took < 3
