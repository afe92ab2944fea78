"""The lab home: one directory per lab, holding everything its runtime keeps.

``COALMINE_HOME`` selects it (default: a per-user state directory), so several labs
(a workshop notebook, a test, a benchmark) never collide.

    <home>/token            admin API token, mode 0600
    <home>/state.json       pid and ports of the running control plane
    <home>/store.json       the applied objects (survive a restart)
    <home>/controlplane.log what the control plane printed
    <home>/pods/<pod>/      a pod's mounted volumes and its log
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def token(self, create: bool = False) -> str:
        """The admin token; created (mode 0600) when ``create`` and missing."""
        try:
            return self.token_file.read_text().strip()
        except FileNotFoundError:
            if not create:
                raise
        self.ensure()
        value = secrets.token_urlsafe(32)
        # O_EXCL + mode: the token is never readable by others, not even briefly.
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
        return value

    def read_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return state if isinstance(state, dict) else None

    def write_state(self, state: dict[str, Any]) -> None:
        write_json_atomic(self.state_file, state)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old or the new file, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
