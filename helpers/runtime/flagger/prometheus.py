"""Flagger's ``prometheus`` metrics provider: one PromQL query over Prometheus's HTTP API.

As ``pkg/metrics/providers/prometheus.go`` does: the query's whitespace runs become one
space, it is sent as ``GET <address>/api/v1/query?query=...`` with the template's
``headers``, a bearer ``token`` or ``username``/``password`` from its Secret, and a 5 s
timeout. An answer of 400 or more fails with its body. The answer's ``data.result``
is read as an instant vector: a series carrying ``values`` (a range) fails, otherwise
the last series' value counts. No series, or NaN (e.g. a rate over no requests), is
``NoValuesFound``: "no values found".

Addresses name Services the way Flagger's pod would (``http://flagger-prometheus.gloo-system:9090``):
they resolve through the in-lab DNS (``servicedns``) from Flagger's namespace; the
request keeps the address's own Host header.
"""

from __future__ import annotations

import asyncio
import base64
import http
import json
import math
import posixpath
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlsplit, urlunsplit

import aiohttp

from helpers.kinds import GLOO_NAMESPACE
from helpers.runtime import regex
from helpers.runtime.servicedns import NoEndpoints, Table, resolve

TIMEOUT_S = 5.0  # Flagger's provider timeout
ONLINE_QUERY = "vector(1)"  # what Flagger asks to see that Prometheus answers
FLAGGER_NAMESPACE = GLOO_NAMESPACE  # where Flagger runs with provider gloo: bare names resolve there
_GO_SPACE = regex.compile(r"[\t\n\f\r ]+")  # Go's \s
_MAX_BODY = 4 * 1024 * 1024


class QueryFailed(RuntimeError):
    """The query could not be run or read (Flagger: "Metric query failed for ...")."""


class NoValuesFound(QueryFailed):
    """The query ran and returned no number: Flagger halts, "no values found"."""

    def __init__(self) -> None:
        super().__init__("no values found")


@dataclass(frozen=True)
class Provider:
    """A template's ``spec.provider``, with the credentials of its ``secretRef``."""

    address: str
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    token: str = ""
    username: str = ""
    password: str = ""
    insecure_skip_verify: bool = False


def provider_of(spec: Mapping[str, Any], credentials: Mapping[str, str] | None) -> Provider:
    """The provider ``spec`` describes; raises ``ValueError`` worded as Flagger's
    ``NewPrometheusProvider`` (an empty address, credentials without a username...)."""
    kind = str(spec.get("type") or "")
    address = str(spec.get("address") or "")
    if not address:
        raise ValueError(f"{kind} address {address} is not a valid URL")
    token = username = password = ""
    if spec.get("secretRef") is not None:
        creds = credentials or {}
        if "token" in creds:
            token = creds["token"]
        elif "username" not in creds:
            raise ValueError(f"{kind} credentials does not contain a username")
        elif "password" not in creds:
            raise ValueError(f"{kind} credentials does not contain a password")
        else:
            username, password = creds["username"], creds["password"]
    headers = {str(k): tuple(str(v) for v in vs or ()) for k, vs in (spec.get("headers") or {}).items()}
    return Provider(address, headers, token, username, password, bool(spec.get("insecureSkipVerify")))


def trim(query: str) -> str:
    """The query with each run of whitespace made one space (Flagger's ``trimQuery``)."""
    return _GO_SPACE.sub(" ", query)


def query_url(address: str, query: str) -> str:
    """``<address>/api/v1/query?query=...``: the address's path kept, its query dropped."""
    parts = urlsplit(address)
    path = posixpath.join(parts.path or "/", "api/v1/query")
    return urlunsplit((parts.scheme, parts.netloc, path, "query=" + quote_plus(trim(query)), ""))


def value_of(body: bytes) -> float:
    """The number in a ``/api/v1/query`` answer, read as Flagger reads it."""
    text = body.decode("utf-8", "replace")
    try:
        answer = json.loads(text)
    except ValueError as e:
        raise QueryFailed(f"error unmarshaling result: {e}, '{text}'") from None
    data = answer.get("data") if isinstance(answer, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    if result is not None and not (isinstance(result, list) and all(isinstance(r, dict) for r in result)):
        # a scalar or string result: Go cannot read it into the vector Flagger expects
        raise QueryFailed(f"error unmarshaling result: cannot read data.result {json.dumps(result)} as a vector")
    value: float | None = None
    for series in result or []:
        if series.get("values") is not None:
            raise QueryFailed("query returned multiple values")
        sample = series.get("value")
        if isinstance(sample, list) and len(sample) > 1 and isinstance(sample[1], str):
            value = _parse_float(sample[1])
    if value is None or math.isnan(value):
        raise NoValuesFound()
    return value


def _parse_float(text: str) -> float:
    if text != text.strip() or "_" in text:
        raise QueryFailed(f'strconv.ParseFloat: parsing "{text}": invalid syntax')
    try:
        return float(text)
    except ValueError:
        raise QueryFailed(f'strconv.ParseFloat: parsing "{text}": invalid syntax') from None


def _headers(provider: Provider, host: str) -> list[tuple[str, str]]:
    found = [(k, v) for k, vs in provider.headers.items() for v in vs]
    if provider.token:
        found.append(("Authorization", f"Bearer {provider.token}"))
    elif provider.username and provider.password:
        pair = f"{provider.username}:{provider.password}".encode()
        found.append(("Authorization", "Basic " + base64.b64encode(pair).decode()))
    return [("Host", host), *found]


async def run_query(session: aiohttp.ClientSession, provider: Provider, query: str, table: Table) -> float:
    """Run ``query`` against ``provider``'s Prometheus: its one number, or ``QueryFailed``
    (``NoValuesFound`` when the query found nothing)."""
    url = query_url(provider.address, query)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise QueryFailed(f'request failed: Get "{url}": unsupported protocol scheme "{parts.scheme}"')
    try:
        target = resolve(url, FLAGGER_NAMESPACE, table)
    except NoEndpoints as e:
        refused = f"dial tcp {parts.netloc}: connect: connection refused ({e})"
        raise QueryFailed(f'request failed: Get "{url}": {refused}') from None
    try:
        async with session.get(
            target,
            headers=_headers(provider, parts.netloc),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
            ssl=False if provider.insecure_skip_verify else True,
        ) as answer:
            body = await answer.content.read(_MAX_BODY)
            status = answer.status
    except TimeoutError:
        raise QueryFailed(f'request failed: Get "{url}": context deadline exceeded') from None
    except aiohttp.ClientConnectorError as e:
        if isinstance(e.os_error, socket.gaierror):
            reason = f"dial tcp: lookup {parts.hostname}: no such host"
        else:
            reason = f"dial tcp {e.host}:{e.port}: connect: connection refused"
        raise QueryFailed(f'request failed: Get "{url}": {reason}') from None
    except (aiohttp.ClientError, asyncio.IncompleteReadError) as e:
        raise QueryFailed(f'request failed: Get "{url}": {e}') from None
    if status >= 400:
        phrase = _phrase(status)
        raise QueryFailed(f"error response: Status {status} {phrase}: {body.decode('utf-8', 'replace')}")
    return value_of(body)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""
