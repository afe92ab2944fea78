"""A real lab per test: a temporary lab home, its own control plane and pods.

Every process the lab starts is stopped by the fixture, and the fixture fails the
test if any process that belongs to the lab home is still alive afterwards.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest
import yaml

from helpers import Lab
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
V1_PETS = '[{"id":1,"name":"Dog","status":"available"},{"id":2,"name":"Cat","status":"pending"}]'
V2_PETS = (
    '[{"id":1,"name":"Dog","status":"v2"},{"id":2,"name":"Cat","status":"v2"},{"id":3,"name":"Parrot","status":"v2"}]'
)


def lab_processes(home: Path) -> list[psutil.Process]:
    """Processes whose command line mentions the lab home: the control plane and its pods."""
    found = []
    needle = str(home)
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(needle in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def stop_lab(lab: Lab, home: Path) -> None:
    """Stop ``lab`` (at ``home``) and kill whatever it left running: a test that leaves
    processes behind fails, and leaves none for the next one."""
    lab.down()
    left = lab_processes(home)
    for proc in left:
        proc.kill()
    assert not left, f"processes left running after down: {[p.pid for p in left]}"


@contextlib.contextmanager
def module_lab(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Lab]:
    """A lab in a fresh home named after ``name``, stopped (``stop_lab``) when the
    block ends: for a module- or session-scoped fixture shared by several tests."""
    home = tmp_path_factory.mktemp(name) / "lab"
    lab = Lab(home=home)
    try:
        yield lab
    finally:
        stop_lab(lab, home)


@pytest.fixture
def lab_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "lab"
    yield home
    stop_lab(Lab(home=home), home)


@pytest.fixture
def lab(lab_home: Path) -> Lab:
    lab = Lab(home=lab_home)
    lab.up()
    return lab


@pytest.fixture
def petstore_lab(lab: Lab) -> Lab:
    """A lab with petstore v1 and v2 deployed, Gloo installed and discovery done."""
    lab.apply(MANIFESTS / "petstore-v1.yaml", MANIFESTS / "petstore-v2.yaml")
    lab.install("gloo")
    lab.wait(60)
    return lab


class Client:
    """A keep-alive HTTP/1.1 client for one base URL (http.client, stdlib)."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(
        self, path: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> tuple[int, str, dict[str, str]]:
        self.conn.request(method, path, body=body, headers=headers or {})
        resp = self.conn.getresponse()
        return resp.status, resp.read().decode(), {k.lower(): v for k, v in resp.getheaders()}

    def get(self, path: str, **headers: str) -> tuple[int, str]:
        status, body, _ = self.request(path, headers={k.replace("_", "-"): v for k, v in headers.items()})
        return status, body

    def close(self) -> None:
        self.conn.close()


def version_of(body: str) -> str:
    """Which petstore answered, read from the body (v2 pets have status "v2")."""
    data = json.loads(body)
    items = data if isinstance(data, list) else [data]
    return "v2" if any(i.get("status") == "v2" for i in items) else "v1"


@pytest.fixture
def gateway(petstore_lab: Lab) -> Iterator[Client]:
    client = Client(petstore_lab.proxy_url())
    yield client
    client.close()


def env_without_coalmine() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COALMINE_")}


def weighted(v1: int, v2: int) -> dict[str, Any]:
    """The 10/90 manifest with other weights on every weighted route."""
    vs: dict[str, Any] = yaml.safe_load((MANIFESTS / "gloo" / "3-weighted-10-90.yaml").read_text())
    for route in vs["spec"]["virtualHost"]["routes"]:
        for d in route.get("routeAction", {}).get("multi", {}).get("destinations", []):
            d["weight"] = v2 if d["destination"]["upstream"]["name"].endswith("v2-8080") else v1
    return vs


class Hammer:
    """Closed-loop load for the length of a ``with`` block: ``workers`` threads, each
    sending GET ``path`` again and again on a keep-alive connection (a new one after
    an error). ``failures`` lists every answer that is not the v1 or v2 pets;
    ``requests`` counts the good ones."""

    def __init__(self, url: str, workers: int, path: str = "/petstore") -> None:
        self.url, self.path = url, path
        self.failures: list[str] = []
        self._counts = [0] * workers
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(workers)]

    @property
    def requests(self) -> int:
        return sum(self._counts)

    def __enter__(self) -> Hammer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self, worker: int) -> None:
        client = Client(self.url)
        try:
            while not self._stop.is_set():
                try:
                    status, body = client.get(self.path)
                except Exception as e:
                    self.failures.append(repr(e))
                    client.close()
                    client = Client(self.url)
                    continue
                self._counts[worker] += 1
                if status != 200 or body not in (V1_PETS, V2_PETS):
                    self.failures.append(f"{status} {body[:80]}")
        finally:
            client.close()


def canary_status(lab: Lab, name: str = "petstore", namespace: str = "default") -> dict[str, Any]:
    """The Canary's status as the controller last wrote it (empty before its first step)."""
    found = lab.objects("canary", name, namespace)
    return dict((found[0].get("status") if found else None) or {})


def follow_canary(lab: Lab, phase: str, seen: list[tuple[str, int]], timeout: float) -> dict[str, Any]:
    """Wait for the Canary's ``phase``, noting each (phase, weight) it goes through."""

    def reached() -> dict[str, Any] | None:
        st = canary_status(lab)
        step = (str(st.get("phase", "")), int(st.get("canaryWeight", 0)))
        if not seen or seen[-1] != step:
            seen.append(step)
        return st if st.get("phase") == phase else None

    return wait_for(reached, timeout, f"canary phase {phase} (seen: {seen})", interval=0.1)


def upstream_counts(lab: Lab, cluster: str) -> tuple[int, int]:
    """(requests, 5xx) the gateway sent to ``cluster`` so far."""
    found = lab.stats().get(cluster) or {}
    return int(found.get("requests", 0)), int((found.get("by_class") or {}).get("5xx", 0))
