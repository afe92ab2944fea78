"""Issue 12: no pod template makes the supervisor spin, back-off forgets good runs,
a dead pod's folder goes with it, pod logs are rotated, and a pod listening on
0.0.0.0 says so.

Real pods (the stdlib server of ``test_supervising``) under a real ``Supervisor``;
templates that ``apply`` refuses are handed to the supervisor directly, as a store
written before the checks existed would.
"""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from helpers.runtime.pods import LOG_MAX_BYTES, Pod, exposed_addresses, listeners

from .test_supervising import CONFIGMAP, SERVER, deployment, pid_of, run, supervising, until

CHUNK = 64 * 1024  # what one read of the pod's pipe may add past the limit


def with_container(dep: dict[str, Any], **fields: Any) -> dict[str, Any]:
    dep = copy.deepcopy(dep)
    dep["spec"]["template"]["spec"]["containers"][0].update(fields)
    return dep


def app(**data: str) -> dict[str, Any]:
    cm = copy.deepcopy(CONFIGMAP)
    cm["data"] = data
    return cm


def folders(root: Path) -> list[str]:
    pods = root / "pods"
    return sorted(p.name for p in pods.iterdir()) if pods.exists() else []


@pytest.mark.parametrize(
    "template, configmap, why",
    [
        (with_container(deployment(), env=[{"value": "no name"}]), CONFIGMAP, "KeyError"),
        (deployment(), app(**{"server.py": SERVER, "a": "1", "a/b": "2"}), "Error"),
        (deployment(), app(**{"server.py": SERVER, "nul\x00key": "1"}), "ValueError"),
        (with_container(deployment(), command=["node", "app.js"]), CONFIGMAP, "Python containers only"),
    ],
)
def test_a_pod_that_cannot_be_prepared_backs_off_in_place(
    tmp_path: Path, template: dict[str, Any], configmap: dict[str, Any], why: str
) -> None:
    """CreateContainerConfigError with back-off: the same pod, one folder, no churn."""

    async def scenario() -> None:
        async with supervising(tmp_path, [configmap]) as lab:
            lab.sup.set_deployments([template])
            (pod,) = lab.pods()
            await until(lambda: pod.failures >= 3, "three failed tries")
            assert pod.reason == "CreateContainerConfigError" and why in pod.message
            assert lab.pods() == [pod] and pod.process is None
            assert folders(tmp_path) in ([], [pod.name])
            status = pod.to_object()["status"]["containerStatuses"][0]["state"]
            assert status == {"waiting": {"reason": "CreateContainerConfigError", "message": pod.message}}
        assert folders(tmp_path) == []

    run(scenario())


@pytest.mark.timeout(60)
def test_a_killed_pod_serves_again_within_2s_as_long_as_it_ran_a_while(tmp_path: Path) -> None:
    """The back-off forgets a run of ``backoff_reset`` seconds (10 s in a lab, 0.5 s here),
    so each kill of a pod that had been running is answered by a quick restart."""

    async def scenario() -> None:
        async with supervising(tmp_path) as lab:
            lab.sup.backoff_reset = 0.5
            lab.sup.set_deployments([deployment()])
            (pod,) = await until(lab.ready_pods, "the pod to be ready")
            for kill in range(1, 6):
                ready_at = time.monotonic()
                await until(lambda t=ready_at: time.monotonic() - t >= 0.6, "the pod to run past the reset")
                os.kill(pid_of(pod), signal.SIGKILL)
                await until(lambda: not pod.ready, "the kill to be seen")
                await until(lambda: pod.ready, f"kill {kill}: the pod to serve again", timeout=2.0)
                assert pod.failures == 1 and pod.restarts == kill

    run(scenario())


def test_kills_in_a_row_back_off_more_and_more(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with supervising(tmp_path) as lab:
            lab.sup.set_deployments([deployment()])
            (pod,) = await until(lab.ready_pods, "the pod to be ready")
            for kill in range(1, 4):
                os.kill(pid_of(pod), signal.SIGKILL)
                await until(lambda k=kill: pod.failures == k, f"failure {kill} to be counted")
                await until(lambda: pod.ready, "the pod to serve again")
            assert pod.failures == 3 and pod.restarts == 3
            os.kill(pid_of(pod), signal.SIGKILL)
            await until(lambda: pod.reason == "CrashLoopBackOff", "CrashLoopBackOff")

    run(scenario())


def test_a_dead_pods_folder_goes_with_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with supervising(tmp_path) as lab:
            lab.sup.set_deployments([deployment()])
            (old,) = await until(lab.ready_pods, "the pod to be ready")
            assert old.directory.exists()
            lab.sup.delete_pod(old)
            (new,) = await until(lambda: [p for p in lab.ready_pods() or [] if p is not old], "a new pod")
            await until(lambda: not old.directory.exists(), "the deleted pod's folder to go")
            assert folders(tmp_path) == [new.name]
        assert folders(tmp_path) == []

    run(scenario())


def test_a_pods_log_is_rotated_like_the_kubelets(tmp_path: Path) -> None:
    noisy = "import sys\nsys.stdout.write('x' * 3_000_000 + '\\n')\nsys.stdout.flush()\n" + SERVER

    async def scenario() -> tuple[int, int]:
        async with supervising(tmp_path, [app(**{"server.py": noisy})]) as lab:
            lab.sup.set_deployments([deployment()])
            (pod,) = await until(lab.ready_pods, "the noisy pod to be ready")
            log, rotated = pod.directory / "log", pod.directory / "log.1"
            await until(rotated.exists, "the log to be rotated")
            return log.stat().st_size if log.exists() else 0, rotated.stat().st_size

    current, rotated = run(scenario())
    assert current < LOG_MAX_BYTES + CHUNK and LOG_MAX_BYTES <= rotated < LOG_MAX_BYTES + CHUNK
    assert current + rotated < 3_000_000  # the rest was rotated away


def test_listening_on_every_interface_is_found_and_shown() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 111 1\n"
        "   1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 222 1\n"
        "   2: 0100007F:1F92 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  0 0 111 1\n"
        "   3: 00000000:1F93 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 999 1\n"
    )
    assert listeners(table, {"111", "222"}) == [("0.0.0.0", 8080), ("127.0.0.1", 8081)]
    v6 = "header\n   0: 00000000000000000000000000000000:1F90 0000:0000 0A 0 0 0 0 0 333 1\n"
    assert listeners(v6, {"333"}) == [("::", 8080)]
    pod = Pod("web-x", "default", "web", "h", deployment()["spec"]["template"], Path("/nonexistent"))
    pod.exposed = ("0.0.0.0:8080",)
    status = pod.to_object()["status"]
    assert status["reason"] == "ListensOnAllInterfaces" and "0.0.0.0:8080" in status["message"]


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_a_loopback_listener_is_not_exposed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        found = listeners(Path("/proc/net/tcp").read_text(), _inodes(os.getpid()))
        assert ("127.0.0.1", port) in found
        assert f"0.0.0.0:{port}" not in exposed_addresses(os.getpid())


def _inodes(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            found.add(link[8:-1])
    return found


def test_asyncio_is_the_only_loop_here() -> None:
    # The scenarios above run on asyncio.run's loop; a leftover one would leak fds.
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
