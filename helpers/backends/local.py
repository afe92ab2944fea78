"""The local backend: starts, stops and talks to a lab's control plane.

The control plane runs in its own process (``python -m helpers.runtime.admin``),
in its own session, so it outlives a notebook kernel: lesson 3 finds what lesson 1
deployed. This module only speaks JSON to its admin API with the lab's token.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from helpers.backends.base import describe_not_ready
from helpers.backends.processes import alive, group_alive, kill_group, reap, spawn_detached, tail
from helpers.errors import CoalmineError, LabNotRunning, LabStartError, NotFound, Unsupported, WaitTimeout, from_wire
from helpers.runtime.home import ALREADY_RUNNING, REFUSED, REFUSED_PREFIX, LabHome

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 40.0
_CONTROL_PLANE = "helpers.runtime.admin"
_FOR_A_CLUSTER = (
    "{verb} is for a cluster (the kubernetes backend); "
    "the local lab is undone with `coalmine down` and removing its home"
)


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
        if not state or not alive(int(state.get("pid", 0))):
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
        # A stale state file is harmless (its pid is checked), and another `up` racing
        # this one may have just written a fresh one: it is left in place.
        pid = spawn_detached(_CONTROL_PLANE, ["--home", str(self.home.root)], self.home.log_file)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            exited, code = reap(pid)
            if exited and code == ALREADY_RUNNING:
                return self._join(deadline)  # another `up` started this home's control plane first
            if exited:
                raise LabStartError(self._start_failure(code))
            state = self.home.read_state()
            if state and state.get("pid") == pid:
                return self.status()
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        reap(pid)
        raise LabStartError(f"the control plane did not start within {_START_TIMEOUT:.0f}s; see {self.home.log_file}")

    def _join(self, deadline: float) -> dict[str, Any]:
        while time.monotonic() < deadline:
            if self.running():
                return self.status()
            time.sleep(0.05)
        raise LabStartError(
            f"another control plane holds the lab home {self.home.root} but does not answer; "
            f"stop it with `coalmine down` and see {self.home.log_file}"
        )

    def _start_failure(self, code: int | None) -> str:
        last = tail(self.home.log_file, 1).strip()
        if code == REFUSED and last.startswith(REFUSED_PREFIX):
            return "the lab's control plane cannot start: " + last.removeprefix(REFUSED_PREFIX)
        return f"the control plane exited with code {code}; its log {self.home.log_file} ends with:\n" + tail(
            self.home.log_file
        )

    def down(self, forget: bool = False) -> str:
        """Stop the control plane and its pods, whichever process started them. A
        control plane that has exited is gone even while it waits, a zombie, for the
        kernel that started it to reap it. With ``forget``, the objects and installed
        gateways are removed too: the next ``up`` starts an empty lab."""
        was_running = self.running()
        state = self.home.read_state()
        pid = int(state.get("pid", 0)) if state else 0
        if alive(pid):
            try:
                self._call("POST", "/v1/shutdown", {}, timeout=5)
            except CoalmineError:
                pass
            deadline = time.monotonic() + _STOP_TIMEOUT
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        if pid and (alive(pid) or group_alive(pid)):
            # The control plane leads its process group; its pods are in it too.
            kill_group(pid)
            deadline = time.monotonic() + 5
            while group_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        if state:
            self.home.state_file.unlink(missing_ok=True)
        if forget:
            self.home.store_file.unlink(missing_ok=True)
            shutil.rmtree(self.home.pods_dir, ignore_errors=True)
        where = self.home.root
        done = f"stopped the lab at {where}" if was_running else f"the lab at {where} was not running"
        return done + (", and forgot its objects and gateways" if forget else "")

    # ── operations ───────────────────────────────────────────────────────────

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/v1/status")

    def apply(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _items(self._call("POST", "/v1/apply", {"objects": objects}), "results")

    def delete(self, refs: list[dict[str, str]]) -> list[dict[str, Any]]:
        return _items(self._call("POST", "/v1/delete", {"refs": refs}), "results")

    def get(self, kind: str, namespace: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({k: v for k, v in (("namespace", namespace), ("name", name)) if v})
        return _items(
            self._call("GET", f"/v1/objects/{urllib.parse.quote(kind)}" + (f"?{query}" if query else "")), "items"
        )

    def install(self, component: str, port: int | None = None, channel: str | None = None) -> dict[str, Any]:
        body = {k: v for k, v in (("port", port), ("channel", channel)) if v}
        return self._call("POST", f"/v1/install/{urllib.parse.quote(component)}", body)

    def ready(self) -> dict[str, Any]:
        return self._call("GET", "/v1/ready")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/v1/stats")

    def stats_url(self, gateway: str | None = None) -> str:
        query = f"?{urllib.parse.urlencode({'gateway': gateway})}" if gateway else ""
        return str(self._call("GET", f"/v1/stats/url{query}")["url"])

    def routes(self) -> list[dict[str, Any]]:
        return _items(self._call("GET", "/v1/routes"), "routes")

    def events(self, namespace: str | None = None) -> list[dict[str, Any]]:
        query = f"?{urllib.parse.urlencode({'namespace': namespace})}" if namespace else ""
        return _items(self._call("GET", f"/v1/events{query}"), "items")

    def uninstall(self, component: str) -> list[str]:
        raise Unsupported(_FOR_A_CLUSTER.format(verb="uninstall"))

    def reset(self) -> list[str]:
        raise Unsupported(_FOR_A_CLUSTER.format(verb="reset"))

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

    def wait_in_force(self, served: Callable[[], bool], timeout: float = 60.0) -> bool:
        """Nothing to wait for: the control plane swaps the gateway's route table before
        ``apply`` returns, so the next request already follows the change (``served``
        is not even asked). False."""
        return False

    # ── transport ────────────────────────────────────────────────────────────

    def _call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> dict[str, Any]:
        state = self.home.read_state()
        if not state:
            raise LabNotRunning(f"the lab at {self.home.root} is not running: start it with `coalmine up`")
        try:
            token = self.home.token()
        except FileNotFoundError as e:
            raise LabNotRunning(f"the lab at {self.home.root} has no token: start it with `coalmine up`") from e
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{state['adminPort']}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            try:
                problem = json.loads(e.read())
                message, name = str(problem.get("error", e)), problem.get("type")
            except (ValueError, AttributeError):
                message, name = str(e), None
            raise from_wire(name, message, e.code) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise LabNotRunning(
                f"the lab at {self.home.root} does not answer ({getattr(e, 'reason', e)}): start it with `coalmine up`"
            ) from None
        if not isinstance(answer, dict):
            raise CoalmineError(f"the lab at {self.home.root} answered {path} with something other than an object")
        return answer


def _items(answer: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The list under ``key`` of an admin API answer."""
    return list(answer.get(key) or [])


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
        raise NotFound(
            f'gateway "{gateway}" {why} (served: {known}); apply a Gateway of class kgateway, e.g. '
            "manifests/gateway-api/0-gateway.yaml"
        )
    listeners = served[names[0]]
    if listener is not None and listener not in listeners:
        raise NotFound(
            f'gateway {names[0]} has no served listener "{listener}" (its listeners: {", ".join(listeners)})'
        )
    return str(listeners[listener] if listener is not None else next(iter(listeners.values())))
