"""The website (`make docs`, site/): built once from the repository with its stored
outputs, every lesson has a page showing them in order, the live widgets are still
pictures, every internal link resolves, nothing is fetched from elsewhere, nothing was
executed, and the launch links follow ``[project.urls] Repository`` (set only in
copies of pyproject.toml here, never in the real one)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
LESSONS = sorted(ROOT.glob("notebooks/[0-9][0-9]-*.ipynb"))
REPOSITORY = "https://github.com/example-owner/coalmine"
RUN = {"capture_output": True, "text": True, "timeout": 300}


def _load_launch() -> ModuleType:
    # site/ is not a package ("site" is the stdlib's name): load the module by its path.
    spec = importlib.util.spec_from_file_location("coalmine_site_launch", SITE / "launch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


launch = _load_launch()


def pyproject_copy(folder: Path, repository: str | None) -> Path:
    """A copy of pyproject.toml with ``[project.urls] Repository`` set to ``repository``,
    or without it."""
    text = re.sub(r"(?ms)^\[project\.urls\]\n.*?(?=^\[)", "", (ROOT / "pyproject.toml").read_text())
    if repository is not None:
        table = f'[project.urls]\nRepository = "{repository}"\n\n'
        text = text.replace("[project.optional-dependencies]", table + "[project.optional-dependencies]", 1)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(text)
    return folder / "pyproject.toml"


def offline() -> list[str]:
    """A command prefix that takes the network away (a new network namespace), when
    this machine allows one; else nothing, and the page checks below still show that
    no page asks for anything from elsewhere."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], capture_output=True).returncode == 0:
        return [unshare, "--net"]
    return []


def build_site(builddir: Path, pyproject: Path) -> subprocess.CompletedProcess[str]:
    command = [*offline(), sys.executable, str(SITE / "build.py"), "--builddir", str(builddir)]
    done = subprocess.run([*command, "--pyproject", str(pyproject)], cwd=ROOT, **RUN)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The site as `make docs` builds it, the repository URL unset: (html folder, output)."""
    folder = tmp_path_factory.mktemp("site")
    done = build_site(folder / "build", pyproject_copy(folder, None))
    return folder / "build", done.stdout


@pytest.fixture(scope="module")
def html(built: tuple[Path, str]) -> Path:
    return built[0] / "html"


def page(html: Path, notebook: Path) -> str:
    return (html / "notebooks" / f"{notebook.stem}.html").read_text()


class Links(HTMLParser):
    """Every href and src of a page, and the ids it defines."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.links.append((tag, name, value))
            if name in ("id", "name") and value:
                self.ids.add(value)


def pages_of(html: Path) -> list[Path]:
    """The built pages (not the theme's template pieces under _static/)."""
    return sorted(p for p in html.rglob("*.html") if p.relative_to(html).parts[0] != "_static")


def parse(path: Path) -> Links:
    links = Links()
    links.feed(path.read_text())
    return links


def test_the_home_page_is_at_the_top_and_the_sidebar_lists_the_lessons_in_order(html: Path) -> None:
    index = (html / "index.html").read_text()
    sidebar = re.search(r'<nav class="[^"]*bd-docs-nav[^"]*".*?</nav>', index, re.S)
    assert sidebar, "no navigation sidebar on the home page"
    listed = re.findall(r'href="notebooks/([0-9][0-9]-[^"#]+)\.html"', sidebar.group(0))
    assert listed == [lesson.stem for lesson in LESSONS]
    guides = re.findall(r'href="(README|docs/[^"#]+)\.html"', sidebar.group(0))
    assert "README" in guides and {f"docs/{p.stem}" for p in ROOT.glob("docs/*.md")} <= set(guides)
    # A lesson page has the same sidebar, with its own entry marked as the current one.
    lesson = page(html, LESSONS[5])
    current = re.search(r'<li class="toctree-l1 current active"><a[^>]*>([^<]+)</a>', lesson)
    assert current and current.group(1).startswith("5. ")


def test_every_lesson_page_shows_each_stored_output(html: Path) -> None:
    for notebook in LESSONS:
        cells = json.loads(notebook.read_text())["cells"]
        with_outputs = sum(1 for cell in cells if cell["cell_type"] == "code" and cell.get("outputs"))
        text = page(html, notebook)
        assert text.count('class="cell_output') == with_outputs, notebook.name
        title = "".join(cells[0]["source"]).splitlines()[0].removeprefix("# ")
        assert f"<title>{title}" in text.replace("&#8217;", "'"), notebook.name


def test_the_lessons_tables_yaml_and_plots_are_on_their_pages(html: Path) -> None:
    lesson1 = page(html, LESSONS[1])
    assert '<table border="1" class="dataframe">' in lesson1  # lab.get(...) as a DataFrame
    lesson3 = page(html, LESSONS[3])
    assert "apiVersion: gateway.solo.io/v1\nkind: VirtualService" in lesson3  # a YAML output
    lesson5 = page(html, LESSONS[5])
    plots = re.findall(r'<img alt="[^"]*" src="\.\./(_images/[0-9a-f]{64}\.png)"', lesson5)
    assert plots, "lesson 5's matplotlib plot is missing"
    assert all((html / plot).stat().st_size > 10_000 for plot in plots)


def test_the_live_widgets_are_still_pictures_that_say_they_are_live_in_the_lab(html: Path) -> None:
    for lesson, picture in ((LESSONS[5], "dashboard.png"), (LESSONS[8], "progressive.png")):
        text = page(html, lesson)
        figure = re.search(r'<figure class="coalmine-widget-still.*?</figure>', text, re.S)
        assert figure, f"no still picture on {lesson.name}"
        assert f'src="../_images/{picture}"' in figure.group(0)
        caption = re.sub(r"<[^>]+>", "", figure.group(0))
        assert "is live in the lab" in caption and "coalmine demo" in caption
        assert (html / "_images" / picture).read_bytes() == (SITE / "images" / picture).read_bytes()
    for path in pages_of(html):
        text = path.read_text()
        assert "widget-view+json" not in text and "widget-state+json" not in text, path


def test_every_internal_link_resolves(html: Path) -> None:
    broken = []
    for path in pages_of(html):
        links = parse(path)
        for tag, attribute, value in links.links:
            parts = urlsplit(value)
            if parts.scheme or value.startswith(("#", "//")):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{path.relative_to(html)}: <{tag} {attribute}={value}>")
            elif parts.fragment and target.suffix == ".html" and parts.fragment not in parse(target).ids:
                broken.append(f"{path.relative_to(html)}: <{tag} {attribute}={value}> (no such anchor)")
    assert broken == []


def test_no_page_fetches_anything_from_elsewhere(html: Path) -> None:
    fetched = []
    for path in pages_of(html):
        for tag, attribute, value in parse(path).links:
            loads = tag in ("script", "img", "iframe") or (tag == "link" and attribute == "href")
            if loads and (urlsplit(value).scheme or value.startswith("//")):
                fetched.append(f"{path.relative_to(html)}: <{tag} {attribute}={value}>")
    assert fetched == []


def test_the_build_showed_the_stored_outputs_without_running_a_notebook(built: tuple[Path, str]) -> None:
    builddir, _ = built
    # A pod's name ends in a random suffix, new on every run: the page shows the stored one.
    stored = json.loads(LESSONS[1].read_text())
    pods = {
        name
        for cell in stored["cells"]
        for output in cell.get("outputs", [])
        for name in re.findall(r"\bpetstore-v\d-[a-z0-9]{5,10}-[a-z0-9]{5}\b", json.dumps(output))
    }
    assert pods, "lesson 1 stores no pod name to compare"
    assert all(name in page(builddir / "html", LESSONS[1]) for name in pods)
    # The notebook myst-nb wrote out has the stored outputs and execution counts.
    for notebook in LESSONS:
        written = json.loads((builddir / "jupyter_execute" / "notebooks" / notebook.name).read_text())
        original = json.loads(notebook.read_text())
        assert [(c.get("execution_count"), c.get("outputs")) for c in written["cells"]] == [
            (c.get("execution_count"), c.get("outputs")) for c in original["cells"]
        ], notebook.name


def test_without_a_repository_url_each_lesson_says_how_to_run_it_locally(built: tuple[Path, str]) -> None:
    builddir, output = built
    assert output.count(launch.UNSET) == 1
    for notebook in LESSONS:
        text = page(builddir / "html", notebook)
        note = re.search(r'<div class="tip coalmine-launch admonition">.*?</div>', text, re.S)
        assert note and "make" in note.group(0) and notebook.name in note.group(0), notebook.name
        assert "mybinder.org" not in text
    assert "coalmine-launch" in (builddir / "html" / "index.html").read_text()


def test_with_a_repository_url_each_lesson_has_its_binder_link(tmp_path: Path) -> None:
    pyproject = pyproject_copy(tmp_path, REPOSITORY)
    done = build_site(tmp_path / "build", pyproject)
    assert launch.UNSET not in done.stdout
    html = tmp_path / "build" / "html"
    for notebook in LESSONS:
        text = page(html, notebook)
        url = launch.binder_url(f"notebooks/{notebook.name}", pyproject=pyproject)
        assert (
            url == f"https://mybinder.org/v2/gh/example-owner/coalmine/main?urlpath=lab/tree/notebooks/{notebook.name}"
        )
        ours = re.findall(r'<a class="coalmine-binder reference external" href="([^"]+)"', text)
        assert ours == [url], notebook.name
        # The theme's launch button points at the same notebook.
        assert text.count(f'href="{url}"') >= 2, notebook.name
    home = (html / "index.html").read_text()
    assert launch.binder_url(pyproject=pyproject) in home


def test_the_launch_module_builds_links_only_from_a_github_repository(tmp_path: Path) -> None:
    real = launch.repository()
    assert real is None or real.startswith("https://github.com/"), real
    unset = pyproject_copy(tmp_path / "unset", None)
    assert launch.binder_url(pyproject=unset) is None
    assert launch.nbgitpuller_url("https://hub.example.org", pyproject=unset) is None
    assert launch.blob_url("helpers/cli", pyproject=unset) is None
    pyproject = pyproject_copy(tmp_path / "set", REPOSITORY + ".git")
    assert launch.repository(pyproject) == REPOSITORY
    assert launch.binder_url(pyproject=pyproject) == (
        "https://mybinder.org/v2/gh/example-owner/coalmine/main?urlpath=lab/tree/notebooks/00-start-here.ipynb"
    )
    assert launch.binder_url(None, pyproject=pyproject) == "https://mybinder.org/v2/gh/example-owner/coalmine/main"
    assert launch.nbgitpuller_url("https://hub.example.org/", pyproject=pyproject) == (
        "https://hub.example.org/hub/user-redirect/git-pull?repo=https%3A//github.com/example-owner/coalmine"
        "&branch=main&urlpath=lab/tree/coalmine/notebooks/00-start-here.ipynb"
    )
    assert launch.blob_url("helpers/cli", directory=True, pyproject=pyproject) == REPOSITORY + "/tree/main/helpers/cli"
    wrong = pyproject_copy(tmp_path / "wrong", "https://gitlab.com/someone/coalmine")
    with pytest.raises(ValueError, match=r"Repository .* must be https://github.com/OWNER/NAME"):
        launch.repository(wrong)


def test_the_readme_has_the_binder_badge_the_setting_makes() -> None:
    readme = (ROOT / "README.md").read_text()
    badge = launch.badge()
    if badge is None:
        # Nothing to check until the repository is named; the README must not carry a
        # badge that points somewhere else meanwhile.
        assert "mybinder.org/v2/" not in readme
        pytest.skip(f"the README's Binder badge waits for the repository URL: {launch.UNSET}")
    assert badge in readme


def sphinx(source: Path, out: Path, pyproject: Path) -> subprocess.CompletedProcess[str]:
    """Sphinx with the site's configuration on a small source folder of a test's own."""
    env = {**os.environ, "COALMINE_SITE_PYPROJECT": str(pyproject)}
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(SITE), "-W", "--keep-going", "-q"]
    return subprocess.run([*command, "-d", str(out / ".doctrees"), str(source), str(out)], env=env, **RUN)


def small_site(folder: Path, guide: str) -> Path:
    source = folder / "source"
    (source / "docs").mkdir(parents=True)
    (source / "index.md").write_text("# Home\n\n```{toctree}\ndocs/guide\n```\n")
    (source / "docs" / "guide.md").write_text(f"# Guide\n\n{guide}\n")
    return source


def test_links_to_repository_files_that_are_not_pages_never_break(tmp_path: Path) -> None:
    guide = (
        "See [the CLI](../helpers/cli/), [](../manifests/petstore-v1.yaml) and "
        "[the lessons' README](../notebooks/README.md#a-90-minute-workshop)."
    )
    source = small_site(tmp_path, guide)
    unset = sphinx(source, tmp_path / "unset", pyproject_copy(tmp_path / "u", None))
    assert unset.returncode == 0, unset.stderr
    text = (tmp_path / "unset" / "docs" / "guide.html").read_text()
    body = re.sub(r'<span class="pre">([^<]*)</span>', r"\1", text)
    assert 'the CLI (<code class="docutils literal notranslate">helpers/cli</code>)' in body
    assert '<code class="docutils literal notranslate">manifests/petstore-v1.yaml</code>' in body
    assert "README.md" in body and "_downloads" not in body
    pyproject = pyproject_copy(tmp_path / "s", REPOSITORY)
    done = sphinx(source, tmp_path / "set", pyproject)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "set" / "docs" / "guide.html").read_text()
    assert f'href="{REPOSITORY}/tree/main/helpers/cli"' in text
    assert f'href="{REPOSITORY}/blob/main/manifests/petstore-v1.yaml"' in text
    assert f'href="{REPOSITORY}/blob/main/notebooks/README.md#a-90-minute-workshop"' in text


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    source = small_site(tmp_path, "See [nothing](../helpers/no-such-file.py) and [](missing.md).")
    done = sphinx(source, tmp_path / "out", pyproject_copy(tmp_path, None))
    assert done.returncode != 0
    assert "no-such-file" in done.stderr and "missing" in done.stderr


def test_a_widget_without_a_still_picture_fails_the_build(tmp_path: Path) -> None:
    source = small_site(tmp_path, "")
    (source / "index.md").write_text("# Home\n\n```{toctree}\ndocs/guide\nnotebooks/99-widget\n```\n")
    view = {"model_id": "0" * 32, "version_major": 2, "version_minor": 0}
    cell = {
        "cell_type": "code",
        "execution_count": 1,
        "id": "c1",
        "metadata": {},
        "source": "Slider()",
        "outputs": [
            {
                "output_type": "execute_result",
                "execution_count": 1,
                "metadata": {},
                "data": {"application/vnd.jupyter.widget-view+json": view, "text/plain": "<Slider: 3>"},
            }
        ],
    }
    notebook = {"cells": [{"cell_type": "markdown", "id": "m1", "metadata": {}, "source": "# A widget"}, cell]}
    notebook |= {"metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    (source / "notebooks").mkdir()
    (source / "notebooks" / "99-widget.ipynb").write_text(json.dumps(notebook | {"nbformat": 4, "nbformat_minor": 5}))
    done = sphinx(source, tmp_path / "out", pyproject_copy(tmp_path, None))
    assert done.returncode != 0
    assert "no still picture for the widget '<Slider: 3>'" in done.stderr
