"""coalmine: a hands-on canary-release lab for the Gloo API gateway.

Notebooks start here::

    from helpers import Lab
    lab = Lab()          # the local runtime (or Lab("kubernetes") on a cluster)
    lab.up()

``Lab`` is the whole notebook-facing API and the errors below are everything it
raises on purpose. The modules a lesson uses by name load when first asked for::

    from helpers import exercises, routing, httproutes, progressive, sampling, converting, doctor

The package, one folder per concern (each folder's ``__init__`` is its map):

    lab, loading, tables, doctor   the Lab façade: one object for every operation
    errors, kinds, durations       the vocabulary every layer shares
    cli/                           the ``coalmine`` command, calling ``Lab``
    builders/                      builders: VirtualServices, HTTPRoutes, Flagger Canaries as dicts
    live/                          traffic, sampling, canary control, plot, dashboard, demo
    migrate/                       VirtualService -> HTTPRoute conversion
    lessons/                       exercises (ensure, check, solve, reset) and notebook display
    backends/                      where the lab runs: local (the runtime) or kubernetes
    runtime/                       the embedded local runtime, "Gloo in a box"
    apps/, manifests/              the petstore app and the YAML the lessons apply
"""

from __future__ import annotations

import importlib
from types import ModuleType

from helpers.errors import (
    ApplyRefused,
    CheckFailed,
    CoalmineError,
    GatewayUnreachable,
    InvalidArgument,
    LabNotRunning,
    LabStartError,
    ManifestError,
    NotFound,
    PortInUse,
    UnknownKind,
    Unsupported,
    WaitTimeout,
)
from helpers.lab import Lab
from helpers.loading import load_manifests, manifests_dir

# Learner-facing modules, imported on first use: ``import helpers`` stays light (the
# control plane's process imports it too) and needs no plotting or widget library.
_MODULES = {
    "converting": "helpers.migrate.converting",
    "doctor": "helpers.doctor",
    "exercises": "helpers.lessons.exercises",
    "httproutes": "helpers.builders.httproutes",
    "progressive": "helpers.builders.progressive",
    "routing": "helpers.builders.routing",
    "sampling": "helpers.live.sampling",
}

__all__ = [
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


def __getattr__(name: str) -> ModuleType:
    if name in _MODULES:
        module = importlib.import_module(_MODULES[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
