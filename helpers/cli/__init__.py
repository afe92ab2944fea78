"""``coalmine``: the lab from a terminal, in the words of kubectl and glooctl.

    coalmine up | down | status
    coalmine apply -f PATH...            files, folders, multi-document YAML, - for stdin
    coalmine delete -f PATH... | delete KIND NAME
    coalmine get KIND [NAME] [-n NS | -A] [-o yaml|json|wide]
    coalmine install gloo [--port P] | install kgateway [--channel standard|experimental] | install flagger
    coalmine install prometheus          a real Prometheus scraping the gateways (Debian's package)
    coalmine events [-n NS | -A]         what the controllers did (a Canary's steps and checks)
    coalmine wait [--timeout S]
    coalmine proxy url [--gateway NAMESPACE/NAME]
    coalmine proxy stats-url [--gateway NAMESPACE/NAME]   the gateway's stats, Prometheus format
    coalmine convert -f VS.yaml [--gateway NAMESPACE/NAME] [-n NS] [--channel experimental]   VS -> HTTPRoute(s)
    coalmine routes | stats
    coalmine manifests                   the folder of the lab's manifests, e.g. apply -f $(coalmine manifests)/gloo
    coalmine traffic [--rate R] [--duration S] [--path P] [--header K:V] [--header-share F] [--gateway NS/NAME]
    coalmine demo [--rate R] [--seconds S] [--output PNG]   the whole rollout on a fresh lab
    coalmine demo --progressive [--output PNG]   a good and a bad rollout of a Flagger Canary
    coalmine uninstall gloo|kgateway | reset        (kubernetes backend)

``COALMINE_HOME`` (or ``--home``) selects the lab; ``--backend kubernetes`` (or
``COALMINE_BACKEND``) a real cluster, ``--context`` its kube context, before or after
the subcommand. Exit status is non-zero on any error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from helpers.cli import commands, live
from helpers.errors import CoalmineError
from helpers.lab import BACKENDS, Lab


def _backend_options(parser: argparse.ArgumentParser, default: object) -> None:
    # On the main parser and on every subcommand, so they go before or after it.
    parser.add_argument(
        "--backend", choices=BACKENDS, default=default, help="where the lab runs (default: $COALMINE_BACKEND or local)"
    )
    parser.add_argument("--context", default=default, help="kube context (kubernetes backend; default: current)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coalmine", description="A canary-release lab for the Gloo API gateway.")
    parser.add_argument("--home", help="lab home directory (default: $COALMINE_HOME or a per-user state dir)")
    _backend_options(parser, None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[Lab, argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        _backend_options(p, argparse.SUPPRESS)
        return p

    add("up", commands.up, "start the lab (idempotent)")
    add("down", commands.down, "stop the lab and every process it started")
    add("status", commands.status, "show the lab at a glance")
    for verb, help in (("apply", "create or update objects from manifests"), ("delete", "delete objects")):
        p = add(verb, commands.apply_or_delete, help)
        p.add_argument(
            "-f",
            "--filename",
            action="append",
            required=verb == "apply",
            help="file, folder or - for stdin (repeatable)",
        )
        if verb == "delete":
            p.add_argument("kind", nargs="?")
            p.add_argument("name", nargs="?")
            p.add_argument("-n", "--namespace")
    p = add("get", commands.get, "list objects of a kind (pods, svc, deploy, upstreams, vs, ...)")
    p.add_argument("kind")
    p.add_argument("name", nargs="?")
    p.add_argument("-n", "--namespace")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-o", "--output", choices=("yaml", "json", "wide"))
    p = add(
        "install",
        commands.install,
        "install the gateway: gloo (discovery and the gateway proxy) or kgateway (the Gateway API); "
        "or flagger (the Canary kind and its controller, after gloo); "
        "or prometheus (a real Prometheus server scraping the gateways, when the machine has one)",
    )
    p.add_argument("component", choices=("gloo", "kgateway", "flagger", "prometheus"))
    p.add_argument("--port", type=int, help="gateway-proxy port on 127.0.0.1 (default: a free one)")
    p.add_argument(
        "--channel",
        choices=("standard", "experimental"),
        help="kgateway: the Gateway API CRDs' channel (default standard; experimental adds e.g. HTTPRoute retry)",
    )
    p = add("wait", commands.wait, "wait until deployments are ready and the gateway serves")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    p = add(
        "proxy",
        commands.proxy,
        "print the gateway URL (proxy url) or where it serves its stats in Prometheus's format (proxy stats-url)",
    )
    p.add_argument("what", choices=("url", "stats-url"))
    p.add_argument("--gateway", metavar="NAMESPACE/NAME", help="a Gateway API Gateway (after install kgateway)")
    p = add(
        "convert", live.convert, "turn VirtualServices into Gateway API HTTPRoutes (YAML on stdout, warnings on stderr)"
    )
    p.add_argument("-f", "--filename", action="append", required=True, help="file, folder or - (repeatable)")
    p.add_argument("--gateway", metavar="NAMESPACE/NAME", help="the parent Gateway (default kgateway-system/http)")
    p.add_argument("-n", "--namespace", help="namespace of the HTTPRoutes (default: that of their Services)")
    p.add_argument(
        "--channel",
        choices=("standard", "experimental"),
        default="standard",
        help="the Gateway API channel the cluster has (default standard); experimental also converts retries",
    )
    add("manifests", commands.manifests, "print the folder of the lab's manifests (installed with the package)")
    p = add("events", commands.events, "list events, like kubectl get events (a Canary's steps and failed checks)")
    p.add_argument("-n", "--namespace")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    add("routes", commands.routes, "show the route table the gateway serves")
    add("stats", commands.stats, "show per-upstream request stats")
    p = add("traffic", live.traffic, "send steady traffic through the gateway and print who answered")
    p.add_argument("--rate", type=live.rate, default=100.0, help="requests per second (default 100)")
    p.add_argument("--duration", type=live.positive, default=10.0, help="seconds (default 10)")
    p.add_argument("--path", default="/findPets", help="request path (default /findPets)")
    p.add_argument(
        "--header",
        action="append",
        type=live.header_arg,
        metavar="NAME:VALUE",
        help="header to send, e.g. x-canary:true (repeatable)",
    )
    p.add_argument(
        "--header-share",
        type=live.share,
        default=1.0,
        help="share of requests that carry the headers, 0..1 (default 1)",
    )
    p.add_argument(
        "--gateway",
        metavar="NAMESPACE/NAME",
        help="send through this Gateway API Gateway (default: Gloo's gateway-proxy)",
    )
    p = add("demo", live.demo, "run the whole canary rollout on a fresh lab and plot it")
    p.add_argument("--rate", type=live.rate, default=200.0, help="requests per second (default 200)")
    p.add_argument("--seconds", type=live.positive, default=5.0, help="seconds per step (default 5)")
    p.add_argument(
        "--header-share", type=live.share, default=0.2, help="share of requests with x-canary: true (default 0.2)"
    )
    p.add_argument("--output", default="coalmine-demo.png", help="where to save the plot (default coalmine-demo.png)")
    p.add_argument(
        "--progressive",
        action="store_true",
        help="instead: a Flagger Canary promotes a good version and rolls a bad one back (lesson 8)",
    )
    p = add("uninstall", commands.uninstall, "remove a gateway the lab installed on a cluster")
    p.add_argument("component", choices=("gloo", "kgateway"))
    add("reset", commands.reset, "undo everything the lab did to a cluster")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.context:
            os.environ["COALMINE_CONTEXT"] = args.context
        lab = Lab(args.backend, home=args.home)
        return int(args.func(lab, args))
    except CoalmineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
