"""Discovery, as Gloo's does it: an Upstream for every Service port, and the REST
functions of each upstream read from its ``/swagger.json``.

Upstreams are named ``<namespace>-<service>-<port>`` (Gloo's convention) and
written to ``gloo-system`` with the label ``discovered_by: kubernetesplugin``. An
Upstream a user applied under the same name is left alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from helpers.kinds import GLOO_NAMESPACE
from helpers.runtime import regex
from helpers.runtime.gloo.functions import transformations_from_swagger

DISCOVERY_NAMESPACE = GLOO_NAMESPACE
DISCOVERED_BY = "kubernetesplugin"
SWAGGER_PATHS = ("/swagger.json", "/swagger/docs/v1", "/v2/api-docs")
_UNSAFE = regex.compile(r"[^a-z0-9-]")


def upstream_name(namespace: str, service: str, port: int) -> str:
    """``default-petstore-v1-8080``: Gloo's name for a discovered upstream.

    Characters a Kubernetes name cannot hold become ``-``; names longer than 63
    characters are cut and end in a hash, so they stay unique.
    """
    name = _UNSAFE.sub("-", f"{namespace}-{service}-{port}".lower())
    if len(name) > 63:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[:54]}-{digest}"
    return name


def is_discovered(obj: Mapping[str, Any]) -> bool:
    return ((obj.get("metadata") or {}).get("labels") or {}).get("discovered_by") == DISCOVERED_BY


def upstreams_for(service: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Upstreams discovery makes for one Service (one per port), without functions."""
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    ns, svc = meta.get("namespace") or "default", meta["name"]
    labels = {**(meta.get("labels") or {}), "discovered_by": DISCOVERED_BY}
    found = []
    for port in spec.get("ports") or []:
        found.append(
            {
                "apiVersion": "gloo.solo.io/v1",
                "kind": "Upstream",
                "metadata": {
                    "name": upstream_name(ns, svc, port["port"]),
                    "namespace": DISCOVERY_NAMESPACE,
                    "labels": labels,
                },
                "spec": {
                    "discoveryMetadata": {"labels": dict(meta.get("labels") or {})},
                    "kube": {
                        "serviceName": svc,
                        "serviceNamespace": ns,
                        "servicePort": int(port["port"]),
                        "selector": dict(spec.get("selector") or {}),
                    },
                },
            }
        )
    return found


def with_functions(upstream: dict[str, Any], url: str, transformations: dict[str, Any]) -> dict[str, Any]:
    """``upstream`` with ``spec.kube.serviceSpec.rest`` filled in, as Gloo's FDS writes it."""
    kube = dict(upstream["spec"]["kube"])
    kube["serviceSpec"] = {"rest": {"swaggerInfo": {"url": url}, "transformations": transformations}}
    return {**upstream, "spec": {**upstream["spec"], "kube": kube}}


def swagger_url(upstream: Mapping[str, Any], path: str) -> str:
    """The in-cluster URL Gloo records for a swagger document."""
    kube = upstream["spec"]["kube"]
    return f"http://{kube['serviceName']}.{kube['serviceNamespace']}.svc.cluster.local:{kube['servicePort']}{path}"


async def fetch_functions(session: aiohttp.ClientSession, host: str, port: int) -> tuple[str, dict[str, Any]] | None:
    """Look for a Swagger 2.0 document on an endpoint; return (path, transformations).

    None when the service has none (it is then a plain upstream, as in Gloo). Raises
    ``ConnectionError`` when the endpoint answered none of the paths at all (a pod
    stopping or not quite up): that says nothing about its functions.
    """
    answered = False
    for path in SWAGGER_PATHS:
        try:
            async with session.get(f"http://{host}:{port}{path}") as resp:
                answered = True
                if resp.status != 200:
                    continue
                spec = json.loads(await resp.read())
        except ValueError:
            continue
        except (aiohttp.ClientError, OSError, TimeoutError):
            continue
        if isinstance(spec, dict) and str(spec.get("swagger", "")).startswith("2"):
            functions = transformations_from_swagger(spec)
            if functions:
                return path, functions
    if not answered:
        raise ConnectionError(f"{host}:{port} did not answer")
    return None
