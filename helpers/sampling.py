"""Measure the canary split by sending real requests and reading who answered.

    df = sample(lab, "/findPets", n=200)   # one row per request
    shares(df)                             # how many went to v1 and v2

The petstore tells the versions apart by its body: v2's pets have ``status: "v2"``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any, Union

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


def sample(target: Target, path: str = "/findPets", n: int = 200,
           headers: dict[str, str] | None = None, rate: float = 1000) -> "pd.DataFrame":
    """Send ``n`` GET requests to ``path`` at ``rate`` a second, and record each answer.

    ``target`` is a Lab (its gateway) or a base URL such as ``"http://127.0.0.1:8080"``;
    ``headers`` are sent with every request (e.g. ``{"x-canary": "true"}``). Returns a
    DataFrame with one row per request: ``request`` (0..n-1), ``version`` ("v1", "v2",
    or None for an error), ``status`` (HTTP status), ``latency_ms`` and more (see
    ``helpers.traffic.Traffic``, which sends them). Raises ConnectionError when no
    request got an answer at all.
    """
    from .traffic import Traffic

    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    traffic = Traffic(target, rate=rate, path=path, headers=headers, max_in_flight=max(n, 1))
    frame = traffic.run(requests=n) if n else traffic.frame()
    unanswered = frame[frame["status"] == 0]
    if n and len(unanswered) == n:
        raise ConnectionError(f"no answer from {base_url(target)}{path}: {unanswered['error'].iloc[0]}")
    return frame


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
