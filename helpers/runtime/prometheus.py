"""A real Prometheus server for the lab (after ``install prometheus``).

Debian's ``prometheus`` package (2.42), found on PATH, runs as a child of the control
plane the way a pod does (``pods``): it dies with the control plane even if that one is
killed, its output goes to a rotated log, and it is restarted with ``supervising``'s
back-off when it dies. It listens on 127.0.0.1 only and keeps everything under the lab
home::

    <home>/prometheus/prometheus.yml   its configuration, written here
    <home>/prometheus/data/            its time-series database (short retention)
    <home>/prometheus/log              what it printed

It scrapes each gateway's stats endpoint (Envoy's ``/stats/prometheus``), one job per
gateway named after it, every ``SCRAPE_INTERVAL``, sending the lab's token as a bearer
token (read from the token file, as a Secret mounted in a cluster would be). When
gateways come and go the configuration is rewritten and Prometheus reloads it (SIGHUP),
as a config reloader does next to a Prometheus in a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from helpers.errors import Unsupported, WaitTimeout
from helpers.runtime.home import LabHome, write_text_atomic
from helpers.runtime.pods import PodLog, drain, dying_with_us, free_port, loopback_status
from helpers.runtime.store import Store
from helpers.runtime.supervising import BACKOFF_RESET_S, FIRST_BACKOFF_S, MAX_BACKOFF_S

log = logging.getLogger("coalmine.prometheus")

BINARY = "prometheus"
# Flagger's own analysis queries windows of a minute or more; a lab's canary steps
# are seconds apart, so the lab scrapes every second (a cluster's default is 1m, the
# Flagger chart's Prometheus scrapes every 5s).
SCRAPE_INTERVAL = "1s"
# A lab keeps an hour of samples (and at most 256 MB): enough for any lesson.
RETENTION = ("1h", "256MB")
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
NOT_FOUND = (
    "no Prometheus on this machine (looked for `prometheus` on PATH): install Debian's package with "
    "`make prometheus` or `sudo apt-get install prometheus`, then run `coalmine install prometheus` again; "
    "the built-in canary checks work without it"
)

StatsTargets = Callable[[], Any]  # the gateways' stats URLs: {name: url}, nested {name: {listener: url}}, or a list


def find_binary() -> str | None:
    """The path of the ``prometheus`` executable on PATH, or None."""
    return shutil.which(BINARY)


def scrape_jobs(urls: Any, prefix: str = "") -> dict[str, str]:
    """One scrape job per stats URL: ``{job name: url}`` from a mapping of gateway
    names to URLs (nested mappings join their names with ``/``) or a list of URLs."""
    if isinstance(urls, str):
        return {prefix or "gateway": urls}
    if isinstance(urls, Mapping):
        jobs: dict[str, str] = {}
        for name, value in urls.items():
            jobs.update(scrape_jobs(value, f"{prefix}/{name}" if prefix else str(name)))
        return jobs
    if isinstance(urls, list | tuple):
        return {f"{prefix or 'gateway'}-{i}": str(u) for i, u in enumerate(urls)}
    return {}


def render_config(jobs: Mapping[str, str], token_file: Path) -> str:
    """Prometheus's configuration (YAML) scraping each job's URL with the lab's token."""
    scrape_configs = []
    for name, url in sorted(jobs.items()):
        parts = urlsplit(url)
        job: dict[str, Any] = {
            "job_name": name,
            "scheme": parts.scheme or "http",
            "metrics_path": parts.path or "/stats/prometheus",
            "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
            "static_configs": [{"targets": [parts.netloc]}],
        }
        if parts.query:
            job["params"] = parse_qs(parts.query)
        scrape_configs.append(job)
    config = {
        # The timeout may not exceed the interval (Prometheus refuses the file otherwise).
        "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL},
        "scrape_configs": scrape_configs,
    }
    header = "# Written by the lab's control plane (helpers/runtime/prometheus.py); changes are overwritten.\n"
    return header + yaml.safe_dump(config, sort_keys=False)


class PrometheusServer:
    """The lab's Prometheus: installed (recorded in the store, so it survives a restart
    of the control plane), started, kept running, reloaded and stopped."""

    def __init__(self, store: Store, home: LabHome, targets: StatsTargets) -> None:
        self.store = store
        self.folder = home.root / "prometheus"
        self.token_file = home.token_file
        self.targets = targets
        self.port = 0
        self.ready = False
        self.restarts = 0
        self.message = ""
        self.process: asyncio.subprocess.Process | None = None
        self._binary: str | None = None
        self._jobs: dict[str, str] = {}
        self._config = ""  # the text written last
        self._loaded = ""  # the text the running process read (at start or last reload)
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._became_ready = asyncio.Event()

    @property
    def installed(self) -> bool:
        return "prometheus" in self.store.extra

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self._task is not None and self.port else None

    @property
    def config_file(self) -> Path:
        return self.folder / "prometheus.yml"

    @property
    def log_file(self) -> Path:
        return self.folder / "log"

    # ── install and lifecycle ────────────────────────────────────────────────

    async def install(self) -> dict[str, Any]:
        """Start Prometheus and wait until it is ready; record the install. Refused
        (``Unsupported``) when the machine has no Prometheus."""
        if self._task is None:
            if not self.installed:  # a fresh install (or after `down --forget`): no samples of an older lab
                shutil.rmtree(self.folder / "data", ignore_errors=True)
            self._launch(self.store.extra.get("prometheus", {}).get("port"))
        try:
            await self.wait_ready(READY_TIMEOUT_S)
        except WaitTimeout:
            if not self.installed:  # a failed first install leaves nothing running
                await self.close()
                self._stop.clear()
            raise
        if self.store.extra.get("prometheus") != {"port": self.port}:
            self.store.extra["prometheus"] = {"port": self.port}
            self.store.save()
        return {"component": "prometheus", **self.status()}

    async def start(self) -> None:
        """After a restart of the control plane: run Prometheus again, if installed.
        A machine that lost its Prometheus is said in the status, not a failed start."""
        if self.installed and self._task is None:
            try:
                self._launch(self.store.extra["prometheus"].get("port"))
            except Unsupported as e:
                self.message = str(e)
                log.warning("%s", e)

    def _launch(self, port: int | None) -> None:
        self._binary = find_binary()
        if self._binary is None:
            raise Unsupported(NOT_FOUND)
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        self.port = port_for(port)
        self._write_config()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="prometheus")

    async def wait_ready(self, timeout: float) -> None:
        """Until Prometheus answers ``/-/ready``; ``WaitTimeout`` with its last words."""
        try:
            await asyncio.wait_for(self._became_ready.wait(), timeout)
        except TimeoutError:
            raise WaitTimeout(
                f"Prometheus was not ready after {timeout:g}s: {self.message or _last_line(self.log_file)} "
                f"(its log: {self.log_file})"
            ) from None

    def update(self) -> None:
        """Follow the gateways: rewrite the configuration when their stats URLs
        changed, and have a ready Prometheus reload it."""
        if self._task is not None:
            self._write_config()
            self._reload()

    def _write_config(self) -> None:
        self._jobs = scrape_jobs(self.targets())
        text = render_config(self._jobs, self.token_file)
        if text != self._config:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.config_file, text)
            self._config = text

    def _reload(self) -> None:
        # Only once ready: before Prometheus listens for SIGHUP, the signal would end it.
        if self.ready and self.process is not None and self.process.returncode is None and self._loaded != self._config:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGHUP)
            self._loaded = self._config

    async def close(self) -> None:
        """Stop Prometheus (SIGTERM, SIGKILL after a grace period); its data stays."""
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def status(self) -> dict[str, Any]:
        """What ``lab.status()["prometheus"]`` shows."""
        return {
            "installed": self.installed,
            "available": find_binary() is not None,
            "url": self.url,
            "ready": self.ready,
            "scrapeInterval": SCRAPE_INTERVAL,
            "targets": dict(self._jobs),
            "restarts": self.restarts,
            "message": self.message,
            "log": str(self.log_file),
        }

    # ── the process ──────────────────────────────────────────────────────────

    def _argv(self) -> list[str]:
        assert self._binary is not None
        flags = [
            f"--config.file={self.config_file}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--storage.tsdb.path={self.folder / 'data'}",
            f"--storage.tsdb.retention.time={RETENTION[0]}",
            f"--storage.tsdb.retention.size={RETENTION[1]}",
        ]
        # The pods' launcher: SIGTERM on the control plane's death, then exec (same pid).
        return dying_with_us([self._binary, *flags])

    async def _run(self) -> None:
        output = PodLog(self.log_file)
        failures = 0
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    self.port = port_for(self.port)
                    self.process = await asyncio.create_subprocess_exec(
                        *self._argv(),
                        cwd=self.folder,
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=asyncio.subprocess.PIPE,
                        stderr=asyncio.subprocess.STDOUT,
                    )
                except OSError as e:
                    self.message = f"cannot run {self._binary}: {e}"
                else:
                    self._loaded = self._config
                    await self._supervise(self.process, output)
                    if self._stop.is_set():
                        break
                    self.restarts += 1
                    self.message = f"exited with code {self.process.returncode}; see {self.log_file}"
                    log.warning("Prometheus %s", self.message)
                failures = 1 if time.monotonic() - started >= BACKOFF_RESET_S else failures + 1
                with contextlib.suppress(TimeoutError):
                    delay = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** min(failures - 1, 10))
                    await asyncio.wait_for(self._stop.wait(), delay)
        finally:
            output.close()

    async def _supervise(self, process: asyncio.subprocess.Process, output: PodLog) -> None:
        loop = asyncio.get_running_loop()
        assert process.stdout is not None
        drainer = loop.create_task(drain(process.stdout, output))
        prober = loop.create_task(self._probe(process))
        waiter = loop.create_task(process.wait())
        stopper = loop.create_task(self._stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        self.ready = False
        self._became_ready.clear()
        if not waiter.done():
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            done, _ = await asyncio.wait({waiter}, timeout=STOP_GRACE_S)
            if not done:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await waiter
        for task in (stopper, prober):
            task.cancel()
        await asyncio.wait({drainer}, timeout=1.0)
        drainer.cancel()
        await asyncio.gather(stopper, prober, drainer, return_exceptions=True)

    async def _probe(self, process: asyncio.subprocess.Process) -> None:
        while process.returncode is None and not await answers_ready(self.port):
            await asyncio.sleep(0.05)
        if process.returncode is None:
            self.ready, self.message = True, ""
            self._became_ready.set()
            self._reload()  # gateways that came while it was starting


def port_for(preferred: int | None) -> int:
    """``preferred`` while nothing listens there, else a free port of 127.0.0.1. Closed
    connections of the last run (TIME_WAIT) do not count: Prometheus binds with
    SO_REUSEADDR, as every Go server does, so a restarted lab keeps its URL."""
    if preferred:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", preferred))
            except OSError:
                return free_port()
            return preferred
    return free_port()


async def answers_ready(port: int, timeout: float = 1.0) -> bool:
    """Whether Prometheus on 127.0.0.1:``port`` answers ``GET /-/ready`` with 200."""
    return await loopback_status(port, "/-/ready", timeout) == 200


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "it printed nothing"
    return lines[-1] if lines else "it printed nothing"
