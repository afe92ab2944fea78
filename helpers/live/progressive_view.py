"""The progressive-delivery view: a Flagger Canary's analysis drawn live, with buttons.

    from helpers.live.progressive_view import ProgressiveView
    view = ProgressiveView(lab)   # reads the Canary and the gateway's stats every second
    view                          # phase, weight, checks per side, buttons to ship and gate
    view.stop()

``RolloutPlot`` draws what a ``CanaryWatch`` (``helpers.live.progressive``) sampled: the
canary's weight with the step targets and the failed checks, and the success rate and
p99 latency of the primary and the canary against the Canary's thresholds. The view
redraws it every second; ``coalmine demo --progressive`` saves it after a good and a
bad rollout. The view sits beside the canary ``Dashboard`` (``helpers.live.dashboard``),
which steers a VirtualService by hand; here the canary controller steers.
"""

from __future__ import annotations

import html
import io
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from helpers.builders.progressive import NAME, NAMESPACE
from helpers.errors import CoalmineError
from helpers.live.progressive import ROLES, CanaryWatch, gate

if TYPE_CHECKING:
    from helpers.lab import Lab


class RolloutPlot:
    """Three panels over time: the canary's weight with the step targets and failed
    checks; the success rate and the p99 latency of the primary and the canary, each
    against its threshold."""

    def __init__(self, figsize: tuple[float, float] = (9, 6.5)) -> None:
        self.figure = Figure(figsize=figsize)
        self.figure.subplots_adjust(left=0.1, right=0.8, top=0.94, bottom=0.09, hspace=0.14)
        self.weight_ax, self.success_ax, self.latency_ax = self.figure.subplots(3, 1, sharex=True)
        (self._weight,) = self.weight_ax.plot([], [], drawstyle="steps-post", color="black", label="canary weight")
        (self._failed,) = self.weight_ax.plot([], [], "x", color="#C44E52", markersize=8, label="failed check")
        self.weight_ax.set_ylabel("canary weight (%)")
        self.weight_ax.set_ylim(0, 105)
        self._lines: dict[str, Any] = {}
        for role, color in ROLES.items():
            self._lines[f"{role}_success"] = self.success_ax.plot([], [], color=color, label=role)[0]
            self._lines[f"{role}_p99_ms"] = self.latency_ax.plot([], [], color=color, label=role)[0]
        self.success_ax.set_ylabel("success rate (%)")
        self.latency_ax.set_ylabel("p99 latency (ms, log)")
        # Log: a few milliseconds and a threshold of hundreds both stay readable.
        self.latency_ax.set_yscale("log")
        self.latency_ax.set_xlabel("seconds")
        self._extras: list[Any] = []
        for ax in (self.weight_ax, self.success_ax, self.latency_ax):
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")

    def update(self, watch: CanaryWatch, marks: bool = False) -> None:
        """Draw what ``watch`` has sampled; ``marks`` labels each phase change."""
        frame = watch.frame()
        for artist in self._extras:
            artist.remove()
        self._extras = []
        t = frame["t"].to_numpy(dtype="float64")
        self._weight.set_data(t, frame["weight"].to_numpy(dtype="float64"))
        grew = np.diff(frame["failed_checks"].to_numpy(dtype="int64"), prepend=0) > 0
        self._failed.set_data(t[grew], frame["weight"].to_numpy(dtype="float64")[grew])
        # Break the lines where nobody sampled for a while, rather than draw a slope.
        gap = np.diff(t, prepend=t[:1]) > 2.0
        for column, line in self._lines.items():
            values = frame[column].to_numpy(dtype="float64", copy=True)
            values[gap] = np.nan
            line.set_data(t, values)
        for target in watch.step_targets():
            self._extras.append(self.weight_ax.axhline(target, color="grey", linewidth=0.5, linestyle=":"))
        limits = watch.thresholds()
        for name, ax in (("request-success-rate", self.success_ax), ("request-duration", self.latency_ax)):
            if limits.get(name, (None, ""))[0] is not None:
                line = ax.axhline(float(limits[name][0] or 0), color="#C44E52", linestyle="--", linewidth=1)
                self._extras.append(line)
        if marks:
            for at, phase in watch.transitions():
                self._extras.append(self.weight_ax.axvline(at, color="grey", linewidth=0.6))
                self._extras.append(
                    self.weight_ax.annotate(
                        phase,
                        (at, 100),
                        xytext=(2, -2),
                        textcoords="offset points",
                        fontsize="x-small",
                        va="top",
                        rotation=90,
                    )
                )
        last = watch.samples[-1] if watch.samples else None
        threshold = ((watch.canary.get("spec") or {}).get("analysis") or {}).get("threshold", "?")
        self.weight_ax.set_title(
            f"canary {watch.name}: {last.phase or '-'}, weight {last.weight}%, failed checks "
            f"{last.failed_checks}/{threshold}"
            if last
            else f"canary {watch.name}: no sample yet",
            fontsize="medium",
        )
        right = max(float(t[-1]) if len(t) else 0.0, 5.0)
        self.latency_ax.set_xlim(float(t[0]) if len(t) else 0.0, right)
        self.success_ax.set_ylim(0, 105)
        self.latency_ax.relim(visible_only=True)
        self.latency_ax.autoscale_view(scalex=False)
        self.latency_ax.set_ylim(bottom=0.5, auto=None)

    def __repr__(self) -> str:
        return "<RolloutPlot: canary weight, success rate and p99 latency over time>"

    def _repr_png_(self) -> bytes:
        # A notebook shows the figure itself when a cell ends with the plot.
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=90)
        return buffer.getvalue()

    def save(self, path: str) -> None:
        """Write the figure to ``path`` (PNG, SVG or PDF by the file's extension)."""
        self.figure.savefig(path, dpi=110)


class ProgressiveView:
    """The dashboard's progressive-delivery view of the Canary ``name``.

    Shows the phase, the weight and the failed checks, the ``RolloutPlot`` redrawn
    every ``refresh`` seconds, and the Canary's latest events. Its buttons apply
    ``manifests/flagger/rollout-good.yaml`` or ``rollout-bad.yaml`` (a new pod
    template: the analysis starts) and open or close the loadtester's gates. The
    traffic the checks measure is the loadtester's, started by the Canary's webhook.
    """

    def __init__(self, lab: Lab, name: str = NAME, namespace: str = NAMESPACE, refresh: float = 1.0) -> None:
        import ipywidgets as widgets
        from ipympl.backend_nbagg import Canvas, FigureManager

        from helpers.loading import manifests_dir

        self.lab, self.refresh = lab, refresh
        self.watch = CanaryWatch(lab, name, namespace)
        self.plot = RolloutPlot(figsize=(7.6, 5.6))
        self._closing = threading.Event()
        self._draw_lock = threading.Lock()
        folder = manifests_dir() / "flagger"
        self.status = widgets.HTML("no sample yet")
        self.message = widgets.HTML("")
        self.events = widgets.HTML("")
        buttons = {
            "ship good (v2)": lambda: lab.apply(folder / "rollout-good.yaml"),
            "ship bad": lambda: lab.apply(folder / "rollout-bad.yaml"),
            "open gate": lambda: [gate(lab, "open", name=name, namespace=namespace)],
            "close gate": lambda: [gate(lab, "close", name=name, namespace=namespace)],
            "roll back now": lambda: [gate(lab, "open", "rollback", name, namespace)],
        }
        self.buttons = {}
        for label, action in buttons.items():
            button = widgets.Button(description=label, layout=widgets.Layout(width="auto"))
            button.on_click(lambda _, act=action, what=label: self._act(what, act))
            button.add_class("coalmine-" + label.split(" (")[0].replace(" ", "-"))
            self.buttons[label] = button
        self.canvas = Canvas(self.plot.figure)
        FigureManager(self.canvas, 0)
        self.canvas.header_visible = self.canvas.footer_visible = self.canvas.toolbar_visible = False
        self.canvas.resizable = False
        wrap = widgets.Layout(display="flex", flex_flow="row wrap")
        self.widget = widgets.VBox(
            [widgets.Box(list(self.buttons.values()), layout=wrap), self.status, self.message, self.canvas, self.events]
        )
        self._thread = threading.Thread(target=self._loop, name="coalmine-progressive", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"<ProgressiveView of canary {self.watch.namespace}/{self.watch.name}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle

    def stop(self) -> None:
        """Stop reading and redrawing (the Canary's analysis goes on)."""
        self._closing.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def update(self) -> None:
        """Read the Canary and the stats now and redraw (the view does it by itself)."""
        with self._draw_lock:
            s = self.watch.poll()
            self.plot.update(self.watch, marks=True)
            self.canvas.draw_idle()
            sides = []
            for role in ROLES:
                success, p99, n = self.watch.checks(role)
                if n:
                    sides.append(f"{role}: {n} requests, {success:.1f}% ok, p99 {p99:.0f} ms")
            self.status.value = html.escape(
                f"{s.phase or 'no phase yet'} · weight {s.weight}% · failed checks {s.failed_checks}"
                f" · iterations {s.iterations}" + (" · " + " · ".join(sides) if sides else "")
            )
            self.events.value = _event_lines(self.lab, self.watch.name, self.watch.namespace)

    def _act(self, what: str, action: Callable[[], Sequence[str]]) -> None:
        try:
            lines = action()
        except (CoalmineError, OSError) as e:
            self.message.value = f'<span style="color:#C44E52">{html.escape(what)}: {html.escape(str(e))}</span>'
        else:
            self.message.value = html.escape(f"{what}: {'; '.join(map(str, lines))}")

    def _loop(self) -> None:
        while not self._closing.is_set():
            began = time.monotonic()
            try:
                self.update()
            except CoalmineError as e:
                self.status.value = html.escape(str(e))
            self._closing.wait(max(0.0, self.refresh - (time.monotonic() - began)))


def _event_lines(lab: Lab, name: str, namespace: str, last: int = 8) -> str:
    """The Canary's last events, newest last, as ``kubectl describe canary`` lists them."""
    try:
        table = lab.events(namespace)
    except CoalmineError:
        return ""
    if table.empty:
        return ""
    mine = table[table["OBJECT"].str.lower() == f"canary/{name}".lower()].tail(last)
    rows = [f"{t:<8} {r}  {m}" for t, r, m in zip(mine["TYPE"], mine["REASON"], mine["MESSAGE"], strict=True)]
    return f'<pre style="font-size:11px;margin:0">{html.escape(chr(10).join(rows))}</pre>' if rows else ""
