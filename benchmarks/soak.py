"""Soak: open-loop traffic while the lab is changed, fed bad input and has pods killed.

Starts a lab in a temporary home (petstore v1 and v2 with two replicas each, Gloo, a
``/petstore`` route split between them with retries on reset, as a production route
would have), then, at each rate (200 and 1000 req/s by default), sends open-loop
traffic (``helpers.live.traffic.Traffic``) for ``--seconds``:

- the first ``--baseline`` seconds with nothing else going on (the baseline);
- then, until the end, every ``--flip-every`` seconds a route flip (all-v1 <-> all-v2);
  every 10 s a large but legal object (a 900 KiB ConfigMap, up to ten of them, and a
  VirtualService of 6,000 routes on another domain, changed each time); every 5 s one
  bad input (a 10 MiB ConfigMap, a 100,000-route VirtualService, a YAML alias bomb, a
  Deployment without an env name, a backreference regex), each of which must be
  refused; every 20 s a SIGKILL to one pod process.

It prints, per rate: requests sent and skipped (the generator's own shortfall),
failed requests (no answer or 5xx; apart, those due within 2 s after a kill), stale
answers (a request due after ``apply`` returned, and answered before the next flip
began, that the old route answered), p50/p99
latency of the baseline, of requests due during a flip (from its start until 100 ms
after ``apply`` returned) and of the rest, apply time, and the control plane's CPU
and RSS over time (psutil, sampled each second).

    .venv/bin/python benchmarks/soak.py [--rates 200 1000] [--seconds 150] [--baseline 20]

Client, control plane and pods share this machine's cores: compare the baseline with
the flips of the same run, not runs of different machines.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import Lab
from helpers.errors import ApplyRefused, ManifestError
from helpers.live.traffic import Record, Traffic
from helpers.loading import load_manifests

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
BOMB = "kind: ConfigMap\na: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
)


def split(v2: int) -> dict[str, Any]:
    """``/petstore`` to v1 and v2 by weight, retried on reset or refused connection."""

    def dest(version: str, weight: int) -> dict[str, Any]:
        upstream = {"name": f"default-petstore-{version}-8080", "namespace": "gloo-system"}
        return {"weight": weight, "destination": {"upstream": upstream}}

    return {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "coalmine", "namespace": "gloo-system"},
        "spec": {
            "virtualHost": {
                "domains": ["*"],
                "routes": [
                    {
                        "matchers": [{"prefix": "/petstore"}],
                        "routeAction": {"multi": {"destinations": [dest("v1", 100 - v2), dest("v2", v2)]}},
                        "options": {
                            "prefixRewrite": "/api/pets",
                            "retries": {"retryOn": "connect-failure,reset", "numRetries": 3},
                        },
                    }
                ],
            }
        },
    }


def big_vs(generation: int) -> dict[str, Any]:
    routes = [
        {"matchers": [{"prefix": f"/bulk/{i}"}], "directResponseAction": {"status": 200, "body": f"{generation}"}}
        for i in range(6000)
    ]
    return {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "bulk", "namespace": "gloo-system"},
        "spec": {"virtualHost": {"domains": ["bulk.example"], "routes": routes}},
    }


def bad_inputs() -> list[Any]:
    deployment = copy.deepcopy(load_manifests(MANIFESTS / "petstore-v1.yaml")[-1])
    deployment["metadata"]["name"] = "broken"
    deployment["spec"]["template"]["spec"]["containers"][0]["env"] = [{"value": "no name"}]
    backref = copy.deepcopy(big_vs(0))
    backref["metadata"]["name"], backref["spec"]["virtualHost"] = (
        "backref",
        {
            "domains": ["backref.example"],
            "routes": [{"matchers": [{"regex": r"/(a)\1"}], "directResponseAction": {"status": 200}}],
        },
    )
    huge = big_vs(0)
    huge["metadata"]["name"], huge["spec"]["virtualHost"]["domains"] = "huge", ["huge.example"]
    huge["spec"]["virtualHost"]["routes"] = huge["spec"]["virtualHost"]["routes"] * 17  # 102,000 routes
    big_cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "too-big"}, "data": {"x": "x" * 10_485_760}}
    return [big_cm, huge, BOMB, deployment, backref]


class Sampler(threading.Thread):
    """The control plane's CPU (% of one core) and RSS (MiB), once a second."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.samples: list[tuple[float, float, float]] = []  # (time, cpu %, rss MiB)
        self.stop = threading.Event()

    def run(self) -> None:
        self.proc.cpu_percent()
        while not self.stop.wait(1.0):
            with self.proc.oneshot():
                self.samples.append((time.monotonic(), self.proc.cpu_percent(), self.proc.memory_info().rss / 2**20))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def phase(
    lab: Lab, rate: float, seconds: float, baseline: float, flip_every: float, cp: int, kill_every: float = 20.0
) -> dict[str, Any]:
    sampler = Sampler(cp)
    sampler.start()
    traffic = Traffic(lab, rate=rate, path="/petstore", timeout=10.0, max_in_flight=2048, capacity=2_000_000)
    flips: list[tuple[float, float, str]] = []
    kills: list[float] = []
    applied: list[float] = []
    refused = unexpected = 0
    bad = itertools.cycle(bad_inputs())
    traffic.start()
    try:
        time.sleep(baseline)  # the baseline: traffic only (the soak's own cadence, not synchronisation)
        start = traffic.elapsed
        due = {"flip": start, "big": start + 1, "bad": start + 2.5, "kill": start + 5}
        every = {"flip": flip_every, "big": 10.0, "bad": 5.0, "kill": kill_every}
        target, n = "v1", 0
        while traffic.elapsed < seconds:
            action = min(due, key=lambda a: due[a])  # the most overdue first: a slow flip starves nothing
            if traffic.elapsed < due[action]:
                time.sleep(0.01)
                continue
            due[action] = max(due[action] + every[action], traffic.elapsed)
            if action == "flip":
                target = "v2" if target == "v1" else "v1"
                t0 = traffic.elapsed
                lab.apply(split(100 if target == "v2" else 0))
                flips.append((t0, traffic.elapsed, target))
            elif action == "big":
                t0 = time.perf_counter()
                blob = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"bulk-{n % 10}"}}
                lab.apply({**blob, "data": {"blob": str(n % 10) * (900 * 1024)}}, big_vs(n))
                applied.append(time.perf_counter() - t0)
                n += 1
            elif action == "bad":
                try:
                    lab.apply(next(bad))
                    unexpected += 1
                except (ApplyRefused, ManifestError):
                    refused += 1
            else:
                pods = [p for p in lab.objects("pods") if p["status"].get("localPid")]
                os.kill(pods[len(kills) % len(pods)]["status"]["localPid"], signal.SIGKILL)
                kills.append(traffic.elapsed)
    finally:
        traffic.stop()
        sampler.stop.set()
        sampler.join()
    return summarize(traffic, traffic.records(), baseline, flips, kills, applied, refused, unexpected, sampler)


def summarize(
    traffic: Traffic,
    records: list[Record],
    baseline: float,
    flips: list[tuple[float, float, str]],
    kills: list[float],
    applied: list[float],
    refused: int,
    unexpected: int,
    sampler: Sampler,
) -> dict[str, Any]:
    failed = [r for r in records if r.status == 0 or r.status >= 500]
    near_kill = [r for r in failed if any(0 <= r.sent_s - k <= 2.0 for k in kills)]
    stale = 0
    for (_, returned, target), nxt in zip(flips, [*flips[1:], (float("inf"), 0.0, "")], strict=True):
        # Due after apply returned and answered before the next flip began: only this
        # flip's table can have routed it (a request sent late may meet the next flip).
        stale += sum(
            1
            for r in records
            if returned < r.sent_s and r.sent_s + r.latency_ms / 1000 < nxt[0] and r.version and r.version != target
        )
    during = [r.latency_ms for r in records if any(s <= r.sent_s <= e + 0.1 for s, e, _ in flips)]
    base = [r.latency_ms for r in records if r.sent_s < baseline and r.status]
    rest = [r.latency_ms for r in records if r.sent_s >= baseline and r.status]
    cpu = [c for _, c, _ in sampler.samples]
    rss = [m for _, _, m in sampler.samples]
    return {
        "sent": traffic.sent,
        "skipped": traffic.skipped,
        "failed": len(failed),
        "failed_near_kill": len(near_kill),
        "kills": len(kills),
        "stale": stale,
        "flips": len(flips),
        "apply_ms": [1000 * (e - s) for s, e, _ in flips],
        "big_apply_ms": [1000 * s for s in applied],
        "refused": refused,
        "unexpected": unexpected,
        "base": (pct(base, 0.5), pct(base, 0.99)),
        "during": (pct(during, 0.5), pct(during, 0.99)),
        "rest": (pct(rest, 0.5), pct(rest, 0.99)),
        "cpu": (statistics.mean(cpu) if cpu else float("nan"), max(cpu, default=float("nan"))),
        "rss": (rss[0] if rss else float("nan"), max(rss, default=float("nan")), rss[-1] if rss else float("nan")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[200.0, 1000.0])
    parser.add_argument("--seconds", type=float, default=150.0, help="seconds per rate (default 150)")
    parser.add_argument("--baseline", type=float, default=20.0, help="traffic-only seconds first (default 20)")
    parser.add_argument("--flip-every", type=float, default=0.5, help="seconds between route flips (default 0.5)")
    parser.add_argument("--kill-every", type=float, default=20.0, help="seconds between pod kills (default 20)")
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory(prefix="coalmine-soak-") as home:
        lab = Lab(home=home)
        try:
            lab.up()
            objects = load_manifests([MANIFESTS / "petstore-v1.yaml", MANIFESTS / "petstore-v2.yaml"])
            for obj in objects:
                if obj["kind"] == "Deployment":
                    obj["spec"]["replicas"] = 2  # a killed pod leaves one serving, as in production
            lab.apply(objects)
            lab.install("gloo")
            lab.wait(60)
            lab.apply(split(0))
            cp = int(yaml.safe_load((Path(home) / "state.json").read_text())["pid"])
            for rate in args.rates:
                results[rate] = phase(lab, rate, args.seconds, args.baseline, args.flip_every, cp, args.kill_every)
                lab.wait(60)
        finally:
            lab.down()

    print(
        f"coalmine soak: {args.seconds:g} s per rate ({args.baseline:g} s baseline first), a flip every "
        f"{args.flip_every:g} s, python {sys.version.split()[0]}, {os.cpu_count()} CPUs shared by all"
    )
    for rate, r in results.items():
        ms = r["apply_ms"]
        print(f"\n{rate:g} req/s: sent {r['sent']}, skipped by the generator {r['skipped']}")
        print(
            f"  failed {r['failed']} ({r['failed_near_kill']} within 2 s after one of {r['kills']} pod kills); "
            f"stale answers after apply returned {r['stale']} over {r['flips']} flips"
        )
        print(
            "  latency p50/p99 ms: baseline {:.1f}/{:.1f}, during flips {:.1f}/{:.1f}, the rest {:.1f}/{:.1f}".format(
                *r["base"], *r["during"], *r["rest"]
            )
        )
        print(
            f"  apply (flip) p50 {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms; "
            f"900 KiB ConfigMap + 6,000-route VirtualService apply p50 "
            f"{statistics.median(r['big_apply_ms'] or [float('nan')]):.0f} ms; "
            f"bad inputs refused {r['refused']}, accepted {r['unexpected']}"
        )
        print(
            "  control plane CPU mean {:.0f}% max {:.0f}% of a core; RSS start {:.0f} max {:.0f} end {:.0f} MiB".format(
                *r["cpu"], *r["rss"]
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
