"""What can go wrong in the lab, as exceptions a learner can act on.

    CoalmineError              every error the lab raises on purpose
    ├── InvalidArgument        a value given to a helper or a command is not one it takes
    ├── ManifestError          a file or object could not be read or is malformed
    ├── ApplyRefused           the runtime refused an object (it would be Rejected)
    ├── NotFound               no such object
    │   └── UnknownKind        no such kind of object (``get foo``)
    ├── Unsupported            this backend cannot do that (``reset`` on the local lab)
    ├── LabNotRunning          the control plane of this lab home is not up
    ├── LabStartError          the control plane could not start
    │   └── PortInUse          a port the lab was asked to listen on is taken
    ├── WaitTimeout            something did not become ready in time
    ├── GatewayUnreachable     requests to the gateway got no answer at all
    ├── CheckFailed            an exercise check found the lab not yet doing what it asks
    └── ClusterError           the kubernetes backend cannot do its job
        ├── NoKubeconfig       no kubeconfig (and not inside a cluster), or no such context
        ├── ClusterUnreachable the API server does not answer
        ├── Unauthorized       the API server does not accept the credentials (401)
        ├── Forbidden          the credentials may not do this (403)
        └── MissingTool        helm, glooctl or kubectl is not on PATH

Every message names the object or field and says what to do next. Each class has
the HTTP status the local admin API answers it with (``http_status``), and
``from_wire`` turns such an answer back into the same class on the client side.
This module imports nothing from the rest of the package: every layer may use it.
"""

from __future__ import annotations

import linecache
import os
from types import TracebackType


class CoalmineError(Exception):
    """Base of every error the lab raises on purpose."""

    http_status = 500

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for this error in a notebook: its name and message (what
        is wrong, where, and what to do) and the line that raised it, without the
        stack through the package. Errors raised by accident keep their traceback."""
        lines = str(self).splitlines() or [""]
        shown = [f"\x1b[1;31m{type(self).__name__}\x1b[0m: {lines[0]}", *lines[1:]]
        where = _raised_at(self.__traceback__)
        if where:
            shown.append(f"\x1b[2m(raised by {where})\x1b[0m")
        return shown


class InvalidArgument(CoalmineError, ValueError):
    """A value given to a helper or a command is not one it takes; the message says
    which values are."""

    http_status = 400


class ManifestError(CoalmineError):
    """A manifest could not be parsed or is not a valid object."""

    http_status = 400


class ApplyRefused(CoalmineError):
    """The runtime refused an object: Gloo with strict validation would reject it.

    The running configuration is unchanged.
    """

    http_status = 422


class NotFound(CoalmineError):
    """The object asked for does not exist."""

    http_status = 404


class UnknownKind(NotFound):
    """No kind of object is called that; the message lists the known ones."""


class Unsupported(CoalmineError):
    """This backend cannot do that; the message says what does the same job here."""

    http_status = 501


class LabNotRunning(CoalmineError):
    """The lab's control plane is not running: start it with ``coalmine up``."""

    http_status = 503


class LabStartError(CoalmineError):
    """The lab's control plane (or a port-forward) could not start."""


class PortInUse(LabStartError):
    """A port the lab was asked to listen on is taken: free it or pick another."""

    http_status = 409


class WaitTimeout(CoalmineError):
    """Something did not become ready before the deadline."""

    http_status = 504


class GatewayUnreachable(CoalmineError, ConnectionError):
    """Requests to the gateway got no answer at all (no HTTP status)."""

    http_status = 502


class CheckFailed(CoalmineError):
    """An exercise check found the lab not yet doing what the exercise asks.

    ``hint`` says what to try next; ``check(n)`` shows both instead of raising.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


class ClusterError(CoalmineError):
    """The kubernetes backend cannot reach, use or change the cluster."""


class NoKubeconfig(ClusterError):
    """No kubeconfig was found (and this is not a pod in a cluster), or it lacks the context."""


class ClusterUnreachable(ClusterError):
    """The API server named by the kubeconfig does not answer."""


class Unauthorized(ClusterError):
    """The API server refused the kubeconfig's credentials (HTTP 401)."""


class Forbidden(ClusterError):
    """The credentials are valid but may not do this (HTTP 403): RBAC."""


class MissingTool(ClusterError):
    """A command the backend needs (helm, glooctl, kubectl) is not on PATH."""


def _raised_at(tb: TracebackType | None) -> str:
    """``line N: <code>`` of the last caller outside this package (the learner's cell)."""
    package = os.path.dirname(os.path.abspath(__file__))
    found = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        if os.path.abspath(code.co_filename).startswith(package + os.sep):
            break
        text = linecache.getline(code.co_filename, tb.tb_lineno).strip()
        found = f"line {tb.tb_lineno}: {text}" if text else f"line {tb.tb_lineno}"
        tb = tb.tb_next
    return found


def _all_classes() -> dict[str, type[CoalmineError]]:
    found: dict[str, type[CoalmineError]] = {}
    todo: list[type[CoalmineError]] = [CoalmineError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo += cls.__subclasses__()
    return found


def from_wire(name: str | None, message: str, status: int) -> CoalmineError:
    """The error an admin API answer stands for: the class it names (``type``), else
    the one whose ``http_status`` it carries, else ``CoalmineError``."""
    classes = _all_classes()
    cls = classes.get(name or "")
    if cls is None:
        # Only a class that declares the status itself stands for it (500 is every
        # unexpected error, so it stays the base class).
        cls = next(
            (c for c in classes.values() if c.__dict__.get("http_status") == status and status != 500), CoalmineError
        )
    if cls is CheckFailed:
        return CheckFailed(message)
    return cls(message)
