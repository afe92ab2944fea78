"""The data plane's own event loop, on a thread of its own.

Every gateway proxy of a lab serves from this loop, never from the control plane's,
where the admin API, the pod supervisor, translation and the store's saves run. A
translation of a big route table or the save of a big store then takes the control
plane's time, not the gateway's: requests keep being answered while it works (the
two threads share the interpreter, so a busy control plane slows the gateway a
little; it never stops it). This is Envoy's split, in one process.

The control plane starts and stops proxies with ``run`` (the coroutine runs on the
data-plane loop; the caller awaits its result). A new route table is handed over by
``GatewayProxy.swap``, one assignment that the next request reads, so ``apply``
still returns only once the new table is served.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # optional, as in the control plane: a faster loop for the gateway
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class DataPlane:
    """A thread running the event loop the proxies serve from."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _start(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = _new_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._thread = threading.Thread(target=serve, name="coalmine-dataplane", daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
        return self._loop

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the data-plane loop and return its result here."""
        future = asyncio.run_coroutine_threadsafe(coro, self._start())
        return await asyncio.wrap_future(future)

    async def close(self) -> None:
        """Finish what still runs on the data-plane loop, then stop its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        await self.run(_cancel_the_rest())
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)
        loop.close()
        self._loop = self._thread = None


async def _cancel_the_rest() -> None:
    current = asyncio.current_task()
    rest = [t for t in asyncio.all_tasks() if t is not current]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


async def on(dataplane: DataPlane | None, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on ``dataplane``'s loop, or on this one when there is none (a
    translator tested alone)."""
    return await (dataplane.run(coro) if dataplane is not None else coro)
