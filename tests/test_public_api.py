"""The public API is pinned: what ``helpers`` exports, that it is light to import,
and that the lessons use public names only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import helpers
from helpers import errors

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = [
    "ApplyRefused",
    "CheckFailed",
    "CoalmineError",
    "GatewayUnreachable",
    "InvalidArgument",
    "Lab",
    "LabNotRunning",
    "LabStartError",
    "ManifestError",
    "NotFound",
    "PortInUse",
    "UnknownKind",
    "Unsupported",
    "WaitTimeout",
    "converting",
    "doctor",
    "exercises",
    "httproutes",
    "load_manifests",
    "manifests_dir",
    "progressive",
    "routing",
    "sampling",
]


def test_all_is_pinned_and_sorted() -> None:
    assert helpers.__all__ == PUBLIC
    assert sorted(helpers.__all__) == helpers.__all__


def test_every_public_name_resolves() -> None:
    for name in helpers.__all__:
        assert getattr(helpers, name) is not None, name
    assert helpers.routing.__name__ == "helpers.builders.routing"
    assert helpers.exercises.__name__ == "helpers.lessons.exercises"


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    try:
        helpers.nothing_here  # noqa: B018 - the access is the test
    except AttributeError as e:
        assert "nothing_here" in str(e)
    else:
        raise AssertionError("helpers.nothing_here did not raise")


def test_every_error_a_learner_sees_is_exported_and_documented() -> None:
    classes = {c.__name__: c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)}
    tree = errors.__doc__ or ""
    for name, cls in classes.items():
        assert issubclass(cls, errors.CoalmineError), f"{name} is not a CoalmineError"
        assert cls.__doc__, f"{name} has no docstring"
        assert name in tree, f"{name} is missing from the tree in errors.py's docstring"


def test_every_error_class_has_one_status_and_comes_back_as_itself() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.CoalmineError)]
    for cls in classes:
        again = errors.from_wire(cls.__name__, "message", cls.http_status)
        assert type(again) is cls and str(again) == "message"
    assert type(errors.from_wire(None, "m", 422)) is errors.ApplyRefused
    assert type(errors.from_wire("KeyError", "m", 500)) is errors.CoalmineError


def test_importing_helpers_loads_no_plotting_widgets_or_dataframes() -> None:
    probe = "import sys, helpers; print(sorted(m for m in ('pandas', 'matplotlib', 'ipywidgets') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"


def test_the_live_control_imports_without_the_plot() -> None:
    probe = "import sys, helpers.live.control; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "False"


def test_lessons_import_only_public_names() -> None:
    for source in sorted((ROOT / "notebooks" / "src").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "helpers":
                module = node.module or ""
                assert not any(part.startswith("_") for part in module.split(".")), f"{source.name}: {module}"
                for alias in node.names:
                    assert not alias.name.startswith("_"), f"{source.name}: {module}.{alias.name}"
                    if module == "helpers":
                        assert alias.name in helpers.__all__, f"{source.name}: helpers.{alias.name} is not public"
