"""Processes the backends start and outlive: the local control plane, port-forwards.

They run in a session of their own (``setsid``), so they outlive the kernel or shell
that started them, with the package importable from wherever it was imported here.

A process that exits stays a *zombie* until its parent reaps it, and a notebook
kernel never waits for the control plane it started in lesson 0. So the process that
spawns one also reaps it, from a daemon thread, as soon as it exits; and ``alive``
counts a zombie (``/proc/<pid>/stat`` state ``Z``) as gone, so that ``down`` from any
other process does not wait for a parent that will never reap.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

# The children's reaper threads, and the exit codes they collected, by pid.
_reapers: dict[int, threading.Thread] = {}
_exit_codes: dict[int, int] = {}


def spawn_detached(module: str, args: list[str], log_file: Path) -> int:
    """Start ``python -m module args...`` in its own session, stdout and stderr
    appended to ``log_file`` (mode 0600); returns its pid."""
    # posix_spawn rather than Popen: nothing here waits for it to finish.
    log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        pid = os.posix_spawn(
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
    reaper = threading.Thread(target=_reap_when_done, args=(pid,), name=f"coalmine-reap-{pid}", daemon=True)
    _reapers[pid] = reaper
    reaper.start()
    return pid


def _reap_when_done(pid: int) -> None:
    """Wait for child ``pid`` to exit (the system call reaps it) and keep its exit code."""
    with contextlib.suppress(ChildProcessError):  # someone reaped it first: they have the code
        _, status = os.waitpid(pid, 0)
        _exit_codes[pid] = os.waitstatus_to_exitcode(status)
    _reapers.pop(pid, None)


def _pythonpath() -> str:
    # The folder this very package was imported from (a checkout, or site-packages
    # when installed), so the child runs the same code whatever its working directory.
    here = str(Path(__file__).resolve().parents[2])
    existing = os.environ.get("PYTHONPATH")
    return here if not existing else f"{here}{os.pathsep}{existing}"


def alive(pid: int) -> bool:
    """True while process ``pid`` runs. A zombie (exited, not yet reaped by its parent)
    is gone; a zombie child of ours is reaped here."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    try:
        waited, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child, or our reaper thread has just reaped it
    else:
        if waited == 0:
            return True
        _exit_codes[pid] = os.waitstatus_to_exitcode(status)
        return False
    return _state(pid) not in ("Z", "X", None)


def reap(pid: int) -> tuple[bool, int | None]:
    """(exited, exit code) of a child we spawned, without blocking; the code is None
    when it is not known (not our child)."""
    try:
        waited, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        reaper = _reapers.get(pid)
        if reaper is not None and pid not in _exit_codes and not alive(pid):
            reaper.join(1.0)  # it reaped the child and is storing the code
        if pid in _exit_codes:
            return (True, _exit_codes[pid])
        return (not alive(pid), None)
    if waited == 0:
        return (False, None)
    _exit_codes[pid] = os.waitstatus_to_exitcode(status)
    return (True, _exit_codes[pid])


def _state(pid: int) -> str | None:
    """The state letter of ``pid`` in ``/proc`` (``R``, ``S``, ``Z``...); ``"?"`` where
    there is no ``/proc``; None when there is no such process."""
    if not _HAS_PROC:
        return "?"
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return "?"
    # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
    return stat.rpartition(")")[2].split()[0]


_HAS_PROC = Path("/proc/self/stat").exists()


def group_alive(pgid: int) -> bool:
    """True while any process of group ``pgid`` runs (zombies do not count)."""
    if _HAS_PROC:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue  # exited while we looked
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
        return False
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
