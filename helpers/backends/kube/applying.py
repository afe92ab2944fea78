"""Server-side apply and delete, reported in kubectl's words.

Each object is read, then applied with server-side apply (field manager
``coalmine``, conflicts forced as ``kubectl apply --server-side --force-conflicts``
would) and strict field validation (``fieldValidation=Strict``, kubectl's default):
a field the kind's schema does not know is refused by the API server instead of
being dropped with a warning, as the local runtime refuses it. The answer is
``created`` when it did not exist, ``unchanged`` when the API server kept its
resourceVersion, else ``configured``: the same results the local backend gives.
A refused object (strict Gloo validation, a bad field) comes back as an error and
changes nothing.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from typing import Any

from helpers.backends.kube.connecting import APPLY_PATCH, FIELD_MANAGER, KubeApi
from helpers.backends.kube.resources import Resource, Resources, by_kind, no_match
from helpers.errors import ApplyRefused, CoalmineError, NotFound, WaitTimeout

# Without it the API server drops unknown fields and only warns (fieldValidation=Warn).
STRICT_FIELDS = "Strict"


def _name_of(obj: Mapping[str, Any]) -> str:
    name = (obj.get("metadata") or {}).get("name") if isinstance(obj.get("metadata"), Mapping) else None
    if not isinstance(name, str) or not name:
        raise ApplyRefused("metadata.name is required")
    return name


def apply_one(api: KubeApi, resources: Resources, obj: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """Apply one object; ``{ref, action, warnings, key}`` or ``{ref, error}``."""
    shown = f"{str(obj.get('kind', 'object')).lower()}/{(obj.get('metadata') or {}).get('name', '?')}"
    try:
        res = resources.of(obj)
        name = _name_of(obj)
        shown = res.ref(name)
        body = copy.deepcopy(dict(obj))
        ns = None
        if res.namespaced:
            ns = body["metadata"].get("namespace") or namespace
            body["metadata"]["namespace"] = ns
        else:
            body["metadata"].pop("namespace", None)
        before = api.request("GET", res.path(ns, name), what=shown)
        try:
            after = api.request(
                "PATCH",
                res.path(ns, name),
                {"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": STRICT_FIELDS},
                body,
                APPLY_PATCH,
                what=shown,
            )
        except NotFound as e:
            raise ApplyRefused(_missing(res, ns, str(e))) from None
        warnings = list(api.warnings)
    except ApplyRefused as e:
        message = str(e)
        prefix = f"{shown}: "
        return {"ref": shown, "error": message[len(prefix) :] if message.startswith(prefix) else message}
    if before is None:
        action = "created"
    elif _version(before) == _version(after):
        action = "unchanged"
    else:
        action = "configured"
    return {
        "ref": shown,
        "action": action,
        "warnings": warnings,
        "key": {"kind": res.kind, "namespace": ns or "", "name": name},
    }


def _version(obj: Any) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


def _missing(res: Resource, namespace: str | None, message: str) -> str:
    if namespace and f'namespaces "{namespace}" not found' in message:
        return f'namespaces "{namespace}" not found: create it first (apiVersion: v1, kind: Namespace)'
    return no_match(res.kind, res.api_version)


def delete_one(api: KubeApi, ref: Mapping[str, str], namespace: str) -> dict[str, Any]:
    """Delete one object named by ``{kind, namespace, name}``; a missing one is an error."""
    try:
        res = by_kind(str(ref["kind"]))
    except StopIteration:
        return {"ref": f"{str(ref['kind']).lower()}/{ref['name']}", "error": f'unknown kind "{ref["kind"]}"'}
    name = str(ref["name"])
    ns = (ref.get("namespace") or namespace) if res.namespaced else None
    shown = res.ref(name)
    try:
        api.request("DELETE", res.path(ns, name), body={"propagationPolicy": "Background"}, what=shown)
    except NotFound:
        resource = f"{res.plural}.{res.group}" if res.group else res.plural
        return {"ref": shown, "error": f'{resource} "{name}" not found', "reason": "NotFound"}
    except CoalmineError as e:
        if type(e) is not ApplyRefused:
            raise
        return {"ref": shown, "error": str(e)}
    return {"ref": shown, "action": "deleted", "key": {"kind": res.kind, "namespace": ns or "", "name": name}}


def wait_served(served: Callable[[], bool], timeout: float, period: float = 0.5) -> bool:
    """Ask ``served()`` every ``period`` seconds until it says yes: a change the API
    server accepted reaches Envoy a moment later, when Gloo (or kgateway) has translated
    it and pushed it over xDS. True if it had to wait; ``WaitTimeout`` past ``timeout``."""
    deadline = time.monotonic() + timeout
    waited = False
    while not served():
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"the gateway did not serve the change within {timeout:g}s ({served}): look at the object's "
                "status (`coalmine get vs -o yaml`) and at the controller's log "
                "(`kubectl -n gloo-system logs deploy/gloo`, or deploy/kgateway in kgateway-system)"
            )
        waited = True
        time.sleep(period)
    return waited
