"""Durations as Go's ``time.ParseDuration`` reads them, shared by every layer.

Gloo reads its resources' durations with golang/protobuf's ``jsonpb`` (a Duration is
``time.ParseDuration``), and Flagger reads a Canary's intervals the same way, so both
``gloo.fields`` and ``flagger.schema`` use ``parse_duration``. (The Gateway API's
GEP-2257 durations are stricter: ``gatewayapi.fields`` has its own.)
"""

from __future__ import annotations

_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = set("0123456789.")


def parse_duration(text: str) -> float:
    """Seconds in a duration as Go's ``time.ParseDuration`` reads it: ``"10s"``,
    ``"1m30s"``, ``"1.5h"``, ``"300ms"``, ``"-2s"`` or ``"0"``. ValueError otherwise.

    >>> parse_duration("1m30s")
    90.0
    """
    rest, sign = text, 1.0
    if rest[:1] in ("-", "+"):
        sign, rest = (-1.0 if rest[0] == "-" else 1.0), rest[1:]
    if rest == "0":
        return 0.0
    bad = ValueError(f'invalid duration "{text}": write e.g. "10s", "1m" or "1m30s"')
    if not rest:
        raise bad
    # One pass, number then unit, as Go scans it (linear in the text, no regex).
    total, at = 0.0, 0
    while at < len(rest):
        end = at
        while end < len(rest) and rest[end] in _NUMBER:
            end += 1
        number = rest[at:end]
        if not number.strip(".") or number.count(".") > 1:
            raise bad
        unit_end = end
        while unit_end < len(rest) and rest[unit_end] not in _NUMBER:
            unit_end += 1
        unit = rest[end:unit_end]
        if not unit:
            raise ValueError(f'missing unit in duration "{text}": write e.g. "{text}s"')
        if unit not in _GO_UNITS:
            raise bad
        total += float(number) * _GO_UNITS[unit]
        at = unit_end
    return sign * total
