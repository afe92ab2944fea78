"""The lesson notebooks follow one skeleton, match their sources, and hold real outputs.

nbval (``pytest notebooks/``) proves the stored outputs are still true; these tests
prove the notebooks are the ones the sources describe, that every lesson has the
parts a learner relies on (what you will learn, prerequisites, time, steps, an
exercise with a check that passes, a summary, links), and that each notebook gets a
fresh lab of its own under nbval.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from fnmatch import fnmatch
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LESSON_FILES = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
DOCS = "https://docs.solo.io/gloo-edge/latest/"
REFERENCE_MARK = '# (reference answer: remove the "#" on the next line to apply it)'
DETAILS = "<details><summary>Show the reference answer</summary>"
IGNORE = "NBVAL_IGNORE_OUTPUT"


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "scripts" / "build_notebooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


build_notebooks = load_builder()


def lesson_number(path: Path) -> int:
    return int(path.name[:2])


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def headings(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(cell index, heading line) for every markdown heading."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            found += [(i, line) for line in cell.source.splitlines() if line.startswith("#")]
    return found


def index_of(nb: nbformat.NotebookNode, heading: str) -> int:
    hits = [
        i
        for i, line in headings(nb)
        if line == heading or line.startswith(heading + " ") or line.startswith(heading + ":")
    ]
    assert hits, f'no heading "{heading}"'
    return hits[0]


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def text_of(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(str(out.data.get("text/plain", "")))
    return "".join(parts)


# ── the sources ──────────────────────────────────────────────────────────────


def test_there_is_a_notebook_per_lesson() -> None:
    assert [lesson_number(p) for p in LESSON_FILES] == list(range(10))
    sources = sorted(p.stem for p in (NOTEBOOKS / "src").glob("[0-9][0-9]-*.py"))
    assert sources == [p.stem for p in LESSON_FILES]


def test_the_learners_folder_shows_only_the_lessons_and_their_readme() -> None:
    """``make lab`` serves notebooks/ with .jupyter-lab.json, which hides the rest."""
    globs = json.loads((NOTEBOOKS / ".jupyter-lab.json").read_text())["ContentsManager"]["hide_globs"]
    shown = [p.name for p in NOTEBOOKS.iterdir() if not p.name.startswith(".")]
    shown = [name for name in shown if not any(fnmatch(name, glob) for glob in globs)]
    assert sorted(shown) == sorted([p.name for p in LESSON_FILES] + ["README.md"])
    for name in ("src", "conftest.py", "sanitize.cfg"):
        assert (NOTEBOOKS / name).exists() and any(fnmatch(name, glob) for glob in globs), name


def test_make_lab_opens_lesson_0_on_the_trusted_lessons() -> None:
    recipe = (ROOT / "Makefile").read_text().split("\nlab:", 1)[1].split("\n\n", 1)[0]
    assert "jupyter trust notebooks/[0-9][0-9]-*.ipynb" in recipe
    assert (
        "--config=$(LAB_CONFIG)" in recipe
        and "LAB_CONFIG := notebooks/.jupyter-lab.json" in (ROOT / "Makefile").read_text()
    )
    assert recipe.rstrip().endswith("notebooks/00-start-here.ipynb"), "the file to open comes last"


def test_notebooks_match_their_sources() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_notebooks.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_converter_reads_the_percent_format() -> None:
    cells = build_notebooks.parse(
        textwrap.dedent("""\
        # a header for reviewers, not a cell
        # %% [markdown]
        # # Title
        #
        # Some *text*.

        # %%
        x = 1

        print(x)


        # %% [markdown]
        # ## Next
        """)
    )
    assert cells == [
        build_notebooks.Cell("markdown", "# Title\n\nSome *text*."),
        build_notebooks.Cell("code", "x = 1\n\nprint(x)"),
        build_notebooks.Cell("markdown", "## Next"),
    ]
    with pytest.raises(ValueError, match="must start with '# '"):
        build_notebooks.parse("# %% [markdown]\nnot a comment\n")
    with pytest.raises(ValueError, match="unsupported cell marker"):
        build_notebooks.parse("# %% [raw]\n# x\n")
    with pytest.raises(ValueError, match="empty code cell"):
        build_notebooks.parse("# %%\n\n# %%\nx = 1\n")


def test_built_notebooks_are_valid_and_stable() -> None:
    cells = [build_notebooks.Cell("markdown", "# T"), build_notebooks.Cell("code", "1")]
    a, b = build_notebooks.build(cells, "09-x"), build_notebooks.build(cells, "09-x")
    assert nbformat.writes(a) == nbformat.writes(b)
    assert a.metadata.kernelspec.name == "python3"
    assert a.metadata.language_info.name == "python"
    assert a.cells[1].execution_count is None and a.cells[1].outputs == []


# ── every notebook ───────────────────────────────────────────────────────────


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda p: p.stem)
def test_skeleton(path: Path) -> None:
    nb = read(path)
    n = lesson_number(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {n}. "), "the title comes first"
    assert sum(1 for _, line in headings(nb) if re.match(r"# \S", line)) == 1, "one title"
    order = [index_of(nb, h) for h in ("## What you will learn", "## Prerequisites")]
    steps = [i for i, line in headings(nb) if line.startswith("## Step ")]
    order += [steps[0], index_of(nb, "## Summary"), index_of(nb, "## Learn more")]
    assert order == sorted(order), "what you will learn, prerequisites, steps, summary, links"
    prerequisites = nb.cells[index_of(nb, "## Prerequisites")].source
    assert re.search(r"\*\*Time to learn\*\*: \d+ minutes", prerequisites)
    assert DOCS in nb.cells[index_of(nb, "## Learn more")].source
    numbers = [int(m.group(1)) for _, line in headings(nb) if (m := re.match(r"## Step (\d+):", line))]
    assert numbers == list(range(1, len(numbers) + 1)), "steps are numbered 1, 2, 3, ..."


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda p: p.stem)
def test_every_step_has_code(path: Path) -> None:
    """Each step is a short explanation followed by code to run."""
    nb = read(path)
    for i, line in headings(nb):
        if line.startswith("## Step ") or line == "## Set up":
            section = []
            for cell in nb.cells[i + 1 :]:
                if cell.cell_type == "markdown" and cell.source.startswith("## "):
                    break
                section.append(cell)
            assert any(c.cell_type == "code" for c in section), f'"{line}" has no code cell'
            assert nb.cells[i + 1].cell_type == "code" or nb.cells[i + 2].cell_type == "code", (
                f'"{line}": keep the explanation short, then the code'
            )


@pytest.mark.parametrize("path", [p for p in LESSON_FILES if lesson_number(p) > 0], ids=lambda p: p.stem)
def test_first_code_cell_ensures_the_lessons_start(path: Path) -> None:
    n = lesson_number(path)
    first = code_cells(read(path))[0].source
    assert re.search(rf"^lab = exercises\.ensure\({n}\)$", first, re.MULTILINE), first


def test_start_here_checks_the_environment_and_picks_the_backend() -> None:
    nb = read(NOTEBOOKS / "00-start-here.ipynb")
    sources = [c.source for c in code_cells(nb)]
    assert "doctor.doctor()" in sources[0]
    picks = [s for s in sources if "BACKEND = " in s and '"local"' in s]
    assert len(picks) == 1 and "lab = Lab(BACKEND)" in picks[0], "exactly one cell picks the backend"
    assert all("Lab(" not in s for s in sources if s is not picks[0])
    assert "kubernetes" in "".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert text_of(code_cells(nb)[0]).count("OK   ") >= 3 and "FIX" not in text_of(code_cells(nb)[0])


@pytest.mark.parametrize("path", [p for p in LESSON_FILES if lesson_number(p) > 0], ids=lambda p: p.stem)
def test_exercise_is_left_to_the_learner_with_the_answer_one_step_away(path: Path) -> None:
    """Run All does not do the exercise: the answer is folded in markdown and the call
    that applies it is commented out; the check after it shows the learner's FAIL."""
    nb = read(path)
    n = lesson_number(path)
    exercise = index_of(nb, "## Exercise")
    assert exercise < index_of(nb, "## Summary")
    cells = nb.cells[exercise:]
    assert f"exercises.reset({n})" in cells[0].source, "the exercise says how to start over"
    assert cells[1].cell_type == "code" and cells[1].source.startswith("# Your answer here:"), "room for the answer"
    reference = cells[2]
    assert reference.cell_type == "markdown" and reference.source.startswith("### Reference answer")
    lines = reference.source.splitlines()
    opened, closed = lines.index(DETAILS), lines.index("</details>")
    assert lines[opened + 1 : opened + 3] == ["", "```python"], "a blank line, then the code, so markdown renders it"
    assert "```" in lines[opened + 3 : closed] and lines[closed - 1] == "", "the code block closes before </details>"
    solve = cells[3]
    assert solve.cell_type == "code" and solve.source.splitlines() == [REFERENCE_MARK, f"# exercises.solve({n})"]
    assert f"`exercises.solve({n})`" in reference.source, "the markdown says how to apply it"
    check = cells[4]
    assert check.cell_type == "code" and check.source.strip() == f"exercises.check({n})"
    assert re.fullmatch(r"FAIL: .+\nHint: .+", text_of(check)), text_of(check)
    html = "".join(str(out.data.get("text/html", "")) for out in check.outputs if "data" in out)
    verdict = re.fullmatch(r'<div class="coalmine-check">(.*)</div>', html)
    assert verdict and [row[:12] for row in verdict.group(1).split("<br>")] == [
        '<b style="co',
        "<b>found:</b",
        "<b>hint:</b>",
    ], "shown as three lines: the verdict, what was found, the hint"


def test_check_hints_name_only_helpers_the_lessons_have_shown() -> None:
    """A hint is only useful with a name the learner has seen: every route builder a
    check's messages name is called in that lesson or an earlier one."""
    from helpers import httproutes, progressive, routing
    from helpers.lessons import checks, gatewayapi, promql
    from helpers.lessons import progressive as lesson8

    modules = (routing, httproutes, progressive)
    builders = {n for m in modules for n, f in vars(m).items() if inspect.isfunction(f) and n[0] != "_"}
    for n in range(1, len(LESSON_FILES)):
        check = {7: gatewayapi.check, 8: lesson8.check, 9: promql.check}.get(n) or checks.CHECKS[n]
        source = inspect.getsource(check)
        home = {8: lesson8, 9: promql}.get(n, checks)
        used = [v for name, v in vars(home).items() if name in source and name != check.__name__]
        functions = [check, *(v for v in used if inspect.isfunction(v))]
        # The messages: the string literals of the check, of the functions it calls and the texts it uses.
        literals = [n for f in functions for n in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(f))))]
        text = " ".join([*(str(n.value) for n in literals if isinstance(n, ast.Constant)), *map(str, used)])
        named = {name for name in re.findall(r"\b(\w+)\(", text) if name in builders}
        shown = "".join(c.source for path in LESSON_FILES[: n + 1] for c in code_cells(read(path)))
        missing = sorted(name for name in named if not re.search(rf"\b{name}\(", shown))
        assert not missing, f"lesson {n}'s check names {missing}, which no lesson up to {n} has called"


def test_no_cell_solves_an_exercise() -> None:
    for path in LESSON_FILES:
        for cell in code_cells(read(path)):
            assert not re.search(r"^\s*exercises\.solve\(", cell.source, re.MULTILINE), f"{path.name}: {cell.source}"


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda p: p.stem)
def test_stored_outputs_are_a_clean_run(path: Path) -> None:
    """Run top to bottom in one kernel, without errors or warnings."""
    nb = read(path)
    counts = [c.execution_count for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), "run `make notebooks` to store outputs"
    for cell in code_cells(nb):
        for out in cell.outputs:
            assert out.output_type != "error", cell.source
            assert not (out.output_type == "stream" and out.name == "stderr"), f"stderr in: {cell.source}"
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.metadata.language_info.name == "python"
    ids = [c.id for c in nb.cells]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda p: p.stem)
def test_output_checks_are_switched_off_only_where_outputs_vary(path: Path) -> None:
    """nbval compares every cell but those marked NBVAL_IGNORE_OUTPUT; each marked cell
    says why and is followed by a compared cell that checks its result."""
    nb = read(path)
    cells = code_cells(nb)
    for i, cell in enumerate(cells):
        assert "NBVAL_SKIP" not in cell.source and "NBVAL_RAISES_EXCEPTION" not in cell.source
        assert not (cell.metadata.get("tags") or []), "use comment markers, visible in the source"
        if IGNORE in cell.source:
            lines = cell.source.splitlines()
            assert lines[0] == f"# {IGNORE}" and lines[1].startswith("# ("), "say why on the next line"
            assert "sampling.sample" in cell.source, "only measured splits vary"
            assert IGNORE not in cells[i + 1].source, "the next cell checks the result"
    ignored = sum(IGNORE in c.source for c in cells)
    assert ignored <= 2 and ignored * 4 <= len(cells), "most cells stay compared"


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda p: p.stem)
def test_links_to_other_notebooks_exist(path: Path) -> None:
    nb = read(path)
    text = "".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for target in re.findall(r"\]\(([0-9][0-9]-[^)]+\.ipynb)\)", text):
        assert (NOTEBOOKS / target).exists(), target
    if lesson_number(path) < len(LESSON_FILES) - 1:
        assert f"({LESSON_FILES[lesson_number(path) + 1].name})" in text, "link the next lesson"


def test_weighted_canary_lesson_has_the_live_dashboard() -> None:
    nb = read(NOTEBOOKS / "05-weighted-canary.ipynb")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    shown = [i for i, src in enumerate(code) if src.rstrip().endswith("\ndash")]
    assert shown and "Dashboard(lab" in code[shown[0]], "a cell builds the dashboard and shows it"
    stops = [i for i, src in enumerate(code) if "dash.stop()" in src]
    # nbval: no traffic left running into the exercise and the end of the notebook
    assert stops and stops[0] > shown[0]


# ── nbval runs each notebook in a fresh lab ─────────────────────────────────


NOTEBOOK_CELL = """\
import os
from pathlib import Path
home = Path(os.environ["COALMINE_HOME"])
Path({record!r}).write_text(str(home))
print(home.name.startswith("coalmine-nb-"), home.is_dir(), sorted(os.listdir(home)))
"""


def test_each_notebook_gets_a_fresh_lab_home(tmp_path: Path) -> None:
    """Two notebooks under nbval with notebooks/conftest.py: each kernel sees its own
    new, empty COALMINE_HOME; both are removed afterwards."""
    (tmp_path / "conftest.py").write_text((NOTEBOOKS / "conftest.py").read_text())
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --nbval --nbval-current-env -p no:cacheprovider\n")
    for name in ("01-a", "02-b"):
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell(
            NOTEBOOK_CELL.format(record=str(tmp_path / f"{name}.home")), id="c0", execution_count=1
        )
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="True True []\n")]
        nb.cells = [cell]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    env = {**os.environ, "COALMINE_HOME": str(tmp_path / "outer")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    homes = [Path((tmp_path / f"{name}.home").read_text()) for name in ("01-a", "02-b")]
    assert homes[0] != homes[1]
    assert [h.name[:15] for h in homes] == ["coalmine-nb-01-", "coalmine-nb-02-"]
    assert not any(h.exists() for h in homes), "the lab homes are removed after each notebook"
