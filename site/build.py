"""Build the lab's website: ``make docs`` (``python site/build.py``).

Stages the pages in ``<builddir>/source`` as copies of the repository's files, at their
repository paths, then runs Sphinx (config in site/conf.py) into ``<builddir>/html``
with warnings as errors, so a broken reference fails the build. The notebooks are
shown with their stored outputs and never executed. Nothing is downloaded.

Why a staging folder instead of the repository as Sphinx's source: the home page must
be ``index.html`` at the top, and the repository's root holds no index page (README.md
is a page of its own); Sphinx would also walk the whole checkout (.venv, the lab homes).
The folder mirrors the repository's paths, so page names, relative links and the
theme's launch buttons (``path_to_docs = ""``) are the repository's. Copies, not
symlinks: Sphinx resolves a symlink to its real path, outside the source folder, and
then finds no page behind a relative link.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

SITE = Path(__file__).resolve().parent
ROOT = SITE.parent
sys.path.insert(0, str(SITE))

import launch  # noqa: E402  (site/ is not a package: "site" is the stdlib's name)

# What the site is built from, as globs from the repository's root: the pages (docs/*.md
# picks up new guides) and the widgets' still pictures. site/index.md is the home page.
SOURCES = ("README.md", "docs/*.md", "notebooks/[0-9][0-9]-*.ipynb", "site/images/*.png")


def sources(root: Path = ROOT) -> Iterator[Path]:
    """The repository's files the site is built from, besides its home page."""
    for pattern in SOURCES:
        yield from sorted(root.glob(pattern))


def stage(source: Path, root: Path = ROOT) -> None:
    """Fill ``source`` afresh with the home page and copies of the sources, each at its
    repository path."""
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    shutil.copyfile(SITE / "index.md", source / "index.md")
    for page in sources(root):
        staged = source / page.relative_to(root)
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, staged)


def build(builddir: Path, pyproject: Path = launch.PYPROJECT) -> int:
    """Stage and build; returns Sphinx's exit status (0 when the site is complete)."""
    from sphinx.cmd.build import build_main

    if launch.repository(pyproject) is None:
        print(launch.UNSET)
    source = builddir / "source"
    stage(source)
    os.environ["COALMINE_SITE_PYPROJECT"] = str(pyproject)
    # -E: read every page each time (a few seconds), so a warning from a page left
    # unchanged since a failed build fails this one too.
    args = ["-b", "html", "-E", "-c", str(SITE), "-d", str(builddir / "doctrees"), "-W", "--keep-going", "-q"]
    status = build_main([*args, str(source), str(builddir / "html")])
    if status == 0:
        print(f"the site is in {builddir / 'html'} (open index.html)")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builddir", type=Path, default=ROOT / "_build", help="default: _build (the site in html/)")
    parser.add_argument(
        "--pyproject",
        type=Path,
        default=launch.PYPROJECT,
        help="where [project.urls] Repository is read (default: the repository's pyproject.toml)",
    )
    options = parser.parse_args(argv)
    return build(options.builddir.resolve(), options.pyproject.resolve())


if __name__ == "__main__":
    sys.exit(main())
