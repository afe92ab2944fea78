"""The commands that send traffic or convert routes, and the argument types they take.

Their modules (pandas, aiohttp, matplotlib) load only when the command runs.
"""

from __future__ import annotations

import argparse
import sys

from helpers.errors import CoalmineError
from helpers.lab import Lab
from helpers.loading import load_manifests


def convert(lab: Lab, args: argparse.Namespace) -> int:
    from helpers.migrate.converting import convert_objects

    objects = load_manifests(args.filename)
    if not any(o.get("kind") == "Upstream" for o in objects):
        try:  # the lab's upstreams say which Service each one is, if a lab runs
            objects += lab.objects("upstreams", all_namespaces=True) + lab.objects(
                "upstreamgroups", all_namespaces=True
            )
        except CoalmineError:
            pass
    ns, _, name = (args.gateway or "kgateway-system/http").rpartition("/")
    result = convert_objects(objects, (ns or "default", name), args.namespace, channel=args.channel)
    print(result.to_yaml(), end="")
    for w in result.warnings:
        print(f"Warning: {w}", file=sys.stderr)
    return 0


def traffic(lab: Lab, args: argparse.Namespace) -> int:
    from helpers.live.traffic import Traffic, summarize

    headers = dict(_header(h) for h in args.header or [])
    target = lab.proxy_url(gateway=args.gateway) if args.gateway else lab
    traffic = Traffic(target, rate=args.rate, path=args.path, headers=headers, header_share=args.header_share)
    frame = traffic.run(seconds=args.duration)
    print(
        f"{traffic.sent} requests in {args.duration:g} s to {args.path} "
        f"({traffic.sent / args.duration:.1f} req/s achieved, {args.rate:g} requested"
        f"{f', {traffic.skipped} skipped: too many unanswered' if traffic.skipped else ''})"
    )
    if frame.empty:
        return 1
    print(summarize(frame).to_string(float_format=lambda x: f"{x:.3f}"))
    return 0


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f'--header takes NAME:VALUE (e.g. "x-canary: true"), not "{text}"')
    return name.strip(), value.strip()


def header_arg(text: str) -> str:
    _header(text)
    return text


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def rate(text: str) -> float:
    value = float(text)
    if not 0 < value <= 10_000:
        raise argparse.ArgumentTypeError(f"requests per second must be more than 0 and at most 10000, not {text}")
    return value


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def demo(lab: Lab, args: argparse.Namespace) -> int:
    from helpers.live.demo import run_demo, run_progressive_demo

    if args.progressive:
        results = run_progressive_demo(output=args.output)
        return 0 if (results["good"].phase, results["bad"].phase) == ("Succeeded", "Failed") else 1

    table = run_demo(rate=args.rate, seconds=args.seconds, header_share=args.header_share, output=args.output)
    return 1 if int(table["errors"].sum()) else 0
