"""HTTPS listeners: the certificates a Gateway listener terminates TLS with.

A listener ``protocol: HTTPS`` (``tls.mode: Terminate``, the default) names its
certificates in ``tls.certificateRefs``: Secrets (core group) of type
``kubernetes.io/tls`` holding a PEM certificate chain in ``tls.crt`` and its key in
``tls.key`` (base64 in ``data``). ``resolve`` checks them as the specification's
listener condition ResolvedRefs says:

- a ref to another kind or group, a missing Secret, or one whose data is not a
  matching PEM certificate and key: False, ``InvalidCertificateRef``;
- a ref into another namespace without a ReferenceGrant (Gateway → Secret) in that
  namespace: False, ``RefNotPermitted``.

``server_context`` makes the ``ssl.SSLContext`` a listener serves with; when several
HTTPS listeners share a port, ``port_context`` picks each one's certificate by the
name the client sends (SNI), the most specific listener hostname first.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.kinds import GATEWAY_NETWORKING_GROUP
from helpers.runtime.gatewayapi.grants import Grants, Reference
from helpers.runtime.gatewayapi.precedence import hostname_covers, hostname_rank

TLS_SECRET_TYPE = "kubernetes.io/tls"
Problem = tuple[str, str]  # (listener condition reason, message)


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate chain and its private key, as a Secret holds them."""

    cert: bytes
    key: bytes


@dataclass(frozen=True)
class ListenerTLS:
    """A listener's certificate (None: nothing usable) and what is wrong with its refs."""

    pair: KeyPair | None
    problems: tuple[Problem, ...] = ()


def resolve(
    listener: Mapping[str, Any],
    gateway_ns: str,
    objects: Mapping[tuple[str, str, str], Mapping[str, Any]],
    grants: Grants,
) -> ListenerTLS:
    """The certificate of an HTTPS listener, from its ``tls.certificateRefs``."""
    tls = listener.get("tls") or {}
    refs = tls.get("certificateRefs") or []
    if not refs:
        return ListenerTLS(None, (("InvalidCertificateRef", "tls.certificateRefs is empty: no certificate to serve"),))
    pair, problems = None, []
    for i, ref in enumerate(refs):
        found = _one(ref, gateway_ns, objects, grants)
        if isinstance(found, KeyPair):
            pair = pair or found  # more than one: implementation-specific; the first valid one serves
        else:
            problems.append((found[0], f"tls.certificateRefs[{i}]: {found[1]}"))
    return ListenerTLS(pair, tuple(problems))


def _one(
    ref: Mapping[str, Any], gateway_ns: str, objects: Mapping[tuple[str, str, str], Mapping[str, Any]], grants: Grants
) -> KeyPair | Problem:
    group, kind = ref.get("group", ""), ref.get("kind", "Secret")
    ns, name = ref.get("namespace") or gateway_ns, ref.get("name", "")
    if group != "" or kind != "Secret":
        return (
            "InvalidCertificateRef",
            f"{kind}.{group or 'core'} is not a kind of certificate the gateway reads (Secret)",
        )
    if not grants.permits(Reference((GATEWAY_NETWORKING_GROUP, "Gateway", gateway_ns), ("", "Secret", ns, name))):
        return (
            "RefNotPermitted",
            f"Secret {ns}/{name} is in another namespace and no ReferenceGrant there allows Gateways from "
            f"namespace {gateway_ns} to use it",
        )
    secret = objects.get(("Secret", ns, name))
    if secret is None:
        return "InvalidCertificateRef", f"Secret {ns}/{name} not found"
    if secret.get("type") != TLS_SECRET_TYPE:
        return "InvalidCertificateRef", f'Secret {ns}/{name} has type "{secret.get("type")}", not "{TLS_SECRET_TYPE}"'
    pair = _key_pair(secret)
    if isinstance(pair, str):
        return "InvalidCertificateRef", f"Secret {ns}/{name}: {pair}"
    try:
        server_context(pair)
    except (ssl.SSLError, ValueError) as e:
        return (
            "InvalidCertificateRef",
            f"Secret {ns}/{name}: tls.crt and tls.key are not a PEM certificate and its key ({e})",
        )
    return pair


def _key_pair(secret: Mapping[str, Any]) -> KeyPair | str:
    data, plain = secret.get("data") or {}, secret.get("stringData") or {}
    values = {}
    for field in ("tls.crt", "tls.key"):
        if field in plain:  # the API server folds stringData into data; a stored object may still hold it
            values[field] = str(plain[field]).encode()
            continue
        if field not in data:
            return f"no {field} in data"
        try:
            values[field] = base64.b64decode(str(data[field]), validate=True)
        except (binascii.Error, ValueError):
            return f"data.{field} is not base64"
    return KeyPair(values["tls.crt"], values["tls.key"])


@functools.lru_cache(maxsize=64)
def server_context(pair: KeyPair) -> ssl.SSLContext:
    """A server-side TLS context serving ``pair``; raises ``ssl.SSLError`` when the
    certificate and key do not load or do not match."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # ssl reads certificates from files only: a private temporary directory, gone at once.
    with tempfile.TemporaryDirectory(prefix="coalmine-tls-") as tmp:
        cert, key = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        cert.write_bytes(pair.cert)
        key.write_bytes(pair.key)
        key.chmod(0o600)
        ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@functools.lru_cache(maxsize=64)
def port_context(listeners: tuple[tuple[str | None, KeyPair], ...]) -> ssl.SSLContext:
    """The context of a port served by several HTTPS listeners, each ``(hostname,
    certificate)``: the client's SNI name picks the listener whose hostname covers it,
    the most specific first (exact, then the longest wildcard); a client that sends no
    name, or one no hostname covers, gets the certificate of the listener without a
    hostname (else the first listener's)."""
    default = next((pair for host, pair in listeners if host is None), listeners[0][1])
    front = server_context(default)
    if len({pair for _, pair in listeners}) == 1:
        return front
    # A fresh context for the port: the callback must not be set on the cached one.
    ctx = server_context.__wrapped__(default)
    ranked = sorted(((hostname_rank(h), h, p) for h, p in listeners if h is not None), key=lambda t: t[0])

    def pick(sock: Any, name: str | None, _ctx: ssl.SSLContext) -> None:
        if name:
            for _, host, pair in ranked:
                if hostname_covers(host, name.lower()):
                    sock.context = server_context(pair)
                    return

    ctx.sni_callback = pick
    return ctx
