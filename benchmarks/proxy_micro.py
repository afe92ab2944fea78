"""What the gateway proxy alone costs: one upstream direct vs through the proxy.

Starts, each in its own process, a small asyncio HTTP/1.1 upstream on the default
asyncio loop and a ``GatewayProxy`` routing every path to it (on uvloop when
importable, as the control plane runs it), then loads both with ``wrk`` when it
is on PATH, else with the asyncio client of ``loadgen`` (in this process), at
concurrency 1, 16 and 64, and prints requests/s, p50/p99 and the proxy/direct
ratio. Everything listens on 127.0.0.1 and is stopped at the end; a run takes
under a minute.

The upstream (``--upstream``):
  aiohttp   aiohttp.web answering a small JSON list: the backend of the reference
            measurements (environment-measurements.md §3), where a naive aiohttp
            proxy reached ~30% of direct (default);
  petstore  the lab's own pod (helpers/apps/petstore.py), GET /api/pets;
  raw       a protocol that answers without parsing anything: the proxy's ceiling,
            and a ratio no HTTP proxy can approach (the upstream does ~nothing).

    .venv/bin/python benchmarks/proxy_micro.py [--upstream aiohttp|petstore|raw] [--duration 3]
        [--client auto|wrk|python] [--no-uvloop]

Load generator, proxy and upstream share this machine's cores: compare the two
columns of one run, not runs of different machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from loadgen import measure, pick_client

CONCURRENCY = (1, 16, 64)
PETS = [
    {"id": 1, "name": "Dog", "status": "available"},
    {"id": 2, "name": "Cat", "status": "pending"},
    {"id": 3, "name": "Parrot", "status": "available"},
]
PETSTORE = Path(__file__).resolve().parents[1] / "helpers" / "apps" / "petstore.py"
BODY = b'{"pets":[{"id":1,"name":"Dog"},{"id":2,"name":"Cat"}],"v":1}'
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)


class _Upstream(asyncio.Protocol):
    """Answers every request (GET, no body) with RESPONSE; keep-alive, pipelining."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        n = self.buffer.count(b"\r\n\r\n")
        if n:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(RESPONSE * n)  # type: ignore[attr-defined]


async def _serve(role: str, upstream_port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if role == "raw":
        server = await loop.create_server(_Upstream, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await stop.wait()
        server.close()
        return
    if role == "aiohttp":
        from aiohttp import web

        async def pets(request: web.Request) -> web.Response:
            return web.json_response(PETS, headers={"X-Version": "v1"})

        app = web.Application()
        app.router.add_get("/{tail:.*}", pets)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await stop.wait()
        await runner.cleanup()
        return
    from helpers.runtime.proxy.proxying import GatewayProxy
    from helpers.runtime.routes import (
        Cluster,
        Destination,
        Endpoint,
        Route,
        RouteAction,
        RouteTable,
        VirtualHost,
        WeightedDestination,
    )

    table = RouteTable(
        (VirtualHost("bench", ("*",), (Route((), RouteAction((WeightedDestination(Destination("up"), 1),))),)),),
        {"up": Cluster("up", (Endpoint("127.0.0.1", upstream_port),))},
    )
    proxy = GatewayProxy(table)
    print(await proxy.start("127.0.0.1", 0), flush=True)
    await stop.wait()
    await proxy.stop()


def _child(role: str, upstream_port: int = 0, uvloop: bool = False) -> tuple[subprocess.Popen[str], int]:
    if role == "petstore":  # it says where it listens on stderr
        env = dict(os.environ, HOST="127.0.0.1", PORT="0", VERSION="v1")
        proc = subprocess.Popen([sys.executable, str(PETSTORE)], stderr=subprocess.PIPE, text=True, env=env)
        line = proc.stderr.readline() if proc.stderr else ""
        port = line.rsplit(":", 1)[-1].strip()
    else:
        cmd = [sys.executable, __file__, "--role", role, "--upstream-port", str(upstream_port)]
        if uvloop:
            cmd.append("--uvloop")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        port = (proc.stdout.readline() if proc.stdout else "").strip()
    if not port.isdigit():
        proc.kill()
        raise SystemExit(f"{role} did not start (exit code {proc.wait()})")
    return proc, int(port)


def _have_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement (1-5)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--no-uvloop", action="store_true", help="run the proxy on the default asyncio loop")
    parser.add_argument("--upstream", choices=("aiohttp", "petstore", "raw"), default="aiohttp")
    parser.add_argument("--role", choices=("aiohttp", "raw", "proxy"), help=argparse.SUPPRESS)
    parser.add_argument("--upstream-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--uvloop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        if args.uvloop:
            import uvloop

            uvloop.run(_serve(args.role, args.upstream_port))
        else:
            asyncio.run(_serve(args.role, args.upstream_port))
        return 0

    duration = min(max(args.duration, 1.0), 5.0)  # 6 measurements (+ warm-ups) stay under a minute
    client = pick_client(args.client)
    use_uvloop = not args.no_uvloop and _have_uvloop()
    children: list[subprocess.Popen[str]] = []
    rows = []
    try:
        upstream, up_port = _child(args.upstream)
        children.append(upstream)
        proxy, proxy_port = _child("proxy", up_port, use_uvloop)
        children.append(proxy)
        for c in CONCURRENCY:
            direct = measure(client, up_port, "/api/pets", c, duration)
            through = measure(client, proxy_port, "/api/pets", c, duration)
            rows.append((c, direct, through))
    finally:
        for proc in children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in children:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    print(
        f"gateway-proxy micro benchmark: client {client}, {duration:g} s per measurement, proxy on "
        f"{'uvloop' if use_uvloop else 'asyncio'}, upstream {args.upstream} on asyncio, "
        f"python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs shared by client, proxy and upstream"
    )
    print(
        f"{'conc':>4} | {'direct req/s':>12} {'p50 ms':>7} {'p99 ms':>7} | {'proxy req/s':>11} "
        f"{'p50 ms':>7} {'p99 ms':>7} | {'ratio':>5} | errors d/p"
    )
    for c, d, p in rows:
        print(
            f"{c:>4} | {d.rps:>12.0f} {d.p50_ms:>7.2f} {d.p99_ms:>7.2f} | {p.rps:>11.0f} "
            f"{p.p50_ms:>7.2f} {p.p99_ms:>7.2f} | {p.rps / d.rps:>5.2f} | {d.errors}/{p.errors}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
