"""Fixtures for the browser tests: Debian's Chromium, JupyterLab on a copy of the
lessons with a lab of its own, and a page. Each test gets fresh ones, and every
process they start is stopped afterwards (the lab's too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .jupyterlab import ROOT, JupyterLab, chromium_page, find_chromium, leftover_lab_processes, lesson_server

if TYPE_CHECKING:
    from playwright.sync_api import Page

SCREENSHOTS = ROOT / "test-output" / "browser"


@pytest.fixture
def chromium() -> str:
    """The Chromium executable; the test is skipped when there is none."""
    path = find_chromium()
    if path is None:
        pytest.skip(
            "no Chromium found: `make chromium` (or `apt-get install chromium`) installs the browser these tests drive"
        )
    return path


@pytest.fixture
def jupyter(tmp_path: Path, chromium: str) -> Iterator[JupyterLab]:
    """JupyterLab on a copy of the lessons; its kernels use a fresh lab home, whose
    processes must all be gone once the server and the lab are stopped."""
    home = tmp_path / "lab"
    with lesson_server(tmp_path, home) as server:
        yield server
    left = leftover_lab_processes(home)
    assert not left, f"processes of the lab {home} were left running: {left}"


@pytest.fixture
def page(chromium: str, jupyter: JupyterLab, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in headless Chromium; a screenshot of how it ended is saved under
    ``test-output/browser/``, whatever the outcome."""
    with chromium_page(chromium) as page:
        try:
            yield page
        finally:
            save_screenshot(page, f"{request.node.name}-last")


def save_screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as ``test-output/browser/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
