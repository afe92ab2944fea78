"""Regular expressions as Envoy runs them: RE2, never Python's ``re``.

Gloo and kgateway hand every regex to Envoy's ``safe_regex``, which is Google's RE2:
matching takes time linear in the input (no catastrophic backtracking, so a header
such as ``aaaa...b`` against ``(a+)+$`` costs microseconds, not minutes), and what
RE2 cannot do in linear time (backreferences, look-around) it refuses to compile.
The runtime compiles every pattern, a learner's or its own, through this module with
the ``google-re2`` binding (``import re2``); ``tests/test_reliability_regex.py``
checks that no runtime module imports ``re``.

Envoy also refuses a regex whose compiled RE2 program is bigger than 100
(``re2.max_program_size.error_level``, default 100): ``user_pattern`` does the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast

import re2

# Envoy's runtime key re2.max_program_size.error_level defaults to 100: a bigger
# program "will fail to compile" (envoy/type/matcher/v3/regex.proto).
MAX_PROGRAM_SIZE = 100


class RegexError(ValueError):
    """A pattern RE2 refuses; the message says why, without RE2's byte strings."""


class Match(Protocol):
    def group(self, *groups: int | str) -> Any: ...

    def groupdict(self) -> dict[str, str | None]: ...

    def start(self, group: int = 0) -> int: ...

    def end(self, group: int = 0) -> int: ...


class Pattern(Protocol):
    """A compiled RE2 pattern (the ``re``-like API of ``google-re2``)."""

    @property
    def pattern(self) -> str: ...

    def fullmatch(self, text: str) -> Match | None: ...

    def search(self, text: str) -> Match | None: ...

    def finditer(self, text: str) -> Iterator[Match]: ...

    def findall(self, text: str) -> list[Any]: ...

    def sub(self, repl: str | Callable[[Match], str], text: str) -> str: ...


def _options(case_sensitive: bool) -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own error to stderr; we raise ours
    options.case_sensitive = case_sensitive
    return options


def compile(pattern: str, case_sensitive: bool = True) -> Pattern:
    """A pattern of the runtime's own (fixed, known to be valid)."""
    return cast(Pattern, re2.compile(pattern, _options(case_sensitive)))


def user_pattern(pattern: str, case_sensitive: bool = True) -> Pattern:
    """A pattern a learner wrote, compiled as Envoy would: ``RegexError`` saying why
    when RE2 refuses it or its program is bigger than Envoy accepts."""
    if "\x00" in pattern:
        raise RegexError("a regex may not contain a NUL character")
    try:
        compiled = re2.compile(pattern, _options(case_sensitive))
    except re2.error as e:
        detail = _text(e)
        if "perl operator" in detail or "escape sequence" in detail:
            detail += " (RE2 has no backreferences or look-around)"
        raise RegexError(f"RE2 refuses it: {detail}") from None
    size = compiled._regexp.ProgramSize()
    if size > MAX_PROGRAM_SIZE:
        raise RegexError(
            f"its RE2 program size is {size}, over Envoy's limit of {MAX_PROGRAM_SIZE} "
            "(re2.max_program_size.error_level): simplify it"
        )
    return cast(Pattern, compiled)


def escape(text: str) -> str:
    """``text`` as a pattern that matches exactly it."""
    return str(re2.escape(text))


def _text(error: Exception) -> str:
    detail = error.args[0] if error.args else error
    return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
