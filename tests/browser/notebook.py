"""A notebook open in JupyterLab, driven the way a learner drives it.

    notebook = open_notebook(page, server, "05-weighted-canary.ipynb")
    notebook.run_all()               # Run → Run All Cells, then wait until it finished
    notebook.outputs(".coalmine-readout")

Selectors are scoped to the notebook in the current tab, and text is read from cell
*outputs* only: a cell's source often contains the very words an output shows.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Locator, Page

    from .jupyterlab import JupyterLab

PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook of the tab in front
OUTPUT = f"{PANEL} .jp-OutputArea-output"

# In the page: how far a "Run All" got. Prompts read "[*]:" while a cell waits or
# runs, "[ ]:" when it has no result, "[7]:" once it ran; the execution indicator in
# the toolbar carries the kernel's status ("idle", "busy", ...).
_RUN_STATE = """(panel) => {
    const root = document.querySelector(panel);
    if (!root) return null;
    const prompts = [...root.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim());
    const outputs = [...root.querySelectorAll('.jp-OutputArea-output')].map(o => o.textContent);
    const indicator = root.querySelector('.jp-Notebook-ExecutionIndicator');
    const name = root.querySelector('.jp-KernelName');
    // Before the kernel exists the indicator already says "idle", next to "No Kernel".
    const started = name && name.textContent.trim() !== 'No Kernel';
    return {
        cells: prompts.length,
        ran: prompts.filter(p => /^\\[\\d+\\]:$/.test(p)).length,
        queued: prompts.filter(p => p.includes('*')).length,
        raised: outputs.some(o => o.includes('Traceback (most recent call last)')),
        kernel: started && indicator ? indicator.getAttribute('data-status') : 'starting',
    };
}"""

# Run All has finished when the kernel is idle and no cell waits; either every cell ran,
# or one raised (Lab then drops the cells queued after it).
_RUN_DONE = f"""(panel) => {{
    const s = ({_RUN_STATE})(panel);
    return s && s.kernel === 'idle' && s.queued === 0 && (s.ran === s.cells || s.raised);
}}"""


# In the page: the text of a cell's outputs as laid out (line breaks included). A cell
# far from the view is not rendered (CSS content-visibility), so it has no laid-out
# text: bring it into view and let two frames pass first.
_OUTPUT_TEXT = """async (cell) => {
    cell.scrollIntoView({block: 'center'});
    await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
    return [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText).join('\\n');
}"""


class Notebook:
    """The notebook in the front tab of ``page``."""

    def __init__(self, page: Page, path: Path | None = None) -> None:
        self.page = page
        self.path = path  # the notebook's file, as the server serves it

    def run_state(self) -> dict[str, object] | None:
        """``{"cells": code cells, "ran": cells with a count, "queued": cells waiting or
        running, "raised": whether an output shows a traceback, "kernel": status}``."""
        return self.page.evaluate(_RUN_STATE, PANEL)

    def wait_until_ready(self, cells: int, timeout: float = 60.0) -> None:
        """Wait until all ``cells`` code cells are on the page and the kernel is idle."""
        ready = f"""([panel, cells]) => {{
            const s = ({_RUN_STATE})(panel);
            return s && s.cells === cells && s.kernel === 'idle';
        }}"""
        self.page.wait_for_function(ready, arg=[PANEL, cells], timeout=timeout * 1000)

    def run_all(self, timeout: float = 240.0) -> float:
        """Clear every output, then Run → Run All Cells, and wait until every cell ran
        and the kernel is idle again; returns the seconds the run took. Fails with
        the traceback if a cell raised."""
        # Stored outputs (and their execution counts) look just like fresh ones: clear
        # them first, so that "every cell has a number" means "every cell ran now".
        self.menu("Edit", "Clear Outputs of All Cells")
        self.page.wait_for_function(f"(panel) => ({_RUN_STATE})(panel)?.ran === 0", arg=PANEL, timeout=30_000)
        began = time.monotonic()
        self.menu("Run", "Run All Cells")
        self.page.wait_for_function(_RUN_DONE, arg=PANEL, timeout=timeout * 1000)
        took = time.monotonic() - began
        state = self.run_state() or {}
        if state.get("raised") or state.get("ran") != state.get("cells"):
            failed = self.page.locator(OUTPUT, has_text="Traceback (most recent call last)").all_inner_texts()
            raise AssertionError(f"Run All stopped at a cell that raised ({state}):\n{''.join(failed)[-3000:]}")
        return took

    def save(self, timeout: float = 30.0) -> None:
        """File → Save Notebook, and wait until its tab no longer shows unsaved changes
        (so that leaving the page asks nothing)."""
        self.menu("File", "Save Notebook")
        self.page.wait_for_function(
            "() => !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')", timeout=timeout * 1000
        )

    def menu(self, *path: str) -> None:
        """Click through the main menu, e.g. ``menu("Run", "Run All Cells")`` (labels
        match exactly: "Run All Cells" is not "Restart Kernel and Run All Cells…")."""
        self.page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=_exactly(path[0])).click()
        for label in path[1:]:
            menu = self.page.locator(".lm-Menu").last  # the one just opened
            item_label = self.page.locator(".lm-Menu-itemLabel", has_text=_exactly(label))
            menu.locator(".lm-Menu-item", has=item_label).click()

    def add_cell(self, code: str, after: Locator | None = None) -> Locator:
        """Add a code cell holding ``code`` below the cell ``after`` (default: the
        last cell) and return it."""
        after = after if after is not None else self.page.locator(f"{PANEL} .jp-Cell").last
        after.locator(".jp-InputPrompt").click()  # selects the cell
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("b")  # command mode: insert a cell below
        cell = self.page.locator(f"{PANEL} .jp-Cell.jp-mod-selected")
        # Its place among the cells: a locator by text would not match code of several lines.
        index = cell.evaluate(f"el => [...document.querySelectorAll('{PANEL} .jp-Cell')].indexOf(el)")
        cell.locator(".cm-content").click()
        self.page.keyboard.insert_text(code)
        self.page.keyboard.press("Escape")
        return self.page.locator(f"{PANEL} .jp-Cell").nth(index)

    def run_cell(self, cell: Locator, timeout: float = 60.0) -> float:
        """Select ``cell``, press Ctrl+Enter, and wait until it shows a new execution
        count; returns the seconds from the key press to that."""
        prompt = cell.locator(".jp-InputPrompt")
        prompt.click()  # select it (the dashboard's controls may have the focus)
        before = prompt.inner_text()
        began = time.perf_counter()
        self.page.keyboard.press("Control+Enter")
        self.page.wait_for_function(
            "([el, old]) => /\\d/.test(el.textContent) && el.textContent !== old",
            arg=[prompt.element_handle(), before],
            timeout=timeout * 1000,
            polling=5,
        )
        return time.perf_counter() - began

    def code_cell(self, source: str) -> Locator:
        """The first code cell whose source holds ``source``, found by its place in the
        notebook's file (the page creates the editors of cells out of view lazily)."""
        assert self.path is not None, "open the notebook with open_notebook()"
        cells = json.loads(self.path.read_text())["cells"]
        places = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and source in "".join(c["source"])]
        assert places, f"no code cell of {self.path.name} holds {source!r}"
        return self.page.locator(f"{PANEL} .jp-Cell").nth(places[0])

    def output_text(self, cell: Locator) -> str:
        """What ``cell`` shows in its outputs, as text (scrolled into view first: the page
        lays out, and so renders text for, only the cells near the view)."""
        return str(cell.evaluate(_OUTPUT_TEXT))

    def problems(self) -> list[str]:
        """The outputs that show an error or write to stderr (a warning, a traceback)."""
        bad = self.page.locator(
            f"{OUTPUT}[data-mime-type='application/vnd.jupyter.stderr'], {OUTPUT}:has-text('Traceback')"
        )
        return [text or "(out of view)" for text in bad.all_text_contents()]

    def cell_with_output(self, selector: str) -> Locator:
        """The cell whose output holds ``selector``."""
        return self.page.locator(f"{PANEL} .jp-Cell", has=self.page.locator(f".jp-OutputArea-output {selector}"))

    def outputs(self, selector: str) -> Locator:
        """Elements matching ``selector`` inside cell outputs of this notebook."""
        return self.page.locator(f"{OUTPUT} {selector}")


def open_notebook(page: Page, server: JupyterLab, name: str, timeout: float = 90.0) -> Notebook:
    """Open ``name`` in a fresh workspace (``?reset``: no tabs from earlier sessions)
    and wait until all its cells are shown and its kernel is idle."""
    cells = sum(cell["cell_type"] == "code" for cell in json.loads((server.notebooks / name).read_text())["cells"])
    page.goto(server.url(f"lab/tree/{name}?reset"))
    notebook = Notebook(page, server.notebooks / name)
    notebook.wait_until_ready(cells, timeout)
    return notebook


def _exactly(text: str) -> re.Pattern[str]:
    return re.compile(f"^{re.escape(text)}$")
