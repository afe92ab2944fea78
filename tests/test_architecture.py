"""The import contract: each layer of ``helpers`` imports only the layers below it,
no import cycle exists anywhere, the maps in the docs name the modules that exist,
and no module grows past the size a reader can hold.

Every ``import`` statement counts, at module level or inside a function, so a lazy
import cannot hide an upward dependency. Layers, bottom first:

    vocabulary   helpers.errors, helpers.kinds      (imports nothing else)
    apps         helpers.apps                       (the petstore, the load tester: stdlib only)
    runtime      helpers.runtime                    (+ vocabulary)
    backends     helpers.backends                   (+ runtime, vocabulary)
    facade       lab, loading, tables, doctor       (+ backends, vocabulary)
    builders     helpers.builders                   (+ vocabulary: pure data)
    migrate      helpers.migrate                    (+ builders, facade, the runtime's pure translation functions)
    live         helpers.live                       (+ builders, facade: they sit on Lab)
    lessons      helpers.lessons                    (+ live, builders, facade)
    cli          helpers.cli, helpers.__main__      (+ everything but runtime and backends)

``helpers/__init__.py`` is the public namespace and may name any layer.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "helpers"
MAX_LINES = 400
# One file on purpose: each ships inside a ConfigMap as the pod's program.
TOO_BIG_ON_PURPOSE = {"helpers.apps.petstore", "helpers.apps.loadtester"}

LAYERS: dict[str, tuple[str, ...]] = {
    "vocabulary": ("helpers.errors", "helpers.kinds", "helpers.durations"),
    "apps": ("helpers.apps",),
    "runtime": ("helpers.runtime",),
    "backends": ("helpers.backends",),
    "facade": ("helpers.lab", "helpers.loading", "helpers.tables", "helpers.doctor"),
    "builders": ("helpers.builders",),
    "migrate": ("helpers.migrate",),
    "live": ("helpers.live",),
    "lessons": ("helpers.lessons",),
    "cli": ("helpers.cli", "helpers.__main__"),
}
MAY_IMPORT: dict[str, set[str]] = {
    "vocabulary": {"vocabulary"},
    "apps": set(),
    "runtime": {"runtime", "vocabulary"},
    "backends": {"backends", "runtime", "vocabulary"},
    "facade": {"facade", "backends", "vocabulary"},
    "builders": {"builders", "vocabulary"},
    "migrate": {"migrate", "builders", "facade", "runtime", "vocabulary"},
    "live": {"live", "builders", "facade", "vocabulary"},
    "lessons": {"lessons", "live", "builders", "facade", "vocabulary"},
    "cli": {"cli", "lessons", "live", "migrate", "builders", "facade", "vocabulary"},
}
# The one sanctioned reach of migrate into the runtime: its pure translation
# functions, so that `convert` ranks and parses exactly as the runtime does.
MIGRATE_MAY_USE = ("helpers.runtime.gatewayapi.precedence", "helpers.runtime.gloo.fields")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "manifests" not in p.parts}


def imports(path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(module imported, line) for every import of ``helpers`` in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "helpers":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import; the package uses absolute imports"
            if node.module is None or node.module.split(".")[0] != "helpers":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                yield (sub if sub in known else node.module), node.lineno


def layer_of(module: str) -> str:
    for layer, prefixes in LAYERS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return layer
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {Path(__file__).name}")


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {m: set() for m in known}
    for name, path in known.items():
        for target, _ in imports(path, known):
            if target != name and target != "helpers":
                edges[name].add(target)
    return edges


def test_every_module_has_a_layer() -> None:
    for name in modules():
        if name != "helpers":
            layer_of(name)


def test_no_layer_imports_upward() -> None:
    known = modules()
    wrong = []
    for name, path in known.items():
        if name == "helpers":
            continue
        mine = layer_of(name)
        for target, line in imports(path, known):
            if target == "helpers":
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports the package namespace `helpers`")
                continue
            theirs = layer_of(target)
            if mine == "migrate" and theirs == "runtime" and target.startswith(MIGRATE_MAY_USE):
                continue
            if mine == "migrate" and theirs == "runtime":
                wrong.append(f"{path.relative_to(ROOT)}:{line}: migrate may use only {MIGRATE_MAY_USE} of the runtime")
            elif theirs not in MAY_IMPORT[mine]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {mine} ({name}) imports {theirs} ({target})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(set(modules()) - TOO_BIG_ON_PURPOSE))
def test_modules_stay_small(name: str) -> None:
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by concern (at most {MAX_LINES})"


def _mentioned(text: str) -> set[str]:
    return set(re.findall(r"``([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)``", text))


def test_the_runtime_map_names_every_runtime_module() -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / "runtime" / "__init__.py").read_text())) or ""
    named = _mentioned(doc)
    present = {m.removeprefix("helpers.runtime.") for m in modules() if m.startswith("helpers.runtime.")}
    assert present - named == set(), f"modules missing from helpers/runtime/__init__.py's map: {present - named}"
    claimed = {n for n in named if ("." in n or n in present) and not n.startswith("helpers.")}
    assert claimed - present == set(), f"the map names modules that do not exist: {claimed - present}"


def test_the_readme_layout_names_every_folder_of_the_package() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    inside = {
        p.name
        for d in (PACKAGE, PACKAGE / "runtime", PACKAGE / "backends")
        for p in d.iterdir()
        if p.is_dir() and p.name != "__pycache__"
    }
    top = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
    named = set(re.findall(r"`(?:helpers/)?([a-z_]+)/`", section))
    assert inside <= named, f"folders missing from the README's layout: {inside - named}"
    assert named <= inside | top, f"the README's layout names folders that do not exist: {named - inside - top}"
