"""A container's environment, built as the kubelet builds it.

``env[].value``, ``env[].valueFrom`` (the downward API's ``fieldRef`` and
``resourceFieldRef``, ``configMapKeyRef``, ``secretKeyRef``, each with ``optional``)
and ``envFrom`` (every key of a ConfigMap or Secret, with a ``prefix``). A pod runs
on this machine: its IP and its host's are 127.0.0.1, its node is ``NODE_NAME``, and a
resource without a limit takes this machine's capacity, as the kubelet gives the
node's allocatable. A ConfigMap or Secret that is missing (and not ``optional``) holds
the container back with ``CreateContainerConfigError`` until it exists.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from helpers.runtime import regex

Lookup = Callable[[str, str], "dict[str, Any] | None"]
NODE_NAME = "coalmine-local"  # the one node a local lab has (a kind cluster's is "kind-control-plane")
POD_IP = "127.0.0.1"

_SUBSCRIPT = regex.compile(r"metadata\.(labels|annotations)\['(.*)'\]")
_QUANTITY = regex.compile(r"([+-]?[0-9.]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")
_SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate("kMGTPE")},
    **{s + "i": Decimal(1024) ** (i + 1) for i, s in enumerate("KMGTPE")},
}
_ENV_NAME = regex.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


class EnvError(Exception):
    """The environment cannot be built as asked (a field the runtime does not know)."""


class MissingSource(Exception):
    """A ConfigMap, Secret or key the environment needs is not there (yet)."""


def pod_fields(pod: Any) -> dict[str, str]:
    """What ``fieldRef`` can read of ``pod`` (a ``pods.Pod``), by fieldPath."""
    meta = pod.template.get("metadata") or {}
    spec = pod.template.get("spec") or {}
    return {
        "metadata.name": pod.name,
        "metadata.namespace": pod.namespace,
        "metadata.uid": pod.uid,
        "spec.nodeName": NODE_NAME,
        "spec.serviceAccountName": str(spec.get("serviceAccountName") or "default"),
        "status.hostIP": POD_IP,
        "status.hostIPs": POD_IP,
        "status.podIP": POD_IP,
        "status.podIPs": POD_IP,
        **{f"metadata.labels['{k}']": str(v) for k, v in pod.labels.items()},
        **{f"metadata.annotations['{k}']": str(v) for k, v in (meta.get("annotations") or {}).items()},
    }


def build_env(pod: Any, configmap: Lookup, secret: Lookup | None) -> dict[str, str]:
    """The variables ``env`` and ``envFrom`` give ``pod``'s container, in the kubelet's
    order (``envFrom`` first, then ``env``, a later name replacing an earlier one)."""
    container = pod.container
    fields = pod_fields(pod)
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        env.update(_from_source(source, pod.namespace, configmap, secret))
    for item in container.get("env") or []:
        name = str(item["name"])
        if not item.get("valueFrom"):
            env[name] = "" if item.get("value") is None else str(item["value"])
            continue
        value = _value_from(item["valueFrom"], name, pod.namespace, fields, container, configmap, secret)
        if value is not None:
            env[name] = value
    return env


def _value_from(
    ref: Mapping[str, Any],
    name: str,
    ns: str,
    fields: Mapping[str, str],
    container: Mapping[str, Any],
    configmap: Lookup,
    secret: Lookup | None,
) -> str | None:
    if "fieldRef" in ref:
        path = str(ref["fieldRef"].get("fieldPath", ""))
        if path in fields:
            return fields[path]
        if _SUBSCRIPT.fullmatch(path):
            return ""  # a label or annotation the pod does not have reads as empty
        raise EnvError(f'env "{name}": fieldRef.fieldPath "{path}" is not supported by the downward API in env')
    if "resourceFieldRef" in ref:
        return _resource(ref["resourceFieldRef"], name, container)
    if "configMapKeyRef" in ref:
        return _key_of(ref["configMapKeyRef"], ns, "ConfigMap", configmap)
    if "secretKeyRef" in ref:
        return _key_of(ref["secretKeyRef"], ns, "Secret", secret)
    raise EnvError(f'env "{name}": valueFrom needs fieldRef, resourceFieldRef, configMapKeyRef or secretKeyRef')


def _data(obj: Mapping[str, Any], kind: str) -> dict[str, str]:
    if kind == "ConfigMap":
        return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
    found = {}
    for k, v in (obj.get("data") or {}).items():
        try:
            found[str(k)] = base64.b64decode(str(v), validate=True).decode("utf-8", "surrogateescape")
        except (binascii.Error, ValueError):
            raise EnvError(f'secret key "{k}": data must be base64') from None
    found.update({str(k): str(v) for k, v in (obj.get("stringData") or {}).items()})
    return found


def _fetch(name: str, ns: str, kind: str, lookup: Lookup | None, optional: bool) -> dict[str, str] | None:
    obj = lookup(ns, name) if lookup is not None else None
    if obj is None:
        if optional:
            return None
        raise MissingSource(f'{kind.lower()} "{name}" not found')
    return _data(obj, kind)


def _key_of(ref: Mapping[str, Any], ns: str, kind: str, lookup: Lookup | None) -> str | None:
    optional = bool(ref.get("optional"))
    data = _fetch(str(ref.get("name", "")), ns, kind, lookup, optional)
    if data is None:
        return None
    key = str(ref.get("key", ""))
    if key not in data:
        if optional:
            return None
        raise MissingSource(f"couldn't find key {key} in {kind} {ns}/{ref.get('name')}")
    return data[key]


def _from_source(source: Mapping[str, Any], ns: str, configmap: Lookup, secret: Lookup | None) -> dict[str, str]:
    prefix = str(source.get("prefix") or "")
    lookup: Lookup | None
    if "configMapRef" in source:
        ref, kind, lookup = source["configMapRef"], "ConfigMap", configmap
    elif "secretRef" in source:
        ref, kind, lookup = source["secretRef"], "Secret", secret
    else:
        raise EnvError("envFrom needs configMapRef or secretRef")
    data = _fetch(str(ref.get("name", "")), ns, kind, lookup, bool(ref.get("optional")))
    # Keys that are not valid variable names are skipped (the kubelet records an event).
    return {prefix + k: v for k, v in (data or {}).items() if _ENV_NAME.fullmatch(prefix + k)}


def _resource(ref: Mapping[str, Any], name: str, container: Mapping[str, Any]) -> str:
    resource = str(ref.get("resource", ""))
    kind, _, what = resource.partition(".")
    if kind not in ("limits", "requests") or what not in ("cpu", "memory", "ephemeral-storage"):
        raise EnvError(f'env "{name}": resourceFieldRef.resource "{resource}" is not supported')
    resources = container.get("resources") or {}
    given = (resources.get(kind) or {}).get(what)
    if given is None and kind == "requests":
        given = (resources.get("limits") or {}).get(what)  # a request defaults to the limit
    amount = quantity(str(given)) if given is not None else None
    if amount is None and kind == "requests":
        amount = Decimal(0)
    if amount is None:
        amount = _capacity(what)
    divisor = quantity(str(ref.get("divisor") or "1"))
    if not divisor:
        raise EnvError(f'env "{name}": resourceFieldRef.divisor must be a positive quantity')
    return str(math.ceil(amount / divisor))


def quantity(text: str) -> Decimal | None:
    """A Kubernetes quantity (``100m``, ``128Mi``, ``1.5``) as a number; None if not one."""
    match = _QUANTITY.fullmatch(text.strip())
    if not match:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIXES[match.group(2) or ""]
    except InvalidOperation:
        return None


def _capacity(what: str) -> Decimal:
    if what == "cpu":
        return Decimal(os.cpu_count() or 1)
    if what == "memory" and hasattr(os, "sysconf"):
        return Decimal(os.sysconf("SC_PAGE_SIZE")) * Decimal(os.sysconf("SC_PHYS_PAGES"))
    stat = os.statvfs("/")
    return Decimal(stat.f_frsize) * Decimal(stat.f_bavail)
