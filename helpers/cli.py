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

``COALMINE_HOME`` (or ``--home``) selects the lab. Exit status is non-zero on any error.
"""

from __future__ import annotations

import argparse
import json
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
        print(f"gateway serving on http://127.0.0.1:{state['gateway']['port']}")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coalmine", description="A canary-release lab for the Gloo API gateway.")
    parser.add_argument("--home", help="lab home directory (default: $COALMINE_HOME or a per-user state dir)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[Lab, argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        lab = Lab(home=args.home)
        return int(args.func(lab, args))
    except CoalmineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyError as e:
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

