"""A Sphinx extension: the links that lead from the site into the repository.

- Each lesson page (and the home page, for lesson 0) opens with how to run it: a Binder link from site/launch.py when
  ``[project.urls] Repository`` is set, otherwise how to run it locally (``make lab``).
- A link in the README, a guide or a lesson to a repository file that is not a page
  (``manifests/...``, ``helpers/...``) points at that file on the repository when the
  URL is set; without one it becomes the path as code text, never a broken link. A link
  to something the repository does not hold stays for MyST to report (a warning, which
  fails the build).
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

import launch
from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform

LESSONS = "notebooks/"


def _pyproject(config: Any) -> Path:
    return Path(config.coalmine_pyproject)


STORED = " The outputs below are the ones stored in the notebook, which the tests check."


def _run_locally(notebook: str, tail: str) -> list[nodes.Node]:
    name = posixpath.basename(notebook)
    return [
        nodes.Text("On your machine: in a clone of the repository, "),
        nodes.literal("make lab", "make lab"),
        nodes.Text(" starts JupyterLab on the lessons (local backend); open "),
        nodes.literal(name, name),
        nodes.Text("." + tail),
    ]


def _launch(url: str, notebook: str, tail: str) -> list[nodes.Node]:
    name = posixpath.basename(notebook)
    link = nodes.reference("", "", nodes.Text("Launch it on Binder"), refuri=url, classes=["coalmine-binder"])
    return [
        link,
        nodes.Text(" (JupyterLab in your browser, opened on "),
        nodes.literal(name, name),
        nodes.Text("), or on your machine with "),
        nodes.literal("make lab", "make lab"),
        nodes.Text("." + tail),
    ]


class LaunchLink(SphinxPostTransform):
    """Put the lesson's launch (or run-locally) note under its title."""

    default_priority = 5
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        docname = self.env.docname
        if docname.startswith(LESSONS):
            notebook, title, tail = docname + ".ipynb", "Run this lesson", STORED
        elif docname == self.config.root_doc:
            notebook, title, tail = launch.START, "Run the lab", ""
        else:
            return
        url = launch.binder_url(notebook, pyproject=_pyproject(self.config))
        note = nodes.admonition(classes=["tip", "coalmine-launch"])
        note += nodes.title(title, title)
        note += nodes.paragraph(
            "", "", *(_run_locally(notebook, tail) if url is None else _launch(url, notebook, tail))
        )
        section = next(self.document.findall(nodes.section), None)
        if section is None:
            self.document.insert(0, note)
        else:
            section.insert(1, note)  # right after the lesson's title


class RepositoryFileLinks(SphinxPostTransform):
    """Links to repository files that are not pages: to the repository, or code text."""

    # Before MyST resolves its references (priority 9), which would call these missing.
    default_priority = 5

    def run(self, **kwargs: Any) -> None:
        root = Path(self.config.coalmine_repository_root)
        for xref in list(self.document.findall(addnodes.pending_xref)):
            if xref.get("reftype") != "myst" or xref.get("refdomain") == "doc":
                continue
            target = str(xref["reftarget"])
            path, _, fragment = target.partition("#")
            if not path or "://" in path or path.startswith(("mailto:", "/")):
                continue
            where = posixpath.normpath(posixpath.join(posixpath.dirname(self.env.docname), path))
            if where.startswith("..") or not (root / where).exists():
                continue  # not the repository's: MyST reports it
            xref.replace_self(self._resolved(xref, where, fragment, (root / where).is_dir()))

    def _resolved(self, xref: addnodes.pending_xref, where: str, fragment: str, directory: bool) -> nodes.Node:
        text = xref.astext()
        url = launch.blob_url(where, directory=directory, pyproject=_pyproject(self.config))
        if url is not None:
            label = nodes.literal(where, where) if not text or text == where else nodes.Text(text)
            return nodes.reference("", "", label, refuri=url + (f"#{fragment}" if fragment else ""))
        if not text or text.strip("/") == where.strip("/"):
            return nodes.literal(where, where)
        inline = nodes.inline()
        inline += nodes.Text(f"{text} (")
        inline += nodes.literal(where, where)
        inline += nodes.Text(")")
        return inline


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("coalmine_pyproject", str(launch.PYPROJECT), "html", types=[str])
    app.add_config_value("coalmine_repository", None, "html", types=[str, type(None)])
    app.add_config_value("coalmine_repository_root", str(launch.ROOT), "env", types=[str])
    app.add_post_transform(LaunchLink)
    app.add_post_transform(RepositoryFileLinks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
