"""Objects as tables: kubectl's columns for Kubernetes kinds, glooctl's for Gloo's.

One function makes the rows; the CLI prints them and the notebooks show them as
pandas DataFrames, so both show the same columns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

GLOO_KINDS = ("Upstream", "UpstreamGroup", "VirtualService")
# Kinds whose columns are all their own (a CRD's printer columns, kubectl's events): no AGE added.
_OWN_COLUMNS = ("Canary", "Event")


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """kubectl's AGE: ``12s``, ``5m3s``, ``2h10m``, ``3d``."""
    if not timestamp:
        return "<unknown>"
    then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60}s" if seconds < 600 else f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60}m"
    return f"{seconds // 86400}d"


def _name(o: Mapping[str, Any]) -> str:
    return str(o["metadata"]["name"])


def _state(o: Mapping[str, Any]) -> str:
    statuses = (o.get("status") or {}).get("statuses") or {}
    return next((s.get("state", "Pending") for s in statuses.values()), "Pending")


def _pod(o: Mapping[str, Any], wide: bool) -> dict[str, Any]:
    st = o.get("status") or {}
    cs = (st.get("containerStatuses") or [{}])[0]
    state = cs.get("state") or {}
    word = "Running" if "running" in state else (state.get("waiting") or {}).get("reason", "Pending")
    if o["metadata"].get("deletionTimestamp"):
        word = "Terminating"
    row = {
        "NAME": _name(o),
        "READY": f"{int(bool(cs.get('ready')))}/1",
        "STATUS": word,
        "RESTARTS": int(cs.get("restartCount", 0)),
    }
    if wide:
        row.update({"PORT": st.get("localPort"), "PID": st.get("localPid")})
    return row


def _service(o: Mapping[str, Any], wide: bool) -> dict[str, Any]:
    spec = o.get("spec") or {}
    ports = ",".join(f"{p['port']}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    # localEndpoints: the local runtime's pods on 127.0.0.1; endpoints: a cluster's ready pod IPs.
    status = o.get("status") or {}
    endpoints = status.get("localEndpoints") or status.get("endpoints") or {}
    eps = ",".join(e for es in endpoints.values() for e in es) or "<none>"
    return {"NAME": _name(o), "TYPE": spec.get("type", "ClusterIP"), "PORT(S)": ports, "ENDPOINTS": eps}


def _deployment(o: Mapping[str, Any], wide: bool) -> dict[str, Any]:
    st = o.get("status") or {}
    want = int((o.get("spec") or {}).get("replicas", 1))
    return {
        "NAME": _name(o),
        "READY": f"{st.get('readyReplicas', 0)}/{want}",
        "UP-TO-DATE": st.get("updatedReplicas", 0),
        "AVAILABLE": st.get("availableReplicas", 0),
    }


def _configmap(o: Mapping[str, Any], wide: bool) -> dict[str, Any]:
    return {"NAME": _name(o), "DATA": len(o.get("data") or {})}


def _namespace(o: Mapping[str, Any], wide: bool) -> dict[str, Any]:
    return {"NAME": _name(o), "STATUS": (o.get("status") or {}).get("phase", "Active")}


def _upstream(o: Mapping[str, Any], wide: bool) -> dict[str, Any]:
    spec = o.get("spec") or {}
    if "kube" in spec:
        kube = spec["kube"]
        details = [
            f"svc name:      {kube.get('serviceName')}",
            f"svc namespace: {kube.get('serviceNamespace')}",
            f"port:          {kube.get('servicePort')}",
        ]
        rest = ((kube.get("serviceSpec") or {}).get("rest") or {}).get("transformations")
        if rest:
            details += ["REST service:", "functions:"] + [f"- {fn}" for fn in sorted(rest)]
        kind = "Kubernetes"
    elif "static" in spec:
        kind = "Static"
        details = ["hosts:"] + [f"- {h.get('addr')}:{h.get('port')}" for h in spec["static"].get("hosts") or []]
    else:
        kind, details = "Unknown", []
    return {"UPSTREAM": _name(o), "TYPE": kind, "STATUS": _state(o), "DETAILS": "\n".join(details)}


def _upstream_group(o: Mapping[str, Any], wide: bool) -> dict[str, Any]:
    dests = (o.get("spec") or {}).get("destinations") or []
    total = sum(int(d.get("weight", 0) or 0) for d in dests)
    lines = []
    for d in dests:
        us = ((d.get("destination") or {}).get("upstream") or {}).get("name", "?")
        w = int(d.get("weight", 0) or 0)
        lines.append(
            f"destination type: Upstream\nname: {us}\nweight: {w}   % total: {w / total:.2f}"
            if total
            else f"name: {us}\nweight: {w}"
        )
    return {"UPSTREAM GROUP": _name(o), "STATUS": _state(o), "TOTAL WEIGHT": total, "DETAILS": "\n".join(lines)}


def describe_destination(route_action: Mapping[str, Any]) -> str:
    """``default-petstore-v1-8080 (findPets)`` or ``10% v2 / 90% v1``-style text."""

    def one(dest: Mapping[str, Any]) -> str:
        if "upstream" in dest:
            name = dest["upstream"].get("name", "?")
        elif "kube" in dest:
            ref = dest["kube"].get("ref") or {}
            name = f"kube {ref.get('namespace', 'default')}/{ref.get('name')}:{dest['kube'].get('port')}"
        else:
            name = "?"
        fn = ((dest.get("destinationSpec") or {}).get("rest") or {}).get("functionName")
        return f"{name} ({fn})" if fn else name

    if "single" in route_action:
        return one(route_action["single"])
    if "multi" in route_action:
        dests = route_action["multi"].get("destinations") or []
        return " + ".join(f"{d.get('weight', 0)}×{one(d.get('destination') or {})}" for d in dests)
    if "upstreamGroup" in route_action:
        return f"upstream group {route_action['upstreamGroup'].get('name')}"
    return "?"


def describe_matcher(m: Mapping[str, Any]) -> str:
    """``/findPets`` plus its header and query conditions, in one line."""
    path = next((f"{k} {m[k]}" if k != "prefix" else str(m[k]) for k in ("prefix", "exact", "regex") if k in m), "/")
    conds = []
    for h in m.get("headers") or []:
        op = "!=" if h.get("invertMatch") else ("~" if h.get("regex") else "=")
        conds.append(
            f"{h['name']}{op}{h['value']}" if "value" in h else (f"!{h['name']}" if h.get("invertMatch") else h["name"])
        )
    conds += [f"?{q['name']}={q.get('value', '')}" for q in m.get("queryParameters") or []]
    if m.get("methods"):
        conds.append("|".join(m["methods"]))
    return path + (f" [{', '.join(conds)}]" if conds else "")


def describe_route(route: Mapping[str, Any]) -> str:
    matchers = route.get("matchers") or [{}]
    match = " or ".join(describe_matcher(m) for m in matchers)
    if "routeAction" in route:
        target = describe_destination(route["routeAction"])
    elif "directResponseAction" in route:
        target = f"direct response {route['directResponseAction'].get('status')}"
    elif "redirectAction" in route:
        target = "redirect"
    else:
        target = "?"
    rewrite = (route.get("options") or {}).get("prefixRewrite")
    return f"{match} -> {target}" + (f" (rewrite {rewrite})" if rewrite else "")


def _virtual_service(o: Mapping[str, Any], wide: bool) -> dict[str, Any]:
    spec = o.get("spec") or {}
    vh = spec.get("virtualHost") or {}
    return {
        "VIRTUAL SERVICE": _name(o),
        "DISPLAY NAME": spec.get("displayName", ""),
        "DOMAINS": ", ".join(vh.get("domains") or ["*"]),
        "SSL": "none",
        "STATUS": _state(o),
        "ROUTES": "\n".join(describe_route(r) for r in vh.get("routes") or []),
    }


def _route_table(o: Mapping[str, Any], wide: bool) -> dict[str, Any]:
    # Gloo's CRD has no printer columns: kubectl shows NAME and AGE only.
    return {"NAME": _name(o)}


def _cell(value: Any) -> str:
    """A printer column's value as kubectl prints it: lists as JSON, missing as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value, separators=(",", ":")) if isinstance(value, (list, dict)) else str(value)


def _canary(o: Mapping[str, Any], wide: bool) -> dict[str, Any]:
    # Flagger's CRD printer columns; those of priority 1 only with -o wide, as kubectl.
    st, spec = o.get("status") or {}, o.get("spec") or {}
    analysis = spec.get("analysis") or {}
    row = {"NAME": _name(o), "STATUS": _cell(st.get("phase")), "WEIGHT": _cell(st.get("canaryWeight"))}
    if wide:
        row.update(
            {
                "SUSPENDED": _cell(spec.get("suspend")),
                "FAILEDCHECKS": _cell(st.get("failedChecks")),
                "INTERVAL": _cell(analysis.get("interval")),
                "MIRROR": _cell(analysis.get("mirror")),
                "STEPWEIGHT": _cell(analysis.get("stepWeight")),
                "STEPWEIGHTS": _cell(analysis.get("stepWeights")),
                "MAXWEIGHT": _cell(analysis.get("maxWeight")),
            }
        )
    row["LASTTRANSITIONTIME"] = _cell(st.get("lastTransitionTime"))
    return row


def _event(o: Mapping[str, Any], wide: bool) -> dict[str, Any]:
    # kubectl get events: LAST SEEN, TYPE, REASON, OBJECT (kind/name, lower case), MESSAGE.
    involved = o.get("involvedObject") or {}
    seen = o.get("lastTimestamp") or o.get("eventTime") or (o.get("metadata") or {}).get("creationTimestamp")
    row = {
        "LAST SEEN": age(seen),
        "TYPE": o.get("type", ""),
        "REASON": o.get("reason", ""),
        "OBJECT": f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        "MESSAGE": o.get("message", ""),
    }
    if wide:
        row["COUNT"] = int(o.get("count") or 1)
    return row


def _condition(o: Mapping[str, Any], kind: str) -> str:
    """The status of condition ``kind`` of an object (or of one ``status.parents`` entry)."""
    conds = o["conditions"] if "conditions" in o else (o.get("status") or {}).get("conditions") or []
    return next((str(c.get("status")) for c in conds if c.get("type") == kind), "Unknown")


def _gateway_class(o: Mapping[str, Any], wide: bool) -> dict[str, Any]:
    return {
        "NAME": _name(o),
        "CONTROLLER": (o.get("spec") or {}).get("controllerName", ""),
        "ACCEPTED": _condition(o, "Accepted"),
    }


def _gateway(o: Mapping[str, Any], wide: bool) -> dict[str, Any]:
    st = o.get("status") or {}
    address = next((a.get("value") for a in st.get("addresses") or []), "")
    row = {
        "NAME": _name(o),
        "CLASS": (o.get("spec") or {}).get("gatewayClassName", ""),
        "ADDRESS": address,
        "PROGRAMMED": _condition(o, "Programmed"),
    }
    if wide:
        ports = {li.get("name"): li.get("localPort") for li in st.get("listeners") or []}
        row["LISTENERS"] = ",".join(
            f"{li.get('name')}:{li.get('port')}"
            + (f"->127.0.0.1:{ports[li.get('name')]}" if ports.get(li.get("name")) else "")
            for li in (o.get("spec") or {}).get("listeners") or []
        )
    return row


def _http_route(o: Mapping[str, Any], wide: bool) -> dict[str, Any]:
    spec = o.get("spec") or {}
    row = {"NAME": _name(o), "HOSTNAMES": ",".join(spec.get("hostnames") or []) or "*"}
    if wide:
        parents = (o.get("status") or {}).get("parents") or []
        row["PARENTS"] = ",".join(f"{p['parentRef'].get('namespace')}/{p['parentRef'].get('name')}" for p in parents)
        row["ACCEPTED"] = ",".join(_condition(p, "Accepted") for p in parents) or "Unknown"
        row["RESOLVED REFS"] = ",".join(_condition(p, "ResolvedRefs") for p in parents) or "Unknown"
    return row


_ROWS = {
    "Pod": _pod,
    "Service": _service,
    "Deployment": _deployment,
    "ConfigMap": _configmap,
    "Namespace": _namespace,
    "Upstream": _upstream,
    "UpstreamGroup": _upstream_group,
    "VirtualService": _virtual_service,
    "RouteTable": _route_table,
    "GatewayClass": _gateway_class,
    "Gateway": _gateway,
    "HTTPRoute": _http_route,
    "Canary": _canary,
    "Event": _event,
}


def rows(
    kind: str,
    objects: Sequence[Mapping[str, Any]],
    wide: bool = False,
    with_namespace: bool = False,
    with_age: bool = False,
) -> list[dict[str, Any]]:
    """One dict per object with the columns ``coalmine get`` prints for ``kind``."""
    out = []
    for o in objects:
        row = _ROWS[kind](o, wide)
        if with_namespace and o["metadata"].get("namespace"):
            row = {"NAMESPACE": o["metadata"]["namespace"], **row}
        if with_age and kind not in GLOO_KINDS + _OWN_COLUMNS:
            row["AGE"] = age(o["metadata"].get("creationTimestamp"))
        out.append(row)
    return out


def render(kind: str, table: list[dict[str, Any]]) -> str:
    """Text for a terminal: kubectl's plain columns, or glooctl's boxed table
    (with multi-line cells) for Gloo kinds."""
    if not table:
        return ""
    columns = list(table[0])
    cells = [[str(r[c]).split("\n") for c in columns] for r in table]
    widths = [max([len(c)] + [len(line) for row in cells for line in row[i]]) for i, c in enumerate(columns)]
    if kind not in GLOO_KINDS:
        lines = ["   ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
        lines += ["   ".join(row[i][0].ljust(w) for i, w in enumerate(widths)).rstrip() for row in cells]
        return "\n".join(lines)
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [rule, "|" + "|".join(f" {c.center(w)} " for c, w in zip(columns, widths, strict=True)) + "|", rule]
    for row in cells:
        height = max(len(cell) for cell in row)
        for n in range(height):
            out.append(
                "|"
                + "|".join(
                    f" {(cell[n] if n < len(cell) else '').ljust(w)} " for cell, w in zip(row, widths, strict=True)
                )
                + "|"
            )
        out.append(rule)
    return "\n".join(out)


def dump(objects: list[dict[str, Any]], output: str) -> str:
    """Objects as ``yaml`` or ``json`` text; several become a ``kind: List``."""
    doc: Any = objects[0] if len(objects) == 1 else {"apiVersion": "v1", "kind": "List", "items": objects}
    if output == "json":
        return json.dumps(doc, indent=2)
    return yaml.safe_dump(doc, sort_keys=False).rstrip()
