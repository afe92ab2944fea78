"""Reading manifests: files, folders, multi-document YAML, stdin, or objects.

The same loader serves the CLI (``coalmine apply -f``) and the notebooks
(``lab.apply("manifests/petstore-v1.yaml")``), so both accept the same inputs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import yaml

from helpers.errors import ManifestError
from helpers.kinds import MAX_OBJECT_BYTES, ref

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
    origins = []
    for source in _flat(sources):
        if isinstance(source, Mapping):
            origins.append("<object>")
            objects.extend(_json_only(o) for o in _unpack(dict(source), "<object>"))
        elif source == "-":
            origins.append("<stdin>")
            objects.extend(_parse((stdin or sys.stdin).read(), "<stdin>"))
        elif isinstance(source, str) and "\n" in source:
            origins.append("<text>")
            objects.extend(_parse(source, "<text>"))
        else:
            for path in _files(Path(source)):
                origins.append(str(path))
                objects.extend(_parse(_read(path), str(path)))
    for obj in objects:
        _within_limit(obj)
    if not objects:
        # kubectl: "error: no objects passed to apply"
        where = ", ".join(origins) or "no file, text or object was given"
        raise ManifestError(f"no objects found ({where}): the input is empty; nothing was applied")
    return objects


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(
            f"error reading {path}: byte {e.start} is not UTF-8 (manifests are UTF-8 text); nothing was applied"
        ) from None
    except OSError as e:
        raise ManifestError(f"error reading {path}: {e.strerror or e}; nothing was applied") from None


def _within_limit(obj: dict[str, Any]) -> None:
    # Refused here rather than sent: the lab would refuse it too, after parsing megabytes.
    size = len(json.dumps(obj, separators=(",", ":"), default=str).encode())
    if size > MAX_OBJECT_BYTES:
        raise ManifestError(
            f"{ref(obj)} is {size:,} bytes as JSON: an object may be at most {MAX_OBJECT_BYTES:,} (1 MiB, "
            "as Kubernetes allows a ConfigMap); split it into smaller objects; nothing was applied"
        )


def _json_only(obj: dict[str, Any]) -> dict[str, Any]:
    # A dict from a notebook travels as JSON: say so here rather than fail inside the client.
    try:
        json.dumps(obj, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        name = (obj.get("metadata") or {}).get("name", "?") if isinstance(obj.get("metadata"), Mapping) else "?"
        raise ManifestError(
            f"the object {obj.get('kind', '?')}/{name} holds a value JSON cannot carry ({e}); "
            "use strings, numbers, booleans, lists and dicts only; nothing was applied"
        ) from None
    return obj


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
    if not path.exists():
        raise ManifestError(f'the path "{path}" does not exist')
    return [path]


def _parse(text: str, origin: str) -> list[dict[str, Any]]:
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ManifestError(f"error parsing {origin}:{where}: {problem}; nothing was applied") from None
    except RecursionError:  # a guard in _Loader should come first; never a traceback
        raise ManifestError(
            f"error parsing {origin}: nested more than {MAX_DEPTH} levels deep; nothing was applied"
        ) from None
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
            raise ManifestError(f"error parsing {origin}: items of a List must be a list; nothing was applied")
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise ManifestError(
                    f"error parsing {origin}: items[{i}] of the List is not an object with "
                    f"apiVersion/kind/metadata ({type(item).__name__} {item!r:.40}); nothing was applied"
                )
        return [dict(item) for item in items]
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


# ── YAML as kubectl reads it ─────────────────────────────────────────────────

MAX_DEPTH = 100  # nesting levels; real manifests need fewer than 20
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_NOT_JSON = {
    "tag:yaml.org,2002:binary": "!!binary is not a JSON value: write the base64 text as a plain string "
    "(a ConfigMap's binaryData takes base64 strings)",
    "tag:yaml.org,2002:set": "!!set is not a JSON value: write a list",
    "tag:yaml.org,2002:omap": "!!omap is not a JSON value: write a mapping or a list",
    "tag:yaml.org,2002:pairs": "!!pairs is not a JSON value: write a mapping or a list",
}


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading what kubectl reads and refusing what it refuses.

    - Values are JSON values: a date such as ``2020-01-01`` stays a string (as
      kubectl's YAML-to-JSON conversion leaves it); ``!!binary``, ``!!set``, ``!!omap``,
      ``!!pairs``, ``.nan`` and ``.inf`` are refused at their line.
    - Nesting deeper than ``MAX_DEPTH`` levels is refused while parsing (Python's
      parser is recursive; go-yaml stops at 10,000).
    - Aliases: a document whose alias expansion does most of the work is refused with
      go-yaml's rule (kubectl's decoder, the fix of CVE-2019-11253), so a few hundred
      bytes cannot expand to megabytes; an anchor that contains itself is refused too.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested more than {MAX_DEPTH} levels deep: manifests are not nested this deeply",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None:
            _check_aliases(node)
        return node

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value = super().construct_yaml_float(node)
        if value != value or value in (float("inf"), float("-inf")):
            raise yaml.constructor.ConstructorError(
                None, None, f'"{node.value}" is not a number JSON can hold: quote it if it is text', node.start_mark
            )
        return value

    def construct_timestamp_text(self, node: yaml.ScalarNode) -> str:
        return str(self.construct_scalar(node))

    def refuse_not_json(self, node: yaml.Node) -> None:
        raise yaml.constructor.ConstructorError(None, None, _NOT_JSON[node.tag], node.start_mark)


# Dates stay strings: without the timestamp resolver they are plain scalars.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_float)
_Loader.add_constructor(_TIMESTAMP, _Loader.construct_timestamp_text)
for _tag in _NOT_JSON:
    _Loader.add_constructor(_tag, _Loader.refuse_not_json)


def _allowed_alias_ratio(decodes: int) -> float:
    # go-yaml's allowedAliasRatio: 99% of the decoded nodes may come from aliases up
    # to 400,000 nodes, scaling down to 10% at 4,000,000.
    low, high = 400_000, 4_000_000
    if decodes <= low:
        return 0.99
    if decodes >= high:
        return 0.10
    return 0.99 - 0.89 * (decodes - low) / (high - low)


def _check_aliases(root: yaml.Node) -> None:
    """Refuse excessive aliasing and self-containing anchors, counting the nodes the
    document expands to without expanding it (each node counted once, iteratively)."""
    expanded: dict[int, int] = {}
    in_progress: set[int] = set()
    todo: list[tuple[yaml.Node, bool]] = [(root, False)]
    while todo:
        node, children_done = todo.pop()
        children = _children(node)
        if children_done:
            expanded[id(node)] = 1 + sum(expanded[id(c)] for c in children)
            in_progress.discard(id(node))
            continue
        if id(node) in expanded:
            continue
        if id(node) in in_progress:
            raise yaml.composer.ComposerError(
                None, None, "an anchor contains an alias of itself: JSON cannot hold that", node.start_mark
            )
        in_progress.add(id(node))
        todo.append((node, True))
        todo.extend((c, False) for c in children if id(c) not in expanded)
    decodes = expanded[id(root)]
    from_aliases = decodes - len(expanded)
    if from_aliases > 100 and decodes > 1000 and from_aliases / decodes > _allowed_alias_ratio(decodes):
        raise yaml.composer.ComposerError(
            None,
            None,
            f"document contains excessive aliasing (its aliases expand it to {decodes:,} values): "
            "write the values out instead of repeating aliases",
            root.start_mark,
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
