"""Load for the benchmarks: ``wrk`` when it is on PATH, else an asyncio client.

Both keep connections alive and run closed-loop (each connection sends its next
request when the previous answer is complete) at a given concurrency, and report
requests/s with p50/p99 latency. Client and servers share this machine's cores, so
compare figures only within one run (direct vs through the gateway), never against
a fixed threshold.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import time
from typing import NamedTuple, cast

WARMUP_S = 0.5
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]+)", re.IGNORECASE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pick_client(wanted: str = "auto") -> str:
    """``wrk`` if asked for or available, else ``python``."""
    if wanted == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if wanted == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not on PATH (apt-get install wrk), or use --client python")
    return wanted


def measure(client: str, port: int, path: str, concurrency: int, duration: float) -> Result:
    """Load ``http://127.0.0.1:{port}{path}`` and return what was measured."""
    if client == "wrk":
        return run_wrk(f"http://127.0.0.1:{port}{path}", concurrency, duration)
    return run_python(port, concurrency, duration, path)


class Result(NamedTuple):
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


# --- wrk -----------------------------------------------------------------------------------


def _wrk_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, concurrency: int, duration: float) -> Result:
    threads = min(2, concurrency)
    cmd = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--latency", url]
    subprocess.run([*cmd[:3], f"-d{max(1, round(WARMUP_S))}s", url], capture_output=True, check=True, timeout=30)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=duration + 30).stdout
    rps = float(re.search(r"Requests/sec:\s*([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _wrk_ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _wrk_ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s*([0-9]+)", out)
    return Result(concurrency, rps, p50, p99, int(errors.group(1)) if errors else 0)


# --- the asyncio client -------------------------------------------------------------------


class _Client(asyncio.Protocol):
    """One keep-alive connection sending requests back to back until ``deadline``."""

    def __init__(
        self, request: bytes, deadline: float, latencies: list[float], errors: list[int], done: asyncio.Future[None]
    ) -> None:
        self.request, self.deadline = request, deadline
        self.latencies, self.errors, self.done = latencies, errors, done
        self.buffer = bytearray()
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send()

    def _send(self) -> None:
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        length = _CONTENT_LENGTH.search(self.buffer, 0, end + 2)
        total = end + 4 + (int(length.group(1)) if length else 0)
        if len(self.buffer) < total:
            return
        now = time.perf_counter()
        if not self.buffer.startswith(b"HTTP/1.1 200 "):
            self.errors.append(1)
        del self.buffer[:total]
        if now <= self.deadline:
            self.latencies.append(now - self.sent_at)
            self._send()
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _load(port: int, concurrency: int, duration: float, path: str) -> tuple[list[float], int]:
    loop = asyncio.get_running_loop()
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    deadline = time.perf_counter() + duration
    latencies: list[float] = []
    errors: list[int] = []
    waits = []
    for _ in range(concurrency):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(lambda d=done: _Client(request, deadline, latencies, errors, d), "127.0.0.1", port)
        waits.append(done)
    await asyncio.wait_for(asyncio.gather(*waits), duration + 30)
    return latencies, len(errors)


def run_python(port: int, concurrency: int, duration: float, path: str = "/api/pets") -> Result:
    runner = asyncio.run
    try:  # the client is the bottleneck in this mode; uvloop (if installed) helps it
        import uvloop

        runner = uvloop.run  # type: ignore[assignment]
    except ImportError:
        pass
    runner(_load(port, concurrency, WARMUP_S, path))
    latencies, errors = runner(_load(port, concurrency, duration, path))
    latencies.sort()
    n = len(latencies)
    return Result(
        concurrency, n / duration, latencies[n // 2] * 1000, latencies[min(n - 1, int(n * 0.99))] * 1000, errors
    )
