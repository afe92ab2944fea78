"""The pod supervisor: Deployments as real OS processes, like a ReplicaSet would.

Each replica of a Deployment is a pod: the container's command run as a local
process, with the container's env, its ConfigMap volumes written to the pod's
folder, and its own loopback port (given as ``HOST``/``PORT``; in a cluster the pod
IP would differ instead). A pod that dies is restarted with back-off; readiness
comes from the container's real probe. A changed pod template rolls out: new pods
first, old ones stopped once the new are ready. Stopping takes a pod out of the
endpoints *before* it is sent SIGTERM, so no new request reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import string
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.runtime.routes import Endpoint
from helpers.runtime.store import now_rfc3339

ConfigMapLookup = Callable[[str, str], "dict[str, Any] | None"]

# A pod must die with the control plane even if the control plane is SIGKILLed:
# the launcher asks the kernel for SIGTERM on parent death, then becomes the
# container's command (same pid). The code is constant; user input only ever
# travels as argv items, never through a shell.
_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))\n"
    "except Exception:\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)
_PYTHON = re.compile(r"(.*/)?python(3(\.\d+)?)?")
_SUFFIX = string.ascii_lowercase + string.digits


class PodSpecError(Exception):
    """The pod template asks for something the local runtime cannot run."""


def template_hash(template: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return "".join(_SUFFIX[int(digest[i : i + 2], 16) % 36] for i in range(0, 20, 2))


def free_port(preferred: int | None = None) -> int:
    """A free port on 127.0.0.1, ``preferred`` if it can still be bound."""
    for candidate in ([preferred] if preferred else []) + [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free port on 127.0.0.1")


@dataclass
class Pod:
    """One replica: its process, port, readiness and restart count."""

    name: str
    namespace: str
    deployment: str
    template_hash: str
    template: dict[str, Any]
    directory: Path
    created: str = field(default_factory=now_rfc3339)
    port: int = 0
    process: asyncio.subprocess.Process | None = None
    started: str | None = None
    ready: bool = False
    restarts: int = 0
    reason: str = "ContainerCreating"
    message: str = ""
    last_exit: int | None = None
    terminating: bool = False
    task: asyncio.Task[None] | None = None
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def labels(self) -> dict[str, str]:
        labels = dict((self.template.get("metadata") or {}).get("labels") or {})
        labels["pod-template-hash"] = self.template_hash
        return labels

    @property
    def container(self) -> dict[str, Any]:
        return self.template["spec"]["containers"][0]

    @property
    def status_word(self) -> str:
        if self.terminating:
            return "Terminating"
        if self.process is not None and self.process.returncode is None:
            return "Running"
        return self.reason

    def to_object(self) -> dict[str, Any]:
        """This pod as a Kubernetes Pod object (with its local port and pid)."""
        running = self.process is not None and self.process.returncode is None
        if running:
            state: dict[str, Any] = {"running": {"startedAt": self.started}}
        else:
            state = {"waiting": {"reason": self.reason, "message": self.message}}
        rs = f"{self.deployment}-{self.template_hash}"
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.name, "namespace": self.namespace, "labels": self.labels,
                "creationTimestamp": self.created,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs}],
                **({"deletionTimestamp": now_rfc3339()} if self.terminating else {}),
            },
            "spec": self.template.get("spec", {}),
            "status": {
                "phase": "Running" if running else "Pending",
                "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
                "startTime": self.created,
                "conditions": [{"type": "Ready", "status": str(self.ready)}],
                "containerStatuses": [{
                    "name": self.container.get("name"), "image": self.container.get("image"),
                    "ready": self.ready, "restartCount": self.restarts, "state": state,
                    **({"lastState": {"terminated": {"exitCode": self.last_exit}}} if self.last_exit is not None else {}),
                }],
                "localPort": self.port,
                "localPid": self.process.pid if running and self.process else None,
            },
        }


class Supervisor:
    """Keeps each Deployment's pods running; tells ``on_change`` when endpoints move."""

    def __init__(self, pods_dir: Path, configmap: ConfigMapLookup, on_change: Callable[[], None]) -> None:
        self.pods_dir = pods_dir
        self.configmap = configmap
        self.on_change = on_change
        self._pods: dict[str, Pod] = {}
        self._deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self._closing = False

    # ── desired state ────────────────────────────────────────────────────────

    def set_deployments(self, deployments: list[dict[str, Any]]) -> None:
        """Make the running pods follow ``deployments`` (the full desired list)."""
        self._deployments = {
            ((d["metadata"].get("namespace") or "default"), d["metadata"]["name"]): d for d in deployments
        }
        self._reconcile()

    def _reconcile(self) -> None:
        if self._closing:
            return
        for pod in list(self._pods.values()):
            if not pod.terminating and (pod.namespace, pod.deployment) not in self._deployments:
                self._terminate(pod)
        for (ns, name), dep in self._deployments.items():
            spec = dep["spec"]
            want = int(spec.get("replicas", 1))
            thash = template_hash(spec["template"])
            mine = [p for p in self._pods.values() if (p.namespace, p.deployment) == (ns, name) and not p.terminating]
            current = [p for p in mine if p.template_hash == thash]
            old = [p for p in mine if p.template_hash != thash]
            for _ in range(want - len(current)):
                self._start(ns, name, thash, spec["template"])
            # Scale down: not-ready pods first, then the youngest.
            surplus = sorted(current, key=lambda p: (p.ready, p.created), reverse=False)[: max(0, len(current) - want)]
            for pod in surplus:
                self._terminate(pod)
            ready_current = sum(1 for p in current if p.ready and p not in surplus)
            if old and (ready_current >= want or want == 0):
                for pod in old:
                    self._terminate(pod)

    # ── views ────────────────────────────────────────────────────────────────

    def pods(self) -> list[Pod]:
        return sorted(self._pods.values(), key=lambda p: (p.namespace, p.name))

    def deployment_status(self, namespace: str, name: str) -> dict[str, int]:
        dep = self._deployments.get((namespace, name))
        if dep is None:
            return {}
        thash = template_hash(dep["spec"]["template"])
        mine = [p for p in self._pods.values() if (p.namespace, p.deployment) == (namespace, name) and not p.terminating]
        return {
            "replicas": len(mine),
            "readyReplicas": sum(p.ready for p in mine),
            "updatedReplicas": sum(p.template_hash == thash for p in mine),
            "availableReplicas": sum(p.ready and p.template_hash == thash for p in mine),
        }

    def endpoints(self, service: Mapping[str, Any]) -> dict[int, tuple[Endpoint, ...]]:
        """Ready endpoints of each port of a Service, by service port number."""
        spec = service.get("spec") or {}
        selector = spec.get("selector") or {}
        ns = (service.get("metadata") or {}).get("namespace") or "default"
        result: dict[int, tuple[Endpoint, ...]] = {}
        for p in spec.get("ports") or []:
            target = p.get("targetPort", p["port"])
            found = []
            if selector:
                for pod in self.pods():
                    if pod.namespace != ns or not pod.ready or pod.terminating:
                        continue
                    if any(pod.labels.get(k) != v for k, v in selector.items()):
                        continue
                    if _serves(pod.container, target):
                        found.append(Endpoint("127.0.0.1", pod.port))
            result[int(p["port"])] = tuple(found)
        return result

    def delete_pod(self, pod: Pod) -> None:
        """Stop one pod, as ``kubectl delete pod`` does; its Deployment makes a new one."""
        self._terminate(pod)
        self._reconcile()

    # ── pod lifecycle ────────────────────────────────────────────────────────

    def _start(self, ns: str, deployment: str, thash: str, template: dict[str, Any]) -> None:
        while True:
            name = f"{deployment}-{thash}-" + "".join(random.choices(_SUFFIX, k=5))
            if name not in self._pods:
                break
        pod = Pod(name=name, namespace=ns, deployment=deployment, template_hash=thash,
                  template=template, directory=self.pods_dir / name)
        self._pods[name] = pod
        pod.task = asyncio.get_running_loop().create_task(self._run(pod), name=f"pod {name}")

    def _terminate(self, pod: Pod) -> None:
        if pod.terminating:
            return
        pod.terminating = True
        was_ready, pod.ready = pod.ready, False
        if was_ready:
            self.on_change()  # out of the endpoints before the signal
        pod.stop_event.set()

    async def _run(self, pod: Pod) -> None:
        try:
            while not pod.stop_event.is_set():
                try:
                    argv, env = self._prepare(pod)
                except PodSpecError as e:
                    pod.reason, pod.message = "CreateContainerConfigError", str(e)
                    await _wait(pod.stop_event, 1.0)
                    continue
                except _NotYet as e:
                    pod.reason, pod.message = "ContainerCreating", str(e)
                    await _wait(pod.stop_event, 0.5)
                    continue
                log = open(pod.directory / "log", "ab")
                try:
                    pod.process = await asyncio.create_subprocess_exec(
                        *argv, env=env, cwd=pod.directory, stdin=asyncio.subprocess.DEVNULL,
                        stdout=log, stderr=asyncio.subprocess.STDOUT)
                finally:
                    log.close()
                pod.started, pod.reason, pod.message = now_rfc3339(), "Running", ""
                prober = asyncio.get_running_loop().create_task(self._probe(pod, pod.process))
                stopper = asyncio.get_running_loop().create_task(pod.stop_event.wait())
                waiter = asyncio.get_running_loop().create_task(pod.process.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if not waiter.done():
                    await self._stop_process(pod, waiter)
                stopper.cancel()
                prober.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await prober
                pod.last_exit = pod.process.returncode
                if pod.ready:
                    pod.ready = False
                    self.on_change()
                if pod.stop_event.is_set():
                    break
                pod.restarts += 1
                pod.reason = "CrashLoopBackOff" if pod.restarts > 1 else "Error"
                pod.message = f"exited with code {pod.last_exit}; see {pod.directory / 'log'}"
                await _wait(pod.stop_event, min(10.0, 0.25 * 2 ** min(pod.restarts - 1, 6)))
        finally:
            self._pods.pop(pod.name, None)
            shutil.rmtree(pod.directory / "volumes", ignore_errors=True)
            self._reconcile()

    async def _stop_process(self, pod: Pod, waiter: asyncio.Task[int]) -> None:
        grace = float(pod.template.get("spec", {}).get("terminationGracePeriodSeconds", 30))
        assert pod.process is not None
        with contextlib.suppress(ProcessLookupError):
            pod.process.send_signal(signal.SIGTERM)
        done, _ = await asyncio.wait({waiter}, timeout=grace)
        if not done:
            with contextlib.suppress(ProcessLookupError):
                pod.process.kill()
            await waiter

    def _prepare(self, pod: Pod) -> tuple[list[str], dict[str, str]]:
        spec = pod.template.get("spec") or {}
        container = pod.container
        command = list(container.get("command") or []) + list(container.get("args") or [])
        if not command:
            raise PodSpecError(
                "the container has no command: the local runtime runs the container's "
                "command (e.g. [python, /app/petstore.py]), not an image's entrypoint")
        if not _PYTHON.fullmatch(command[0]):
            raise PodSpecError(
                f'the local runtime runs Python containers only; "{command[0]}" is not python')
        pod.directory.mkdir(parents=True, exist_ok=True)
        volumes_dir = pod.directory / "volumes"
        mounts: list[tuple[str, Path]] = []
        volumes = {v.get("name"): v for v in spec.get("volumes") or []}
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount.get("name"))
            if volume is None:
                raise PodSpecError(f'volumeMount "{mount.get("name")}" names no volume in spec.volumes')
            target = volumes_dir / str(mount["name"])
            if "configMap" in volume:
                cm_name = volume["configMap"].get("name")
                cm = self.configmap(pod.namespace, cm_name)
                if cm is None:
                    raise _NotYet(f'MountVolume.SetUp failed: configmap "{cm_name}" not found')
                _write_configmap(target, cm, volume["configMap"].get("items"))
            elif "emptyDir" in volume:
                target.mkdir(parents=True, exist_ok=True)
            else:
                raise PodSpecError(f'volume "{mount["name"]}": the local runtime supports configMap and emptyDir volumes')
            mounts.append((str(mount["mountPath"]).rstrip("/"), target))
        argv = [sys.executable] + [_map_path(a, mounts) for a in command[1:]]
        pod.port = free_port(pod.port or None)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(pod.directory),
            "HOSTNAME": pod.name,
            "PYTHONUNBUFFERED": "1",
        }
        for item in container.get("env") or []:
            if "value" in item:
                env[str(item["name"])] = str(item["value"])
        env.update(HOST="127.0.0.1", PORT=str(pod.port))
        return [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *argv], env

    async def _probe(self, pod: Pod, process: asyncio.subprocess.Process) -> None:
        probe = pod.container.get("readinessProbe") or {}
        period = float(probe.get("periodSeconds", 10))
        failures_allowed = int(probe.get("failureThreshold", 3))
        failures = 0
        while process.returncode is None:
            ok = await _check(probe, pod)
            failures = 0 if ok else failures + 1
            ready = ok or (pod.ready and failures < failures_allowed)
            if ready != pod.ready and not pod.terminating:
                pod.ready = ready
                self.on_change()
                self._reconcile()
            # Until first ready, probe often so a fresh lab is quick to serve.
            await asyncio.sleep(period if pod.ready else 0.05)

    async def close(self) -> None:
        """Stop every pod (endpoints first, then SIGTERM, SIGKILL after grace)."""
        self._closing = True
        for pod in list(self._pods.values()):
            self._terminate(pod)
        tasks = [p.task for p in self._pods.values() if p.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class _NotYet(Exception):
    """Something the pod needs is not there yet; try again shortly."""


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def _serves(container: Mapping[str, Any], target: Any) -> bool:
    ports = container.get("ports") or []
    if not ports:
        return True
    return any(target in (p.get("containerPort"), p.get("name")) for p in ports)


def _map_path(arg: str, mounts: list[tuple[str, Path]]) -> str:
    for mount_path, local in mounts:
        if arg == mount_path or arg.startswith(mount_path + "/"):
            return str(local) + arg[len(mount_path):]
    return arg


def _write_configmap(target: Path, cm: Mapping[str, Any], items: Any) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    data = cm.get("data") or {}
    chosen = [(i["key"], i.get("path", i["key"])) for i in items] if items else [(k, k) for k in data]
    for k, path in chosen:
        if k in data:
            dest = (target / path).resolve()
            if target.resolve() not in dest.parents:
                raise PodSpecError(f'configMap item path "{path}" leaves the volume')
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(data[k])


async def _check(probe: Mapping[str, Any], pod: Pod) -> bool:
    """One readiness check: the probe's httpGet or tcpSocket, else "port accepts"."""
    timeout = float(probe.get("timeoutSeconds", 1))
    http = probe.get("httpGet")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", pod.port), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        if not http:
            return True
        path = str(http.get("path", "/"))
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nUser-Agent: kube-probe\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.split()
        return len(parts) >= 2 and parts[1].isdigit() and 200 <= int(parts[1]) < 400
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
