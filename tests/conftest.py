"""Shared test helpers: waiting on conditions with a deadline, never sleeping blind."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
    uvloop = None  # type: ignore[assignment]

T = TypeVar("T")
SCENARIO_TIMEOUT_S = 60.0  # one in-process proxy scenario, at most


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, T]], T]:
    """Run one scenario coroutine on a fresh event loop of the given kind."""
    if request.param == "uvloop" and uvloop is None:
        pytest.skip("uvloop is not installed")
    factory = uvloop.new_event_loop if request.param == "uvloop" else None

    def runner(coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(asyncio.wait_for(coro, SCENARIO_TIMEOUT_S))

    return runner


async def until(condition: Callable[[], T], what: str, timeout: float, interval: float = 0.02) -> T:
    """``wait_for`` on a running event loop: poll ``condition`` every ``interval`` seconds
    until it returns something truthy, letting the loop run in between; fail naming
    ``what`` when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(interval)


def wait_for(condition: Callable[[], T], timeout: float = 30.0, what: str = "condition", interval: float = 0.02) -> T:
    """Poll ``condition`` until it returns something truthy; fail the test naming
    ``what`` when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:
            last_error = e
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}{detail}")
        time.sleep(interval)
