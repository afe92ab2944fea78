"""The weighted-canary lesson in a real browser: JupyterLab + Debian's Chromium.

Runs every cell of ``05-weighted-canary.ipynb`` as a learner would (Run → Run All
Cells), then uses the live dashboard it shows: start the traffic, move the weight
slider, and read from the page that the measured v2 share follows; apply a route from
a cell and see the slider, the message, the YAML and the readout follow it; look at it
at 1280x800 with the file browser open; restart the kernel and see it say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .conftest import save_screenshot
from .dashboard_view import DashboardView, within_sigmas
from .jupyterlab import LESSON, JupyterLab
from .notebook import open_notebook

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]


def test_the_dashboard_follows_the_slider_and_the_lab(page: Page, jupyter: JupyterLab) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))  # uncaught errors in the page's code
    notebook = open_notebook(page, jupyter, LESSON)
    notebook.run_all()
    view = DashboardView(notebook)
    assert view.part("readout").count() == 1, "exactly one dashboard is shown, in Step 6's output"
    view.show()
    save_screenshot(page, "dashboard-1-after-run-all")

    # The plot is an ipympl canvas with a size, showing the image the kernel drew.
    view.wait_for_plot()
    assert any(w > 100 and h > 100 for w, h in view.canvas_sizes()), view.canvas_sizes()
    # Step 7's last change came from a cell (lab.apply of a 30/70 split): the controls show it.
    assert (view.weight(), view.header_canary()) == (30, True)
    assert "changed outside the dashboard: now 30% to v2, header canary on" in view.message()
    assert view.stale_note_height() == 0, "the kernel is there: no note"

    # The lesson stops the traffic before its exercise; "traffic on" starts it again.
    assert not view.traffic_on()
    view.start_traffic()
    # Header canary off, so that the weight alone decides where requests go.
    view.set_header_canary(False)
    view.set_weight_key("Home", expected=0)
    zero = view.settled_readout()
    assert (zero.v2, zero.v1, zero.errors) == (0, 100, 0), zero.text
    assert zero.requests >= 100, f"too few requests in the readout's window: {zero.text}"
    assert view.weight() == 0
    assert "petstore-v2" not in view.yaml(), "with weight 0 the VirtualService routes to v1 only"
    save_screenshot(page, "dashboard-2-weight-0")

    # Half and half: typed into the slider's readout, as a learner may.
    view.set_weight_typed(50)
    half = view.settled_readout()
    assert half.errors == 0, half.text
    assert half.requests >= 100, f"too few requests in the readout's window: {half.text}"
    assert within_sigmas(half.v2, half.requests, 0.5), f"v2 share far from 50%: {half.text}"
    assert view.weight() == 50
    assert "weight: 50" in view.yaml()
    save_screenshot(page, "dashboard-3-weight-50")

    # A route applied from a cell while the traffic flows: the dashboard follows it.
    cell = notebook.add_cell("lab.apply(routing.weighted(25))")
    notebook.run_cell(cell)
    view.wait_for_weight(25)
    view.wait_for_message("changed outside the dashboard: now 25% to v2, header canary on")
    assert view.header_canary() and "weight: 25" in view.yaml()
    followed = view.settled_readout()
    assert followed.errors == 0, followed.text
    # v2 answers the fifth of the requests that carry the header, and 25% of the rest.
    assert within_sigmas(followed.v2, followed.requests, 0.2 + 0.8 * 0.25), f"v2 share far from 40%: {followed.text}"
    save_screenshot(page, "dashboard-4-applied-from-a-cell")

    # A laptop screen with the file browser open: the YAML keeps a readable width.
    page.set_viewport_size({"width": 1280, "height": 800})
    if not page.locator("#filebrowser").is_visible():
        page.locator(".jp-SideBar .lm-TabBar-tab[data-id='filebrowser']").click()
    page.locator("#filebrowser").wait_for(state="visible")
    view.notebook.outputs(".coalmine-yaml-panel").first.scroll_into_view_if_needed()
    save_screenshot(page, "dashboard-5-at-1280x800")
    panel, plot = view.box(".coalmine-yaml-panel"), view.box(".jupyter-matplotlib canvas")
    print(f"\nat 1280x800, the YAML panel: {panel}; the plot: {plot}")
    assert panel["width"] >= 300, f"the YAML is squeezed to {panel['width']:.0f} px"
    beside, below = panel["x"] >= plot["x"] + plot["width"] - 1, panel["y"] >= plot["y"] + plot["height"] - 1
    assert beside or below, f"the YAML {panel} overlaps the plot {plot}"

    # The kernel restarts: the dashboard's controls are dead now, and it says so.
    view.stop_traffic()
    assert not errors, f"the page raised: {errors}"
    notebook.menu("Kernel", "Restart Kernel…")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    view.wait_for_stale_note()
    assert "not connected to a running kernel" in view.part("status").inner_text()
    save_screenshot(page, "dashboard-6-kernel-restarted")
    # Widgets whose kernel is gone cannot send (ipywidgets says so in the page): nothing else.
    assert set(errors) <= {"Cannot send"}, f"the page raised: {errors}"
