"""Is this machine ready for the lab? One call checks, and says how to fix what is not.

    from helpers.doctor import doctor
    doctor()                # the local lab
    doctor("kubernetes")    # a real cluster: kubeconfig, context, helm, glooctl, kubectl

Each line is ``OK   <check>`` or ``FIX  <check>: <what is wrong> -> <the command to fix it>``.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from helpers.backends.kube.connecting import kubeconfig_paths
from helpers.backends.kube.tools import INSTALL_TOOLS
from helpers.errors import InvalidArgument
from helpers.lab import BACKENDS, Lab

if TYPE_CHECKING:
    import pandas as pd

# Lower bounds as in pyproject.toml (tests/test_doctor.py keeps the two in step);
# the upper bounds are only used to write the fix command.
REQUIREMENTS: dict[str, tuple[str, str]] = {
    "aiohttp": ("3.10", "4"),
    "httptools": ("0.6", "1"),
    "pyyaml": ("6.0", "7"),
    "pandas": ("2.2", "4"),
    "ipywidgets": ("8.1", "9"),
    "jupyterlab_widgets": ("3.0.10", "4"),
    "ipympl": ("0.9.4", "1"),
    "matplotlib": ("3.10", "4"),
}
MIN_PYTHON = (3, 11)
# ipywidgets' major version -> the jupyterlab_widgets major that can render its models.
WIDGET_PAIRS = {8: 3, 7: 1}


@dataclass(frozen=True)
class DoctorRow:
    """One check: its name, whether it passed, what was found, and how to fix it."""

    check: str
    ok: bool
    detail: str = ""
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"OK   {self.check}"
        return f"FIX  {self.check}: {self.detail} -> {self.fix}"


@dataclass
class DoctorReport:
    """What ``doctor()`` found: ``rows``, ``ok`` (all passed), ``to_frame()``."""

    rows: list[DoctorRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(row.ok for row in self.rows)

    def problems(self) -> list[DoctorRow]:
        """The checks that failed."""
        return [row for row in self.rows if not row.ok]

    def to_frame(self) -> pd.DataFrame:
        """The checks as a table: check, ok, detail, fix."""
        import pandas as pd

        return pd.DataFrame([vars(row) for row in self.rows], columns=["check", "ok", "detail", "fix"])

    def __str__(self) -> str:
        return "\n".join(row.line() for row in self.rows)

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        # A code block keeps one line per check and the column alignment.
        return f"```text\n{self}\n```"

    def __bool__(self) -> bool:
        return self.ok


def installed_version(name: str) -> str | None:
    """The installed version of package ``name``, or None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...]:
    """The leading numbers of a version: ``3.0.10rc1`` -> (3, 0, 10)."""
    numbers = []
    for part in version.split("."):
        m = re.match(r"\d+", part)
        if not m:
            break
        numbers.append(int(m.group()))
        if m.group() != part:
            break
    return tuple(numbers)


def _pip(name: str) -> str:
    low, high = REQUIREMENTS[name]
    return f"'{name}>={low},<{high}'"


def check_python(version: tuple[int, ...] | None = None) -> DoctorRow:
    """Python is new enough (3.11 or newer)."""
    found = tuple(version or sys.version_info[:3])
    want = ".".join(map(str, MIN_PYTHON))
    if found[:2] >= MIN_PYTHON:
        return DoctorRow(f"python >= {want}", True, ".".join(map(str, found)))
    return DoctorRow(
        f"python >= {want}",
        False,
        f"this is Python {'.'.join(map(str, found))}",
        f"install Python {want} or newer (python.org, or `uv python install 3.12`), then `make lab`",
    )


def check_package(name: str) -> DoctorRow:
    """Package ``name`` is installed, at a version the lab supports."""
    low, high = REQUIREMENTS[name]
    version = installed_version(name)
    if version is None:
        return DoctorRow(name, False, "not installed", f"pip install {_pip(name)}")
    if not _release(low) <= _release(version) < _release(high):
        return DoctorRow(name, False, f"version {version}, the lab needs >={low},<{high}", f"pip install {_pip(name)}")
    return DoctorRow(name, True, version)


def check_widgets() -> DoctorRow:
    """ipywidgets and jupyterlab_widgets are a matching pair (8 with 3, 7 with 1).

    A mismatched pair is the usual cause of "Error displaying widget: model not found".
    """
    ipyw, labw = installed_version("ipywidgets"), installed_version("jupyterlab_widgets")
    both = f"pip install {_pip('ipywidgets')} {_pip('jupyterlab_widgets')}"
    if ipyw is None or labw is None:
        missing = " and ".join(n for n, v in (("ipywidgets", ipyw), ("jupyterlab_widgets", labw)) if v is None)
        return DoctorRow("ipywidgets with jupyterlab_widgets", False, f"{missing} not installed", both)
    major, lab_major = _release(ipyw)[:1], _release(labw)[:1]
    want = WIDGET_PAIRS.get(major[0]) if major else None
    if want is None:
        return DoctorRow(
            "ipywidgets with jupyterlab_widgets", False, f"ipywidgets {ipyw} is not a version the lab knows", both
        )
    if lab_major != (want,):
        fix = f"pip install 'jupyterlab_widgets>={want},<{want + 1}'" if major[0] == 8 else both
        return DoctorRow(
            f"ipywidgets {major[0]} with jupyterlab_widgets {want}",
            False,
            f'ipywidgets {ipyw} with jupyterlab_widgets {labw}: widgets would show "model not found"',
            fix + ", then restart JupyterLab",
        )
    return DoctorRow(f"ipywidgets {major[0]} with jupyterlab_widgets {want}", True, f"{ipyw} / {labw}")


def check_local() -> DoctorRow:
    """The local runtime starts: ``Lab().up()`` and its status answer."""
    try:
        lab = Lab("local")
        lab.up()
        status = lab.status()
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return DoctorRow(
            "local lab starts",
            False,
            first,
            "run `coalmine down` then `coalmine up` in a terminal and read the log it names",
        )
    return DoctorRow("local lab starts", True, str(status.get("home", "")))


def check_kubeconfig() -> list[DoctorRow]:
    """A kubeconfig exists and names a current context."""
    found = [p for p in kubeconfig_paths() if p.is_file()]
    if not found:
        where = "$KUBECONFIG" if os.environ.get("KUBECONFIG") else "~/.kube/config"
        return [
            DoctorRow(
                "kubeconfig",
                False,
                f"no kubeconfig at {where}",
                "create a cluster with `kind create cluster` (it writes ~/.kube/config) "
                "or `export KUBECONFIG=/path/to/kubeconfig`",
            )
        ]
    rows = [DoctorRow("kubeconfig", True, os.pathsep.join(map(str, found)))]
    context, contexts = "", []
    for path in found:
        # kubectl merges the files: the first current-context set wins.
        try:
            doc: Any = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            rows.append(
                DoctorRow(
                    "kubeconfig readable", False, f"{path}: {e}", f"fix or remove {path}, then `kubectl config view`"
                )
            )
            return rows
        if not isinstance(doc, dict):
            continue
        context = context or str(doc.get("current-context") or "")
        contexts += [str(c.get("name")) for c in doc.get("contexts") or [] if isinstance(c, dict)]
    if not context:
        pick = (
            f"`kubectl config use-context {contexts[0]}`"
            if contexts
            else "`kubectl config get-contexts`, then `kubectl config use-context NAME`"
        )
        rows.append(DoctorRow("kubeconfig current context", False, "no current context is set", pick))
    elif contexts and context not in contexts:
        rows.append(
            DoctorRow(
                "kubeconfig current context",
                False,
                f'current context "{context}" is not defined in the kubeconfig',
                "`kubectl config get-contexts`, then `kubectl config use-context NAME`",
            )
        )
    else:
        rows.append(DoctorRow("kubeconfig current context", True, context))
    return rows


def check_tool(name: str) -> DoctorRow:
    """Command ``name`` (helm, glooctl, kubectl) is on PATH."""
    path = shutil.which(name)
    if path is None:
        return DoctorRow(f"{name} on PATH", False, "not found", INSTALL_TOOLS[name])
    return DoctorRow(f"{name} on PATH", True, path)


def doctor(backend: str | None = None) -> DoctorReport:
    """Check this machine for the lab and say how to fix each problem.

    ``backend`` is ``"local"`` (default, or ``COALMINE_BACKEND``) or ``"kubernetes"``.
    Checks Python, the packages, that ipywidgets and jupyterlab_widgets match, then
    that the local lab starts, or, for kubernetes, the kubeconfig, its current context,
    and helm, glooctl and kubectl on PATH (it does not contact the cluster).
    """
    name = backend or os.environ.get("COALMINE_BACKEND", "local")
    if name not in BACKENDS:
        raise InvalidArgument(f'unknown backend "{name}": use "local" or "kubernetes"')
    rows = [check_python()]
    rows += [check_package(pkg) for pkg in REQUIREMENTS]
    rows.append(check_widgets())
    if name == "local":
        rows.append(check_local())
    else:
        rows += check_kubeconfig()
        rows += [check_tool(tool) for tool in INSTALL_TOOLS]
    return DoctorReport(rows)
