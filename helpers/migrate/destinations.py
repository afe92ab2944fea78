"""Migration help, the destinations: which Service a Gloo destination is.

A Gloo route sends traffic to an Upstream (found by discovery, or written by hand),
a Kubernetes Service (``kube``) or an UpstreamGroup; an HTTPRoute only to Services
(``backendRefs``). ``Destinations`` is the part of the converter (``converting``)
that finds the Service behind each destination, and says what cannot follow: a
REST function, a subset, a static upstream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Gloo's CRD lets a destination go without its name or port: Gloo finds nothing and answers 503.
_NO_NAME = "no {what} given: Gloo finds nothing for it and answers 503; left out"
_UPSTREAM_NAME = re.compile(r"(?P<ns>[a-z0-9]+(?:-[a-z0-9]+)*?)-(?P<svc>[a-z0-9]+(?:-[a-z0-9]+)*)-(?P<port>\d+)")


class Destinations:
    """Mixed into the converter: it provides ``warn``, ``upstreams``, ``groups``,
    ``vs_ns``, ``namespace``, ``service_namespaces`` and ``guessed``."""

    upstreams: dict[tuple[str, str], Mapping[str, Any]]
    groups: dict[tuple[str, str], Mapping[str, Any]]
    vs_ns: str
    namespace: str | None
    service_namespaces: list[str]
    guessed: set[str]

    def warn(self, path: str, message: str) -> None:
        raise NotImplementedError

    def backends(self, action: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
        pairs: list[tuple[Mapping[str, Any], int | None, str]]
        if action.get("single") is not None:
            pairs = [(action["single"], None, f"{path}.single")]
        elif action.get("multi") is not None:
            pairs = [
                (d.get("destination") or {}, d.get("weight") or 0, f"{path}.multi.destinations[{k}].destination")
                for k, d in enumerate(action["multi"].get("destinations") or [])
            ]
        elif action.get("upstreamGroup") is not None:
            group_ref = action["upstreamGroup"]
            if not group_ref.get("name"):
                self.warn(f"{path}.upstreamGroup.name", _NO_NAME.format(what="UpstreamGroup name"))
                return []
            group = self.groups.get((group_ref.get("namespace") or self.vs_ns, group_ref["name"]))
            if group is None:
                self.warn(
                    f"{path}.upstreamGroup",
                    f"UpstreamGroup {group_ref['name']} was not given (pass it with -f); the rule has no backends",
                )
                return []
            pairs = [
                (d.get("destination") or {}, d.get("weight") or 0, f"{path}.upstreamGroup[{k}]")
                for k, d in enumerate((group.get("spec") or {}).get("destinations") or [])
            ]
        else:
            self.warn(path, "no destination this converter knows (single, multi, upstreamGroup); left out")
            return []
        refs = []
        for dest, weight, where in pairs:
            service = self.service(dest, where)
            if service is None:
                continue
            ns, name, port = service
            self.service_namespaces.append(ns)
            ref: dict[str, Any] = {"name": name, "port": port}
            if self.namespace is not None and ns != self.namespace:
                ref["namespace"] = ns
            if weight is not None:
                ref["weight"] = weight  # explicit: Gloo's default weight is 0, the Gateway API's is 1
            refs.append(ref)
        return refs

    def service(self, dest: Mapping[str, Any], where: str) -> tuple[str, str, int] | None:
        rest = (dest.get("destinationSpec") or {}).get("rest")
        if dest.get("subset"):
            self.warn(f"{where}.subset", "subsets have no Gateway API equivalent: make a Service per subset")
        if dest.get("kube") is not None:
            kube, ref = dest["kube"], dest["kube"].get("ref") or {}
            if not ref.get("name"):
                self.warn(f"{where}.kube.ref.name", _NO_NAME.format(what="Service name"))
                return None
            if not kube.get("port"):
                self.warn(f"{where}.kube.port", _NO_NAME.format(what="Service port"))
                return None
            found: tuple[str, str, int] | None = (ref.get("namespace") or self.vs_ns, ref["name"], kube["port"])
        elif dest.get("upstream") is not None and not dest["upstream"].get("name"):
            self.warn(f"{where}.upstream.name", _NO_NAME.format(what="upstream name"))
            return None
        elif dest.get("upstream") is not None:
            found = self.upstream_service(dest["upstream"], f"{where}.upstream")
        else:
            self.warn(where, "only upstream and kube destinations can be converted; left out")
            return None
        if rest is not None and found is not None:
            self.warn(f"{where}.destinationSpec.rest", self.rest_warning(rest, dest.get("upstream"), found))
        return found

    def upstream_service(self, ref: Mapping[str, Any], where: str) -> tuple[str, str, int] | None:
        us = self.upstreams.get((ref.get("namespace") or self.vs_ns, ref["name"]))
        kube = ((us or {}).get("spec") or {}).get("kube")
        if kube is not None:
            return kube.get("serviceNamespace") or "default", kube["serviceName"], kube["servicePort"]
        if us is not None:
            self.warn(where, f"upstream {ref['name']} is not a Kubernetes Service; left out")
            return None
        m = _UPSTREAM_NAME.fullmatch(ref["name"])
        if m is None:
            self.warn(
                where,
                f"upstream {ref['name']} was not given and its name does not say which Service it is; "
                "left out (pass the Upstream with -f)",
            )
            return None
        if ref["name"] not in self.guessed:  # once per upstream
            self.guessed.add(ref["name"])
            self.warn(
                where,
                f"upstream {ref['name']} was not given: read as Service {m['ns']}/{m['svc']} port "
                f"{m['port']} (discovery names upstreams <namespace>-<service>-<port>); check it",
            )
        return m["ns"], m["svc"], int(m["port"])

    def rest_warning(
        self, rest: Mapping[str, Any], ref: Mapping[str, Any] | None, service: tuple[str, str, int]
    ) -> str:
        fn = rest.get("functionName")
        text = (
            f"REST function {fn} has no Gateway API equivalent: requests reach Service {service[0]}/{service[1]} "
            "with their own method, path and body, not the function's"
        )
        us = self.upstreams.get(((ref or {}).get("namespace") or self.vs_ns, str((ref or {}).get("name"))))
        transformation = ((((us or {}).get("spec") or {}).get("kube") or {}).get("serviceSpec") or {}).get(
            "rest", {}
        ).get("transformations", {}).get(fn) or {}
        target = str(((transformation.get("headers") or {}).get(":path") or {}).get("text") or "").split("?")[0]
        given = str(((rest.get("parameters") or {}).get("headers") or {}).get(":path") or "")
        last = re.fullmatch(r"(/.*)/\{\{[^}]*\}\}", target)  # e.g. /api/pets/{{ default(id, "") }}
        param = re.fullmatch(r"(/.*)/\{\w+\}", given)  # e.g. /findPetWithId/{id}
        if target and "{{" not in target:
            return text + f"; add a URLRewrite filter (ReplaceFullPath: {target}) to call the path {fn} calls"
        if last and param:
            return text + (
                f"; match PathPrefix {param[1]} and add a URLRewrite filter (ReplacePrefixMatch: "
                f"{last[1]}) to call the path {fn} calls"
            )
        return text + "; add a URLRewrite filter to the path the function calls"
