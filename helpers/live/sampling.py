"""Measure the canary split by sending real requests and reading who answered.

    df = sample(lab, "/findPets", n=200)   # one row per request
    shares(df)                             # how many went to v1 and v2

The petstore tells the versions apart by its body: v2's pets have ``status: "v2"``.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from helpers.errors import GatewayUnreachable, InvalidArgument
from helpers.live.answers import ERRORS, Target, base_url, shares, version_of
from helpers.live.traffic import Traffic

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ERRORS", "Target", "base_url", "curl", "sample", "shares", "version_of"]


def sample(
    target: Target, path: str = "/findPets", n: int = 200, headers: dict[str, str] | None = None, rate: float = 1000
) -> pd.DataFrame:
    """Send ``n`` GET requests to ``path`` at ``rate`` a second, and record each answer.

    ``target`` is a Lab (its gateway) or a base URL such as ``"http://127.0.0.1:8080"``;
    ``headers`` are sent with every request (e.g. ``{"x-canary": "true"}``). Returns a
    DataFrame with one row per request: ``request`` (0..n-1), ``version`` ("v1", "v2",
    or None for an error), ``status`` (HTTP status), ``latency_ms`` and more (see
    ``helpers.live.traffic.Traffic``, which sends them). Raises ``GatewayUnreachable`` when no
    request got an answer at all.
    """
    if n < 0:
        raise InvalidArgument(f"n must be >= 0, not {n}")
    traffic = Traffic(target, rate=rate, path=path, headers=headers, max_in_flight=max(n, 1))
    frame = traffic.run(requests=n) if n else traffic.frame()
    unanswered = frame[frame["status"] == 0]
    if n and len(unanswered) == n:
        raise GatewayUnreachable(f"no answer from {base_url(target)}{path}: {unanswered['error'].iloc[0]}")
    return frame


def curl(url: str, headers: dict[str, str] | None = None) -> str:
    """GET ``url`` and return the body as text, like ``curl -s URL``.

    A failed request comes back as ``HTTP <status>: <body>``, so a cell shows what
    the gateway answered instead of raising.
    """
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as error:
        body = error.read().decode()
        error.close()
        return f"HTTP {error.code}: {body}"
