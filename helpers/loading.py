"""Reading manifests: files, folders, multi-document YAML, stdin, or objects.

The same loader serves the CLI (``coalmine apply -f``) and the notebooks
(``lab.apply("manifests/petstore-v1.yaml")``), so both accept the same inputs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import yaml

from helpers.errors import ManifestError

Source = str | Path | Mapping[str, Any]
_SUFFIXES = (".yaml", ".yml", ".json")
_MANIFESTS = Path(__file__).resolve().parent / "manifests"


def manifests_dir() -> Path:
    """The folder of the lab's manifests (petstore, Gloo and Gateway API steps), as
    installed with the package; ``manifests/`` in a checkout is the same folder.

    >>> (manifests_dir() / "petstore-v1.yaml").is_file()
    True
    """
    return _MANIFESTS


def load_manifests(sources: Source | Iterable[Source], stdin: IO[str] | None = None) -> list[dict[str, Any]]:
    """Every object in ``sources``, in order.

    A source is a path to a file or a folder (its ``*.yaml``, ``*.yml`` and
    ``*.json`` files, sorted), ``"-"`` for standard input, a YAML text (anything
    with a newline), or an object (a dict); ``sources`` is one source or a list of
    them (lists may nest, so what this returns can be passed back in). ``kind: List``
    is unpacked. A file that does not parse raises ``ManifestError`` naming the file
    and line, and nothing from any source is returned.
    """
    objects: list[dict[str, Any]] = []
    for source in _flat(sources):
        if isinstance(source, Mapping):
            objects.extend(_unpack(dict(source), "<object>"))
        elif source == "-":
            objects.extend(_parse((stdin or sys.stdin).read(), "<stdin>"))
        elif isinstance(source, str) and "\n" in source:
            objects.extend(_parse(source, "<text>"))
        else:
            for path in _files(Path(source)):
                objects.extend(_parse(path.read_text(), str(path)))
    return objects


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
    if not path.exists():
        raise ManifestError(f'the path "{path}" does not exist')
    return [path]


def _parse(text: str, origin: str) -> list[dict[str, Any]]:
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ManifestError(f"error parsing {origin}:{where}: {problem}; nothing was applied") from e
    objects = []
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ManifestError(
                f"error parsing {origin}: document {i + 1} is a {type(doc).__name__}, "
                "not an object with apiVersion/kind/metadata; nothing was applied"
            )
        objects.extend(_unpack(doc, origin))
    return objects


def _unpack(doc: dict[str, Any], origin: str) -> list[dict[str, Any]]:
    if doc.get("kind") == "List" or (str(doc.get("kind", "")).endswith("List") and "items" in doc):
        items = doc.get("items") or []
        if not isinstance(items, list):
            raise ManifestError(f"error parsing {origin}: items of a List must be a list")
        return [dict(item) for item in items if isinstance(item, Mapping)]
    return [doc]


def _flat(sources: Any) -> list[Source]:
    # One path is one source, not the characters of its name; learners pass lists of
    # what load_manifests returned, so lists nest.
    if isinstance(sources, (str, Path, Mapping)):
        return [sources]
    found: list[Source] = []
    for source in sources:
        if isinstance(source, (list, tuple)):
            found.extend(_flat(source))
        elif isinstance(source, (str, Path, Mapping)):
            found.append(source)
        else:
            raise ManifestError(
                f"cannot read manifests from a {type(source).__name__}: give a path, YAML text, "
                "a dict, or a list of those; nothing was applied"
            )
    return found
