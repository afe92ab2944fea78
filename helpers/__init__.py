"""coalmine: a hands-on canary-release lab for the Gloo API gateway.

Notebooks start here::

    from helpers import Lab
    lab = Lab()          # the local runtime (or Lab("kubernetes") on a cluster)
    lab.up()

``Lab`` is the whole notebook-facing API; ``helpers.cli`` is the ``coalmine``
command; ``helpers.runtime`` is the embedded local runtime ("Gloo in a box").
"""

from .errors import (
    ApplyRefused,
    CoalmineError,
    LabNotRunning,
    LabStartError,
    ManifestError,
    NotFound,
    WaitTimeout,
)
from .lab import Lab
from .loading import load_manifests

__all__ = [
    "ApplyRefused",
    "CoalmineError",
    "Lab",
    "LabNotRunning",
    "LabStartError",
    "ManifestError",
    "NotFound",
    "WaitTimeout",
    "load_manifests",
]
