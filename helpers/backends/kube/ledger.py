"""What the lab did to a cluster, kept in the lab home so it can be undone.

``<home>/kubernetes.json`` holds, per kube context: the objects the lab applied
(in order) and the gateways it installed, with what existed before. ``reset``
reads it to leave the cluster as it was. One file, rewritten atomically.

An install is recorded twice: ``state: pending`` (with what existed before) before
any installer runs, then ``state: installed`` (with what it created) when it is done,
so a failed or interrupted install can still be resumed or undone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Ledger:
    """The lab's record for one context: ``applied`` refs and ``installed`` components."""

    def __init__(self, home: Path, context: str) -> None:
        self.file = home / "kubernetes.json"
        self.context = context

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.file.read_text())
        except (FileNotFoundError, ValueError):
            data = {}
        return data if isinstance(data, dict) else {}

    def entry(self) -> dict[str, Any]:
        found = self._read().get(self.context) or {}
        return {"applied": list(found.get("applied") or []), "installed": dict(found.get("installed") or {})}

    @contextmanager
    def change(self) -> Iterator[dict[str, Any]]:
        """Edit this context's entry; written when the block ends without error."""
        data = self._read()
        entry = self.entry()
        yield entry
        data[self.context] = entry
        self.file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, self.file)

    def applied(self) -> list[dict[str, str]]:
        applied: list[dict[str, str]] = self.entry()["applied"]
        return applied

    def installed(self) -> dict[str, Any]:
        installed: dict[str, Any] = self.entry()["installed"]
        return installed

    def remember(self, ref: dict[str, str]) -> None:
        with self.change() as entry:
            if ref not in entry["applied"]:
                entry["applied"].append(ref)

    def forget(self, ref: dict[str, str]) -> None:
        with self.change() as entry:
            entry["applied"] = [r for r in entry["applied"] if r != ref]

    def record(self, component: str, record: dict[str, Any]) -> None:
        """Write what is known of ``component``'s install (pending or done)."""
        with self.change() as entry:
            entry["installed"][component] = record

    def drop(self, component: str) -> None:
        """Forget ``component``: it is uninstalled."""
        with self.change() as entry:
            entry["installed"].pop(component, None)
