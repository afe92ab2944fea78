"""What can go wrong in the lab, as exceptions a learner can act on.

    CoalmineError            every error the lab raises on purpose
    ├── ManifestError        a file or object could not be read or is malformed
    ├── ApplyRefused         the runtime refused an object (it would be Rejected)
    ├── NotFound             no such object
    ├── LabNotRunning        the control plane of this lab home is not up
    ├── LabStartError        the control plane could not start (port in use, ...)
    └── WaitTimeout          something did not become ready in time

Every message names the object or field and says what to do next.
"""

from __future__ import annotations


class CoalmineError(Exception):
    """Base of every error the lab raises on purpose."""


class ManifestError(CoalmineError):
    """A manifest could not be parsed or is not a valid object."""


class ApplyRefused(CoalmineError):
    """The runtime refused an object: Gloo with strict validation would reject it.

    The running configuration is unchanged.
    """


class NotFound(CoalmineError):
    """The object asked for does not exist."""


class LabNotRunning(CoalmineError):
    """The lab's control plane is not running: start it with ``coalmine up``."""


class LabStartError(CoalmineError):
    """The lab's control plane could not start."""


class WaitTimeout(CoalmineError):
    """Something did not become ready before the deadline."""
