"""Has a route change reached the gateway? A probe for ``lab.wait_in_force``.

    lab.apply(routing.header_canary())
    lab.wait_in_force(serves(gateway + "/findPets", "v2", headers={"x-canary": "true"}))

A probe sends a few requests and says whether the answers are the ones the change
should give. It sees that a route now exists, or that a version now answers or no
longer does; it cannot tell a 10/90 split from a 50/50 one in a few requests (the
lessons measure those with a large sample right after). ``splits`` can: it sends
``SPLIT_REQUESTS`` and wants each version's share near its weight.

``Serves`` says what a lesson's state serves without the gateway's address (known only
once the lab runs); ``InForce`` turns a few of them into one probe for
``lab.wait_in_force``, and builds its probes only when first asked, so a backend that
never asks (the local lab) costs nothing.
"""

from __future__ import annotations

import http.client
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from helpers.errors import WaitTimeout
from helpers.live.answers import version_of

if TYPE_CHECKING:
    from helpers.lab import Lab

PROBE_REQUESTS = 20  # a version with weight 50 answers 20 in a row once in a million
SPLIT_REQUESTS = 400  # enough to tell a 10/90 split from a 25/75 one (as exercise 5's check does)
SPLIT_SIGMAS = 4.0  # a right split misses this band once in 16,000 probes


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
        self.ask()
        return self.judge(self.last)

    def judge(self, answers: Counter[str]) -> bool:
        """Whether ``answers`` (requests per version, or per error) are what the change gives."""
        return set(answers) == self.versions

    def ask(self) -> None:
        """Send the requests; ``last`` counts who answered them."""
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

    def wanted(self) -> str:
        """What the probe wants, in words."""
        return "answers from " + " and ".join(sorted(self.versions))

    def __str__(self) -> str:
        got = ", ".join(f"{k} {n}" for k, n in sorted(self.last.items())) or "nothing yet"
        sent = "".join(f" with {k}: {v}" for k, v in self.headers.items())
        return f"GET {urlsplit(self.url).path or '/'}{sent}: want {self.wanted()}; last {got}"


def splits(url: str, shares: Mapping[str, float], headers: dict[str, str] | None = None) -> Split:
    """A probe for ``lab.wait_in_force``: yes when ``SPLIT_REQUESTS`` GETs of ``url``
    were all answered by the versions of ``shares`` (e.g. ``{"v2": 0.25, "v1": 0.75}``),
    each about as often as its share."""
    return Split(url, shares, headers)


class Split(Probe):
    """A probe that wants a weighted split: every version of ``shares`` answers, each
    within ``SPLIT_SIGMAS`` standard deviations of its share of the requests."""

    def __init__(
        self,
        url: str,
        shares: Mapping[str, float],
        headers: dict[str, str] | None = None,
        requests: int = SPLIT_REQUESTS,
    ) -> None:
        super().__init__(url, set(shares), headers, requests)
        self.shares = dict(shares)

    def judge(self, answers: Counter[str]) -> bool:
        n = sum(answers.values())
        if not n or set(answers) - self.versions:
            return False
        return all(abs(answers[v] - n * p) <= SPLIT_SIGMAS * math.sqrt(n * p * (1 - p)) for v, p in self.shares.items())

    def wanted(self) -> str:
        return " and ".join(f"{v} {p:.0%}" for v, p in sorted(self.shares.items())) + " of the answers"


class Serves(NamedTuple):
    """What a state serves on one path: ``versions`` ("v1", a set of versions, or their
    shares such as ``{"v2": 0.25, "v1": 0.75}``) answer ``path`` (with ``headers``)
    through ``gateway`` (None: Gloo's gateway-proxy; else "namespace/name")."""

    path: str
    versions: str | frozenset[str] | tuple[tuple[str, float], ...]
    headers: tuple[tuple[str, str], ...] = ()
    gateway: str | None = None

    def probe(self, base: str) -> Probe:
        """The probe for this path on the gateway at ``base``."""
        url, headers = base + self.path, dict(self.headers) or None
        if isinstance(self.versions, tuple):
            return splits(url, dict(self.versions), headers)
        return serves(url, self.versions, headers)


class InForce:
    """One probe for ``lab.wait_in_force``: yes when ``lab``'s gateways serve every one of
    ``expected``. Its probes (and the gateways' addresses) are made at the first ask."""

    def __init__(self, lab: Lab, expected: Iterable[Serves]) -> None:
        self.lab, self.expected = lab, tuple(expected)
        self.asked = 0  # how many times a backend asked: never, on the local lab
        self._probes: list[Probe] = []
        self._failing: Probe | None = None

    def probes(self) -> list[Probe]:
        """The probes, one per ``Serves``, made from the gateways' addresses."""
        if not self._probes:
            bases: dict[str | None, str] = {}
            for serves_ in self.expected:
                if serves_.gateway not in bases:
                    bases[serves_.gateway] = self.lab.proxy_url(gateway=serves_.gateway)
                self._probes.append(serves_.probe(bases[serves_.gateway]))
        return self._probes

    def __call__(self) -> bool:
        self.asked += 1
        self._failing = next((p for p in self.probes() if not p()), None)
        return self._failing is None

    def __str__(self) -> str:
        if self._failing is not None:
            return str(self._failing)
        return "; ".join(map(str, self._probes)) or "nothing asked yet"


def wait_served(lab: Lab, expected: Iterable[Serves], timeout: float) -> None:
    """Wait until ``lab``'s gateways serve ``expected``, as ``lab.wait_in_force`` does
    (no request, no wait on the local lab); ``WaitTimeout`` after ``timeout`` seconds."""
    expected = tuple(expected)
    if expected:
        lab.wait_in_force(InForce(lab, expected), timeout)


CHECK_WAIT_S = 15.0  # a check waits this long for the learner's change, then judges what it finds


def settle(lab: Lab, expected: Iterable[Serves], timeout: float = CHECK_WAIT_S) -> bool:
    """Before a check judges traffic: wait up to ``timeout`` seconds until ``lab`` serves
    ``expected`` (the answer the exercise wants). False when it still does not: a wrong
    answer is never in force, and the check's own requests then say what is wrong."""
    try:
        wait_served(lab, expected, timeout)
    except WaitTimeout:
        return False
    return True
