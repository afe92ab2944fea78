"""Durations as Go's time.ParseDuration reads them (Gloo's and Flagger's readers share it)."""

from __future__ import annotations

import pytest

from helpers.durations import parse_duration
from helpers.runtime.flagger import schema as flagger_schema
from helpers.runtime.gloo import fields as gloo_fields


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10),
        ("1m", 60),
        ("1m30s", 90),
        ("1.5h", 5400),
        ("300ms", 0.3),
        ("2h45m", 9900),
        ("0", 0),
        ("-2s", -2),
        (".5s", 0.5),
        ("1us", 1e-6),
        ("1µs", 1e-6),
        ("1μs", 1e-6),
        ("10ns", 1e-8),
    ],
)
def test_durations_read_as_go_reads_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid duration"),
        ("10", 'missing unit in duration "10"'),
        ("s", "invalid"),
        (".s", "invalid"),
        ("1d", "invalid"),
        ("1m 30s", "invalid"),
        ("+", "invalid"),
        ("1e3s", "invalid"),
    ],
)
def test_durations_go_refuses_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_gloo_and_flagger_read_durations_with_the_same_function() -> None:
    assert gloo_fields.go_duration is flagger_schema.parse_duration is parse_duration
