"""Downstream TLS: which server name (SNI) each client connection asked for.

The control plane builds the ``ssl.SSLContext`` of an HTTPS listener (its
certificates, and an ``sni_callback`` choosing between them if it likes);
``remember_sni`` wraps that callback once so the proxy also learns the name,
which ``server_name`` reads back from a connection's SSL object. The proxy uses
it to route within the listener the name selected and to answer 421 to a
request whose Host belongs to another listener of the port.
"""

from __future__ import annotations

import ssl
import weakref
from collections.abc import Callable
from typing import Any

_NAMES: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_WRAPPED = "_coalmine_remembers_sni"

SniCallback = Callable[[Any, str | None, ssl.SSLContext], int | None]


def remember_sni(context: ssl.SSLContext) -> None:
    """Make ``context`` record the server name of every handshake (idempotent)."""
    prior: SniCallback | None = context.sni_callback  # type: ignore[assignment]
    if prior is not None and getattr(prior, _WRAPPED, False):
        return

    def remember(obj: Any, name: str | None, ctx: ssl.SSLContext) -> int | None:
        if name:
            try:
                _NAMES[obj] = name.lower()
            except TypeError:  # an SSL object without weak references: the name stays unknown
                pass
        return prior(obj, name, ctx) if prior is not None else None

    setattr(remember, _WRAPPED, True)
    context.sni_callback = remember


def server_name(ssl_object: object) -> str | None:
    """The SNI name the client sent on this connection (None: it sent none)."""
    if ssl_object is None:
        return None
    try:
        return _NAMES.get(ssl_object)
    except TypeError:
        return None
