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
import shutil
import socket
import string
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.runtime import regex
from helpers.runtime.podenv import NODE_NAME, POD_IP, EnvError, MissingSource, build_env
from helpers.runtime.servicedns import services_file
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


def dying_with_us(argv: list[str]) -> list[str]:
    """``argv`` wrapped so that its process gets SIGTERM when this one dies, even by
    SIGKILL (the pods' way, used for every child the control plane starts)."""
    return [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *argv]


_PYTHON = regex.compile(r"(.*/)?python(3(\.\d+)?)?")
NAME_CHARS = string.ascii_lowercase + string.digits


class PodSpecError(Exception):
    """The pod template asks for something the local runtime cannot run."""


class NotYet(Exception):
    """Something the pod needs is not there yet; try again shortly. ``reason`` is the
    container's waiting reason meanwhile, as the kubelet reports it."""

    def __init__(self, message: str, reason: str = "ContainerCreating") -> None:
        super().__init__(message)
        self.reason = reason


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
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    port: int = 0
    process: asyncio.subprocess.Process | None = None
    started: str | None = None
    ready: bool = False
    restarts: int = 0
    reason: str = "ContainerCreating"
    message: str = ""
    last_exit: int | None = None
    terminating: bool = False
    failures: int = 0  # in a row, for the back-off; a long enough run resets it
    exposed: tuple[str, ...] = ()  # wildcard addresses it listens on (0.0.0.0:PORT)
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
        annotations = (self.template.get("metadata") or {}).get("annotations")
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "uid": self.uid,
                "labels": self.labels,
                **({"annotations": annotations} if annotations else {}),
                "creationTimestamp": self.created,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs}],
                **({"deletionTimestamp": now_rfc3339()} if self.terminating else {}),
            },
            "spec": {**self.template.get("spec", {}), "nodeName": NODE_NAME},
            "status": {
                **self._exposure(),
                "phase": "Running" if running else "Pending",
                "hostIP": POD_IP,
                "hostIPs": [{"ip": POD_IP}],
                "podIP": POD_IP,
                "podIPs": [{"ip": POD_IP}],
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

    def _exposure(self) -> dict[str, str]:
        if not self.exposed:
            return {}
        return {
            "reason": "ListensOnAllInterfaces",
            "message": f"listens on {', '.join(self.exposed)}: other machines can reach it; "
            "bind 127.0.0.1 (the HOST environment variable) instead",
        }


def prepare(
    pod: Pod, configmap: ConfigMapLookup, secret: ConfigMapLookup | None = None
) -> tuple[list[str], dict[str, str]]:
    """The argv and env that run ``pod``'s container: its ConfigMap volumes written to the
    pod's folder, paths under a mount mapped there, its ``env`` and ``envFrom`` resolved
    (``podenv``), ``HOST``/``PORT`` set to its loopback port. Raises ``PodSpecError`` for
    what cannot run here, ``NotYet`` for what is missing."""
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
    try:
        env.update(build_env(pod, configmap, secret))
    except EnvError as e:
        raise PodSpecError(str(e)) from None
    except MissingSource as e:
        raise NotYet(str(e), reason="CreateContainerConfigError") from None
    env.update(HOST="127.0.0.1", PORT=str(pod.port), POD_NAMESPACE=pod.namespace)
    # In-lab DNS (``servicedns``): the table the control plane keeps in the lab home,
    # two folders up from the pod's own (``<home>/pods/<pod>``).
    env["COALMINE_SERVICES"] = str(services_file(pod.directory.parent.parent))
    return dying_with_us(argv), env


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
    if http:
        status = await loopback_status(pod.port, str(http.get("path", "/")), timeout, "kube-probe")
        return status is not None and 200 <= status < 400
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", pod.port), timeout)
    except (TimeoutError, OSError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def loopback_status(port: int, path: str, timeout: float, agent: str | None = None) -> int | None:
    """The status of ``GET path`` on 127.0.0.1:``port`` (None: no HTTP answer in time),
    as a kubelet's probe asks it."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except (TimeoutError, OSError):
        return None
    try:
        user_agent = f"User-Agent: {agent}\r\n" if agent else ""
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{user_agent}\r\n".encode())
        parts = (await asyncio.wait_for(reader.readline(), timeout)).split()
        return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    except (TimeoutError, OSError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


# ── logs ─────────────────────────────────────────────────────────────────────

# The kubelet rotates a container's log at containerLogMaxSize (default 10 MiB) and
# keeps containerLogMaxFiles (default 5); a lab pod keeps ``log`` and ``log.1``, each
# rotated at 1 MiB, so at most about 2 MiB per pod, removed with the pod.
LOG_MAX_BYTES = 1024 * 1024


class PodLog:
    """A pod's stdout and stderr (all its restarts), rotated at ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES) -> None:
        self.path, self.max_bytes = path, max_bytes
        self._file: Any = None
        self._size = 0

    def write(self, chunk: bytes) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")
            self._size = self._file.tell()
        self._file.write(chunk)
        self._file.flush()
        self._size += len(chunk)
        if self._size >= self.max_bytes:
            self._file.close()
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            self._file = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


async def drain(stream: asyncio.StreamReader, log: PodLog) -> None:
    """Copy a pod's output into its log until the pod closes it."""
    while chunk := await stream.read(64 * 1024):
        log.write(chunk)


# ── exposure ─────────────────────────────────────────────────────────────────


def exposed_addresses(pid: int) -> tuple[str, ...]:
    """``ADDRESS:PORT`` of every TCP socket process ``pid`` listens on at a wildcard
    address (0.0.0.0 or ::), read from Linux's /proc; empty elsewhere."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    except OSError:
        return ()
    found: list[str] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            found += (
                f"{address}:{port}"
                for address, port in listeners(Path(table).read_text(), inodes)
                if address in ("0.0.0.0", "::")
            )
    return tuple(found)


def listeners(table: str, inodes: set[str]) -> list[tuple[str, int]]:
    """(address, port) of the listening sockets of a /proc/net/tcp{,6} table whose
    inode is in ``inodes``."""
    found = []
    for line in table.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10 or parts[3] != "0A" or parts[9] not in inodes:  # 0A: LISTEN
            continue
        address, _, port = parts[1].partition(":")
        raw = bytes.fromhex(address)
        # The kernel prints each 32-bit word of the address in host (little-endian) order.
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
        family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
        found.append((socket.inet_ntop(family, raw), int(port, 16)))
    return found
