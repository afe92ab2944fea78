"""The local backend: starts, stops and talks to a lab's control plane.

The control plane runs in its own process (``python -m helpers.runtime.admin``),
in its own session, so it outlives a notebook kernel: lesson 3 finds what lesson 1
deployed. This module only speaks JSON to its admin API with the lab's token.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import ApplyRefused, CoalmineError, LabNotRunning, LabStartError, NotFound, WaitTimeout
from ..runtime.home import LabHome

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 40.0


class LocalBackend:
    """The embedded runtime on 127.0.0.1, one per lab home (``COALMINE_HOME``)."""

    name = "local"

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        self.home = LabHome.resolve(home)

    def __repr__(self) -> str:
        return f"LocalBackend(home={str(self.home.root)!r})"

    # ── lifecycle ────────────────────────────────────────────────────────────

    def running(self) -> bool:
        """True when this home's control plane answers with our token."""
        state = self.home.read_state()
        if not state or not _alive(int(state.get("pid", 0))):
            return False
        try:
            self._call("GET", "/v1/status", timeout=5)
        except CoalmineError:
            return False
        return True

    def up(self) -> dict[str, Any]:
        if self.running():
            return self.status()
        self.home.ensure()
        self.home.token(create=True)
        self.home.state_file.unlink(missing_ok=True)
        pid = self._spawn_control_plane()
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            exited, code = _reap(pid)
            if exited:
                raise LabStartError(
                    f"the control plane exited with code {code}; "
                    f"its log {self.home.log_file} ends with:\n{_tail(self.home.log_file)}")
            state = self.home.read_state()
            if state and state.get("pid") == pid:
                return self.status()
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        _reap(pid)
        raise LabStartError(f"the control plane did not start within {_START_TIMEOUT:.0f}s; see {self.home.log_file}")

    def _spawn_control_plane(self) -> int:
        # A new session: the control plane (and its pods, in its process group)
        # outlive the kernel or shell that started it. posix_spawn rather than
        # Popen, since nothing here will ever wait for it to finish.
        log = os.open(self.home.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        devnull = os.open(os.devnull, os.O_RDONLY)
        try:
            return os.posix_spawn(
                sys.executable,
                [sys.executable, "-m", "helpers.runtime.admin", "--home", str(self.home.root)],
                {**os.environ, "PYTHONPATH": _package_root()},
                file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, log, 1),
                              (os.POSIX_SPAWN_DUP2, log, 2), (os.POSIX_SPAWN_CLOSE, log),
                              (os.POSIX_SPAWN_CLOSE, devnull)],
                setsid=True,
            )
        finally:
            os.close(log)
            os.close(devnull)

    def down(self) -> None:
        state = self.home.read_state()
        if not state:
            return
        pid = int(state.get("pid", 0))
        try:
            self._call("POST", "/v1/shutdown", {}, timeout=5)
        except CoalmineError:
            pass
        deadline = time.monotonic() + _STOP_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid) or _group_alive(pid):
            # The control plane leads its process group; its pods are in it too.
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            deadline = time.monotonic() + 5
            while _group_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.home.state_file.unlink(missing_ok=True)

    # ── operations ───────────────────────────────────────────────────────────

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/v1/status")

    def apply(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._call("POST", "/v1/apply", {"objects": objects})["results"]

    def delete(self, refs: list[dict[str, str]]) -> list[dict[str, Any]]:
        return self._call("POST", "/v1/delete", {"refs": refs})["results"]

    def get(self, kind: str, namespace: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({k: v for k, v in (("namespace", namespace), ("name", name)) if v})
        return self._call("GET", f"/v1/objects/{urllib.parse.quote(kind)}" + (f"?{query}" if query else ""))["items"]

    def install(self, component: str, port: int | None = None) -> dict[str, Any]:
        return self._call("POST", f"/v1/install/{urllib.parse.quote(component)}", {"port": port} if port else {})

    def ready(self) -> dict[str, Any]:
        return self._call("GET", "/v1/ready")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/v1/stats")

    def routes(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/routes")["routes"]

    def proxy_url(self, gateway: str | None = None) -> str:
        if gateway is not None:
            return gateway_url(self.status(), gateway)
        url = self.status().get("gateway", {}).get("url")
        if not url:
            raise NotFound("the gateway is not installed in this lab: run `coalmine install gloo`")
        return str(url)

    def wait(self, timeout: float = 120.0) -> dict[str, Any]:
        """Block until ``ready()`` says ready; raise ``WaitTimeout`` naming what is not."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.ready()
            if state["ready"]:
                return state
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"not ready after {timeout:g}s: {describe_not_ready(state)}")
            time.sleep(0.1)

    # ── transport ────────────────────────────────────────────────────────────

    def _call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        state = self.home.read_state()
        if not state:
            raise LabNotRunning(f"the lab at {self.home.root} is not running: start it with `coalmine up`")
        try:
            token = self.home.token()
        except FileNotFoundError as e:
            raise LabNotRunning(f"the lab at {self.home.root} has no token: start it with `coalmine up`") from e
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{state['adminPort']}{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read()).get("error", str(e))
            except ValueError:
                message = str(e)
            raise {404: NotFound, 422: ApplyRefused}.get(e.code, CoalmineError)(message) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise LabNotRunning(
                f"the lab at {self.home.root} does not answer ({getattr(e, 'reason', e)}): "
                "start it with `coalmine up`") from None


def gateway_url(status: dict[str, Any], gateway: str) -> str:
    """The URL of ``gateway`` ("namespace/name", or "name" when only one Gateway has
    it; "namespace/name/listener" for one listener) from a local lab's status."""
    api = status.get("gatewayApi") or {}
    if not api.get("installed"):
        raise NotFound("the Gateway API is not installed in this lab: run `coalmine install kgateway`")
    served = api.get("gateways") or {}
    parts = gateway.split("/")
    listener = parts[2] if len(parts) == 3 else None
    wanted = "/".join(parts[:2]) if len(parts) > 1 else None
    names = [g for g in served if g == wanted or (wanted is None and g.split("/")[1] == parts[0])]
    if len(names) != 1:
        known = ", ".join(served) or "none"
        why = "is served by several namespaces: name it NAMESPACE/NAME" if len(names) > 1 else "is not served"
        raise NotFound(f'gateway "{gateway}" {why} (served: {known}); apply a Gateway of class kgateway, e.g. '
                       "manifests/gateway-api/0-gateway.yaml")
    listeners = served[names[0]]
    if listener is not None and listener not in listeners:
        raise NotFound(f'gateway {names[0]} has no served listener "{listener}" (its listeners: {", ".join(listeners)})')
    return str(listeners[listener] if listener is not None else next(iter(listeners.values())))


def describe_not_ready(state: dict[str, Any]) -> str:
    """One line naming what ``wait`` is still waiting for."""
    parts = [f"deployment {d['name']} {d['ready']}/{d['desired']} ready" for d in state["deployments"] if not d["done"]]
    if state.get("discoveryPending"):
        parts.append("function discovery pending for " + ", ".join(state["discoveryPending"]))
    gw = state.get("gateway", {})
    if gw.get("installed") and not gw.get("serving"):
        parts.append("gateway not serving")
    if state.get("listenersPending"):
        parts.append("listeners not serving yet: " + ", ".join(state["listenersPending"]))
    return "; ".join(parts) or "unknown"


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def _reap(pid: int) -> tuple[bool, int | None]:
    """(exited, exit code) of a child we spawned, without blocking."""
    try:
        waited, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return (not _alive(pid), None)
    if waited == 0:
        return (False, None)
    return (True, os.waitstatus_to_exitcode(status))


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _package_root() -> str:
    root = str(Path(__file__).resolve().parents[2])
    existing = os.environ.get("PYTHONPATH")
    return root if not existing else f"{root}{os.pathsep}{existing}"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"

