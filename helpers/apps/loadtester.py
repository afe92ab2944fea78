"""loadtester: a Flagger-compatible load tester for the lab's canary analysis.

It speaks the API of Flagger's loadtester (ghcr.io/fluxcd/flagger-loadtester), so a
Canary's webhooks work the same against it and against the real one:

    POST /                  {"name", "namespace", "phase", "metadata": {"cmd": "hey ..."}}
                            starts a load test in the background (202); the same command
                            for the same canary while it runs is skipped, as Flagger does
    /gate/check             200 "Approved" when the canary's gate is open, else 403
    /gate/open, /gate/close 202; gates are keyed by name.namespace and start closed
    /gate/approve           always 200;  /gate/halt: always 403
    /rollback/check|open|close   the same, for the rollback gate
    GET /healthz            200 "OK", for probes

A ``cmd`` is one ``hey`` command (``hey -z 30s -q 10 -c 2 http://podinfo-canary.test/``),
parsed here and run by an open-loop generator: request ``i`` is sent at
``start + i / (q * c)`` whether or not earlier ones were answered (hey's total rate),
latency counts from when it was due, and at most MAX_IN_FLIGHT wait for an answer (a
due request beyond that is skipped and counted). No shell runs: anything that is not a
hey command hey's flags describe is refused with 400 and a message naming the problem.
Unlike Flagger's image, it runs no bash, helm, kubectl, concord or ngrinder tasks.
``metadata.logCmdOutput: "true"`` prints a summary line when a test ends.

Inside the lab, Service names resolve as in-cluster DNS would: when COALMINE_SERVICES
names the lab's services.json, ``name``, ``name.ns``, ``name.ns.svc`` and
``name.ns.svc.cluster.local`` go to that Service's endpoints (round-robin); a bare
``name`` is in POD_NAMESPACE; other names are left to real DNS.

This file MUST stay a single, stdlib-only module (Python >= 3.11), like petstore.py: in
a cluster it runs on a stock python image from a ConfigMap, and the local runtime runs
the very same file as a process. Settings come from the environment:

    HOST, PORT          where to listen (default 0.0.0.0 and 8080; PORT=0 picks a free port)
    COALMINE_SERVICES   the lab's services.json (absent on a cluster: real DNS)
    POD_NAMESPACE       the namespace of a bare Service name (default "default")
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import math
import os
import re
import shlex
import signal
import socket
import sys
import time
import traceback
from collections import Counter
from collections.abc import Mapping
from http import HTTPStatus
from typing import NamedTuple
from urllib.parse import quote, urlsplit

MAX_IN_FLIGHT = 256  # unanswered requests per load test; keeps memory bounded
MAX_RATE = 1000.0  # requests a second per load test (q * c)
MAX_DURATION_S = 3600.0  # Flagger's loadtester kills a task after -timeout=1h
END_GRACE_S = 30.0  # with -t 0, how long the last requests may take after -z
MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
KEEPALIVE_S = 75.0
SHUTDOWN_GRACE_S = 5.0
USER_AGENT = "hey/0.0.1"  # what hey sends

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(r"[0-9]{1,18}")
_HEY_HEADER = re.compile(r"([\w-]+):\s*(.+)")  # hey's own rule for -H
_HEY_AUTH = re.compile(r"(.+):(\S.*)")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SHELL_OPERATOR = re.compile(r"[();<>|&]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_REASONS = {s.value: s.phrase for s in HTTPStatus}
_ASCII = "".join(map(chr, range(33, 127)))

# Flagger's loadtester runs these task types; this one runs only "cmd" with hey.
OTHER_FLAGGER_TYPES = ("bash", "helm", "helmv3", "kubectl", "concord", "ngrinder")
VALUE_FLAGS = ("z", "q", "c", "m", "H", "host", "t", "d", "T", "A", "a", "cpus")
BOOL_FLAGS = ("disable-keepalive", "disable-compression", "disable-redirects")
SUPPORTED = ", ".join(f"-{f}" for f in VALUE_FLAGS + BOOL_FLAGS)
REFUSED_FLAGS = {
    "n": "a request count is not supported: give a duration with -z",
    "h2": "HTTP/2 is not supported: the local load tester speaks HTTP/1.1",
    "o": "the output format is fixed: metadata.logCmdOutput prints a summary",
    "D": "a body from a file is not supported: give the body with -d",
    "x": "an HTTP proxy is not supported",
}
EXAMPLE = "hey -z 30s -q 10 -c 2 http://NAME.NAMESPACE/PATH"


# --- settings ----------------------------------------------------------------------


class Settings(NamedTuple):
    host: str
    port: int
    services: str | None
    namespace: str


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read the settings; raise ValueError saying which variable is wrong and why."""

    def get(name: str, default: str) -> str:
        return env.get(name, "").strip() or default  # empty means "not set"

    port = get("PORT", "8080")
    if not _DIGITS.fullmatch(port) or int(port) > 65535:
        raise ValueError(f"PORT={port!r} must be an integer from 0 to 65535")
    namespace = get("POD_NAMESPACE", "default")
    if len(namespace) > 63 or not _DNS_LABEL.fullmatch(namespace):
        raise ValueError(f"POD_NAMESPACE={namespace!r} is not a namespace name")
    return Settings(get("HOST", "0.0.0.0"), int(port), env.get("COALMINE_SERVICES") or None, namespace)


# --- hey commands (no I/O here) ----------------------------------------------------


class HeyError(ValueError):
    """A cmd the load tester refuses; the message names the flag and the fix."""


class HeyCommand(NamedTuple):
    duration_s: float  # -z
    qps: float  # -q, per worker
    workers: int  # -c
    method: str
    url: str
    host: str  # where to connect (a Service name, a host name or an address)
    port: int
    target: str  # path and query
    host_header: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    timeout_s: float | None  # -t; None: no limit
    keep_alive: bool

    @property
    def rate(self) -> float:
        """Requests a second in all: hey's -q is per worker."""
        return self.qps * self.workers

    def request_bytes(self) -> bytes:
        """The request every connection sends, the same each time."""
        lines = [f"{self.method} {self.target} HTTP/1.1", f"Host: {self.host_header}", *map(": ".join, self.headers)]
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(self.body)}")
        if not self.keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body  # UTF-8, as Go writes strings


def parse_duration(text: str) -> float:
    """Seconds in Go's duration syntax (``30s``, ``1m30s``, ``500ms``), as hey reads -z."""
    sign, rest = (-1.0, text[1:]) if text.startswith("-") else (1.0, text.removeprefix("+"))
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(text)
    total, pos = 0.0, 0
    while pos < len(rest):
        part = _DURATION_PART.match(rest, pos)
        if not part:
            raise ValueError(text)
        total += float(part[1]) * _UNITS[part[2]]
        pos = part.end()
    return sign * total


def split_flags(words: list[str]) -> tuple[dict[str, str], list[str], list[str]]:
    """Go's flag rules: ``-f v``, ``-f=v`` or ``--f v``, flags before the first argument."""
    values: dict[str, str] = {}
    headers: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            i += 1
            break
        if len(word) < 2 or word[0] != "-":
            break
        name, equals, value = word[2 if word.startswith("--") else 1 :].partition("=")
        if not name or name[0] in "-=":
            raise HeyError(f"bad flag syntax: {word}")
        if name in REFUSED_FLAGS:
            raise HeyError(f"hey flag -{name}: {REFUSED_FLAGS[name]}")
        if name in BOOL_FLAGS:
            if equals and value.lower() not in ("1", "t", "true", "0", "f", "false"):
                raise HeyError(f"-{name}={value!r}: a boolean flag takes true or false")
            values[name] = value.lower() if equals else "true"
            i += 1
            continue
        if name not in VALUE_FLAGS:
            raise HeyError(f"hey flag -{name} is not supported by the local load tester (it understands {SUPPORTED})")
        if not equals:
            if i + 1 >= len(words):
                raise HeyError(f"flag needs an argument: -{name}")
            i += 1
            value = words[i]
        i += 1
        if name == "H":
            headers.append(value)
        else:
            values[name] = value
    return values, headers, words[i:]


def parse_hey(cmd: str) -> HeyCommand:
    """Parse a ``hey`` command line; raise HeyError naming what is wrong."""
    try:
        words = shlex.split(cmd)
        lexer = shlex.shlex(cmd, posix=True, punctuation_chars=True)
        operators = [w for w in lexer if _SHELL_OPERATOR.fullmatch(w)]
    except ValueError as exc:
        raise HeyError(f"cannot split the command into words: {exc}") from None
    if not words:
        raise HeyError(f"metadata.cmd is empty: give a hey command, e.g. {EXAMPLE}")
    if operators:
        raise HeyError(f"{operators[0]!r}: the local load tester runs one hey command, without a shell")
    if words[0].rsplit("/", 1)[-1] != "hey":
        raise HeyError(f"{words[0]!r} is not run by the local load tester: it runs hey commands only, e.g. {EXAMPLE}")
    values, raw_headers, rest = split_flags(words[1:])
    if len(rest) > 1:
        raise HeyError(f"{' '.join(rest[1:])!r} after the URL: hey reads its flags before the URL, and one URL")
    if "$" in cmd or "`" in cmd:
        raise HeyError("no shell runs here, so $variables and `commands` are not expanded: write the value")

    if "z" not in values:
        raise HeyError("-z is required: the local load tester runs for a duration, e.g. -z 30s")
    try:
        duration = parse_duration(values["z"])
    except ValueError:
        raise HeyError(f"-z {values['z']!r} is not a duration: write e.g. 30s, 1m or 1m30s") from None
    if not 0 < duration <= MAX_DURATION_S:
        raise HeyError(f"-z {values['z']} must be longer than 0s and at most 1h (the load tester's task timeout)")
    if "q" not in values:
        raise HeyError(
            "-q is required: the local load tester sends at a fixed rate, -q requests a second per -c worker"
        )
    try:
        qps = float(values["q"])
    except ValueError:
        raise HeyError(f"-q {values['q']!r} is not a number") from None
    if not (math.isfinite(qps) and qps > 0):
        raise HeyError(f"-q {values['q']} must be more than 0 (requests a second per worker)")
    workers = _whole(values, "c", "50", low=1, why="-c cannot be smaller than 1")
    if qps * workers > MAX_RATE:
        raise HeyError(
            f"-q {qps:g} x -c {workers} = {qps * workers:g} requests a second: "
            f"the local load tester sends at most {MAX_RATE:g} a second"
        )
    timeout = _whole(values, "t", "20", low=0, why="-t is whole seconds, 0 for no limit")
    method = values.get("m", "GET").upper()
    if not _TOKEN.fullmatch(method):
        raise HeyError(f"-m {values['m']!r} is not an HTTP method")

    if not rest:
        raise HeyError(f"hey needs a URL after its flags, e.g. {EXAMPLE}")
    url = rest[0]
    if _CONTROL.search(url) or " " in url:
        raise HeyError(f"the URL {url!r} contains spaces or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https":
        raise HeyError("https is not supported by the local load tester: use http:// (it speaks plain HTTP/1.1)")
    if scheme != "http" or not parts.hostname:
        raise HeyError(f"the URL {url!r} must be http://HOST[:PORT]/PATH")
    if "@" in parts.netloc:
        raise HeyError("user:password@ in the URL is not supported: use -a user:password")
    try:
        port = parts.port or 80
    except ValueError:
        raise HeyError(f"the URL {url!r} has an invalid port") from None
    # Non-ASCII characters are percent-encoded on the wire, as Go's URL does.
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_ASCII)

    host_header = values.get("host", parts.netloc)
    if not host_header or _CONTROL.search(host_header) or " " in host_header:
        raise HeyError(f"-host {host_header!r} is not a host name")
    headers = _headers(values, raw_headers)
    hey = HeyCommand(
        duration_s=duration,
        qps=qps,
        workers=workers,
        method=method,
        url=url,
        host=parts.hostname.lower(),
        port=port,
        target=target,
        host_header=host_header,
        headers=headers,
        body=values.get("d", "").encode(),
        timeout_s=float(timeout) or None,
        keep_alive=values.get("disable-keepalive", "false") in ("0", "f", "false"),
    )
    try:
        hey.request_bytes()
    except UnicodeEncodeError:
        raise HeyError("the command has characters that cannot be sent (lone surrogates)") from None
    return hey


def _whole(values: dict[str, str], flag: str, default: str, low: int, why: str) -> int:
    text = values.get(flag, default)
    try:
        number = int(text)
    except ValueError:
        raise HeyError(f"-{flag} {text!r} is not a whole number") from None
    if number < low:
        raise HeyError(f"-{flag} {text}: {why}")
    return number


def _headers(values: dict[str, str], raw: list[str]) -> tuple[tuple[str, str], ...]:
    """The headers hey sends: -H, -T (Content-Type, text/html by default), -A, -a, User-Agent."""
    found: dict[str, tuple[str, str]] = {"content-type": ("Content-Type", values.get("T", "text/html"))}
    if "A" in values:
        found["accept"] = ("Accept", values["A"])
    if "a" in values:
        auth = _HEY_AUTH.fullmatch(values["a"])
        if not auth:
            raise HeyError("-a must be user:password")
        found["authorization"] = ("Authorization", "Basic " + base64.b64encode(values["a"].encode()).decode())
    for text in raw:
        header = _HEY_HEADER.fullmatch(text)
        if not header or _CONTROL.search(text):
            raise HeyError(f"-H {text!r} is not a header: write -H 'Name: value'")
        name, value = header[1], header[2].strip()
        if name.lower() == "host":
            raise HeyError("-H 'Host: ...' is ignored by hey: set the Host header with -host NAME")
        if name.lower() in ("content-length", "transfer-encoding"):
            raise HeyError(f"-H {name!r}: the load tester sets this header itself")
        found[name.lower()] = (name, value)
    agent = found.pop("user-agent", None)
    found["user-agent"] = ("User-Agent", f"{agent[1]} {USER_AGENT}" if agent else USER_AGENT)
    for key in ("content-type", "accept", "authorization", "user-agent"):
        if key in found and _CONTROL.search(found[key][1]):
            raise HeyError(f"{found[key][0]}: control characters in the value")
    return tuple(found.values())


# --- the lab's Services (in-cluster DNS on loopback) ------------------------------


class ServiceTable:
    """The lab's Services from services.json, re-read when the file changes.

    ``{"version": 1, "services": {"petstore.default": {"80": ["127.0.0.1:40123"]}}}``
    """

    def __init__(self, path: str | None, namespace: str) -> None:
        self.path = path
        self.namespace = namespace
        self.services: dict[str, dict[str, list[tuple[str, int]]]] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._turns: Counter[tuple[str, int]] = Counter()

    def service_of(self, host: str) -> str | None:
        """``name.namespace`` for a host that names a Service the way cluster DNS does."""
        parts = host.lower().rstrip(".").split(".")
        if len(parts) == 1:
            return f"{parts[0]}.{self.namespace}"
        if len(parts) == 2 or (len(parts) == 3 and parts[2] == "svc") or parts[2:] == ["svc", "cluster", "local"]:
            return f"{parts[0]}.{parts[1]}"
        return None

    def resolve(self, host: str, port: int) -> tuple[str, int]:
        """Where to connect for ``host:port``: a Service's endpoint, round-robin, or the
        host itself when it is not a Service of the lab. Raises LookupError for a
        Service without a ready endpoint on that port (a cluster would refuse too)."""
        self._refresh()
        try:
            ipaddress.ip_address(host.strip("[]"))
            return host, port
        except ValueError:
            pass
        key = self.service_of(host)
        if key is None or key not in self.services:
            return host, port
        endpoints = self.services[key].get(str(port))
        if not endpoints:
            raise LookupError(f"service {key} has no ready endpoint on port {port}")
        turn = self._turns[key, port]
        self._turns[key, port] = turn + 1
        return endpoints[turn % len(endpoints)]

    def _refresh(self) -> None:
        if not self.path:
            return
        try:
            stat = os.stat(self.path)
        except OSError:  # not written yet, or the lab is gone
            self.services, self._stamp = {}, None
            return
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if stamp == self._stamp:
            return
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            self.services = _service_entries(data["services"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return  # keep the last good table; the file is re-read once it changes again
        self._stamp = stamp


def _service_entries(raw: dict[str, object]) -> dict[str, dict[str, list[tuple[str, int]]]]:
    table: dict[str, dict[str, list[tuple[str, int]]]] = {}
    for key, ports in raw.items():
        if not isinstance(ports, dict):
            continue
        entry = table.setdefault(key.lower(), {})
        for port, addresses in ports.items():
            found = []
            for address in addresses if isinstance(addresses, list) else ():
                host, _, number = str(address).rpartition(":")
                if host and _DIGITS.fullmatch(number):
                    found.append((host.strip("[]"), int(number)))
            entry[str(port)] = found
    return table


# --- one load test ----------------------------------------------------------------------


class Latencies:
    """Latencies in 1%-wide logarithmic buckets: percentiles in bounded memory."""

    STEP = math.log(1.01)

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.total = 0

    def add(self, seconds: float) -> None:
        self.counts[math.ceil(math.log(max(seconds * 1e6, 1.0)) / self.STEP)] += 1
        self.total += 1

    def percentile(self, p: float) -> float | None:
        """The p-th percentile in milliseconds (None before any answer)."""
        rank, seen = max(1, math.ceil(p / 100 * self.total)), 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return math.exp(bucket * self.STEP) / 1000
        return None


class Stats:
    def __init__(self) -> None:
        self.sent = self.skipped = 0
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.latencies = Latencies()

    def summary(self, elapsed_s: float) -> str:
        """One line, e.g. ``summary: 20 requests in 2.0s, responses 20 (200: 20), errors 0, ...``."""
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        errors = ", ".join(f"{what}: {n}" for what, n in self.errors.most_common())
        p50, p99 = (self.latencies.percentile(p) for p in (50, 99))
        latency = f"p50 {p50:.1f} ms, p99 {p99:.1f} ms" if p50 is not None and p99 is not None else "no answers"
        return (
            f"summary: {self.sent} requests in {elapsed_s:.1f}s, responses {self.statuses.total()}"
            + (f" ({statuses})" if statuses else "")
            + f", errors {self.errors.total()}"
            + (f" ({errors})" if errors else "")
            + f", skipped {self.skipped}, {latency}"
        )


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class LoadTest:
    """One hey command, run open-loop over HTTP/1.1 keep-alive connections."""

    def __init__(self, hey: HeyCommand, services: ServiceTable) -> None:
        self.hey = hey
        self.services = services
        self.stats = Stats()
        self.request = hey.request_bytes()
        self.idle: dict[tuple[str, int], list[Stream]] = {}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        hey, in_flight = self.hey, set[asyncio.Task[None]]()
        start = loop.time()
        end, i = start + hey.duration_s, 0
        try:
            while (due := start + i / hey.rate) < end:
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                if len(in_flight) >= MAX_IN_FLIGHT:
                    self.stats.skipped += 1
                else:
                    task = loop.create_task(self._one(due))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                    self.stats.sent += 1
                i += 1
            if in_flight:
                await asyncio.wait(set(in_flight), timeout=hey.timeout_s or END_GRACE_S)
                if in_flight:
                    self.stats.errors["no answer by the end of the test"] += len(in_flight)
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            for streams in self.idle.values():
                for _, writer in streams:
                    writer.close()
            self.idle.clear()

    async def _one(self, due: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            endpoint = self.services.resolve(self.hey.host, self.hey.port)
            status = await asyncio.wait_for(self._exchange(endpoint), self.hey.timeout_s)
        except TimeoutError:
            self.stats.errors[f"timeout (-t {self.hey.timeout_s:g})"] += 1
        except LookupError as exc:
            self.stats.errors[str(exc)] += 1
        except socket.gaierror:
            self.stats.errors[f"cannot resolve {self.hey.host}"] += 1
        except ConnectionRefusedError:
            self.stats.errors["connection refused"] += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            self.stats.errors["connection closed before the answer"] += 1
        except (OSError, ValueError, asyncio.LimitOverrunError) as exc:
            self.stats.errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
        else:
            self.stats.statuses[status] += 1
            self.stats.latencies.add(loop.time() - due)

    async def _exchange(self, endpoint: tuple[str, int]) -> int:
        idle = self.idle.setdefault(endpoint, [])
        while True:
            reused = bool(idle)
            reader, writer = idle.pop() if reused else await asyncio.open_connection(*endpoint)
            try:
                writer.write(self.request)
                await writer.drain()
                status, keep_alive = await read_response(reader, head=self.hey.method == "HEAD")
            except asyncio.IncompleteReadError as exc:
                writer.close()
                if reused and not exc.partial:
                    continue  # the server had closed that idle connection: retry on a new one
                raise
            except BaseException:
                writer.close()
                raise
            if keep_alive and self.hey.keep_alive and len(idle) < MAX_IN_FLIGHT:
                idle.append((reader, writer))
            else:
                writer.close()
            return status


async def read_response(reader: asyncio.StreamReader, head: bool) -> tuple[int, bool]:
    """Read one response, discarding its body: (status, whether the connection stays open)."""
    while True:
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise ValueError("malformed status line")
        status = int(code)
        if not 100 <= status < 200 or status == 101:
            break
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    connection = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep_alive = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
    if head or status in (101, 204, 304):
        return status, keep_alive and status != 101  # after 101 the connection speaks another protocol
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while size := int((await reader.readuntil(b"\n")).split(b";")[0].strip() or b"x", 16):
            await reader.readexactly(size + 2)
        while (await reader.readuntil(b"\n")).strip():
            pass  # trailers
    elif "content-length" in headers:
        left = int(headers["content-length"])
        while left > 0:
            left -= len(await reader.readexactly(min(left, 65536)))
    else:  # the body ends when the connection does
        while await reader.read(65536):
            pass
        keep_alive = False
    return status, keep_alive


# --- the API -------------------------------------------------------------------------


class Reply(NamedTuple):
    status: int
    text: str = ""


class PayloadError(ValueError):
    """A body that is not Flagger's webhook payload."""


def decode_payload(body: bytes) -> tuple[str, dict[str, str]]:
    """``name.namespace`` and the metadata of a webhook payload (Go's decoding rules)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise PayloadError('the body must be JSON: {"name": "...", "namespace": "...", "metadata": {...}}') from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise PayloadError("the body must be a JSON object: Flagger's webhook payload")
    for field in ("name", "namespace", "phase", "checksum"):
        if data.get(field) is not None and not isinstance(data[field], str):
            raise PayloadError(f"{field} must be a string")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise PayloadError("metadata must be an object whose values are strings")
    for key, value in metadata.items():
        if value is not None and not isinstance(value, str):
            raise PayloadError(f'metadata.{key} must be a string (webhook metadata is a map of strings: "{value}")')
    canary = f"{data.get('name') or ''}.{data.get('namespace') or ''}"
    return canary, {k: v or "" for k, v in metadata.items()}


class Gates:
    """Open/closed per key, closed until opened (Flagger keeps them in memory too)."""

    def __init__(self) -> None:
        self.state: dict[str, bool] = {}

    def open(self, key: str) -> None:
        self.state[key] = True

    def close(self, key: str) -> None:
        self.state[key] = False

    def is_open(self, key: str) -> bool:
        return self.state.setdefault(key, False)


def log(canary: str, message: str, level: str = "info") -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} {level} {canary} {message}", flush=True)


class Loadtester:
    """Flagger's loadtester API; ``answer`` never blocks (load tests run as tasks)."""

    def __init__(self, services: ServiceTable) -> None:
        self.services = services
        self.gates = Gates()
        self.running: dict[str, asyncio.Task[None]] = {}

    def answer(self, path: str, body: bytes) -> Reply:
        if path == "/healthz":
            return Reply(200, "OK")
        if path == "/gate/approve":
            return Reply(200, "OK")
        if path == "/gate/halt":
            return Reply(403, "Forbidden")
        if path == "/metrics":
            return Reply(200, "# the local load tester exports no metrics\n")
        try:
            canary, metadata = decode_payload(body)
        except PayloadError as exc:
            return Reply(400, str(exc))
        gate, _, action = path.strip("/").partition("/")
        if gate in ("gate", "rollback") and action in ("check", "open", "close"):
            key = canary if gate == "gate" else f"rollback.{canary}"
            what = "gate" if gate == "gate" else "rollback"
            if action == "check":
                approved = self.gates.is_open(key)
                log(key, f"{what} check: approved {str(approved).lower()}")
                return Reply(200, "Approved") if approved else Reply(403, "Forbidden")
            (self.gates.open if action == "open" else self.gates.close)(key)
            log(key, f"{what} {'opened' if action == 'open' else 'closed'}")
            return Reply(202)
        return self.start(canary, metadata)  # Flagger's "/" takes every other path too

    def start(self, canary: str, metadata: dict[str, str]) -> Reply:
        if not metadata:
            return Reply(400, "metadata not found in payload")
        kind = metadata.get("type", "cmd")
        if kind in OTHER_FLAGGER_TYPES:
            return Reply(400, f"task type {kind} is not run by the local load tester: it runs type cmd (hey) only")
        if kind != "cmd":
            return Reply(400, f"unknown task type {kind}")
        if "cmd" not in metadata:
            return Reply(400, "cmd not found in metadata")
        cmd = metadata["cmd"]
        try:
            hey = parse_hey(cmd)
        except HeyError as exc:
            log(canary, f"command refused {cmd}: {exc}", "error")
            return Reply(400, str(exc))
        key = f"{canary} {cmd}"
        if key in self.running:
            log(canary, f"command skipped {cmd} is already running")
            return Reply(202)
        show = metadata.get("logCmdOutput", "").lower() in ("1", "t", "true")
        task = asyncio.get_running_loop().create_task(self._run(canary, cmd, LoadTest(hey, self.services), show))
        self.running[key] = task
        task.add_done_callback(lambda _: self.running.pop(key, None))
        return Reply(202)

    async def _run(self, canary: str, cmd: str, test: LoadTest, show: bool) -> None:
        log(canary, f"task starting {cmd}")
        started = time.monotonic()
        try:
            await test.run()
        except asyncio.CancelledError:
            log(canary, f"command stopped {cmd}: the load tester is stopping")
            raise
        finally:
            if show:
                log(canary, test.stats.summary(time.monotonic() - started))
        log(canary, f"command finished {cmd}")


# --- HTTP/1.1 server -----------------------------------------------------------------


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def render(reply: Reply, keep_alive: bool, head: bool = False) -> bytes:
    body = reply.text.encode()
    lines = [
        f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, '')}",
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}",
        f"Content-Length: {len(body)}",
    ]
    if body:
        lines.append("Content-Type: text/plain; charset=utf-8")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else body)


def parse_head(raw: bytes) -> tuple[str, str, bool, int, bool]:
    """method, path, keep-alive, Content-Length, Expect: 100-continue."""
    lines = raw.decode("latin-1").rstrip("\r\n").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise HTTPError(400, "malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise HTTPError(400, "malformed header line")
        headers[name.lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise HTTPError(411, "chunked request bodies are not supported: send a Content-Length")
    length = headers.get("content-length", "0")
    if not _DIGITS.fullmatch(length):
        raise HTTPError(400, "invalid Content-Length")
    if int(length) > MAX_BODY:
        raise HTTPError(413, f"request bodies are limited to {MAX_BODY} bytes")
    connection = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep_alive = "keep-alive" in connection if parts[2] == "HTTP/1.0" else "close" not in connection
    path = parts[1].split("?", 1)[0]
    if not path.startswith("/"):  # absolute-form: keep the path
        path = "/" + path.split("://", 1)[-1].partition("/")[2]
    expect = headers.get("expect", "").lower() == "100-continue"
    return parts[0], path, keep_alive, int(length), expect


class Server:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = Loadtester(ServiceTable(settings.services, settings.namespace))
        self.idle: set[asyncio.Task[None]] = set()  # connections waiting for a request
        self.busy: set[asyncio.Task[None]] = set()
        self.stopping = False

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        assert me is not None
        try:
            while not self.stopping:
                self.idle.add(me)
                try:
                    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), KEEPALIVE_S)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    writer.write(render(Reply(431, "request head too large"), keep_alive=False))
                    return
                finally:
                    self.idle.discard(me)
                self.busy.add(me)
                try:
                    method, path, keep_alive, length, expect = parse_head(raw)
                    if expect and length:
                        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    body = await asyncio.wait_for(reader.readexactly(length), KEEPALIVE_S) if length else b""
                    reply = self.app.answer(path, body)
                except HTTPError as exc:
                    method, keep_alive, reply = "GET", False, Reply(exc.status, str(exc))
                except Exception:  # a bug here must not take the API down
                    traceback.print_exc()
                    method, keep_alive, reply = "GET", False, Reply(500, "internal error")
                keep_alive = keep_alive and not self.stopping
                writer.write(render(reply, keep_alive, head=method == "HEAD"))
                await asyncio.wait_for(writer.drain(), KEEPALIVE_S)
                self.busy.discard(me)
                if not keep_alive:
                    return
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass  # the shutdown ends idle connections; the stream callback must not see it
        finally:
            self.idle.discard(me)
            self.busy.discard(me)
            writer.close()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # Windows: no loop signal handlers
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
        settings = self.settings
        try:
            listener = await asyncio.start_server(self.connection, settings.host, settings.port, reuse_address=True)
        except OSError as exc:
            print(f"loadtester: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
            return 1
        port = listener.sockets[0].getsockname()[1]
        where = f"services from {settings.services}" if settings.services else "names through DNS"
        log("-", f"load tester API listening on http://{settings.host}:{port} ({where})")
        await stop.wait()

        self.stopping = True
        listener.close()
        for task in list(self.idle):
            task.cancel()
        deadline = loop.time() + SHUTDOWN_GRACE_S
        while self.busy and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for task in [*self.busy, *self.app.running.values()]:
            task.cancel()
        await asyncio.gather(*self.app.running.values(), return_exceptions=True)
        try:
            await asyncio.wait_for(listener.wait_closed(), 1.0)
        except TimeoutError:
            pass
        log("-", "load tester stopped")
        return 0


def main() -> int:
    try:
        settings = load_settings(os.environ)
    except ValueError as exc:
        print(f"loadtester: invalid setting: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(Server(settings).run())


if __name__ == "__main__":
    sys.exit(main())
