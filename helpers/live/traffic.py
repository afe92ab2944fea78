"""Steady traffic through the gateway, recorded request by request.

    traffic = Traffic(lab, rate=100)          # 100 requests a second to /findPets
    traffic.start()                           # runs in the background; the notebook stays free
    traffic.summary()                         # share, errors and latency per version
    traffic.rate = 300                        # change the rate while it runs
    traffic.stop()

The generator is *open-loop*: request number ``i`` is sent at ``start + i / rate``
whether or not the earlier ones have been answered, the way real users arrive. A slow
version then shows up as latency (measured from the time the request was due) instead
of quietly lowering the rate, as it would in a loop that waits for each answer.
"""

from __future__ import annotations

import asyncio
import collections
import math
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

import aiohttp

from helpers.errors import InvalidArgument
from helpers.live.answers import Target, base_url, shares, version_of

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["request", "sent_s", "version", "status", "latency_ms", "canary", "error"]


class Record(NamedTuple):
    """One request: its number, when it was due (seconds after start), who answered."""

    request: int
    sent_s: float
    version: str | None
    status: int  # 0 when no HTTP answer came (refused, reset, timeout)
    latency_ms: float  # from the time it was due to the end of the answer
    canary: bool  # whether it carried the canary headers
    error: str | None


class Traffic:
    """Open-loop traffic: ``rate`` GET requests a second to ``path`` on ``target``.

    ``target`` is a Lab (its gateway) or a base URL. ``headers`` are added to a share
    ``header_share`` (0..1) of the requests, spread evenly: with
    ``headers={"x-canary": "true"}, header_share=0.2`` every fifth request is a canary
    request. The last ``capacity`` requests are kept (older ones are dropped), so it
    can run for hours. Use ``start``/``stop``, or ``with Traffic(...) as t:``, or
    ``run(seconds=...)`` to send for a while and get the records.
    """

    def __init__(
        self,
        target: Target,
        rate: float = 100,
        path: str = "/findPets",
        headers: Mapping[str, str] | None = None,
        header_share: float = 1.0,
        capacity: int = 100_000,
        timeout: float = 10.0,
        max_in_flight: int = 256,
    ) -> None:
        if not path.startswith("/"):
            raise InvalidArgument(f'path must start with "/", not {path!r}')
        if capacity < 1 or max_in_flight < 1:
            raise InvalidArgument("capacity and max_in_flight must be at least 1")
        self._target = target
        self.path = path
        self.headers = dict(headers or {})
        self.header_share = header_share
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self._rate = _check_rate(rate)
        self._records: collections.deque[Record] = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._answer = threading.Condition(self._lock)
        self._total = 0  # answers (and failures) recorded since start
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._limit: int | None = None
        self._finished = threading.Event()
        self._started_at = 0.0  # time.monotonic() at start
        self._url = ""
        self.sent = 0  # requests sent so far
        self.answered: collections.Counter[str] = collections.Counter()  # per version, errors as "errors"
        self.skipped = 0  # due requests not sent: max_in_flight were unanswered

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Traffic {state}: {self._rate:g} req/s to {self.path}, {self.sent} sent>"

    # ── control ──────────────────────────────────────────────────────────────

    @property
    def running(self) -> bool:
        """True while requests are being sent."""
        return self._thread is not None and self._thread.is_alive() and not self._finished.is_set()

    @property
    def rate(self) -> float:
        """Requests per second; set it to change the rate at once (0 pauses)."""
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        self._rate = _check_rate(value)
        self._nudge()

    @property
    def header_share(self) -> float:
        """The share (0..1) of requests that carry ``headers``."""
        return self._header_share

    @header_share.setter
    def header_share(self, value: float) -> None:
        if not 0 <= value <= 1:
            raise InvalidArgument(f"header_share must be between 0 and 1, not {value!r}")
        self._header_share = float(value)

    @property
    def elapsed(self) -> float:
        """Seconds since ``start``."""
        return time.monotonic() - self._started_at if self._started_at else 0.0

    def start(self, requests: int | None = None) -> Traffic:
        """Start sending in a background thread (idempotent). With ``requests``, stop
        by itself after sending that many and getting their answers."""
        if self.running:
            return self
        self.join()
        self._url = base_url(self._target).rstrip("/") + self.path
        self._stopping = False
        self._limit = requests
        self._finished.clear()
        self.sent = self.skipped = 0
        self.answered = collections.Counter()
        self._total = 0
        with self._lock:
            self._records.clear()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(ready,), name="coalmine-traffic", daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def stop(self) -> pd.DataFrame:
        """Stop sending, wait for the answers still on their way, and return the records."""
        self._stopping = True
        self._nudge()
        self.join()
        return self.frame()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the generator has finished (after ``stop`` or a request limit)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
            self._thread = None
        return True

    def run(self, seconds: float | None = None, requests: int | None = None) -> pd.DataFrame:
        """Send for ``seconds`` (or until ``requests`` are answered), then stop; returns
        the records. Blocks the caller: use ``start`` to keep working meanwhile."""
        if (seconds is None) == (requests is None):
            raise InvalidArgument("give either seconds or requests")
        if requests is not None and self._rate == 0:
            raise InvalidArgument("rate is 0: no request would ever be sent")
        self.start(requests)
        self._finished.wait(seconds)
        return self.stop()

    def wait_for_answers(self, count: int, timeout: float = 30.0) -> None:
        """Wait until ``count`` more requests have been answered (or have failed)."""
        with self._answer:
            target = self._total + count
            self._answer.wait_for(lambda: self._total >= target or not self.running, timeout)
            if self._total < target:
                got = count - (target - self._total)
                why = "the traffic stopped" if not self.running else f"{timeout:g} s passed"
                raise TimeoutError(f"{why} after {got} of {count} answers; is the traffic running (start())?")

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ── results ──────────────────────────────────────────────────────────────

    def records(self, last: float | None = None) -> list[Record]:
        """The kept records in the order answered; ``last`` keeps those due in the last
        ``last`` seconds."""
        with self._lock:
            records = list(self._records)
        if last is not None:
            since = self.elapsed - last
            records = [r for r in records if r.sent_s >= since]
        return records

    def frame(self, last: float | None = None) -> pd.DataFrame:
        """The records as a DataFrame, one row per request, in the order they were due:
        ``request``, ``sent_s``, ``version`` (None for errors), ``status``,
        ``latency_ms``, ``canary``, ``error``."""
        return to_frame(self.records(last))

    def summary(self, last: float | None = None) -> pd.DataFrame:
        """Per version: requests, share and latency percentiles (see ``summarize``)."""
        return summarize(self.frame(last))

    # ── the sending thread ───────────────────────────────────────────────────

    def _nudge(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop closed in between: nothing to wake
                pass

    def _main(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._send_all(ready))
        finally:
            self._finished.set()
            ready.set()
            with self._answer:
                self._answer.notify_all()
            self._loop = None
            loop.close()

    async def _send_all(self, ready: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        connector = aiohttp.TCPConnector(limit=self.max_in_flight, ttl_dns_cache=None)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        in_flight: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
            self._started_at = time.monotonic()
            origin = loop.time()
            ready.set()
            rate = self._rate
            due = origin  # when the next request is due
            while not self._stopping and (self._limit is None or self.sent < self._limit):
                if self._rate != rate:  # a new rate applies from now on
                    rate, due = self._rate, max(due, loop.time())
                now = loop.time()
                if rate == 0 or due > now:
                    self._wake.clear()
                    wait = None if rate == 0 else due - now
                    try:
                        await asyncio.wait_for(self._wake.wait(), wait)
                    except TimeoutError:
                        pass
                    continue
                # Send everything that is due, even after a stall: that is what open-loop means.
                while due <= now and (self._limit is None or self.sent < self._limit):
                    if len(in_flight) >= self.max_in_flight:
                        self.skipped += 1
                    else:
                        task = loop.create_task(self._one(session, self.sent, due - origin, due))
                        in_flight.add(task)
                        task.add_done_callback(in_flight.discard)
                        self.sent += 1
                    due += 1 / rate
            if in_flight:
                await asyncio.wait(set(in_flight), timeout=self.timeout + 1)
                stragglers = list(in_flight)
                for task in stragglers:
                    task.cancel()
                await asyncio.gather(*stragglers, return_exceptions=True)

    async def _one(self, session: aiohttp.ClientSession, number: int, sent_s: float, due: float) -> None:
        loop = asyncio.get_running_loop()
        share = self._header_share
        canary = math.floor((number + 1) * share) > math.floor(number * share)
        headers = self.headers if canary else None
        status, version, error = 0, None, None
        try:
            async with session.get(self._url, headers=headers, allow_redirects=False) as response:
                body = await response.read()
                status = response.status
                version = version_of(status, body)
        except TimeoutError:
            error = f"no answer within {self.timeout:g}s"
        except aiohttp.ClientError as e:
            error = str(e) or type(e).__name__
        record = Record(
            number, sent_s, version, status, (loop.time() - due) * 1000, bool(canary and self.headers), error
        )
        with self._lock:
            self._records.append(record)
            self.answered[version or "errors"] += 1
            self._total += 1
            self._answer.notify_all()


def _check_rate(rate: float) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 10_000 or rate != rate:
        raise InvalidArgument(f"rate must be a number of requests per second from 0 to 10000, not {rate!r}")
    return float(rate)


def to_frame(records: list[Record]) -> pd.DataFrame:
    """Records as a DataFrame sorted by request number (the order they were due)."""
    import pandas as pd

    frame = pd.DataFrame(records, columns=COLUMNS)
    frame = frame.astype(
        {
            "request": "int64",
            "sent_s": "float64",
            "version": "object",
            "status": "int64",
            "latency_ms": "float64",
            "canary": "bool",
            "error": "object",
        }
    )
    return frame.sort_values("request", ignore_index=True)


def cell(table: pd.DataFrame, version: str, column: str, default: float = 0.0) -> float:
    """One number of a ``summarize`` table (``default`` when that version has no row)."""
    return table[column].astype(float).to_dict().get(version, default)


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Per version (v1, v2, then ``errors``): ``requests``, ``share`` (0..1) and the
    latency percentiles ``p50_ms``, ``p95_ms``, ``p99_ms``."""
    table = shares(frame)
    versions = frame["version"].where(frame["version"].notna(), "errors")
    latency = frame["latency_ms"].groupby(versions)
    for q in (50, 95, 99):
        table[f"p{q}_ms"] = latency.quantile(q / 100).reindex(table.index).round(2)
    return table
