"""The website in a real Chromium: the home page and a lesson page render, with no
error in the console or the page, a table, and images that loaded; every request
stays on the local server.

The site is built as `make docs` builds it (site/build.py), into a temporary folder
rather than _build/ so a stale build is never what is tested, and served by the
standard library's HTTP server on 127.0.0.1, stopped at the end.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest

from .conftest import save_screenshot
from .jupyterlab import ROOT, chromium_page

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # the test reports what failed; no line per request


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The site, built afresh and served on 127.0.0.1 while the module's tests run."""
    builddir = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, str(ROOT / "site" / "build.py"), "--builddir", str(builddir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    handler = functools.partial(QuietHandler, directory=str(builddir / "html"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.fixture
def site_page(chromium: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    with chromium_page(chromium) as page:
        try:
            yield page
        finally:
            save_screenshot(page, f"{request.node.name}-last")


def visit(page: Page, url: str) -> list[str]:
    """Open ``url`` and wait until nothing more loads; returns what went wrong: console
    errors, page errors, failed requests, and any request that left the local server."""
    problems: list[str] = []
    base = url.split("/", 3)[:3]
    page.on("console", lambda message: problems.append(f"console: {message.text}") if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.on(
        "response",
        lambda response: problems.append(f"{response.status}: {response.url}") if response.status >= 400 else None,
    )
    page.on(
        "request",
        lambda request: None if request.url.split("/", 3)[:3] == base else problems.append(f"elsewhere: {request.url}"),
    )
    page.goto(url)
    page.wait_for_load_state("networkidle")
    return problems


def loaded_images(page: Page) -> list[tuple[str, int]]:
    """Each image in the article: its source and the width it decoded to (0 if it did not load)."""
    return page.eval_on_selector_all(
        "article img", "images => images.map(i => [i.getAttribute('src'), i.complete ? i.naturalWidth : 0])"
    )


def test_the_home_page_renders_with_the_lessons_in_its_sidebar(site_page: Page, site_url: str) -> None:
    problems = visit(site_page, f"{site_url}/index.html")
    assert problems == []
    assert site_page.title().startswith("coalmine")
    lessons = site_page.locator("nav.bd-docs-nav a[href^='notebooks/']")
    titles = lessons.all_inner_texts()
    assert len(titles) == len(list(ROOT.glob("notebooks/[0-9][0-9]-*.ipynb")))
    assert [title.split(".")[0] for title in titles] == [str(n) for n in range(len(titles))]
    assert site_page.locator(".coalmine-launch").is_visible()


def test_a_lesson_page_renders_its_tables_plots_and_the_dashboard_picture(site_page: Page, site_url: str) -> None:
    problems = visit(site_page, f"{site_url}/notebooks/05-weighted-canary.html")
    assert problems == []
    assert site_page.locator("h1").first.inner_text().startswith("5. Weighted canary")
    table = site_page.locator("article .cell_output table.dataframe").first
    table.scroll_into_view_if_needed()
    assert table.is_visible() and table.locator("tbody tr").count() > 0
    images = loaded_images(site_page)
    assert any(src.endswith("dashboard.png") for src, _ in images), images
    assert len(images) >= 2 and all(width > 0 for _, width in images), images
    still = site_page.locator("figure.coalmine-widget-still")
    still.scroll_into_view_if_needed()
    assert still.is_visible() and "live in the lab" in still.inner_text()
