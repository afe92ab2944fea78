"""Sphinx configuration of the lab's website (``make docs``, see site/build.py).

The source folder is a staging folder that site/build.py fills with copies of the
repository's files at their repository paths (notebooks/05-....ipynb, docs/facts.md,
README.md), plus site/index.md as the home page; so a page's name is its path in the
repository, which is what the launch buttons and the links between pages rely on.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SITE = Path(__file__).resolve().parent
sys.path.insert(0, str(SITE))

import launch  # noqa: E402  (site/ is not a package: "site" is the stdlib's name)

# site/build.py points this at another pyproject.toml for the tests that set the URL.
coalmine_pyproject = os.environ.get("COALMINE_SITE_PYPROJECT", str(launch.PYPROJECT))
coalmine_repository = launch.repository(Path(coalmine_pyproject))

project = "coalmine"
author = "the coalmine authors"
copyright = "2026, the coalmine authors"

extensions = ["myst_nb", "sphinx_book_theme", "widget_stills", "repo_links"]

root_doc = "index"
# The staging folder holds only what the site shows; these guard against strays.
exclude_patterns = ["**/.ipynb_checkpoints", "**/src/**", "_build"]

# The lessons' stored outputs are what nbval checked in `make test`: show them as
# they are, never run a notebook here.
nb_execution_mode = "off"
# Lesson 5's and 8's widgets become pictures (widget_stills.py); none of the
# ipywidgets JavaScript, which myst-nb would load from a CDN, is wanted.
nb_ipywidgets_js: dict[str, dict[str, str]] = {}
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# Still pictures of the live widgets, by the widget's class (its repr: "<Dashboard: ...>"),
# remade with `make site-images`.
coalmine_widget_stills = {
    "Dashboard": {
        "image": "site/images/dashboard.png",
        "alt": "The dashboard's plot during a whole rollout: the share of requests per version, "
        "the answers per version and their latency, from all to v1 to all to v2",
        "caption": "A still of the dashboard's plot, made by `coalmine demo` (the same rollout, "
        "headless). The dashboard is live in the lab: its slider, switch and buttons apply "
        "real VirtualServices while traffic flows, and the plot redraws twice a second.",
    },
    "ProgressiveView": {
        "image": "site/images/progressive.png",
        "alt": "A Flagger Canary's weight stepping up to promotion, then a bad version's failed "
        "checks and rollback, with the success rate and p99 latency of primary and canary",
        "caption": "A still of the rollout view's plot, made by `coalmine demo --progressive`. The "
        "view is live in the lab: it redraws every second and its buttons ship the good or the bad "
        "version and open or close the load tester's gate.",
    },
}

html_theme = "sphinx_book_theme"
html_title = "coalmine: canary releases with Gloo"
html_static_path: list[str] = []
# A page of its own names its icon (else the browser asks the server for /favicon.ico).
html_favicon = "images/favicon.svg"
# The theme's colour mode until the reader picks one; left empty, its script logs an error.
html_context = {"default_mode": "auto"}
html_last_updated_fmt = None
html_theme_options: dict[str, object] = {
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "use_download_button": True,
}
if coalmine_repository is not None:
    # The theme's own launch and repository buttons, from the same setting as the
    # links site/launch.py makes (the staging folder mirrors the repository, so the
    # path from the docs to the repository is empty).
    html_theme_options |= {
        "repository_url": coalmine_repository,
        "repository_branch": launch.BRANCH,
        "path_to_docs": "",
        "use_repository_button": True,
        "launch_buttons": {"binderhub_url": launch.BINDERHUB, "notebook_interface": "jupyterlab"},
    }
