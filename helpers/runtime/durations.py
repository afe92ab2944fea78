"""Durations as Go's ``time.ParseDuration`` reads them, shared by the runtime's readers.

Gloo reads its resources' durations with golang/protobuf's ``jsonpb`` (a Duration is
``time.ParseDuration``), and Flagger reads a Canary's intervals the same way, so both
``gloo.fields`` and ``flagger.schema`` use ``parse_duration``. (The Gateway API's
GEP-2257 durations are stricter: ``gatewayapi.fields`` has its own.)
"""

from __future__ import annotations

from helpers.runtime import regex

_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_PART = regex.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_GO_DURATION = regex.compile(r"(?:[0-9]*(?:\.[0-9]*)?(?:ns|us|µs|μs|ms|s|m|h))+")


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
    if not _GO_DURATION.fullmatch(rest):
        if rest[-1:].isdigit():
            raise ValueError(f'missing unit in duration "{text}": write e.g. "{text}s"')
        raise bad
    total = 0.0
    for part in _GO_PART.finditer(rest):
        number, unit = part.group(1), part.group(2)
        if not number.strip("."):
            raise bad
        total += float(number) * _GO_UNITS[unit]
    return sign * total
