"""Measure the canary split by sending real requests and reading who answered.

    df = sample(lab, "/findPets", n=200)   # one row per request
    shares(df)                             # how many went to v1 and v2

The petstore tells the versions apart by its body: v2's pets have ``status: "v2"``.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import pandas as pd

    from .lab import Lab

Target = Union["Lab", str]
ERRORS = "errors"


def base_url(target: Target) -> str:
    """The base URL requests go to: a Lab's gateway (``lab.proxy_url()``) or the string itself."""
    if isinstance(target, str):
        return target
    return target.proxy_url()


def version_of(status: int, body: bytes) -> str | None:
    """``"v2"`` if the answer holds a pet with status "v2", ``"v1"`` for other pets,
    None for errors and bodies that are not the petstore's JSON."""
    if status >= 400:
        return None
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(item, dict) for item in items):
        return None
    if isinstance(data, dict) and "id" not in data:  # e.g. {"code": 503, "message": ...}
        return None
    return "v2" if any(item.get("status") == "v2" for item in items) else "v1"


def _connect(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f'"{url}" is not an http:// or https:// base URL')
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return cls(parts.hostname, parts.port, timeout=timeout), parts.path.rstrip("/")


def sample(target: Target, path: str = "/findPets", n: int = 200,
           headers: dict[str, str] | None = None) -> "pd.DataFrame":
    """Send ``n`` GET requests to ``path``, one after the other, and record each answer.

    ``target`` is a Lab (its gateway) or a base URL such as ``"http://127.0.0.1:8080"``;
    ``headers`` are sent with every request (e.g. ``{"x-canary": "true"}``). Returns a
    DataFrame with one row per request: ``request`` (0..n-1), ``version`` ("v1", "v2",
    or None for an error), ``status`` (HTTP status) and ``latency_ms``.
    """
    import pandas as pd

    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    url = base_url(target)
    # One keep-alive connection, as a browser or a load balancer would use: the split
    # is per request, so reusing the connection must not change it.
    conn, prefix = _connect(url, timeout=30)
    rows = []
    try:
        for i in range(n):
            started = time.perf_counter()
            try:
                status, body = _get(conn, prefix + path, headers or {})
            except (ConnectionError, http.client.HTTPException):
                # The server may close an idle keep-alive connection between two
                # requests; one retry on a new connection tells that from an outage.
                conn.close()
                conn, prefix = _connect(url, timeout=30)
                started = time.perf_counter()
                try:
                    status, body = _get(conn, prefix + path, headers or {})
                except (OSError, http.client.HTTPException) as e:
                    raise ConnectionError(f"request {i} to {url}{path} failed: {e}") from e
            latency = (time.perf_counter() - started) * 1000
            rows.append({"request": i, "version": version_of(status, body), "status": status,
                         "latency_ms": latency})
    finally:
        conn.close()
    frame = pd.DataFrame(rows, columns=["request", "version", "status", "latency_ms"])
    return frame.astype({"request": "int64", "version": "object", "status": "int64", "latency_ms": "float64"})


def _get(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def shares(df: "pd.DataFrame") -> "pd.DataFrame":
    """How many requests of a ``sample`` each version answered: one row per version
    (v1, v2, then ``errors`` if any failed) with ``requests`` and ``share`` (0..1)."""
    import pandas as pd

    versions = df["version"].where(df["version"].notna(), ERRORS) if len(df) else df["version"]
    counts = versions.value_counts()
    labels = ["v1", "v2"] + sorted(str(v) for v in counts.index if v not in ("v1", "v2", ERRORS))
    if ERRORS in counts.index:
        labels.append(ERRORS)
    requests = [int(counts.get(label, 0)) for label in labels]
    total = sum(requests)
    table = pd.DataFrame({"requests": requests,
                          "share": [r / total if total else 0.0 for r in requests]},
                         index=pd.Index(labels, name="version"))
    return table


def curl(url: str, headers: dict[str, str] | None = None) -> str:
    """GET ``url`` and return the body as text, like ``curl -s URL``.

    A failed request comes back as ``HTTP <status>: <body>``, so a cell shows what
    the gateway answered instead of raising.
    """
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode()
    except urllib.error.HTTPError as error:
        body = error.read().decode()
        error.close()
        return f"HTTP {error.code}: {body}"
