"""``coalmine``: the lab from a terminal, in the words of kubectl and glooctl.

    coalmine up | down | status
    coalmine apply -f PATH...            files, folders, multi-document YAML, - for stdin
    coalmine delete -f PATH... | delete KIND NAME
    coalmine get KIND [NAME] [-n NS | -A] [-o yaml|json|wide]
    coalmine install gloo [--port P] | install kgateway
    coalmine wait [--timeout S]
    coalmine proxy url [--gateway NAMESPACE/NAME]
    coalmine convert -f VS.yaml [--gateway NAMESPACE/NAME] [-n NS]   VirtualService -> HTTPRoute(s)
    coalmine routes | stats
    coalmine traffic [--rate R] [--duration S] [--path P] [--header K:V] [--header-share F] [--gateway NS/NAME]
    coalmine demo [--rate R] [--seconds S] [--output PNG]   the whole rollout on a fresh lab
    coalmine uninstall gloo|kgateway | reset        (kubernetes backend)

``COALMINE_HOME`` (or ``--home``) selects the lab; ``--backend kubernetes`` (or
``COALMINE_BACKEND``) a real cluster, ``--context`` its kube context, before or after
the subcommand. Exit status is non-zero on any error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from .errors import CoalmineError
from .lab import Lab, default_namespace, dump
from .loading import load_manifests
from .runtime.kinds import lookup
from .tables import render, rows


def _up(lab: Lab, args: argparse.Namespace) -> int:
    status = lab.up()
    print(f"lab running at {status['home']}")
    return 0


def _down(lab: Lab, args: argparse.Namespace) -> int:
    lab.down()
    print("lab stopped")
    return 0


def _status(lab: Lab, args: argparse.Namespace) -> int:
    s = lab.status()
    print(f"home:     {s['home']}")
    print(f"gateway:  {s['gateway']['url'] or 'not installed (coalmine install gloo)'}")
    for gateway, listeners in ((s.get("gatewayApi") or {}).get("gateways") or {}).items():
        print(f"gateway {gateway}: " + ", ".join(f"{name} {url}" for name, url in listeners.items()))
    print(f"pods:     {s['pods']['ready']}/{s['pods']['total']} ready")
    print(f"objects:  {s['objects']}")
    return 0


def _apply_or_delete(lab: Lab, args: argparse.Namespace) -> int:
    objects = load_manifests(args.filename) if args.filename else []
    if args.command == "apply":
        results = lab.backend.apply(objects)
    elif args.filename:
        results = lab.backend.delete([{"kind": o.get("kind", ""), "name": o["metadata"]["name"],
                                       "namespace": o["metadata"].get("namespace") or "default"} for o in objects])
    else:
        if not args.kind or not args.name:
            raise CoalmineError("delete needs -f PATH or KIND NAME")
        results = lab.backend.delete([{"kind": lookup(args.kind).name, "name": args.name,
                                       "namespace": args.namespace or default_namespace(args.kind)}])
    failed = False
    for r in results:
        if "error" in r:
            failed = True
            print(f"Error from server: {r['ref']}: {r['error']}", file=sys.stderr)
        else:
            print(f"{r['ref']} {r['action']}")
            for w in r.get("warnings") or []:
                print(f"Warning: {r['ref']}: {w}", file=sys.stderr)
    return 1 if failed else 0


def _get(lab: Lab, args: argparse.Namespace) -> int:
    kind = lookup(args.kind)
    objects = lab.objects(kind.name, args.name, args.namespace, args.all_namespaces)
    if args.name and not objects:
        print(f'Error from server (NotFound): {kind.plural} "{args.name}" not found', file=sys.stderr)
        return 1
    if args.output in ("yaml", "json"):
        print(dump(objects, args.output) if objects else dump([], args.output))
        return 0
    if not objects:
        where = "any namespace" if args.all_namespaces else f"{args.namespace or default_namespace(kind.name)} namespace"
        print(f"No resources found in {where}.", file=sys.stderr)
        return 0
    table = rows(kind.name, objects, wide=args.output == "wide", with_namespace=args.all_namespaces, with_age=True)
    print(render(kind.name, table))
    return 0


def _install(lab: Lab, args: argparse.Namespace) -> int:
    lab.up()
    result = lab.install(args.component, args.port)
    if result.get("message"):  # a cluster says what it did
        print(result["message"])
        return 0
    if args.component == "kgateway":
        print("kgateway installed: GatewayClass kgateway, namespace kgateway-system; each Gateway listener "
              "gets its own 127.0.0.1 port (coalmine proxy url --gateway NAMESPACE/NAME)")
        for gateway, listeners in (result.get("gateways") or {}).items():
            for listener, url in listeners.items():
                print(f"gateway {gateway} listener {listener} serving on {url}")
        return 0
    print(f"{args.component} installed; gateway-proxy listening on http://127.0.0.1:{result['proxyPort']}")
    return 0


def _wait(lab: Lab, args: argparse.Namespace) -> int:
    state = lab.wait(args.timeout)
    for d in state["deployments"]:
        print(f"deployment {d['name']} {d['ready']}/{d['desired']} ready")
    if state["gateway"]["installed"]:
        gateway = state["gateway"]
        print(f"gateway serving on {gateway.get('url') or 'http://127.0.0.1:%s' % gateway['port']}")
    return 0


def _proxy(lab: Lab, args: argparse.Namespace) -> int:
    print(lab.proxy_url(gateway=args.gateway) if args.gateway else lab.proxy_url())
    return 0


def _convert(lab: Lab, args: argparse.Namespace) -> int:
    from .converting import convert_objects

    objects = load_manifests(args.filename)
    if not any(o.get("kind") == "Upstream" for o in objects):
        try:  # the lab's upstreams say which Service each one is, if a lab runs
            objects += lab.objects("upstreams", all_namespaces=True) + lab.objects("upstreamgroups", all_namespaces=True)
        except CoalmineError:
            pass
    ns, _, name = (args.gateway or "kgateway-system/http").rpartition("/")
    try:
        result = convert_objects(objects, (ns or "default", name), args.namespace)
    except ValueError as e:
        raise CoalmineError(str(e)) from None
    print(result.to_yaml(), end="")
    for w in result.warnings:
        print(f"Warning: {w}", file=sys.stderr)
    return 0


def _routes(lab: Lab, args: argparse.Namespace) -> int:
    routes = lab.backend.routes() if hasattr(lab.backend, "routes") else []
    for r in routes:
        print(f"{r['virtualHost']}  #{r['index']}  {r['source']}  {r['action']}")
    return 0


def _stats(lab: Lab, args: argparse.Namespace) -> int:
    print(json.dumps(lab.stats(), indent=2))
    return 0


def _traffic(lab: Lab, args: argparse.Namespace) -> int:
    from .traffic import Traffic, summarize

    headers = dict(_header(h) for h in args.header or [])
    target = lab.proxy_url(gateway=args.gateway) if args.gateway else lab
    traffic = Traffic(target, rate=args.rate, path=args.path, headers=headers, header_share=args.header_share)
    frame = traffic.run(seconds=args.duration)
    print(f"{traffic.sent} requests in {args.duration:g} s to {args.path} "
          f"({traffic.sent / args.duration:.1f} req/s achieved, {args.rate:g} requested"
          f"{f', {traffic.skipped} skipped: too many unanswered' if traffic.skipped else ''})")
    if frame.empty:
        return 1
    print(summarize(frame).to_string(float_format=lambda x: f"{x:.3f}"))
    return 0


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f'--header takes NAME:VALUE (e.g. "x-canary: true"), not "{text}"')
    return name.strip(), value.strip()


def _header_arg(text: str) -> str:
    _header(text)
    return text


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0 < value <= 10_000:
        raise argparse.ArgumentTypeError(f"requests per second must be more than 0 and at most 10000, not {text}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _demo(lab: Lab, args: argparse.Namespace) -> int:
    from .demo import run_demo

    table = run_demo(rate=args.rate, seconds=args.seconds, header_share=args.header_share, output=args.output)
    return 1 if int(table["errors"].sum()) else 0


def _uninstall(lab: Lab, args: argparse.Namespace) -> int:
    for line in lab.uninstall(args.component):
        print(line)
    return 0


def _reset(lab: Lab, args: argparse.Namespace) -> int:
    for line in lab.reset():
        print(line)
    print("the cluster is as it was before the lab")
    return 0


def _backend_options(parser: argparse.ArgumentParser, default: object) -> None:
    # On the main parser and on every subcommand, so they go before or after it.
    parser.add_argument("--backend", choices=("local", "kubernetes"), default=default,
                        help="where the lab runs (default: $COALMINE_BACKEND or local)")
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

    add("up", _up, "start the lab (idempotent)")
    add("down", _down, "stop the lab and every process it started")
    add("status", _status, "show the lab at a glance")
    for verb, help in (("apply", "create or update objects from manifests"), ("delete", "delete objects")):
        p = add(verb, _apply_or_delete, help)
        p.add_argument("-f", "--filename", action="append", required=verb == "apply",
                       help="file, folder or - for stdin (repeatable)")
        if verb == "delete":
            p.add_argument("kind", nargs="?")
            p.add_argument("name", nargs="?")
            p.add_argument("-n", "--namespace")
    p = add("get", _get, "list objects of a kind (pods, svc, deploy, upstreams, vs, ...)")
    p.add_argument("kind")
    p.add_argument("name", nargs="?")
    p.add_argument("-n", "--namespace")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-o", "--output", choices=("yaml", "json", "wide"))
    p = add("install", _install, "install the gateway: gloo (discovery and the gateway proxy) or kgateway "
            "(the Gateway API)")
    p.add_argument("component", choices=("gloo", "kgateway"))
    p.add_argument("--port", type=int, help="gateway-proxy port on 127.0.0.1 (default: a free one)")
    p = add("wait", _wait, "wait until deployments are ready and the gateway serves")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    p = add("proxy", _proxy, "print the gateway URL (proxy url)")
    p.add_argument("what", choices=("url",))
    p.add_argument("--gateway", metavar="NAMESPACE/NAME", help="a Gateway API Gateway (after install kgateway)")
    p = add("convert", _convert, "turn VirtualServices into Gateway API HTTPRoutes (YAML on stdout, warnings on stderr)")
    p.add_argument("-f", "--filename", action="append", required=True, help="file, folder or - (repeatable)")
    p.add_argument("--gateway", metavar="NAMESPACE/NAME", help="the parent Gateway (default kgateway-system/http)")
    p.add_argument("-n", "--namespace", help="namespace of the HTTPRoutes (default: that of their Services)")
    add("routes", _routes, "show the route table the gateway serves")
    add("stats", _stats, "show per-upstream request stats")
    p = add("traffic", _traffic, "send steady traffic through the gateway and print who answered")
    p.add_argument("--rate", type=_rate, default=100.0, help="requests per second (default 100)")
    p.add_argument("--duration", type=_positive, default=10.0, help="seconds (default 10)")
    p.add_argument("--path", default="/findPets", help="request path (default /findPets)")
    p.add_argument("--header", action="append", type=_header_arg, metavar="NAME:VALUE",
                   help="header to send, e.g. x-canary:true (repeatable)")
    p.add_argument("--header-share", type=_share, default=1.0,
                   help="share of requests that carry the headers, 0..1 (default 1)")
    p.add_argument("--gateway", metavar="NAMESPACE/NAME",
                   help="send through this Gateway API Gateway (default: Gloo's gateway-proxy)")
    p = add("demo", _demo, "run the whole canary rollout on a fresh lab and plot it")
    p.add_argument("--rate", type=_rate, default=200.0, help="requests per second (default 200)")
    p.add_argument("--seconds", type=_positive, default=5.0, help="seconds per step (default 5)")
    p.add_argument("--header-share", type=_share, default=0.2,
                   help="share of requests with x-canary: true (default 0.2)")
    p.add_argument("--output", default="coalmine-demo.png", help="where to save the plot (default coalmine-demo.png)")
    p = add("uninstall", _uninstall, "remove a gateway the lab installed on a cluster")
    p.add_argument("component", choices=("gloo", "kgateway"))
    add("reset", _reset, "undo everything the lab did to a cluster")
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
    except KeyError as e:
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

