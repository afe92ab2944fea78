"""What the gateway costs: direct to a pod vs through the gateway, in one run.

Starts a lab in a temporary home (petstore v1 and v2, Gloo, the route-to-v1 virtual
service), then measures ``GET /api/pets`` on the v1 pod directly and ``GET /petstore``
through the gateway (prefix-rewritten to the same ``/api/pets``) at concurrency 1,
16 and 64, interleaved, and prints requests/s, p50/p99 and the gateway/direct ratio.
Then it flips the route between all-v1 and all-v2 and measures how long ``apply``
takes and whether the very next request follows the new route.

    .venv/bin/python benchmarks/gateway.py [--duration 4] [--client auto|wrk|python] [--flips 40]

Client, gateway and pods share this machine's cores: compare the two columns of one
run, not runs of different machines.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from loadgen import measure, pick_client

from helpers import Lab
from helpers.live.sampling import version_of

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
CONCURRENCY = (1, 16, 64)


def all_to(version: str) -> dict:
    """The weighted manifest with every weighted route sending 100% to ``version``."""
    vs = yaml.safe_load((MANIFESTS / "gloo" / "3-weighted-10-90.yaml").read_text())
    for route in vs["spec"]["virtualHost"]["routes"]:
        for d in route.get("routeAction", {}).get("multi", {}).get("destinations", []):
            d["weight"] = 100 if d["destination"]["upstream"]["name"].endswith(f"{version}-8080") else 0
    return vs


def flips(lab: Lab, count: int) -> tuple[list[float], list[float], int]:
    """Apply all-v1 / all-v2 alternately; time each apply and the first following request."""
    port = int(lab.proxy_url().rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    manifests = {"v1": all_to("v1"), "v2": all_to("v2")}
    apply_s, follow_s, next_followed = [], [], 0
    try:
        for i in range(count):
            target = "v2" if i % 2 == 0 else "v1"
            t0 = time.perf_counter()
            lab.apply(manifests[target])
            t1 = time.perf_counter()
            first = True
            while True:
                conn.request("GET", "/petstore")
                resp = conn.getresponse()
                got = version_of(resp.status, resp.read())
                if got == target:
                    follow_s.append(time.perf_counter() - t1)
                    next_followed += first
                    break
                first = False
            apply_s.append(t1 - t0)
    finally:
        conn.close()
    return apply_s, follow_s, next_followed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per measurement (1-15)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--flips", type=int, default=40)
    args = parser.parse_args()
    duration = min(max(args.duration, 1.0), 15.0)
    client = pick_client(args.client)

    with tempfile.TemporaryDirectory(prefix="coalmine-bench-") as home:
        lab = Lab(home=home)
        try:
            lab.up()
            lab.apply(MANIFESTS / "petstore-v1.yaml", MANIFESTS / "petstore-v2.yaml")
            lab.install("gloo")
            lab.wait(60)
            lab.apply(MANIFESTS / "gloo" / "1-route-to-v1.yaml")
            (pod,) = [p for p in lab.objects("pods") if p["metadata"]["labels"]["app"] == "petstore-v1"]
            pod_port = pod["status"]["localPort"]
            gw_port = int(lab.proxy_url().rsplit(":", 1)[1])
            rows = []
            for c in CONCURRENCY:
                direct = measure(client, pod_port, "/api/pets", c, duration)
                gateway = measure(client, gw_port, "/petstore", c, duration)
                rows.append((c, direct, gateway))
            apply_s, follow_s, next_followed = flips(lab, args.flips)
        finally:
            lab.down()

    print(
        f"coalmine gateway benchmark: client {client}, {duration:g} s per measurement, "
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs (client, gateway and pods share them)"
    )
    print(
        f"{'conc':>4} | {'direct req/s':>12} {'p50 ms':>7} {'p99 ms':>7} | {'gateway req/s':>13} "
        f"{'p50 ms':>7} {'p99 ms':>7} | {'ratio':>5} | errors d/g"
    )
    for c, d, g in rows:
        print(
            f"{c:>4} | {d.rps:>12.0f} {d.p50_ms:>7.2f} {d.p99_ms:>7.2f} | {g.rps:>13.0f} "
            f"{g.p50_ms:>7.2f} {g.p99_ms:>7.2f} | {g.rps / d.rps:>5.2f} | {d.errors}/{g.errors}"
        )
    ms = [s * 1000 for s in apply_s]
    follow = [s * 1000 for s in follow_s]
    print(
        f"route flips: {len(ms)}; apply call p50 {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms; "
        f"the very next request followed the new route in {next_followed}/{len(ms)}; "
        f"apply returned -> first following response p50 {statistics.median(follow):.2f} ms, "
        f"max {max(follow):.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
