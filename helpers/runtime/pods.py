"""A pod: one replica of a Deployment, run as a local process.

``Pod`` is its state (process, port, readiness, restarts) and its view as a
Kubernetes Pod object; ``prepare`` turns its template into the argv and env that
run the container's command; ``probe_once`` is one readiness check. The
``supervising`` module keeps the right pods running.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import string
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
NAME_CHARS = string.ascii_lowercase + string.digits


class PodSpecError(Exception):
    """The pod template asks for something the local runtime cannot run."""


class NotYet(Exception):
    """Something the pod needs is not there yet; try again shortly."""


def template_hash(template: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return "".join(NAME_CHARS[int(digest[i : i + 2], 16) % 36] for i in range(0, 20, 2))


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
        container: dict[str, Any] = self.template["spec"]["containers"][0]
        return container

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
                "name": self.name,
                "namespace": self.namespace,
                "labels": self.labels,
                "creationTimestamp": self.created,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs}],
                **({"deletionTimestamp": now_rfc3339()} if self.terminating else {}),
            },
            "spec": self.template.get("spec", {}),
            "status": {
                "phase": "Running" if running else "Pending",
                "hostIP": "127.0.0.1",
                "podIP": "127.0.0.1",
                "startTime": self.created,
                "conditions": [{"type": "Ready", "status": str(self.ready)}],
                "containerStatuses": [
                    {
                        "name": self.container.get("name"),
                        "image": self.container.get("image"),
                        "ready": self.ready,
                        "restartCount": self.restarts,
                        "state": state,
                        **(
                            {"lastState": {"terminated": {"exitCode": self.last_exit}}}
                            if self.last_exit is not None
                            else {}
                        ),
                    }
                ],
                "localPort": self.port,
                "localPid": self.process.pid if running and self.process else None,
            },
        }


def prepare(pod: Pod, configmap: ConfigMapLookup) -> tuple[list[str], dict[str, str]]:
    """The argv and env that run ``pod``'s container: its ConfigMap volumes written to the
    pod's folder, paths under a mount mapped there, ``HOST``/``PORT`` set to its loopback
    port. Raises ``PodSpecError`` for what cannot run here, ``NotYet`` for what is missing."""
    spec = pod.template.get("spec") or {}
    container = pod.container
    command = list(container.get("command") or []) + list(container.get("args") or [])
    if not command:
        raise PodSpecError(
            "the container has no command: the local runtime runs the container's "
            "command (e.g. [python, /app/petstore.py]), not an image's entrypoint"
        )
    if not _PYTHON.fullmatch(command[0]):
        raise PodSpecError(f'the local runtime runs Python containers only; "{command[0]}" is not python')
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
            cm = configmap(pod.namespace, cm_name)
            if cm is None:
                raise NotYet(f'MountVolume.SetUp failed: configmap "{cm_name}" not found')
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


def _map_path(arg: str, mounts: list[tuple[str, Path]]) -> str:
    for mount_path, local in mounts:
        if arg == mount_path or arg.startswith(mount_path + "/"):
            return str(local) + arg[len(mount_path) :]
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


async def probe_once(probe: Mapping[str, Any], pod: Pod) -> bool:
    """One readiness check: the probe's httpGet or tcpSocket, else "port accepts"."""
    timeout = float(probe.get("timeoutSeconds", 1))
    http = probe.get("httpGet")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", pod.port), timeout)
    except (TimeoutError, OSError):
        return False
    try:
        if not http:
            return True
        path = str(http.get("path", "/"))
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nUser-Agent: kube-probe\r\n\r\n".encode()
        )
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.split()
        return len(parts) >= 2 and parts[1].isdigit() and 200 <= int(parts[1]) < 400
    except (TimeoutError, OSError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
