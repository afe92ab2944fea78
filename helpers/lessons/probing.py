"""The reads and requests that exercise checks are made of.

A check raises ``CheckFailed`` (what was found, and a hint) at the first problem;
``exercises.check`` turns that into the verdict the learner reads.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from helpers.errors import CheckFailed, NotFound
from helpers.lab import Lab

V1_PETS = [{"id": 1, "name": "Dog", "status": "available"}, {"id": 2, "name": "Cat", "status": "pending"}]
V2_PETS = [
    {"id": 1, "name": "Dog", "status": "v2"},
    {"id": 2, "name": "Cat", "status": "v2"},
    {"id": 3, "name": "Parrot", "status": "v2"},
]


def deployment(lab: Lab, name: str) -> dict[str, Any]:
    found = lab.objects("deployments", name, "default")
    if not found:
        raise CheckFailed(
            f"there is no deployment {name}",
            f"apply manifests/{name}.yaml with lab.apply(...), then wait with lab.wait()",
        )
    return found[0]


def ready(dep: Mapping[str, Any], want: int | None = None) -> None:
    name = dep["metadata"]["name"]
    replicas = int(dep["spec"].get("replicas", 1))
    ready = int((dep.get("status") or {}).get("readyReplicas", 0))
    if want is not None and replicas != want:
        raise CheckFailed(
            f"deployment {name} asks for {replicas} replica{'s' * (replicas != 1)}, not {want}",
            f"read manifests/{name}.yaml with load_manifests(...), set spec.replicas to {want} in its "
            "Deployment, lab.apply(...) the list, then lab.wait()",
        )
    if ready != replicas:
        raise CheckFailed(
            f"deployment {name} has {ready} of {replicas} replicas ready",
            "wait for the pods with lab.wait(), then check again",
        )


def http_get(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One GET; the body parsed as JSON (None when it is not JSON)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
    except OSError as e:
        raise CheckFailed(
            f"GET {path} got no answer ({type(e).__name__})",
            "check that the lab runs with lab.status(); lab.up() starts it",
        ) from None
    finally:
        conn.close()
    try:
        return resp.status, json.loads(body)
    except ValueError:
        return resp.status, None


def gateway(lab: Lab) -> str:
    try:
        return lab.proxy_url()
    except NotFound:
        raise CheckFailed(
            "the gateway is not installed", 'install it with lab.install("gloo"), then lab.wait()'
        ) from None


def describe(data: Any) -> str:
    if data == V1_PETS:
        return "the v1 pets"
    if data == V2_PETS:
        return "the v2 pets"
    if isinstance(data, list) and data and all(isinstance(p, dict) and p.get("status") == "v2" for p in data):
        return "v2 pets"
    if isinstance(data, list) and data and all(isinstance(p, dict) for p in data):
        return "v1 pets"
    return "something else"


def expect(base: str, path: str, want: Any, what: str, hint: str, headers: dict[str, str] | None = None) -> None:
    status, data = http_get(base, path, headers)
    if status == 200 and data == want:
        return
    sent = f" with {', '.join(f'{k}: {v}' for k, v in headers.items())}" if headers else ""
    got = f"answered {status}" if status != 200 else f"answered {describe(data)}"
    raise CheckFailed(f"GET {path}{sent} through the gateway {got}, not {what}", hint)
