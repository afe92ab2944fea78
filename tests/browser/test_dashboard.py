"""The weighted-canary lesson in a real browser: JupyterLab + Debian's Chromium.

Runs every cell of ``05-weighted-canary.ipynb`` as a learner would (Run → Run All
Cells), then uses the live dashboard it shows: start the traffic, move the weight
slider, and read from the page that the measured v2 share follows.
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

pytestmark = pytest.mark.browser


def test_the_dashboard_follows_the_slider(page: Page, jupyter: JupyterLab) -> None:
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

    # The lesson stops the traffic before its exercise; "traffic on" starts it again.
    assert not view.traffic_on()
    view.start_traffic()
    # The roll back turned the header canary off; make sure it is off (whatever the
    # dashboard believes), so that the weight alone decides where requests go.
    view.set_header_canary(False)

    # The exercise's reference answer (the lesson's last step) applied a 25% split
    # behind the dashboard's back, while its slider still shows the roll back's 0:
    # moving it to 0 would change nothing. So go to 100 (End) first, then 0 (Home).
    view.set_weight_key("End", expected=100)
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

    view.stop_traffic()
    assert not errors, f"the page raised: {errors}"
