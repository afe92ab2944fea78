"""The pod supervisor: Deployments as real OS processes, like a ReplicaSet would.

Each replica of a Deployment is a pod: the container's command run as a local
process, with the container's env, its ConfigMap volumes written to the pod's
folder, and its own loopback port (given as ``HOST``/``PORT``; in a cluster the pod
IP would differ instead). A pod that dies is restarted with back-off (lab-sized,
see ``FIRST_BACKOFF_S``), and so is one that cannot even be prepared
(``CreateContainerConfigError``); readiness comes from the container's real probe.
Its output goes through a pipe into ``<pod folder>/log``, rotated as the kubelet
rotates container logs (``pods.LOG_MAX_BYTES``); the folder goes with the pod.
A changed pod template rolls out: new pods first, old ones stopped once the new
are ready. Stopping takes a pod out of the endpoints *before* it is sent SIGTERM,
so no new request reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from helpers.runtime import endpointslices
from helpers.runtime.pods import (
    NAME_CHARS,
    ConfigMapLookup,
    NotYet,
    Pod,
    PodLog,
    PodSpecError,
    drain,
    exposed_addresses,
    prepare,
    probe_once,
    template_hash,
)
from helpers.runtime.routes import Endpoint
from helpers.runtime.store import now_rfc3339

# Restart back-off, lab-sized: the kubelet waits 10 s doubling to 5 min and forgets
# after 10 min of running; a lab pod waits 0.25 s doubling to 10 s and forgets after
# 10 s, so a pod killed by hand serves again within a second or two, and one that
# crashes on start is retried ever more slowly instead of in a tight loop.
FIRST_BACKOFF_S = 0.25
MAX_BACKOFF_S = 10.0
BACKOFF_RESET_S = 10.0


class Supervisor:
    """Keeps each Deployment's pods running; tells ``on_change`` when endpoints move."""

    def __init__(
        self,
        pods_dir: Path,
        configmap: ConfigMapLookup,
        on_change: Callable[[], None],
        backoff_reset: float = BACKOFF_RESET_S,
        secret: ConfigMapLookup | None = None,
    ) -> None:
        self.pods_dir = pods_dir
        self.backoff_reset = backoff_reset
        self.configmap = configmap
        self.secret = secret  # for secretKeyRef and envFrom secretRef
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
            # Scale down: not-ready pods first, then the youngest (as a ReplicaSet does).
            youngest_first = sorted(current, key=lambda p: p.created, reverse=True)
            surplus = sorted(youngest_first, key=lambda p: p.ready)[: max(0, len(current) - want)]
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
        mine = [
            p for p in self._pods.values() if (p.namespace, p.deployment) == (namespace, name) and not p.terminating
        ]
        return {
            "replicas": len(mine),
            "readyReplicas": sum(p.ready for p in mine),
            "updatedReplicas": sum(p.template_hash == thash for p in mine),
            "availableReplicas": sum(p.ready and p.template_hash == thash for p in mine),
        }

    def endpoints(
        self, service: Mapping[str, Any], slices: Iterable[Mapping[str, Any]] = ()
    ) -> dict[int, tuple[Endpoint, ...]]:
        """Ready endpoints of each port of a Service, by service port number: its
        selector's pods, then what its EndpointSlices (``endpointslices``) list."""
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
                        found.append(Endpoint("127.0.0.1", pod.port, tuple(sorted(pod.labels.items()))))
            result[int(p["port"])] = tuple(found)
        for port, listed in endpointslices.endpoints(service, slices, self._pods.values()).items():
            result[port] += tuple(e for e in listed if e not in result[port])
        return result

    def delete_pod(self, pod: Pod) -> None:
        """Stop one pod, as ``kubectl delete pod`` does; its Deployment makes a new one."""
        self._terminate(pod)
        self._reconcile()

    # ── pod lifecycle ────────────────────────────────────────────────────────

    def _start(self, ns: str, deployment: str, thash: str, template: dict[str, Any]) -> None:
        while True:
            name = f"{deployment}-{thash}-" + "".join(random.choices(NAME_CHARS, k=5))
            if name not in self._pods:
                break
        pod = Pod(
            name=name,
            namespace=ns,
            deployment=deployment,
            template_hash=thash,
            template=template,
            directory=self.pods_dir / name,
        )
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
        log = PodLog(pod.directory / "log")
        try:
            while not pod.stop_event.is_set():
                try:
                    argv, env = prepare(pod, self.configmap, self.secret)
                except NotYet as e:
                    pod.reason, pod.message = e.reason, str(e)
                    await _wait(pod.stop_event, 0.5)
                    continue
                except Exception as e:  # PodSpecError, or anything else the template makes fail
                    await self._back_off(pod, 0.0, "CreateContainerConfigError", _why(e))
                    continue
                try:
                    pod.process = await asyncio.create_subprocess_exec(
                        *argv,
                        env=env,
                        cwd=pod.directory,
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=asyncio.subprocess.PIPE,
                        stderr=asyncio.subprocess.STDOUT,
                    )
                except OSError as e:
                    await self._back_off(pod, 0.0, "RunContainerError", _why(e))
                    continue
                started = time.monotonic()
                await self._supervise(pod, pod.process, log)
                if pod.stop_event.is_set():
                    break
                pod.restarts += 1
                message = f"exited with code {pod.last_exit}; see {pod.directory / 'log'}"
                await self._back_off(pod, time.monotonic() - started, "Error", message)
        finally:
            log.close()
            self._pods.pop(pod.name, None)
            # A pod's folder (volumes, log) goes with it, as a pod's sandbox does.
            shutil.rmtree(pod.directory, ignore_errors=True)
            self._reconcile()

    async def _supervise(self, pod: Pod, process: asyncio.subprocess.Process, log: PodLog) -> None:
        """Run one container until it exits or the pod is stopped."""
        loop = asyncio.get_running_loop()
        pod.started, pod.reason, pod.message, pod.exposed = now_rfc3339(), "Running", "", ()
        assert process.stdout is not None
        drainer = loop.create_task(drain(process.stdout, log))
        prober = loop.create_task(self._probe(pod, process))
        stopper = loop.create_task(pod.stop_event.wait())
        waiter = loop.create_task(process.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            await self._stop_process(pod, waiter)
        stopper.cancel()
        prober.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await prober
        # The output until the exit; a child the pod left behind may hold the pipe open.
        await asyncio.wait({drainer}, timeout=1.0)
        drainer.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await drainer
        pod.last_exit = process.returncode
        if pod.ready:
            pod.ready = False
            self.on_change()

    async def _back_off(self, pod: Pod, ran: float, reason: str, message: str) -> None:
        """Wait before the next try: 0.25 s doubling to 10 s for failures in a row (the
        kubelet: 10 s doubling to 5 min); a run of ``backoff_reset`` seconds or more
        (the kubelet: 10 min) starts the count again."""
        if ran >= self.backoff_reset:
            pod.failures = 0
        pod.failures += 1
        if reason == "Error" and pod.failures > 1:
            reason = "CrashLoopBackOff"
        pod.reason, pod.message = reason, message
        await _wait(pod.stop_event, min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** min(pod.failures - 1, 10)))

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

    async def _probe(self, pod: Pod, process: asyncio.subprocess.Process) -> None:
        probe = pod.container.get("readinessProbe") or {}
        period = float(probe.get("periodSeconds") or 10)  # 0 means the default, as in Kubernetes
        failures_allowed = int(probe.get("failureThreshold") or 3)
        failures = 0
        while process.returncode is None:
            ok = await probe_once(probe, pod)
            failures = 0 if ok else failures + 1
            ready = ok or (pod.ready and failures < failures_allowed)
            if ready != pod.ready and not pod.terminating:
                if ready and not pod.exposed:
                    pod.exposed = exposed_addresses(process.pid)
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


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def _serves(container: Mapping[str, Any], target: Any) -> bool:
    ports = container.get("ports") or []
    if not ports:
        return True
    return any(target in (p.get("containerPort"), p.get("name")) for p in ports)


def _why(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if isinstance(error, PodSpecError) else f"{type(error).__name__}: {text}"
