"""A Sphinx extension: the lessons' live widgets become still pictures on the site.

A widget (lesson 5's Dashboard, lesson 8's ProgressiveView) needs a kernel; a static
page has none, so its stored view would show nothing. Each output that holds a widget
view becomes the picture ``coalmine_widget_stills`` names for the widget's class (read
from the output's plain-text repr, ``<Dashboard: ...>``), with a caption that says the
widget is live in the lab. A widget without a picture is a warning, so the build (run
with ``-W``) fails until one is added. The notebooks themselves are never changed.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_REPR = re.compile(r"<(\w+)")

logger = logging.getLogger(__name__)


def _is_mime_bundle(node: nodes.Node) -> bool:
    return isinstance(node, nodes.container) and node.get("nb_element") == "mime_bundle"


def _still(document: nodes.document, image: str, alt: str, caption: str) -> nodes.figure:
    """The picture and its caption; ``image`` is a path from the repository's root,
    which is also the staging folder's (so ``/path`` finds it from any page)."""
    figure = nodes.figure(classes=["coalmine-widget-still"])
    figure += nodes.image(uri=f"/{image}", alt=alt)
    figure += nodes.caption(caption, "", *_code_spans(caption))
    document.set_id(figure)  # a captioned figure needs an id (Sphinx numbers figures by it)
    return figure


def _code_spans(text: str) -> list[nodes.Node]:
    """``text`` with its `backquoted` parts as code."""
    parts = text.split("`")
    return [
        nodes.literal(part, part) if odd else nodes.Text(part)
        for odd, part in ((i % 2, p) for i, p in enumerate(parts))
    ]


class WidgetStills(SphinxTransform):
    """Swap each widget view in a notebook's outputs for its still picture."""

    # After myst-nb has parsed the notebook (the outputs are mime bundles holding every
    # stored type), before Sphinx collects the images to copy.
    default_priority = 500

    def apply(self, **kwargs: Any) -> None:
        stills: dict[str, dict[str, str]] = self.config.coalmine_widget_stills
        replaced = False
        for bundle in list(self.document.findall(_is_mime_bundle)):
            kinds = {child.get("mime_type"): child for child in bundle.children}
            if WIDGET_VIEW not in kinds:
                continue
            text = kinds["text/plain"].astext() if "text/plain" in kinds else ""
            match = _REPR.match(text.strip())
            still = stills.get(match.group(1)) if match else None
            if still is None:
                logger.warning(
                    f"no still picture for the widget {text.strip()!r}: add its class to "
                    "coalmine_widget_stills in site/conf.py",
                    location=bundle,
                )
                continue
            bundle.replace_self(_still(self.document, still["image"], still["alt"], still["caption"]))
            replaced = True
        if replaced:
            self._drop_widget_state()

    def _drop_widget_state(self) -> None:
        # myst-nb has already moved the notebook's widget state (a script tag per page)
        # into the environment; with every view a picture nothing reads it.
        pages = getattr(self.env, "nb_metadata", {})
        scripts = pages.get(self.env.docname, {}).get("js_files", {})
        for key in [k for k in scripts if k.startswith("ipywidgets")]:
            del scripts[key]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("coalmine_widget_stills", {}, "env", types=[dict])
    app.add_transform(WidgetStills)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
