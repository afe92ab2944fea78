"""The v1/v2 distribution over time, as one matplotlib figure that can be redrawn.

``DistributionPlot`` is shared by the live dashboard (redrawn every half second) and
``coalmine demo`` (drawn once and saved as a PNG), so both show the same thing:

- the share of requests each version answered, per second (stacked from the bottom:
  v2, v1, errors), with the share v2 should answer drawn over it (dashed): the v2
  weight, plus the requests that carry the canary header when that route is on;
- how many requests each version answered so far;
- the median latency per version, per second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from helpers.live.control import Change

if TYPE_CHECKING:
    import pandas as pd

COLORS = {"v1": "#4C72B0", "v2": "#DD8452", "errors": "#C44E52"}


def per_second(frame: pd.DataFrame, width: float = 1.0, until: float | None = None) -> pd.DataFrame:
    """Requests bucketed by when they were due: one row per ``width`` seconds (the
    bucket's start, ``t``) with counts ``v1``, ``v2``, ``errors``, ``total``, the shares
    ``v1_share`` … and the median latency ``v1_p50_ms``, ``v2_p50_ms``. Buckets from
    ``until`` on are left out (they are still filling)."""
    import pandas as pd

    columns = ["v1", "v2", "errors", "total", "v1_share", "v2_share", "errors_share", "v1_p50_ms", "v2_p50_ms"]
    if until is not None:
        frame = frame[frame["sent_s"] < np.floor(until / width) * width]
    if frame.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="t", dtype="float64"), dtype="float64")
    bucket = (np.floor(frame["sent_s"] / width) * width).rename("t")
    version = frame["version"].where(frame["version"].isin(["v1", "v2"]), "errors")
    counts = pd.crosstab(bucket, version).reindex(columns=["v1", "v2", "errors"], fill_value=0)
    # Seconds with no request at all still belong on the time axis.
    full = np.arange(counts.index.min(), counts.index.max() + width / 2, width)
    counts = counts.reindex(pd.Index(full, name="t"), fill_value=0).astype("float64")
    counts["total"] = counts[["v1", "v2", "errors"]].sum(axis=1)
    for name in ("v1", "v2", "errors"):
        counts[f"{name}_share"] = (counts[name] / counts["total"].where(counts["total"] > 0)).fillna(0.0)
    latency = frame["latency_ms"].groupby([bucket, version]).median().unstack()
    for name in ("v1", "v2"):
        counts[f"{name}_p50_ms"] = latency[name].reindex(counts.index) if name in latency else np.nan
    return counts[columns]


class DistributionPlot:
    """A figure with three panels (share per second, cumulative answers, latency) whose
    data is replaced by ``update``. ``window`` is how many seconds the live view shows;
    None shows the whole run."""

    def __init__(self, window: float | None = 60.0, figsize: tuple[float, float] = (9, 6.5)) -> None:
        self.window = window
        # Fixed margins: a layout engine would redo its work on every redraw (twice as slow).
        self.figure = Figure(figsize=figsize)
        self.figure.subplots_adjust(left=0.1, right=0.83, top=0.97, bottom=0.09, hspace=0.12)
        self.share_ax, self.count_ax, self.latency_ax = self.figure.subplots(3, 1, sharex=True)
        self._stack = {}
        for name in ("v2", "v1", "errors"):
            self._stack[name] = self.share_ax.fill_between(
                [], [], [], step="post", color=COLORS[name], alpha=0.85, label=name, linewidth=0
            )
        (self._weight,) = self.share_ax.plot(
            [], [], drawstyle="steps-post", color="black", linestyle="--", linewidth=1.2, label="v2 expected"
        )
        self.share_ax.set_ylim(0, 100)
        self.share_ax.set_ylabel("share per second (%)")
        self.share_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        self._counts = {
            name: self.count_ax.plot([], [], color=COLORS[name], label=name)[0] for name in ("v1", "v2", "errors")
        }
        self.count_ax.set_ylabel("answered so far")
        self.count_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        self._latency = {
            name: self.latency_ax.plot([], [], color=COLORS[name], label=name, marker=".")[0] for name in ("v1", "v2")
        }
        self.latency_ax.set_ylabel("p50 latency (ms)")
        self.latency_ax.set_xlabel("seconds since the traffic started")
        self.latency_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        self._marks: list[object] = []

    def update(
        self,
        frame: pd.DataFrame,
        now: float,
        changes: Sequence[Change] = (),
        marks: bool = False,
        totals: Mapping[str, int] | None = None,
    ) -> None:
        """Show the requests in ``frame`` up to ``now`` (seconds on the traffic clock) and
        the weight ``changes``; ``marks`` labels each change on the plot (for a saved run).
        ``totals`` are answers per version since the start, when ``frame`` holds only the
        latest requests."""
        start = 0.0 if self.window is None else max(0.0, now - self.window)
        frame = frame[frame["sent_s"] >= np.floor(start)]
        buckets = per_second(frame, until=now)
        frame_counts = frame["version"].where(frame["version"].isin(["v1", "v2"]), "errors").value_counts()
        t = buckets.index.to_numpy(dtype="float64")
        # Steps need the end of the last bucket too.
        edges = np.append(t, t[-1] + 1) if len(t) else t
        bottom = np.zeros(len(edges))
        for name in ("v2", "v1", "errors"):
            share = buckets[f"{name}_share"].to_numpy(dtype="float64") * 100
            top = bottom + np.append(share, share[-1:]) if len(share) else bottom
            self._stack[name].set_data(edges, bottom, top)
            bottom = top
        # Answers so far, at the end of each second: a few points, however high the rate.
        for name, line in self._counts.items():
            counts = buckets[name].to_numpy(dtype="float64")
            before = (totals or {}).get(name, 0) - int(frame_counts.get(name, 0)) if totals else 0
            line.set_data(edges, before + np.concatenate(([0.0], np.cumsum(counts))) if len(t) else [])
        for name, line in self._latency.items():
            line.set_data(t + 0.5, buckets[f"{name}_p50_ms"].to_numpy(dtype="float64"))
        self._weight.set_data(*_weight_steps(changes, start, now))
        if marks:
            self._mark(changes)
        right = max(now, start + 5)
        self.latency_ax.set_xlim(start, right)
        for ax in (self.count_ax, self.latency_ax):
            ax.relim(visible_only=True)
            ax.autoscale_view(scalex=False)
        # auto=None: keep autoscaling on for the next update (set_ylim turns it off by default)
        self.count_ax.set_ylim(bottom=0, auto=None)
        self.latency_ax.set_ylim(bottom=0, auto=None)

    def _mark(self, changes: Sequence[Change]) -> None:
        for artist in self._marks:
            artist.remove()  # type: ignore[attr-defined]
        self._marks = []
        for change in changes:
            self._marks.append(self.share_ax.axvline(change.at_s, color="grey", linewidth=0.8))
            self._marks.append(
                self.share_ax.annotate(
                    change.label,
                    (change.at_s, 100),
                    xytext=(3, -3),
                    textcoords="offset points",
                    fontsize="x-small",
                    va="top",
                    rotation=90,
                )
            )

    def save(self, path: str) -> None:
        """Write the figure to ``path`` (PNG, SVG or PDF by the file's extension)."""
        self.figure.savefig(path, dpi=110)


def _weight_steps(changes: Sequence[Change], start: float, now: float) -> tuple[list[float], list[float]]:
    """The share v2 should answer (the change's ``expected``, else its weight) as a step
    line from ``start`` to ``now``: where the top of the v2 band should be."""
    xs: list[float] = []
    ys: list[float] = []
    current: float | None = None
    for change in changes:
        value = change.v2_percent if change.expected is None else change.expected
        if change.at_s <= start:
            current = value
            continue
        if change.at_s > now:
            break
        if current is not None and not xs:
            xs.append(start)
            ys.append(current)
        xs.append(change.at_s)
        ys.append(value)
        current = value
    if current is not None:
        if not xs:
            xs.append(start)
            ys.append(current)
        xs.append(now)
        ys.append(current)
    return xs, ys
