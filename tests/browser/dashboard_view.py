"""The live canary dashboard (``helpers.live.dashboard.Dashboard``) as a learner sees it
in the page: read its numbers, move its slider, press its buttons.

    view = DashboardView(notebook)
    view.start_traffic()
    view.set_weight_key("End", 100)     # focus the slider handle, press End: 100%
    view.set_weight_typed(50)           # type 50 into the slider's readout
    view.settled_readout()              # the numbers once the readout window is all new

Each control is found by the CSS class the dashboard gives it (``coalmine-weight``,
``coalmine-readout``, ...), inside cell outputs only.
"""

from __future__ import annotations

import math
import re
import time
from typing import TYPE_CHECKING, NamedTuple

from helpers.live.dashboard import READOUT_SECONDS

if TYPE_CHECKING:
    from playwright.sync_api import Locator

    from .notebook import Notebook

# The readout counts the requests of the last READOUT_SECONDS (less the last 0.2 s,
# whose answers may be on their way); the lesson's dashboard refreshes every 0.5 s or more.
READOUT_WINDOW_S = READOUT_SECONDS + 0.2
REFRESH_S = 0.5

_READOUT = re.compile(
    r"last [\d.]+ s: (?P<n>\d+) requests · v2 (?P<v2>\d+)% · v1 (?P<v1>\d+)%"
    r" · errors (?P<errors>\d+)"
)


class Readout(NamedTuple):
    """The numbers of the readout line: requests in the window, v2 and v1 shares (%
    as shown, rounded), errors."""

    requests: int
    v2: int
    v1: int
    errors: int
    text: str


def parse_readout(text: str) -> Readout | None:
    """The numbers in ``text`` (``last 5 s: 480 requests · v2 50% · v1 50% · errors 0 ...``),
    or None while it says "no requests yet"."""
    found = _READOUT.search(text)
    if found is None:
        return None
    return Readout(int(found["n"]), int(found["v2"]), int(found["v1"]), int(found["errors"]), text)


def within_sigmas(percent: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """Whether a share of ``percent`` % (as shown: rounded) of ``n`` requests is within
    ``sigmas`` binomial standard deviations of the probability ``p``."""
    band = sigmas * math.sqrt(p * (1 - p) / n) + 0.005  # + half a percent of rounding
    return abs(percent / 100 - p) <= band


# In the page: a hash of the pixels of the plot's canvases (ipympl draws there).
_PLOT_HASH = """(plot) => {
    let h = 0;
    for (const c of plot.querySelectorAll('canvas')) {
        if (!c.width || !c.height) continue;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < d.length; i += 4) h = (Math.imul(h, 31) + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) | 0;
    }
    return h;
}"""

_DRAWN_PIXELS = """(plot) => {
    let n = 0;
    for (const c of plot.querySelectorAll('canvas')) {
        if (!c.width || !c.height) continue;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < d.length; i += 4)
            if (d[i + 3] > 0 && (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250)) n++;
    }
    return n;
}"""


class DashboardView:
    """The dashboard shown in ``notebook``'s outputs (exactly one must be shown)."""

    def __init__(self, notebook: Notebook) -> None:
        self.notebook = notebook
        self.page = notebook.page

    def part(self, name: str) -> Locator:
        """The dashboard's widget with class ``coalmine-<name>``."""
        return self.notebook.outputs(f".coalmine-{name}")

    def show(self) -> None:
        """Scroll the notebook so that the dashboard's top is at the top of the view."""
        self.part("weight").evaluate("el => el.scrollIntoView({block: 'start'})")

    def readout_text(self) -> str:
        return self.part("readout").inner_text()

    def readout(self) -> Readout | None:
        return parse_readout(self.readout_text())

    def message(self) -> str:
        return self.part("message").inner_text()

    def yaml(self) -> str:
        return self.part("yaml").inner_text()

    def weight(self) -> int:
        """The weight the slider shows."""
        return int(self.part("weight").locator(".widget-readout").inner_text())

    def traffic_on(self) -> bool:
        """Whether the "traffic on" toggle is pressed."""
        return "mod-active" in (self.part("running").get_attribute("class") or "")

    def header_canary(self) -> bool:
        return self.part("header").locator("input[type=checkbox]").is_checked()

    def start_traffic(self, timeout: float = 15.0) -> None:
        """Press "traffic on" (if it is not pressed) and wait until it shows pressed."""
        if not self.traffic_on():
            self.part("running").click()
        self.page.wait_for_function(
            "(el) => el.classList.contains('mod-active')",
            arg=self.part("running").element_handle(),
            timeout=timeout * 1000,
        )

    def stop_traffic(self) -> None:
        if self.traffic_on():
            self.part("running").click()

    def set_header_canary(self, on: bool, timeout: float = 15.0) -> None:
        """Tick or untick "header canary" and wait until the route change is applied."""
        if self.header_canary() != on:
            self.part("header").locator("input[type=checkbox]").click()
            self.wait_for_message(f"header canary {'on' if on else 'off'}", timeout)

    def set_weight_key(self, key: str, expected: int, timeout: float = 15.0) -> None:
        """Focus the slider's handle and press ``key`` (``Home``: 0, ``End``: 100,
        ``ArrowRight``: +1), then wait until ``expected`` % is applied."""
        handle = self.part("weight").locator(".noUi-handle")
        handle.focus()
        handle.press(key)
        self.wait_for_message(f"now {expected}% to v2", timeout)

    def set_weight_typed(self, value: int, timeout: float = 15.0) -> None:
        """Type ``value`` into the slider's readout and press Enter, then wait until it
        is applied."""
        self.type_into("weight", value)
        self.wait_for_message(f"now {value}% to v2", timeout)

    def type_into(self, name: str, value: int) -> None:
        """Type ``value`` into the readout of slider ``coalmine-<name>`` and press Enter."""
        box = self.part(name).locator(".widget-readout")
        box.click()
        box.press("Control+a")
        box.press_sequentially(str(value))
        box.press("Enter")

    def wait_for_weight(self, expected: int, timeout: float = 15.0) -> None:
        """Wait until the slider shows ``expected`` %."""
        self.page.wait_for_function(
            "([el, want]) => el.textContent.trim() === String(want)",
            arg=[self.part("weight").locator(".widget-readout").element_handle(), expected],
            timeout=timeout * 1000,
        )

    def stale_note_height(self) -> float:
        """The height (CSS px) of the note that says the kernel is gone (0 while it is there)."""
        return float(self.part("status").locator(".coalmine-stale").evaluate("el => el.getBoundingClientRect().height"))

    def wait_for_stale_note(self, timeout: float = 60.0) -> None:
        """Wait until the note that says the kernel is gone shows."""
        self.page.wait_for_function(
            "(el) => el.getBoundingClientRect().height > 10",
            arg=self.part("status").locator(".coalmine-stale").element_handle(),
            timeout=timeout * 1000,
            polling=200,
        )

    def box(self, selector: str) -> dict[str, float]:
        """The bounding box (x, y, width, height) of the first element of the dashboard
        matching ``selector``."""
        found = self.notebook.outputs(selector).first.bounding_box()
        assert found is not None, f"{selector} is not shown"
        return dict(found)

    def wait_for_message(self, words: str, timeout: float = 15.0) -> None:
        """Wait until the message line under the controls contains ``words``."""
        self.page.wait_for_function(
            "([el, words]) => el.textContent.includes(words)",
            arg=[self.part("message").element_handle(), words],
            timeout=timeout * 1000,
        )

    def settled_readout(self, timeout: float = 60.0) -> Readout:
        """Wait until the readout's window holds only requests sent after now (call it
        once a route change is applied), and return the readout then.

        The plot and the readout are refreshed together, at least ``REFRESH_S`` apart,
        and the plot changes at every refresh (its time axis moves), while the
        readout's text may well repeat. So count the plot's redraws on the page: that
        many span the readout's window."""
        needed = math.ceil(READOUT_WINDOW_S / REFRESH_S) + 2  # +2: the one on screen may be older
        plot = self.notebook.outputs(".jupyter-matplotlib").element_handle()
        seen = self.page.evaluate(_PLOT_HASH, plot)
        deadline = time.monotonic() + timeout
        for redraws in range(needed):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the plot was redrawn {redraws} times in {timeout:g} s, not {needed}")
            # Wait in the page for the next redraw (a condition, not a pause).
            self.page.wait_for_function(
                f"([plot, seen]) => ({_PLOT_HASH})(plot) !== seen", arg=[plot, seen], timeout=left * 1000, polling=100
            )
            seen = self.page.evaluate(_PLOT_HASH, plot)
        text = self.readout_text()
        readout = parse_readout(text)
        if readout is None:
            raise AssertionError(f"the readout shows no numbers: {text!r}")
        return readout

    def wait_for_plot(self, min_pixels: int = 1000, timeout: float = 30.0) -> None:
        """Wait until the plot's canvas has a size and shows a drawing (the kernel
        sends the image after the canvas is shown)."""
        self.page.wait_for_function(
            f"(plot) => ({_DRAWN_PIXELS})(plot) >= {min_pixels}",
            arg=self.notebook.outputs(".jupyter-matplotlib").element_handle(),
            timeout=timeout * 1000,
            polling=100,
        )

    def canvas_sizes(self) -> list[tuple[float, float]]:
        """Width and height (CSS pixels) of each plot canvas or image in the outputs."""
        boxes = self.notebook.outputs(".jupyter-matplotlib canvas, .jupyter-matplotlib img").evaluate_all(
            "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; })"
        )
        return [tuple(box) for box in boxes]
