#!/usr/bin/env python3
"""Build the lesson notebooks from their sources in notebooks/src/.

Each lesson is written as a plain Python file in jupytext's "percent" format, so that
it reviews like code: ``# %% [markdown]`` starts a markdown cell (its lines are ``# ``
comments), ``# %%`` starts a code cell. Lines before the first marker are a header
for reviewers and are not part of the notebook.

    python scripts/build_notebooks.py            # write notebooks/NN-*.ipynb, without outputs
    python scripts/build_notebooks.py --execute  # ... and run each one, storing its outputs
    python scripts/build_notebooks.py --check    # exit 1 if a notebook's cells differ from its source
    python scripts/build_notebooks.py --execute 03-route-to-v1   # only some lessons

``--execute`` runs every notebook with nbclient in a fresh, temporary lab home
(``COALMINE_HOME``), one per notebook, and stops that lab afterwards. The stored
outputs are what nbval compares (``make test``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "src"

MARKER = re.compile(r"^# %%(?P<rest>.*)$")
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
# No version: the stored notebooks do not change with the Python that ran them.
LANGUAGE_INFO = {
    "name": "python",
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
CELL_TIMEOUT_S = 300


@dataclass(frozen=True)
class Cell:
    kind: str  # "markdown" or "code"
    source: str


def parse(text: str, name: str = "<source>") -> list[Cell]:
    """The cells of a percent-format source."""
    cells: list[Cell] = []
    kind: str | None = None
    lines: list[str] = []

    def close() -> None:
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(_uncomment(line, name) for line in body.split("\n"))
        if not body.strip():
            raise ValueError(f"{name}: empty {kind} cell after cell {len(cells)}")
        cells.append(Cell(kind, body))

    for line in text.split("\n"):
        m = MARKER.match(line)
        if m:
            close()
            rest = m.group("rest").strip()
            if rest == "[markdown]":
                kind = "markdown"
            elif rest == "":
                kind = "code"
            else:
                raise ValueError(f"{name}: unsupported cell marker {line!r} (use '# %%' or '# %% [markdown]')")
            lines = []
        elif kind is not None:
            lines.append(line.rstrip())
    close()
    if not cells:
        raise ValueError(f"{name}: no cells (a cell starts with '# %%')")
    return cells


def _uncomment(line: str, name: str) -> str:
    if line == "#":
        return ""
    if line.startswith("# "):
        return line[2:]
    raise ValueError(f"{name}: markdown lines must start with '# ', got {line!r}")


def build(cells: list[Cell], stem: str) -> nbformat.NotebookNode:
    """A notebook (nbformat 4) with these cells, no outputs, and stable cell ids."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO)}
    for i, cell in enumerate(cells):
        make = nbformat.v4.new_markdown_cell if cell.kind == "markdown" else nbformat.v4.new_code_cell
        # Ids from the position keep the files diffable from one build to the next.
        nb.cells.append(make(cell.source, id=f"{stem[:2]}-{i:03d}"))
    nbformat.validate(nb)
    return nb


def target(source: Path) -> Path:
    return NOTEBOOKS / f"{source.stem}.ipynb"


def sources(selected: list[str] | None = None) -> list[Path]:
    found = sorted(SOURCES.glob("[0-9][0-9]-*.py"))
    if selected:
        found = [p for p in found if any(p.stem == s or p.stem.startswith(s) for s in selected)]
        if not found:
            raise SystemExit(f"no notebook source matches {selected}")
    return found


def warm_up() -> None:
    """Build matplotlib's font cache now, so that no kernel prints
    "Matplotlib is building the font cache" into a stored output."""
    try:
        import matplotlib.font_manager  # noqa: F401
    except ImportError:
        pass


def execute(nb: nbformat.NotebookNode, path: Path) -> nbformat.NotebookNode:
    """Run ``nb`` in a fresh lab home; the lab is stopped and the home removed after."""
    from nbclient import NotebookClient

    from helpers import Lab

    home = Path(tempfile.mkdtemp(prefix=f"coalmine-nb-{path.stem[:2]}-"))
    saved = os.environ.get("COALMINE_HOME")
    os.environ["COALMINE_HOME"] = str(home)  # the kernel inherits this environment
    try:
        client = NotebookClient(
            nb,
            timeout=CELL_TIMEOUT_S,
            kernel_name="python3",
            record_timing=False,
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        )
        with open(os.devnull, "w") as devnull:  # the kernel's own log, as nbval does
            client.execute(stderr=devnull)
    finally:
        try:
            Lab(home=home).down()
        finally:
            if saved is None:
                os.environ.pop("COALMINE_HOME", None)
            else:
                os.environ["COALMINE_HOME"] = saved
            shutil.rmtree(home, ignore_errors=True)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = dict(LANGUAGE_INFO)
    return nb


def differences(source: Path) -> list[str]:
    """What differs between a source and its notebook (cell kinds and sources)."""
    want = parse(source.read_text(encoding="utf-8"), str(source))
    path = target(source)
    if not path.exists():
        return [f"{path.relative_to(ROOT)} is missing"]
    nb = nbformat.read(path, as_version=4)
    have = [Cell(c.cell_type, c.source) for c in nb.cells]
    problems = []
    if len(have) != len(want):
        problems.append(f"{path.relative_to(ROOT)} has {len(have)} cells, its source {len(want)}")
    for i, (h, w) in enumerate(zip(have, want, strict=False)):
        if h != w:
            problems.append(f"{path.relative_to(ROOT)}: cell {i} ({w.kind}) differs from its source")
            break
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="*", help="only these (by file stem or its start, e.g. 03)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--execute", action="store_true", help="run each notebook and store its outputs")
    mode.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a notebook's cells differ from its source"
    )
    args = parser.parse_args(argv)
    chosen = sources(args.lessons)

    if args.check:
        problems = [p for s in chosen for p in differences(s)]
        stems = {s.stem for s in sources()}
        if not args.lessons:
            problems += [
                f"{p.relative_to(ROOT)} has no source in notebooks/src/"
                for p in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
                if p.stem not in stems
            ]
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print("run: python scripts/build_notebooks.py --execute", file=sys.stderr)
        return 1 if problems else 0

    if args.execute:
        warm_up()
    failed = 0
    for source in chosen:
        nb = build(parse(source.read_text(encoding="utf-8"), str(source)), source.stem)
        out = target(source)
        if args.execute:
            started = time.monotonic()
            try:
                nb = execute(nb, out)
            except Exception as e:
                failed += 1
                print(f"FAILED {out.relative_to(ROOT)}: {type(e).__name__}: {str(e)[-2000:]}", file=sys.stderr)
                continue
            print(f"executed {out.relative_to(ROOT)} in {time.monotonic() - started:.1f}s")
        else:
            print(f"wrote {out.relative_to(ROOT)} (no outputs: use --execute to store them)")
        nbformat.write(nb, out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
