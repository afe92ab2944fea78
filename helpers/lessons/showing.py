"""Text laid out for reading in a notebook: two YAML documents side by side."""

from __future__ import annotations


def side_by_side(left: str, right: str, titles: tuple[str, str] = ("", ""), gap: int = 4) -> str:
    """``left`` and ``right`` (e.g. two YAML texts) as two columns, with optional titles.

    >>> print(side_by_side("a: 1", "b: 2\\nc: 3", ("VS", "HTTPRoute")))
    VS      HTTPRoute
    a: 1    b: 2
            c: 3
    """
    lines_l, lines_r = left.rstrip("\n").splitlines(), right.rstrip("\n").splitlines()
    if any(titles):
        lines_l, lines_r = [titles[0], *lines_l], [titles[1], *lines_r]
    width = max((len(x) for x in lines_l), default=0) + gap
    rows = max(len(lines_l), len(lines_r))
    lines_l += [""] * (rows - len(lines_l))
    lines_r += [""] * (rows - len(lines_r))
    return "\n".join(f"{a.ljust(width)}{b}".rstrip() for a, b in zip(lines_l, lines_r, strict=True))
