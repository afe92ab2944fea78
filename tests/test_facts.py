"""docs/facts.md and the lessons stay in step: every local-only difference listed
there is stated in its lesson, in a ``> **Local lab:**`` note with the listed words,
and every such note in a lesson is listed there."""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
FACTS = ROOT / "docs" / "facts.md"
SOURCES = ROOT / "notebooks" / "src"
NOTE = "> **Local lab:** "
LISTED = re.compile(r"^- local-only (\d\d): (.+)$", re.MULTILINE)


@functools.cache
def _build_module() -> ModuleType:  # the parser that builds the notebooks: notes read as the learner sees them
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "scripts" / "build_notebooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def notes(lesson: str) -> list[str]:
    """The text of every local-lab note in the markdown cells of lesson ``lesson`` ("02")."""
    [source] = SOURCES.glob(f"{lesson}-*.py")
    cells = _build_module().parse(source.read_text(), str(source))
    return [
        line[len(NOTE) :]
        for c in cells
        if c.kind == "markdown"
        for line in c.source.split("\n")
        if line.startswith(NOTE)
    ]


def listed() -> list[tuple[str, str]]:
    return LISTED.findall(FACTS.read_text())


def test_facts_lists_local_only_differences():
    assert len(listed()) >= 3, "docs/facts.md lists no '- local-only NN: words' lines"


@pytest.mark.parametrize(("lesson", "words"), listed())
def test_each_local_only_difference_is_stated_in_its_lesson(lesson: str, words: str):
    found = notes(lesson)
    assert any(words in note for note in found), (
        f'lesson {lesson} does not say "{words}" in a "{NOTE.strip()}" note; its notes: {found}'
    )


@pytest.mark.parametrize("lesson", sorted(p.name[:2] for p in SOURCES.glob("[0-9][0-9]-*.py")))
def test_each_local_lab_note_of_a_lesson_is_listed_in_facts(lesson: str):
    words = [w for n, w in listed() if n == lesson]
    for note in notes(lesson):
        assert any(w in note for w in words), f'lesson {lesson}: note "{note}" is not listed in docs/facts.md'
