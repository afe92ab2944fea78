"""What can go wrong in the lab, as exceptions a learner can act on.

    CoalmineError            every error the lab raises on purpose
    ├── ManifestError        a file or object could not be read or is malformed
    ├── ApplyRefused         the runtime refused an object (it would be Rejected)
    ├── NotFound             no such object
    ├── LabNotRunning        the control plane of this lab home is not up
    ├── LabStartError        the control plane could not start (port in use, ...)
    ├── WaitTimeout          something did not become ready in time
    └── ClusterError         the kubernetes backend cannot do its job
        ├── NoKubeconfig     no kubeconfig (and not inside a cluster), or no such context
        ├── ClusterUnreachable   the API server does not answer
        ├── Unauthorized     the API server does not accept the credentials (401)
        ├── Forbidden        the credentials may not do this (403)
        └── MissingTool      helm, glooctl or kubectl is not on PATH

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
