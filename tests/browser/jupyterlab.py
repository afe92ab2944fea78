"""A JupyterLab server and a headless Chromium, for the browser tests and benchmarks.

    notebooks = copy_lessons(scratch / "lessons")            # notebooks/ + manifests/
    with JupyterLab(notebooks, scratch / "jupyter", {"COALMINE_HOME": str(home)}) as server:
        with chromium_page(find_chromium()) as page:
            page.goto(server.url("lab/tree/05-weighted-canary.ipynb?reset"))

Everything here listens on 127.0.0.1 only and is stopped by the code that started it.
JupyterLab gets its own temporary settings, workspaces and runtime folders, so it
restores no old tabs, reads no personal settings and leaves nothing in ``~``; news
and update checks are off, so no toast covers the page and nothing goes online.
The browser is Debian's ``chromium`` (``make chromium`` installs it); a browser is
never downloaded. The server is started as ``make lab`` starts it: the lessons are
trusted first (``jupyter trust``), ``notebooks/.jupyter-lab.json`` hides what is not a
lesson, and lesson 0 is the file it opens.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from helpers import Lab
from tests.conftest import wait_for
from tests.integration.conftest import lab_processes

if TYPE_CHECKING:
    from jupyter_client import BlockingKernelClient
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
LESSON = "05-weighted-canary.ipynb"
FIRST_LESSON = "00-start-here.ipynb"
LAB_CONFIG = ".jupyter-lab.json"  # in the notebooks folder, as the Makefile's LAB_CONFIG

# Headless, no sandbox (we may be root in a container), and none of Chromium's own
# traffic to Google (component updates, sync, field trials, QUIC probes).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
]

# Turn off the "get notified about Jupyter news?" toast and the update check in the page.
SETTINGS_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


def find_chromium() -> str | None:
    """The Chromium to drive: ``$CHROMIUM`` if set, else Debian's ``chromium`` on PATH."""
    chosen = os.environ.get("CHROMIUM")
    if chosen:
        return chosen if os.access(chosen, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def copy_lessons(dest: Path) -> Path:
    """Copy ``notebooks/`` and ``manifests/`` side by side into ``dest`` (the lessons
    read ``../manifests``), so the browser never edits the real notebooks. Returns the
    copied notebooks folder."""
    skip = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
    shutil.copytree(ROOT / "notebooks", dest / "notebooks", ignore=skip)
    shutil.copytree(ROOT / "manifests", dest / "manifests", ignore=skip)
    return dest / "notebooks"


class JupyterLab:
    """``jupyter lab`` serving ``notebooks`` on 127.0.0.1, on a port the OS picks, with
    a random token. ``scratch`` receives its settings, workspaces, runtime files and
    log (``jupyterlab.log``); ``env`` is added to its environment, which every kernel
    it starts inherits (``COALMINE_HOME`` chooses the lab the notebooks use)."""

    def __init__(self, notebooks: Path, scratch: Path, env: Mapping[str, str] | None = None) -> None:
        self.notebooks = notebooks
        self.scratch = scratch
        self.extra_env = dict(env or {})
        self.token = secrets.token_hex(24)
        self.port = 0
        self.log_path = scratch / "jupyterlab.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> JupyterLab:
        """Start the server and wait until its API answers."""
        dirs = {
            name: self.scratch / name
            for name in ("config", "data", "runtime", "ipython", "workspaces", "user-settings", "app-settings")
        }
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        (dirs["app-settings"] / "overrides.json").write_text(json.dumps(SETTINGS_OVERRIDES))
        env = {
            **os.environ,
            **self.extra_env,
            "JUPYTER_TOKEN": self.token,  # not in argv, where `ps` would show it
            "JUPYTER_CONFIG_DIR": str(dirs["config"]),
            "JUPYTER_DATA_DIR": str(dirs["data"]),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
            "IPYTHONDIR": str(dirs["ipython"]),
            "BROWSER": "true",  # "opens" the browser with /bin/true: it only writes the page to open
        }
        # As `make lab`: trust the lessons (signatures go to this server's data folder).
        lessons = sorted(str(p) for p in self.notebooks.glob("[0-9][0-9]-*.ipynb"))
        subprocess.run(
            [str(Path(sys.executable).parent / "jupyter"), "trust", *lessons],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        argv = [
            sys.executable,
            "-m",
            "jupyterlab",
            f"--config={self.notebooks / LAB_CONFIG}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.notebooks}",
            f"--LabApp.workspaces_dir={dirs['workspaces']}",
            f"--LabApp.user_settings_dir={dirs['user-settings']}",
            f"--LabApp.app_settings_dir={dirs['app-settings']}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
        ]
        if os.geteuid() == 0:
            argv.append("--allow-root")
        argv.append(str(self.notebooks / FIRST_LESSON))  # the file it opens
        with open(self.log_path, "wb") as log:
            # A session of its own, so that stop() can signal the server and whatever it spawned.
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.notebooks,
                start_new_session=True,
            )
        # Port 0 lets the OS pick a free port (no race with other tests); the server
        # writes the port it got into its runtime file.
        info = dirs["runtime"] / f"jpserver-{self._proc.pid}.json"
        wait_for(
            lambda: self._exited() or (info.exists() and json.loads(info.read_text()).get("port")),
            timeout,
            "JupyterLab to write its server info",
        )
        self._check_alive()
        self.port = json.loads(info.read_text())["port"]
        wait_for(lambda: self._exited() or self._answers(), timeout, "JupyterLab's API to answer")
        self._check_alive()
        return self

    def url(self, path: str = "") -> str:
        """The address of ``path`` on the server, with the token."""
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, path: str, method: str = "GET") -> object:
        """``/api/<path>`` and the decoded JSON (e.g. ``api("sessions")``); None when
        the answer has no body (``api("kernels/ID", "DELETE")``)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/{path}", headers={"Authorization": f"token {self.token}"}, method=method
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def opened_url(self) -> str:
        """The page the server opened a browser on for its file to run (``make lab``'s lesson 0)."""
        assert self._proc is not None
        page = self.scratch / "runtime" / f"jpserver-file-to-run-{self._proc.pid}-open.html"
        wait_for(page.exists, 30, "the server to write the page it opens")
        found = re.search(r'href="(http[^"]+)"', page.read_text())
        assert found, page.read_text()
        return found.group(1)

    def shut_down_kernels(self, keep: str | None = None) -> None:
        """Shut down every kernel but the one that runs the notebook ``keep``."""
        for session in self.api("sessions"):  # type: ignore[union-attr]
            if keep is None or not session["path"].endswith(keep):
                self.api(f"kernels/{session['kernel']['id']}", "DELETE")

    def kernel_client(self, notebook: str) -> BlockingKernelClient:
        """A second client of the kernel that runs ``notebook`` (the page is the first),
        to run code in it and read the results; ``stop_channels()`` it when done."""
        from jupyter_client import BlockingKernelClient

        sessions = [s for s in self.api("sessions") if s["path"].endswith(notebook)]  # type: ignore[union-attr]
        if not sessions:
            raise RuntimeError(f"no kernel runs {notebook}")
        connection = self.scratch / "runtime" / f"kernel-{sessions[0]['kernel']['id']}.json"
        client = BlockingKernelClient(connection_file=str(connection))
        client.load_connection_file()
        client.start_channels()
        client.wait_for_ready(timeout=30)
        return client

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server: SIGTERM (it shuts its kernels down), then SIGKILL after
        ``timeout``; then make sure no process it started is left."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # Its kernels are its children. What a kernel started to outlive it (the lab's
        # control plane and pods) is the lab's: ``Lab(home).down()`` stops that.
        try:
            kernels = psutil.Process(proc.pid).children()
        except psutil.NoSuchProcess:
            kernels = []
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(10)
        # Kernels run in sessions of their own; the server stopped them, but make sure.
        _, alive = psutil.wait_procs(kernels, timeout=timeout)
        for child in alive:
            child.kill()
        psutil.wait_procs(alive, timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> JupyterLab:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _exited(self) -> bool:
        return self._proc is None or self._proc.poll() is not None

    def _check_alive(self) -> None:
        if self._exited():
            raise RuntimeError(f"JupyterLab exited early; its log ends with:\n{self.log_tail()}")

    def _answers(self) -> bool:
        try:
            self.api("status")
            return True
        except (OSError, urllib.error.URLError, ValueError):
            return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # start_new_session: the group id is the server's pid
    except ProcessLookupError:
        pass


@contextmanager
def lesson_server(scratch: Path, home: Path) -> Iterator[JupyterLab]:
    """JupyterLab on a fresh copy of the lessons whose kernels use the lab in ``home``.
    Afterwards the server is stopped and so is that lab (``Lab(home).down()``)."""
    notebooks = copy_lessons(scratch / "lessons")
    try:
        with JupyterLab(notebooks, scratch / "jupyter", {"COALMINE_HOME": str(home)}) as server:
            yield server
    finally:
        Lab(home=home).down()


def leftover_lab_processes(home: Path) -> list[int]:
    """Kill whatever process of the lab in ``home`` is still alive; returns their pids
    (an empty list is what a clean stop leaves)."""
    left = lab_processes(home)
    for proc in left:
        proc.kill()
    psutil.wait_procs(left, timeout=10)
    return [proc.pid for proc in left]


@contextmanager
def chromium_page(executable: str, width: int = 1600, height: int = 1100) -> Iterator[Page]:
    """A page in a headless ``executable`` (Chromium) driven by Playwright; the
    browser is closed on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()
