"""Schemas written as data: the engine both translators' validation runs on.

A schema is a tree of ``Node``s (``Obj`` with named fields, ``ListOf``, ``MapOf`` and
leaf types such as ``Scalar``). Checking a value walks the tree and collects, in a
``Found``, every error and warning with the exact field path, e.g.
``spec.virtualHost.routes[2].routeAction.multi.destinations[0].weight``. Gloo's
tables are in ``gloo.schema``, the Gateway API's in ``gatewayapi.schema``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.runtime import regex

IGNORED = "not supported by the local runtime; ignored"
_WORD = regex.compile(r"[A-Za-z_][\w-]*")
_NUMBER = regex.compile(r"-?\d+(\.\d+)?")


@dataclass
class Found:
    """Errors and warnings collected while walking one resource."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}" if path else message)

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}" if path else message)


def at(path: str, name: str) -> str:
    """The path of field ``name`` inside ``path`` (map keys that are not plain
    words are shown quoted, e.g. ``headers[":path"]``)."""
    if not _plain(name):
        return f'{path}["{name}"]'
    return f"{path}.{name}" if path else name


@functools.lru_cache(maxsize=4096)
def _plain(name: str) -> bool:
    # Field names repeat (every route has "matchers"): matched once each, not per use.
    return _WORD.fullmatch(name) is not None


def shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        return f'string "{value}"'
    return "a list" if isinstance(value, list) else "an object" if isinstance(value, Mapping) else type(value).__name__


class Node:
    """One place in the schema; ``check`` reports what is wrong with ``value``."""

    def check(self, value: Any, path: str, found: Found) -> None:
        raise NotImplementedError


class Anything(Node):
    """Accepted as is (read-only or bookkeeping fields such as ``status``)."""

    def check(self, value: Any, path: str, found: Found) -> None:
        return None


@dataclass
class Ignored(Node):
    """A real Gloo field the local runtime does not implement: a warning."""

    why: str = IGNORED

    def check(self, value: Any, path: str, found: Found) -> None:
        if value not in (None, False, {}, []):
            found.warn(path, self.why)


@dataclass
class Refused(Node):
    """A real Gloo field the local runtime cannot honour without changing what
    the route means: an error, so the resource is refused rather than misrouted."""

    hint: str = ""

    def check(self, value: Any, path: str, found: Found) -> None:
        found.error(path, "not supported by the local runtime" + (f"; {self.hint}" if self.hint else ""))


@dataclass
class Scalar(Node):
    kind: str  # "string", "bool", "int", "number"
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def check(self, value: Any, path: str, found: Found) -> None:
        if self.kind == "string":
            if not isinstance(value, str):
                hint = (
                    f' (quote it: "{str(value).lower() if isinstance(value, bool) else value}")'
                    if isinstance(value, (bool, int, float))
                    else ""
                )
                return found.error(path, f"expected a string, got {shown(value)}{hint}")
            if self.choices and value not in self.choices:
                return found.error(path, f'"{value}" is not one of {", ".join(self.choices)}')
            return None
        if self.kind == "bool":
            if not isinstance(value, bool):
                return found.error(path, f"expected true or false, got {shown(value)}")
            return None
        ok = isinstance(value, int) if self.kind == "int" else isinstance(value, (int, float))
        if not ok or isinstance(value, bool):
            quoted = isinstance(value, str) and _NUMBER.fullmatch(value) is not None
            # A quoted number is a number in the wrong clothes: say so first.
            what = "a whole number" if self.kind == "int" and not quoted else "a number"
            hint = " (remove the quotes)" if quoted else ""
            return found.error(path, f"expected {what}, got {shown(value)}{hint}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            found.error(
                path,
                f"{value} is out of range: it must be from {self.low:.15g} to {self.high:.15g}"
                if self.high is not None
                else f"{value} must be at least {self.low:.15g}",
            )
        return None


STR, BOOL = Scalar("string"), Scalar("bool")
UINT = Scalar("int", 0, 4294967295)


class Regex(Node):
    """A string that must compile as a regular expression."""

    def check(self, value: Any, path: str, found: Found) -> None:
        STR.check(value, path, found)
        if isinstance(value, str):
            compile_regex(value, path, found)


def compile_regex(pattern: str, path: str, found: Found, case_sensitive: bool = True) -> regex.Pattern | None:
    """A learner's regex compiled as Envoy would (RE2, ``regex.user_pattern``); a
    pattern RE2 refuses is reported at ``path`` instead of raising."""
    try:
        return regex.user_pattern(pattern, case_sensitive)
    except regex.RegexError as e:
        found.error(path, f'invalid regex "{pattern}": {e}')
        return None


@dataclass
class ListOf(Node):
    item: Node

    def check(self, value: Any, path: str, found: Found) -> None:
        if not isinstance(value, list):
            return found.error(path, f"expected a list, got {shown(value)} (write it as `- item` lines or [..])")
        for i, v in enumerate(value):
            if v is None:
                found.error(f"{path}[{i}]", "empty list item")
            else:
                self.item.check(v, f"{path}[{i}]", found)
        return None


@dataclass
class MapOf(Node):
    value: Node

    def check(self, value: Any, path: str, found: Found) -> None:
        if not isinstance(value, Mapping):
            return found.error(path, f"expected an object (name: value pairs), got {shown(value)}")
        for k, v in value.items():
            self.value.check(v, at(path, str(k)), found)
        return None


Rule = Callable[[Mapping[str, Any], str, Found], None]


@dataclass
class Obj(Node):
    """An object with known fields; unknown fields are errors unless ``open``."""

    fields: dict[str, Node]
    required: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    hints: Mapping[str, str] = field(default_factory=dict)
    open: bool = False

    def check(self, value: Any, path: str, found: Found) -> None:
        if not isinstance(value, Mapping):
            return found.error(path, f"expected an object, got {shown(value)}")
        for name in self.required:
            if value.get(name) is None:
                found.error(at(path, name), "required field is missing")
        for name, v in value.items():
            node = self.fields.get(str(name))
            if node is None:
                if not self.open:
                    found.error(at(path, str(name)), _unknown(str(name), self))
            elif v is not None:  # YAML `key:` with nothing after it means "not set"
                node.check(v, at(path, str(name)), found)
        for rule in self.rules:
            rule(value, path, found)
        return None


def _unknown(name: str, obj: Obj) -> str:
    hint = obj.hints.get(name)
    if hint:
        return f"unknown field; {hint}"
    return f"unknown field (known here: {', '.join(sorted(obj.fields))})"


def one_of(names: tuple[str, ...], required: str | None = None) -> Rule:
    """A rule: at most one of ``names`` is set; with ``required``, exactly one,
    and ``required`` is the message when none is."""

    def rule(value: Mapping[str, Any], path: str, found: Found) -> None:
        present = [n for n in names if value.get(n) is not None]
        if len(present) > 1:
            found.error(path, f"only one of {', '.join(names)} may be set, found {' and '.join(present)}")
        elif not present and required:
            found.error(path, required)

    return rule
