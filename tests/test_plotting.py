"""The distribution plot's numbers: buckets per second and the weight line."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from helpers.live.plotting import Change, DistributionPlot, _weight_steps, per_second
from helpers.live.traffic import COLUMNS


def frame(rows: list[tuple[float, str | None, float]]) -> pd.DataFrame:
    """Records from (sent_s, version, latency_ms)."""
    return pd.DataFrame(
        [(i, t, v, 200 if v else 503, ms, False, None) for i, (t, v, ms) in enumerate(rows)], columns=COLUMNS
    )


def test_per_second_counts_and_shares_each_bucket() -> None:
    df = frame(
        [(0.1, "v1", 1.0), (0.5, "v2", 3.0), (0.9, "v1", 2.0), (1.2, None, 9.0), (1.4, "v2", 5.0), (3.5, "v1", 4.0)]
    )
    b = per_second(df)
    assert list(b.index) == [0.0, 1.0, 2.0, 3.0]  # the empty second 2 is kept
    assert list(b["v1"]) == [2, 0, 0, 1] and list(b["v2"]) == [1, 1, 0, 0] and list(b["errors"]) == [0, 1, 0, 0]
    assert list(b["total"]) == [3, 2, 0, 1]
    assert b.loc[0.0, "v2_share"] == pytest.approx(1 / 3) and b.loc[1.0, "errors_share"] == 0.5
    assert b.loc[2.0, "v1_share"] == 0.0  # no traffic is no share, not NaN
    assert b.loc[0.0, "v1_p50_ms"] == 1.5 and b.loc[1.0, "v2_p50_ms"] == 5.0
    assert math.isnan(b.loc[2.0, "v2_p50_ms"])


def test_per_second_leaves_out_the_bucket_still_filling() -> None:
    df = frame([(0.5, "v1", 1.0), (1.5, "v2", 1.0), (2.2, "v2", 1.0)])
    assert list(per_second(df, until=2.7).index) == [0.0, 1.0]
    assert per_second(df, until=0.5).empty


def test_weight_line_steps_at_each_change() -> None:
    changes = [Change(0.0, 0, "a"), Change(4.0, 10, "b"), Change(8.0, 50, "c")]
    assert _weight_steps(changes, 0.0, 10.0) == ([0.0, 4.0, 8.0, 10.0], [0, 10, 50, 50])
    # A window that starts after the first change begins at the weight then in force.
    assert _weight_steps(changes, 5.0, 10.0) == ([5.0, 8.0, 10.0], [10, 50, 50])
    assert _weight_steps([], 0.0, 10.0) == ([], [])


def test_the_dashed_line_is_the_expected_share_when_a_change_gives_one() -> None:
    # 10% to v2 with the header canary on and a fifth of the requests carrying the header.
    changes = [Change(0.0, 0, "all to v1"), Change(4.0, 10, "10% to v2", expected=28.0)]
    assert _weight_steps(changes, 0.0, 10.0) == ([0.0, 4.0, 10.0], [0, 28.0, 28.0])
    plot = DistributionPlot(window=None)
    plot.update(frame([(0.5, "v1", 1.0)]), now=10.0, changes=changes)
    assert list(plot._weight.get_ydata()) == [0, 28.0, 28.0]
    assert plot._weight.get_label() == "v2 expected"


def test_update_puts_the_data_in_the_figure(tmp_path) -> None:
    df = frame([(t / 10, "v2" if t % 4 == 0 else "v1", 1.0 + t / 100) for t in range(100)])
    plot = DistributionPlot(window=None)
    plot.update(df, now=10.0, changes=[Change(0.0, 25, "25% to v2")], marks=True, totals={"v1": 75, "v2": 25})
    x, y = plot._counts["v2"].get_data()
    assert list(x) == [float(s) for s in range(11)] and y[0] == 0 and y[-1] == 25  # at the end of each second
    path = plot._stack["v2"].get_paths()[0].vertices
    assert np.nanmax(path[:, 1]) == pytest.approx(30.0)  # 3 of every 10 requests per second went to v2
    plot.save(str(tmp_path / "plot.png"))
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
