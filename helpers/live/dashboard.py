"""The live canary dashboard: move a slider, watch the traffic follow.

    from helpers.live.dashboard import Dashboard
    dash = Dashboard(lab)     # starts 100 requests a second through the gateway
    dash                      # shows the controls, the live plot and the VirtualService
    dash.stop()               # stops the traffic and the plot

Every control applies a real route change (the VirtualService shown on the right)
through the lab, exactly as ``lab.apply`` would. The plot and the numbers are
measured from real requests; nothing is simulated. A route change made elsewhere (a
cell's ``lab.apply``, ``exercises.solve``) is read back within a second: the controls,
the dashed line, the message and the YAML follow it. When the kernel behind the
dashboard is gone (restarted, or the notebook was just opened), the widget says so.

When a Flagger Canary steers the weights instead of you, its view is
``helpers.live.progressive_view.ProgressiveView(lab)`` (lesson 8).
"""

from __future__ import annotations

import html
import itertools
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets as widgets

from helpers.builders.routing import CANARY_HEADER
from helpers.errors import CoalmineError
from helpers.live.control import CanaryControl, Change
from helpers.live.plotting import DistributionPlot
from helpers.live.traffic import Traffic, cell, summarize

if TYPE_CHECKING:
    import pandas as pd

    from helpers.lab import Lab

READOUT_SECONDS = 5.0
# The widgets a learner (and a browser test) finds by their CSS class, coalmine-<name>.
_PARTS = {"weight": "weight", "header": "header", "rate": "rate", "running": "running", "readout": "readout"}
_PARTS |= {"message": "message", "status": "status", "yaml_view": "yaml"}
_PARTS |= {"promote_button": "promote", "rollback_button": "rollback"}
STALE_SECONDS = 5  # no sign of life from the kernel for this long: say the controls are dead

# The kernel re-renders this every refresh; each render restarts the animation, so the
# note only shows once renders stop coming (kernel restarted or gone, notebook reopened).
_STALE = (
    "<style>@keyframes coalmine-stale {{ to {{ max-height: 12em; }} }}"
    ".coalmine-stale {{ max-height: 0; overflow: hidden; color: #C44E52;"
    " animation: coalmine-stale 0s linear {delay}s forwards; }}</style>"
    '<div class="coalmine-stale" data-beat="{beat}">&#9888; <b>This dashboard is not connected to a running '
    "kernel</b> (the kernel was restarted or stopped, or the notebook was just opened): its controls do "
    "nothing and the plot is frozen. Run the cell that makes the dashboard again.</div>"
)


class Dashboard:
    """Controls, a live plot and the applied YAML for the canary of ``lab``.

    ``rate`` is the traffic in requests a second; ``header_share`` the share of those
    requests that carry ``x-canary: true``; ``window`` how many seconds the plot shows;
    ``refresh`` how often (seconds) the plot and numbers are redrawn and the applied
    routes are read. With ``start`` (the default) the traffic begins at once.
    """

    # Re-running the cell that makes a dashboard must not leave the old one's traffic
    # running too: the newest dashboard takes over.
    _live: ClassVar[weakref.WeakSet[Dashboard]] = weakref.WeakSet()

    def __init__(
        self,
        lab: Lab,
        rate: int = 100,
        path: str = "/findPets",
        header_share: float = 0.2,
        window: float = 60.0,
        refresh: float = 0.5,
        start: bool = True,
    ) -> None:
        self.traffic = Traffic(lab, rate=rate, path=path, headers={CANARY_HEADER: "true"}, header_share=header_share)
        self.control = CanaryControl(lab, lambda: self.traffic.elapsed, header_share, path)
        self.plot = DistributionPlot(window, figsize=(7.2, 5.4))
        self.refresh = refresh
        self._lock = threading.Lock()  # one route change (or read-back) at a time
        self._draw_lock = threading.Lock()
        self._local = threading.local()  # .quiet: this thread moves a control, its handler does nothing
        self._closing = threading.Event()
        self._loop_thread: threading.Thread | None = None
        self._refreshes: list[float] = []
        self._draws = 0
        self._beats = 0
        self._build()
        for older in list(Dashboard._live):
            older._retire("stopped: a newer dashboard took over")
        Dashboard._live.add(self)
        self._ensure_loop()
        if start:
            self.start()

    # ── what the learner calls ───────────────────────────────────────────────

    def start(self) -> None:
        """Start (or restart) the traffic and the live plot."""
        if not self.traffic.running:
            with self._lock:
                # Show what is applied now, whoever applied it.
                self.control.refresh()
                self._show_state()
            self._refreshes = []
            self.traffic.start()
            # A new run has a new clock: its plot starts from the state applied now.
            c = self.control
            c.changes = [Change(0.0, c.v2_percent, c.describe(), c.expected())]
        self._ensure_loop()
        self._set_quietly(self.running, True)

    def stop(self) -> None:
        """Stop the traffic and the live plot (the controls still apply routes)."""
        self.traffic.stop()
        self._redraw()
        self._set_quietly(self.running, False)

    def close(self) -> None:
        """Stop, and remove the dashboard from the page."""
        self._closing.set()
        if self._loop_thread is not None:
            self._loop_thread.join()
        self.stop()
        for name in (*_PARTS, "canvas", "widget"):
            getattr(self, name).close()

    def sync(self) -> bool:
        """Read the applied routes now and follow them, e.g. right after a cell's
        ``lab.apply`` (the dashboard also does it by itself every ``refresh`` seconds).
        True when they had changed since the dashboard last looked."""
        with self._lock:
            return self._take_up()

    def set_weight(self, v2_percent: int) -> None:
        """Move the weight slider to ``v2_percent``, as a learner would."""
        self.weight.value = v2_percent

    def stats(self) -> dict[str, Any]:
        """How the dashboard keeps up since the traffic (re)started: refreshes, their mean
        and longest interval (s), figure draws the browser asked for, and the last route
        change (``apply_ms``: time to apply)."""
        times = list(self._refreshes)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        return {
            "refreshes": len(times),
            "mean_refresh_interval_s": sum(gaps) / len(gaps) if gaps else None,
            "max_refresh_interval_s": max(gaps) if gaps else None,
            "draws": self._draws,
            "last_apply": dict(self.control.last_apply),
            "requests_sent": self.traffic.sent,
        }

    def readout_text(self) -> str:
        """The numbers line under the controls, as text."""
        return _readout(self.traffic.frame(last=READOUT_SECONDS), self.traffic.elapsed, self.traffic.rate)

    def __repr__(self) -> str:
        return f"<Dashboard: {self.control.describe()}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)  # a short, stable text instead of the widget tree
        return bundle

    # ── building ─────────────────────────────────────────────────────────────

    def _build(self) -> None:
        from ipympl.backend_nbagg import Canvas, FigureManager

        wide = {"description_width": "initial"}
        self.weight = widgets.IntSlider(
            value=self.control.v2_percent,
            min=0,
            max=100,
            step=1,
            description="v2 weight (%)",
            continuous_update=False,
            style=wide,
            layout=widgets.Layout(width="360px"),
        )
        self.header = widgets.Checkbox(
            value=self.control.header, indent=False, description=f"header canary ({CANARY_HEADER}: true goes to v2)"
        )
        self.promote_button = widgets.Button(
            description="Promote", icon="check", button_style="success", tooltip="send all traffic to v2"
        )
        self.rollback_button = widgets.Button(
            description="Roll back",
            icon="undo",
            button_style="warning",
            tooltip="send all traffic to v1, header canary off",
        )
        self.rate = widgets.IntSlider(
            value=int(self.traffic.rate),
            min=0,
            max=1000,
            step=10,
            description="traffic (req/s)",
            continuous_update=False,
            style=wide,
            layout=widgets.Layout(width="360px"),
        )
        self.running = widgets.ToggleButton(value=False, description="traffic on", icon="play")
        self.readout = widgets.HTML("no requests yet")
        self.message = widgets.HTML(f"current state: {html.escape(self.control.describe())}")
        self.status = widgets.HTML(_STALE.format(delay=STALE_SECONDS, beat=0))
        # The YAML takes what the plot leaves of the row, and goes below it when that is
        # too little (a narrow window, the file browser open).
        self.yaml_view = widgets.HTML(
            _pre(self.control.yaml()), layout=widgets.Layout(width="100%", height="520px", overflow="auto")
        )
        for attribute, name in _PARTS.items():
            getattr(self, attribute).add_class(f"coalmine-{name}")

        self.canvas = Canvas(self.plot.figure)
        FigureManager(self.canvas, 0)
        self.canvas.header_visible = False
        self.canvas.footer_visible = False
        self.canvas.toolbar_visible = False
        self.canvas.resizable = False
        self.canvas.mpl_connect("draw_event", self._count_draw)

        self.weight.observe(self._on_weight, names="value")
        self.header.observe(self._on_header, names="value")
        self.rate.observe(self._on_rate, names="value")
        self.running.observe(self._on_running, names="value")
        self.promote_button.on_click(lambda _: self._apply(self.control.promote))
        self.rollback_button.on_click(lambda _: self._apply(self.control.rollback))

        wrap = widgets.Layout(display="flex", flex_flow="row wrap", align_items="flex-start")
        controls = widgets.VBox(
            [
                widgets.Box([self.weight, self.header], layout=wrap),
                widgets.Box([self.promote_button, self.rollback_button, self.rate, self.running], layout=wrap),
                self.readout,
                self.message,
                self.status,
            ]
        )
        yaml_box = widgets.VBox(
            [widgets.HTML("<b>VirtualService applied</b>"), self.yaml_view],
            layout=widgets.Layout(flex="1 1 320px", min_width="300px", max_width="640px"),
        )
        yaml_box.add_class("coalmine-yaml-panel")
        self.widget = widgets.VBox([controls, widgets.Box([self.canvas, yaml_box], layout=wrap)])

    # ── handlers (the kernel's main thread) ──────────────────────────────────

    def _on_weight(self, change: dict[str, Any]) -> None:
        if not self._quiet():
            self._apply(lambda: self.control.set(v2_percent=int(change["new"])))

    def _on_header(self, change: dict[str, Any]) -> None:
        if not self._quiet():
            self._apply(lambda: self.control.set(header=bool(change["new"])))

    def _on_rate(self, change: dict[str, Any]) -> None:
        self.traffic.rate = change["new"]

    def _on_running(self, change: dict[str, Any]) -> None:
        if self._quiet():
            return
        if change["new"]:
            self.start()
        else:
            self.stop()

    def _apply(self, action: Any) -> None:
        with self._lock:
            try:
                lines = action()
            except CoalmineError as e:
                self.message.value = (
                    f'<span style="color:#C44E52">refused, nothing changed: {html.escape(str(e))}</span>'
                )
            else:
                took = self.control.last_apply.get("apply_ms", 0.0)
                self.message.value = (
                    f"{html.escape('; '.join(lines))} ({took:.0f} ms) · now {html.escape(self.control.describe())}"
                )
            self._show_state()

    def _show_state(self) -> None:
        # The controls show the state that is applied, whatever happened.
        self._set_quietly(self.weight, self.control.v2_percent)
        self._set_quietly(self.header, self.control.header)
        self.yaml_view.value = _pre(self.control.yaml())

    def _set_quietly(self, widget: widgets.ValueWidget, value: Any) -> None:
        self._local.quiet = True
        try:
            widget.value = value
        finally:
            self._local.quiet = False

    def _quiet(self) -> bool:
        return bool(getattr(self._local, "quiet", False))

    def _retire(self, why: str) -> None:
        """A newer dashboard took over: stop the traffic and the read-backs, say so."""
        self._closing.set()
        if self._loop_thread is not None and self._loop_thread is not threading.current_thread():
            self._loop_thread.join()
        if self.traffic.running:
            self.stop()
        self.message.value = html.escape(why)
        self.status.value = ""

    # ── the loop (a background thread: it reads, sets traits and asks for a draw) ──

    def _ensure_loop(self) -> None:
        if self._closing.is_set() or (self._loop_thread is not None and self._loop_thread.is_alive()):
            return
        self._loop_thread = threading.Thread(target=self._loop, name="coalmine-dashboard", daemon=True)
        self._loop_thread.start()

    def _loop(self) -> None:
        while not self._closing.is_set():
            began = time.monotonic()
            self._follow()
            if self.traffic.running:
                self._redraw()
                self._refreshes.append(began)
                del self._refreshes[:-1000]
            self._beats += 1
            self.status.value = _STALE.format(delay=STALE_SECONDS, beat=self._beats)
            self._closing.wait(max(0.0, self.refresh - (time.monotonic() - began)))

    def _follow(self) -> None:
        """Take up a VirtualService applied elsewhere (not while a control applies one)."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._take_up()
        except CoalmineError:
            pass  # the lab is down or busy: the next control that is used says so
        finally:
            self._lock.release()

    def _take_up(self) -> bool:
        if self.control.follow() is None:
            return False
        self._show_state()
        note = "" if self.control.built_here() else " (routes the controls do not build: moving one replaces them)"
        self.message.value = f"changed outside the dashboard: now {html.escape(self.control.describe())}{note}"
        return True

    def _redraw(self) -> None:
        with self._draw_lock:
            now = self.traffic.elapsed
            frame = self.traffic.frame(last=(self.plot.window or 0) + 2 if self.plot.window else None)
            self.plot.update(frame, now, self.control.changes, totals=self.traffic.answered)
            # The readout's last seconds are in the plot's frame already: no second copy.
            self.readout.value = f"<code>{html.escape(_readout(frame, now, self.traffic.rate))}</code>"
            self.canvas.draw_idle()

    def _count_draw(self, _event: object) -> None:
        self._draws += 1


def _pre(text: str) -> str:
    return f'<pre style="font-size:11px;line-height:1.25;margin:0">{html.escape(text)}</pre>'


def _readout(frame: pd.DataFrame, now: float, rate: float, seconds: float = READOUT_SECONDS) -> str:
    """The numbers line: the requests due in the last ``seconds`` before ``now``."""
    frame = frame[(frame["sent_s"] >= now - seconds) & (frame["sent_s"] < now - 0.2)]  # the last 0.2 s: on their way
    if frame.empty:
        return "no requests yet"
    table = summarize(frame)
    parts = [f"at {now:.0f} s, last {seconds:g} s: {len(frame)} requests"]
    for version in ("v2", "v1"):
        share = cell(table, version, "share")
        parts.append(f"{version} {share:.0%}")
    errors = int(cell(table, "errors", "requests"))
    parts.append(f"errors {errors}")
    p50 = ", ".join(f"{v} {cell(table, v, 'p50_ms'):.1f} ms" for v in ("v1", "v2") if cell(table, v, "requests"))
    if p50:
        parts.append(f"p50 {p50}")
    parts.append(f"{rate:g} req/s")
    return " · ".join(parts)
