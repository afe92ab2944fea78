"""Webhooks: how the canary controller asks other services (Flagger's semantics).

Each hook is an HTTP POST of JSON ``{name, namespace, phase, checksum, metadata}``
(the hook's own ``metadata``) with the hook's ``timeout`` (Flagger's default ``10s``).
An answer of 200 to 202 passes; any other status fails with the answer's body as the
reason. A 5xx (not 501), a 429 or no answer at all is retried ``retries`` times (none
by default), then fails "giving up after N attempt(s)", as Flagger's retrying HTTP
client says it. ``event`` hooks get every event instead, with ``eventMessage``,
``eventType`` and ``timestamp`` (ms) in their metadata.

URLs resolve through the in-lab DNS (``servicedns``), from the namespace Flagger runs
in (``gloo-system``, where Flagger's Gloo guide installs it): name the namespace of a
Service, as in ``http://flagger-loadtester.default/``. The request keeps the URL's
own Host header.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from helpers.kinds import GLOO_NAMESPACE
from helpers.runtime.servicedns import NoEndpoints, Table, resolve

DEFAULT_TIMEOUT = "10s"
FLAGGER_NAMESPACE = GLOO_NAMESPACE  # where Flagger's pod would resolve names from
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' SafeEncodeString alphabet
_MAX_BODY = 64 * 1024


def checksum(status: Mapping[str, Any]) -> str:
    """A short hash of what the analysis is of (``lastAppliedSpec`` and the tracked
    configs), as Flagger sends it: the same while one revision is analysed."""
    data = json.dumps([status.get("trackedConfigs"), status.get("lastAppliedSpec", "")], sort_keys=True)
    h = 0x811C9DC5  # FNV-1a, 32 bits
    for byte in data.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in str(h))


def payload(canary: Mapping[str, Any], phase: str, hook: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a webhook call for ``hook`` in ``phase``."""
    meta = canary.get("metadata") or {}
    body: dict[str, Any] = {
        "name": meta.get("name"),
        "namespace": meta.get("namespace") or "default",
        "phase": phase,
        "checksum": checksum(canary.get("status") or {}),
    }
    if hook.get("metadata"):
        body["metadata"] = {str(k): str(v) for k, v in hook["metadata"].items()}
    return body


def event_payload(
    canary: Mapping[str, Any], hook: Mapping[str, Any], message: str, event_type: str, now: float | None = None
) -> dict[str, Any]:
    """The body of an ``event`` hook call: the event in the metadata, the hook's own
    metadata added where it names other keys."""
    body = payload(canary, str((canary.get("status") or {}).get("phase", "")), {})
    stamp = int((time.time() if now is None else now) * 1000)
    metadata = {"eventMessage": message, "eventType": event_type, "timestamp": str(stamp)}
    for k, v in (hook.get("metadata") or {}).items():
        metadata.setdefault(str(k), str(v))
    body["metadata"] = metadata
    return body


def _retried(status: int) -> bool:
    return status == 429 or (status >= 500 and status != 501)


async def call(
    session: aiohttp.ClientSession,
    url: str,
    body: Mapping[str, Any],
    timeout: float,
    table: Table,
    retries: int = 0,
) -> str | None:
    """POST ``body`` to ``url``; None when it passed, else why it failed."""
    host = urlsplit(url).netloc
    attempts = max(0, retries) + 1
    last_error = ""
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(min(2.0 ** (attempt - 1), 30.0))  # the client's back-off: 1 s doubling
        try:
            target = resolve(url, FLAGGER_NAMESPACE, table)
        except NoEndpoints as e:
            last_error = f"dial tcp: lookup {host}: {e}"
            continue
        try:
            async with session.post(
                target,
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json", "Host": host},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                text = (await resp.content.read(_MAX_BODY)).decode(errors="replace")
                if resp.status <= 202:
                    return None
                if not _retried(resp.status):
                    return text.strip() or f"status {resp.status}"
                last_error = ""
        except TimeoutError:
            last_error = f"context deadline exceeded (Client.Timeout exceeded after {timeout:g}s)"
        except (aiohttp.ClientError, OSError, ValueError) as e:
            last_error = str(e) or type(e).__name__
    suffix = f": {last_error}" if last_error else ""
    return f"POST {url} giving up after {attempts} attempt(s){suffix}"
