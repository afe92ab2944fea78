"""Has a route change reached the gateway? A probe for ``lab.wait_in_force``.

    lab.apply(routing.header_canary())
    lab.wait_in_force(serves(gateway + "/findPets", "v2", headers={"x-canary": "true"}))

A probe sends a few requests and says whether the answers are the ones the change
should give. It sees that a route now exists, or that a version now answers or no
longer does; it cannot tell a 10/90 split from a 50/50 one in a few requests (the
lessons measure those with a large sample right after).
"""

from __future__ import annotations

import http.client
from collections import Counter
from collections.abc import Iterable
from urllib.parse import urlsplit

from helpers.live.answers import version_of

PROBE_REQUESTS = 20  # a version with weight 50 answers 20 in a row once in a million


def serves(url: str, versions: str | Iterable[str], headers: dict[str, str] | None = None) -> Probe:
    """A probe for ``lab.wait_in_force``: yes when ``PROBE_REQUESTS`` GETs of ``url``
    were all answered by ``versions`` ("v1", "v2", or both), each at least once."""
    return Probe(url, versions, headers)


class Probe:
    """Asks the gateway whether it serves a change; ``str()`` says what it last saw."""

    def __init__(
        self,
        url: str,
        versions: str | Iterable[str],
        headers: dict[str, str] | None = None,
        requests: int = PROBE_REQUESTS,
    ) -> None:
        self.url, self.headers, self.requests = url, dict(headers or {}), requests
        self.versions = {versions} if isinstance(versions, str) else set(versions)
        self.last: Counter[str] = Counter()

    def __call__(self) -> bool:
        parts = urlsplit(self.url)
        self.last = Counter()
        for _ in range(self.requests):
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
            try:
                conn.request("GET", parts.path or "/", headers=self.headers)
                resp = conn.getresponse()
                self.last[version_of(resp.status, resp.read()) or f"status {resp.status}"] += 1
            except OSError as e:
                self.last[type(e).__name__] += 1
            finally:
                conn.close()
        return set(self.last) == self.versions

    def __str__(self) -> str:
        want = " and ".join(sorted(self.versions))
        got = ", ".join(f"{k} {n}" for k, n in sorted(self.last.items())) or "nothing yet"
        sent = "".join(f" with {k}: {v}" for k, v in self.headers.items())
        return f"GET {urlsplit(self.url).path or '/'}{sent}: want answers from {want}; last {got}"
