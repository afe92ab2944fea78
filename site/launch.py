"""Launch links for the lessons, from the one setting that names the public repository.

The setting is ``[project.urls] Repository`` in pyproject.toml, a GitHub URL
(``https://github.com/OWNER/NAME``), on branch ``main``. While it is absent, every
function here returns None and the site, the README and the workshop guide say how to
run the lab locally instead. Nothing else turns the setting into links.

Standalone on purpose (stdlib only, no sibling imports): the site's Sphinx config,
the tests and the other guides load it by path.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
BRANCH = "main"
BINDERHUB = "https://mybinder.org"
START = "notebooks/00-start-here.ipynb"
UNSET = "no launch links: set [project.urls] Repository in pyproject.toml"

_GITHUB = re.compile(r"https://github\.com/(?P<owner>[A-Za-z0-9-]+)/(?P<name>[A-Za-z0-9._-]+?)(?:\.git)?/?")


def repository(pyproject: Path = PYPROJECT) -> str | None:
    """The public repository's URL (``https://github.com/OWNER/NAME``), or None while
    pyproject.toml does not name one. Anything but a GitHub repository URL is refused."""
    urls = tomllib.loads(pyproject.read_text())["project"].get("urls", {})
    url = urls.get("Repository")
    if url is None:
        return None
    match = _GITHUB.fullmatch(url.strip())
    if match is None:
        raise ValueError(f"[project.urls] Repository in {pyproject} must be https://github.com/OWNER/NAME, not {url!r}")
    return f"https://github.com/{match['owner']}/{match['name']}"


def binder_url(notebook: str | None = START, pyproject: Path = PYPROJECT) -> str | None:
    """mybinder.org's link that builds the repository and opens ``notebook`` (a path
    from the repository's root) in JupyterLab; None opens JupyterLab's file browser.
    None while the repository is not set."""
    repo = repository(pyproject)
    if repo is None:
        return None
    owner_name = repo.removeprefix("https://github.com/")
    url = f"{BINDERHUB}/v2/gh/{owner_name}/{BRANCH}"
    return url if notebook is None else f"{url}?urlpath=lab/tree/{quote(notebook)}"


def nbgitpuller_url(hub: str, notebook: str = START, pyproject: Path = PYPROJECT) -> str | None:
    """A JupyterHub link (``hub`` like ``https://hub.example.org``) that pulls the
    repository into each participant's home with nbgitpuller and opens ``notebook`` in
    JupyterLab. nbgitpuller clones into a folder named after the repository, hence the
    folder in front of the notebook's path. None while the repository is not set."""
    repo = repository(pyproject)
    if repo is None:
        return None
    folder = repo.rsplit("/", 1)[1]
    query = urlencode({"repo": repo, "branch": BRANCH, "urlpath": f"lab/tree/{folder}/{notebook}"}, safe="/")
    return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{query}"


def blob_url(path: str, directory: bool = False, pyproject: Path = PYPROJECT) -> str | None:
    """Where GitHub shows the repository's file (or folder) ``path``; None while the
    repository is not set."""
    repo = repository(pyproject)
    if repo is None:
        return None
    return f"{repo}/{'tree' if directory else 'blob'}/{BRANCH}/{quote(path)}"


def badge(pyproject: Path = PYPROJECT) -> str | None:
    """The README's Binder badge (Markdown) opening lesson 0; None while the repository is not set."""
    url = binder_url(pyproject=pyproject)
    return None if url is None else f"[![Binder](https://mybinder.org/badge_logo.svg)]({url})"


if __name__ == "__main__":
    # `python site/launch.py` prints the README's badge, or why there is none.
    import sys

    made = badge()
    print(made or UNSET, file=sys.stdout if made else sys.stderr)
    sys.exit(0 if made else 1)
