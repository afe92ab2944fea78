"""The gateway's HTTP listener, there only while a VirtualService exists.

Gloo builds no Envoy listener for a gateway until some VirtualService exists
(``settings.gateway.translateEmptyGateways`` is false by default): a fresh install
refuses connections on the gateway port. The first VirtualService opens the
listener, deleting the last one closes it. In between, the port recorded at install
stays reserved: a socket is bound to it without listening (connections are still
refused), so no other program is handed it and ``proxy url`` never changes.
"""

from __future__ import annotations

import asyncio
import socket

from helpers.runtime.proxy.dataplane import DataPlane, on
from helpers.runtime.proxy.proxying import GatewayProxy
from helpers.runtime.proxy.stats import UpstreamStats
from helpers.runtime.routes import RouteTable

HOST = "127.0.0.1"


def reserve(port: int) -> socket.socket:
    """A socket bound to ``HOST:port`` (0: a free port) that does not listen.

    ``SO_REUSEADDR`` lets the proxy bind the same port when it opens (Linux allows
    it while no socket listens there) and lets a port with closed connections still
    in TIME_WAIT be reserved again. Raises ``OSError`` when something listens there.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


class Listener:
    """One port: reserved while closed, served by a ``GatewayProxy`` while open."""

    def __init__(self, reservation: socket.socket, stats: UpstreamStats, dataplane: DataPlane | None) -> None:
        self._reservation: socket.socket | None = reservation
        self.port = int(reservation.getsockname()[1])
        self.stats, self.dataplane = stats, dataplane
        self.proxy = GatewayProxy(RouteTable(), stats)  # a proxy starts once: a new one per opening
        self._lock = asyncio.Lock()

    @property
    def open(self) -> bool:
        return self.proxy.port is not None

    def swap(self, table: RouteTable) -> None:
        self.proxy.swap(table)

    async def set_open(self, wanted: bool) -> None:
        """Open or close the listener; opening on the reserved port, or on a free one
        if another program took it (the new port is then in ``port``)."""
        async with self._lock:
            if wanted and not self.open:
                try:
                    self.port = await on(self.dataplane, self.proxy.start(HOST, self.port))
                except OSError:
                    self.port = await on(self.dataplane, self.proxy.start(HOST, 0))
                self._release()
            elif not wanted and self.open:
                table = self.proxy.table
                await on(self.dataplane, self.proxy.stop())
                self.proxy = GatewayProxy(table, self.stats)
                try:
                    self._reservation = reserve(self.port)
                except OSError:  # taken the moment it closed: keep the recorded port anyway
                    self._reservation = None

    async def close(self) -> None:
        """Stop serving and free the port."""
        async with self._lock:
            await on(self.dataplane, self.proxy.stop())
            self._release()

    def _release(self) -> None:
        if self._reservation is not None:
            self._reservation.close()
            self._reservation = None
