"""Processes the backends start and outlive: the local control plane, port-forwards.

They run in a session of their own (``setsid``), so they outlive the kernel or shell
that started them, with the package importable from wherever it was imported here.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def spawn_detached(module: str, args: list[str], log_file: Path) -> int:
    """Start ``python -m module args...`` in its own session, stdout and stderr
    appended to ``log_file`` (mode 0600); returns its pid."""
    # posix_spawn rather than Popen: nothing here waits for it to finish.
    log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        return os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", module, *args],
            {**os.environ, "PYTHONPATH": _pythonpath()},
            file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, log, 1),
                (os.POSIX_SPAWN_DUP2, log, 2),
                (os.POSIX_SPAWN_CLOSE, log),
                (os.POSIX_SPAWN_CLOSE, devnull),
            ],
            setsid=True,
        )
    finally:
        os.close(log)
        os.close(devnull)


def _pythonpath() -> str:
    # The folder this very package was imported from (a checkout, or site-packages
    # when installed), so the child runs the same code whatever its working directory.
    here = str(Path(__file__).resolve().parents[2])
    existing = os.environ.get("PYTHONPATH")
    return here if not existing else f"{here}{os.pathsep}{existing}"


def alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie child of ours counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def reap(pid: int) -> tuple[bool, int | None]:
    """(exited, exit code) of a child we spawned, without blocking."""
    try:
        waited, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return (not alive(pid), None)
    if waited == 0:
        return (False, None)
    return (True, os.waitstatus_to_exitcode(status))


def group_alive(pgid: int) -> bool:
    """True while any process of group ``pgid`` runs."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_group(pgid: int) -> None:
    """SIGKILL every process of group ``pgid`` (gone already is fine)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file, or ``(no log)``."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
