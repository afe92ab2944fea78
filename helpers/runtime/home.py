"""The lab home: one directory per lab, holding everything its runtime keeps.

``COALMINE_HOME`` selects it (default: a per-user state directory), so several labs
(a workshop notebook, a test, a benchmark) never collide.

    <home>/                 the home itself, mode 0700 (made so even when it existed)
    <home>/token            admin API token (43 characters), mode 0600, written atomically
    <home>/state.json       pid and ports of the running control plane
    <home>/store.json       the applied objects (survive a restart)
    <home>/controlplane.log what the control plane printed
    <home>/pods/<pod>/      a pod's mounted volumes and its log (rotated); removed with the pod
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.errors import LabNotRunning, LabStartError

# A token shorter than this was cut short (or emptied): it is never accepted.
MIN_TOKEN_LENGTH = 32
# Exit codes of the control plane that `coalmine up` acts on: another control plane
# holds this home (join it), or this one refused to start (its one-line reason, after
# REFUSED_PREFIX, ends the log).
ALREADY_RUNNING = 3
REFUSED = 2
REFUSED_PREFIX = "coalmine: cannot start: "


def default_home() -> Path:
    """The lab home used when ``COALMINE_HOME`` is not set."""
    env = os.environ.get("COALMINE_HOME")
    if env:
        return Path(env).expanduser().resolve()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return (Path(state) / "coalmine" / "default").resolve()


@dataclass(frozen=True)
class LabHome:
    """Paths inside one lab home, and its token and state files."""

    root: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> LabHome:
        return cls(Path(home).expanduser().resolve() if home else default_home())

    @property
    def token_file(self) -> Path:
        return self.root / "token"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def store_file(self) -> Path:
        return self.root / "store.json"

    @property
    def log_file(self) -> Path:
        return self.root / "controlplane.log"

    @property
    def lock_file(self) -> Path:
        return self.root / "controlplane.lock"

    @property
    def pods_dir(self) -> Path:
        return self.root / "pods"

    def ensure(self) -> None:
        """Create the home if needed, and make it private whether new or not: the
        folder 0700, its files 0600 (the token opens the admin API)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.chmod(self.root, 0o700)
            for path in (self.token_file, self.store_file, self.state_file, self.log_file):
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(path, 0o600)
        except PermissionError as e:
            raise LabStartError(
                f"cannot make the lab home {self.root} private ({e.strerror}): it belongs to another user; "
                "pick another with COALMINE_HOME"
            ) from None

    def token(self, create: bool = False) -> str:
        """The admin token. With ``create``, a missing or unusable one (empty, short:
        a write cut short) is replaced by a new one, written atomically with mode
        0600; without, an unusable one raises ``LabNotRunning``."""
        value = self._read_token()
        if value is not None and len(value) >= MIN_TOKEN_LENGTH:
            return value
        if not create:
            if value is None:
                raise FileNotFoundError(self.token_file)
            raise LabNotRunning(
                f"the lab token {self.token_file} is empty or too short: "
                "run `coalmine down` then `coalmine up` to make a new one"
            )
        self.ensure()
        fresh = secrets.token_urlsafe(32)
        tmp = self.root / f".token.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(fresh + "\n")
                f.flush()
                os.fsync(f.fileno())
            if value is None:
                try:
                    os.link(tmp, self.token_file)  # atomic, and only if no one made one meanwhile
                except FileExistsError:
                    return self.token(create=True)  # another `up` won: use its token
            else:
                os.replace(tmp, self.token_file)  # an unusable token: replace it whole
        finally:
            tmp.unlink(missing_ok=True)
        return fresh

    def _read_token(self) -> str | None:
        try:
            return self.token_file.read_text(errors="replace").strip()
        except FileNotFoundError:
            return None

    def read_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return state if isinstance(state, dict) else None

    def write_state(self, state: dict[str, Any]) -> None:
        write_json_atomic(self.state_file, state)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old or the new file, never half of one;
    the file is private (0600), as everything in a lab home."""
    write_text_atomic(path, json.dumps(data, sort_keys=True, separators=(",", ":")))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` as ``write_json_atomic`` writes JSON: whole, and private."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
