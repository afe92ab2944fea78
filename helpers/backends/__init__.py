"""Backends: where the lab's objects go and where its gateway runs.

``local`` (the default) is the embedded runtime on 127.0.0.1; ``kubernetes``
(``kube/``, imported only when chosen) is a real cluster with Gloo Edge or kgateway,
behind the same ``Backend`` protocol. Notebook helpers take a backend and never
branch on which one it is.
"""

from helpers.backends.base import Backend
from helpers.backends.local import LocalBackend

__all__ = ["Backend", "LocalBackend"]
