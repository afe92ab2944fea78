"""The first minutes of a workshop: JupyterLab started as ``make lab`` starts it.

It opens on lesson 0 (not on the Launcher), its file browser shows the lessons and
their README only (no ``src/``, ``conftest.py`` or ``sanitize.cfg``), and the shipped
notebooks are trusted, so nothing is logged as "not trusted".
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import nbformat
import pytest
from nbformat.sign import NotebookNotary

from .conftest import save_screenshot
from .jupyterlab import FIRST_LESSON, JupyterLab
from .notebook import PANEL

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def test_make_lab_opens_lesson_0_with_only_the_lessons_in_view(page: Page, jupyter: JupyterLab) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    lessons = sorted(p.name for p in jupyter.notebooks.glob("[0-9][0-9]-*.ipynb"))
    assert len(lessons) == 10

    opened = jupyter.opened_url()
    assert urlsplit(opened).path == f"/lab/tree/{FIRST_LESSON}", opened
    page.goto(opened)
    tab = page.locator(".lm-TabBar-tab.jp-mod-current .lm-TabBar-tabLabel")
    tab.wait_for(state="visible", timeout=90_000)
    assert tab.inner_text() == FIRST_LESSON, "lesson 0 is open, not the Launcher"
    page.locator(f"{PANEL} .jp-Cell").first.wait_for(state="visible", timeout=90_000)

    shown = page.locator("#filebrowser .jp-DirListing-itemName")
    shown.first.wait_for(state="visible", timeout=30_000)
    assert sorted(shown.all_inner_texts()) == sorted([*lessons, "README.md"])
    listed = jupyter.api("contents")["content"]  # type: ignore[index]
    assert sorted(item["name"] for item in listed) == sorted([*lessons, "README.md"])
    for hidden in ("src", "conftest.py", "sanitize.cfg"):
        assert (jupyter.notebooks / hidden).exists(), f"{hidden} is still there, only hidden"
    save_screenshot(page, "first-minutes-lesson-0")

    notary = NotebookNotary(data_dir=str(jupyter.scratch / "data"))
    for name in lessons:
        assert notary.check_signature(nbformat.read(jupyter.notebooks / name, as_version=4)), f"{name} is trusted"
    assert "is not trusted" not in jupyter.log_tail(100_000)
    assert not errors, f"the page raised: {errors}"
