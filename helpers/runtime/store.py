"""The object store: what has been applied, kept on disk in the lab home.

Objects are kept as the user wrote them plus the metadata the API server adds
(uid, creationTimestamp, resourceVersion, generation). Every change is written
atomically, so a control plane restarted on the same home finds the same objects.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helpers.errors import LabStartError
from helpers.kinds import key
from helpers.runtime.home import write_text_atomic

Key = tuple[str, str, str]
_SERVER_FIELDS = ("uid", "creationTimestamp", "resourceVersion", "generation", "managedFields")


def now_rfc3339() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def user_view(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` without what the server adds: what ``apply`` compares."""
    view = {k: copy.deepcopy(v) for k, v in obj.items() if k != "status"}
    meta = dict(view.get("metadata") or {})
    for field in _SERVER_FIELDS:
        meta.pop(field, None)
    meta.setdefault("namespace", key(obj)[1] or None)
    if meta.get("namespace") is None:
        meta.pop("namespace")
    view["metadata"] = meta
    return view


class Store:
    """Objects by (kind, namespace, name), persisted to ``path`` on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._objects: dict[Key, dict[str, Any]] = {}
        self._texts: dict[Key, tuple[dict[str, Any], str]] = {}  # each object's JSON, for save
        self._version = 0
        self.extra: dict[str, Any] = {}  # runtime settings kept with the objects
        if path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_bytes())
            if not isinstance(data, dict) or not isinstance(data.get("objects", []), list):
                raise ValueError("it is not an object with a list of objects")
            self._version = int(data.get("resourceVersion", 0))
            self.extra = dict(data.get("extra") or {})
            for obj in data.get("objects", []):
                if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
                    raise ValueError("one of its objects has no metadata")
                self._objects[key(obj)] = obj
        except (ValueError, TypeError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError too
            raise LabStartError(
                f"the lab's store {path} is damaged ({e}): move it aside to start an empty lab "
                f"(mv {path} {path}.damaged), or restore a copy"
            ) from None

    @property
    def version(self) -> int:
        """The store's resourceVersion: one more on every change."""
        return self._version

    def get(self, k: Key) -> dict[str, Any] | None:
        return self._objects.get(k)

    def list(self, kind: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        return [
            o
            for (kk, ns, _), o in sorted(self._objects.items())
            if (kind is None or kk == kind) and (namespace is None or ns == namespace)
        ]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(list(self._objects.values()))

    def put(self, obj: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """Create or update ``obj``; returns ("created"|"configured"|"unchanged", stored)."""
        k = key(obj)
        new = user_view(obj)
        old = self._objects.get(k)
        if old is not None and user_view(old) == new:
            return "unchanged", old
        self._version += 1
        meta = new["metadata"]
        if old is None:
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
            action = "created"
        else:
            old_meta = old["metadata"]
            meta.update(
                uid=old_meta["uid"],
                creationTimestamp=old_meta["creationTimestamp"],
                generation=int(old_meta.get("generation", 1)) + 1,
            )
            action = "configured"
        meta["resourceVersion"] = str(self._version)
        self._objects[k] = new
        self._texts.pop(k, None)
        self.save()
        return action, new

    def delete(self, k: Key) -> dict[str, Any] | None:
        obj = self._objects.pop(k, None)
        self._texts.pop(k, None)
        if obj is not None:
            self._version += 1
            self.save()
        return obj

    def save(self) -> None:
        """Write every object and ``extra`` to ``path``, atomically. Each object's JSON
        is encoded once, when it is put, so a save costs one join and one write however
        big the store: the encoder, which holds the interpreter while it runs, never
        works through megabytes on a change of a few bytes."""
        texts = [self._text(k, obj) for k, obj in self._objects.items()]
        head = json.dumps({"extra": self.extra}, sort_keys=True, separators=(",", ":"))[:-1]
        write_text_atomic(self.path, f'{head},"objects":[{",".join(texts)}],"resourceVersion":{self._version}}}')

    def _text(self, k: Key, obj: dict[str, Any]) -> str:
        cached = self._texts.get(k)
        if cached is None or cached[0] is not obj:
            cached = self._texts[k] = (obj, json.dumps(obj, sort_keys=True, separators=(",", ":")))
        return cached[1]
