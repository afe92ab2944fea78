"""The lab's verbs, each a thin call to ``Lab`` that prints what kubectl would."""

from __future__ import annotations

import argparse
import json
import sys

from helpers.errors import InvalidArgument
from helpers.kinds import lookup
from helpers.lab import Lab, default_namespace
from helpers.loading import manifests_dir
from helpers.tables import dump, render, rows


def up(lab: Lab, args: argparse.Namespace) -> int:
    status = lab.up()
    print(f"lab running at {status['home']}")
    return 0


def down(lab: Lab, args: argparse.Namespace) -> int:
    lab.down()
    print("lab stopped")
    return 0


def status(lab: Lab, args: argparse.Namespace) -> int:
    s = lab.status()
    print(f"home:     {s['home']}")
    print(f"gateway:  {s['gateway']['url'] or 'not installed (coalmine install gloo)'}")
    if (s.get("gatewayApi") or {}).get("channel"):
        print(f"gateway API: kgateway, {s['gatewayApi']['channel']} channel")
    for gateway, listeners in ((s.get("gatewayApi") or {}).get("gateways") or {}).items():
        print(f"gateway {gateway}: " + ", ".join(f"{name} {url}" for name, url in listeners.items()))
    prom = s.get("prometheus") or {}
    if prom.get("installed"):
        print(f"prometheus: {prom.get('url') or 'not running'}" + ("" if prom.get("ready") else " (not ready)"))
    print(f"pods:     {s['pods']['ready']}/{s['pods']['total']} ready")
    print(f"objects:  {s['objects']}")
    return 0


def apply_or_delete(lab: Lab, args: argparse.Namespace) -> int:
    if args.command == "apply":
        results = lab.apply_each(*args.filename)
    elif args.filename:
        results = lab.delete_each(*args.filename)
    else:
        if not args.kind or not args.name:
            raise InvalidArgument("delete needs -f PATH or KIND NAME")
        results = lab.delete_each(kind=args.kind, name=args.name, namespace=args.namespace)
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


def get(lab: Lab, args: argparse.Namespace) -> int:
    kind = lookup(args.kind)
    objects = lab.objects(kind.name, args.name, args.namespace, args.all_namespaces)
    if args.name and not objects:
        print(f'Error from server (NotFound): {kind.plural} "{args.name}" not found', file=sys.stderr)
        return 1
    if args.output in ("yaml", "json"):
        print(dump(objects, args.output) if objects else dump([], args.output))
        return 0
    if not objects:
        where = (
            "any namespace" if args.all_namespaces else f"{args.namespace or default_namespace(kind.name)} namespace"
        )
        print(f"No resources found in {where}.", file=sys.stderr)
        return 0
    table = rows(kind.name, objects, wide=args.output == "wide", with_namespace=args.all_namespaces, with_age=True)
    print(render(kind.name, table))
    return 0


def install(lab: Lab, args: argparse.Namespace) -> int:
    lab.up()
    result = lab.install(args.component, args.port, args.channel)
    if result.get("message"):  # a cluster says what it did
        print(result["message"])
        return 0
    if args.component == "flagger":
        print(
            f"flagger installed in {result['namespace']} "
            f"(providers {', '.join(result.get('providers') or ['gloo'])}): apply a Canary "
            "(apiVersion flagger.app/v1beta1) and watch it with `coalmine get canaries` and `coalmine events`"
        )
        return 0
    if args.component == "prometheus":
        scraped = ", ".join(result.get("targets") or {}) or "each gateway once there is one"
        print(f"prometheus serving on {result['url']}, scraping every {result['scrapeInterval']}: {scraped}")
        return 0
    if args.component == "kgateway":
        print(
            f"kgateway installed (Gateway API {result.get('channel', 'standard')} channel): GatewayClass kgateway, "
            "namespace kgateway-system; each Gateway listener gets its own 127.0.0.1 port "
            "(coalmine proxy url --gateway NAMESPACE/NAME)"
        )
        for line in result.get("pruned") or []:
            print(f"pruned (not in the standard channel): {line}")
        for gateway, listeners in (result.get("gateways") or {}).items():
            for listener, url in listeners.items():
                print(f"gateway {gateway} listener {listener} serving on {url}")
        return 0
    print(
        f"{args.component} installed; gateway-proxy at http://127.0.0.1:{result['proxyPort']} "
        "(it listens once a VirtualService exists, as Gloo's Envoy does)"
    )
    return 0


def events(lab: Lab, args: argparse.Namespace) -> int:
    namespace = None if args.all_namespaces else (args.namespace or "default")
    found = lab.backend.events(namespace)
    if not found:
        print(
            f"No resources found in {'any namespace' if namespace is None else namespace + ' namespace'}.",
            file=sys.stderr,
        )
        return 0
    print(render("Event", rows("Event", found, with_namespace=namespace is None)))
    return 0


def wait(lab: Lab, args: argparse.Namespace) -> int:
    state = lab.wait(args.timeout)
    for d in state["deployments"]:
        print(f"deployment {d['name']} {d['ready']}/{d['desired']} ready")
    if state["gateway"]["installed"]:
        gateway = state["gateway"]
        print(f"gateway serving on {gateway.get('url') or 'http://127.0.0.1:{}'.format(gateway['port'])}")
    return 0


def proxy(lab: Lab, args: argparse.Namespace) -> int:
    if args.what == "stats-url":  # Envoy's /stats/prometheus; the lab's token as a bearer token opens it
        print(lab.stats_url(args.gateway))
        return 0
    print(lab.proxy_url(gateway=args.gateway) if args.gateway else lab.proxy_url())
    return 0


def routes(lab: Lab, args: argparse.Namespace) -> int:
    for r in lab.routes():
        print(f"{r['virtualHost']}  #{r['index']}  {r['source']}  {r['action']}")
    return 0


def stats(lab: Lab, args: argparse.Namespace) -> int:
    print(json.dumps(lab.stats(), indent=2))
    return 0


def uninstall(lab: Lab, args: argparse.Namespace) -> int:
    for line in lab.uninstall(args.component):
        print(line)
    return 0


def reset(lab: Lab, args: argparse.Namespace) -> int:
    for line in lab.reset():
        print(line)
    print("the cluster is as it was before the lab")
    return 0


def manifests(lab: Lab, args: argparse.Namespace) -> int:
    print(manifests_dir())
    return 0
