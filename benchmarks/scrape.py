"""What a real Prometheus costs the lab: gateway latency with and without scraping, in one run.

Starts a lab in a temporary home (petstore v1 and v2, Gloo, the route-to-v1 virtual
service), times ``install prometheus`` (the process started until ``/-/ready``), then
loads ``GET /petstore`` through the gateway in alternating rounds: Prometheus scraping
every second, and Prometheus paused (SIGSTOP: no scrape, no CPU of its own; SIGCONT
after). Then it times instant queries of the HTTP API (``/api/v1/query``) with a query
shaped as Flagger's Gloo request-success-rate check, and reads Prometheus's own
``scrape_duration_seconds``.

    .venv/bin/python benchmarks/scrape.py [--duration 4] [--rounds 3] [--concurrency 16] [--client auto|wrk|python]

Needs Debian's ``prometheus`` (``make prometheus``). Client, gateway, pods and
Prometheus share this machine's cores: compare the two columns of one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from loadgen import Result, measure, pick_client

from helpers import Lab
from helpers.runtime.prometheus import find_binary

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
# Flagger's Gloo request-success-rate query (pkg/metrics/observers/gloo.go), on the v1 upstream.
SUCCESS_RATE = (
    'sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~".*petstore-v1.*",envoy_response_code!~"5.*"}[30s])) '
    '/ sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~".*petstore-v1.*"}[30s])) * 100'
)


def query(url: str, promql: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}", timeout=10) as r:
        return json.loads(r.read())["data"]["result"]


def prometheus_pid(home: str) -> int:
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if home in line and "--storage.tsdb.path" in line:
            return proc.pid
    raise SystemExit("the lab's Prometheus process was not found")


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per measurement (1-15)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (scraped, paused), order alternating")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    args = parser.parse_args()
    if find_binary() is None:
        raise SystemExit("no prometheus on PATH: `make prometheus` (or `sudo apt-get install prometheus`)")
    duration = min(max(args.duration, 1.0), 15.0)
    client = pick_client(args.client)
    results: dict[str, list[Result]] = {"scraped": [], "paused": []}

    with tempfile.TemporaryDirectory(prefix="coalmine-bench-") as home:
        lab = Lab(home=home)
        try:
            lab.up()
            lab.apply(MANIFESTS / "petstore-v1.yaml", MANIFESTS / "petstore-v2.yaml")
            lab.install("gloo")
            lab.wait(60)
            lab.apply(MANIFESTS / "gloo" / "1-route-to-v1.yaml")
            gw_port = int(lab.proxy_url().rsplit(":", 1)[1])
            t0 = time.perf_counter()
            url = lab.install("prometheus")["url"]
            start_s = time.perf_counter() - t0
            wait_until(lambda: query(url, "up") != [], 30, "the first scrape")
            pid = prometheus_pid(home)
            measure(client, gw_port, "/petstore", args.concurrency, 1.0)  # warm up
            try:
                for i in range(args.rounds):
                    order = ("scraped", "paused") if i % 2 == 0 else ("paused", "scraped")
                    for mode in order:
                        os.kill(pid, signal.SIGCONT if mode == "scraped" else signal.SIGSTOP)
                        results[mode].append(measure(client, gw_port, "/petstore", args.concurrency, duration))
            finally:
                os.kill(pid, signal.SIGCONT)
            wait_until(lambda: query(url, SUCCESS_RATE) != [], 30, "the success-rate query to have data")
            latencies = []
            for _ in range(args.queries):
                q0 = time.perf_counter()
                query(url, SUCCESS_RATE)
                latencies.append((time.perf_counter() - q0) * 1000)
            scrape_ms = [float(s["value"][1]) * 1000 for s in query(url, "avg_over_time(scrape_duration_seconds[5m])")]
            scrapes = query(url, "sum(count_over_time(up[5m]))")
        finally:
            lab.down()

    print(
        f"coalmine scrape benchmark: client {client}, concurrency {args.concurrency}, {duration:g} s x "
        f"{args.rounds} rounds per mode, scrape interval 1s, python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(f"prometheus start (install prometheus -> /-/ready answered): {start_s * 1000:.0f} ms")
    print("medians over the rounds, then each round's req/s and p99 ms")
    print(f"{'mode':>8} | {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} | errors | rounds")
    for mode, rows in results.items():
        print(
            f"{mode:>8} | {statistics.median(r.rps for r in rows):>7.0f} "
            f"{statistics.median(r.p50_ms for r in rows):>7.2f} {statistics.median(r.p99_ms for r in rows):>7.2f} | "
            f"{sum(r.errors for r in rows):>6} | " + ", ".join(f"{r.rps:.0f}/{r.p99_ms:.2f}" for r in rows)
        )
    print(
        f"query (Flagger's Gloo success rate, {args.queries} runs): p50 {statistics.median(latencies):.2f} ms, "
        f"p99 {pct(latencies, 0.99):.2f} ms, max {max(latencies):.2f} ms"
    )
    print(
        f"scrape of the gateway's stats, as Prometheus measures it: avg {statistics.mean(scrape_ms):.2f} ms "
        f"({int(float(scrapes[0]['value'][1])) if scrapes else 0} scrapes)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
