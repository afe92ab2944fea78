"""What the API server refuses in a pod template, so no pod is started that cannot run.

The supervisor treats any failure to prepare a pod as ``CreateContainerConfigError``
(with back-off), but what Kubernetes refuses at apply is refused here at apply:
containers (name, image, command, env, ports, probes, volume mounts) and volumes
(configMap items that would leave the volume; ``hostPath``, which the restricted and
baseline Pod Security Standards forbid and which would let a lab pod read outside
its folder).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.runtime import regex

_DNS_LABEL = regex.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# IsConfigMapKey: "[-._a-zA-Z0-9]+", at most 253 characters, not "." or "..".
_CONFIGMAP_KEY = regex.compile(r"[-._a-zA-Z0-9]+")
_PROBES = ("readinessProbe", "livenessProbe", "startupProbe")
# Probe fields that are whole seconds or counts; 0 means "the default", as in Kubernetes.
_PROBE_NUMBERS = ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold")
_VOLUME_SOURCES = ("configMap", "emptyDir")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_port(value: Any) -> bool:
    return is_int(value) and 1 <= value <= 65535


def configmap_key_problem(key: Any) -> str | None:
    """Why ``key`` cannot name a file of a ConfigMap (None when it can)."""
    if not isinstance(key, str) or not key:
        return "a key must be a non-empty string"
    if len(key) > 253 or not _CONFIGMAP_KEY.fullmatch(key) or key in (".", "..") or key.startswith(".."):
        return (
            f'key "{key[:60]}" is invalid: use letters, digits, "-", "_" and "." '
            '(no "/", at most 253 characters, not "." or "..")'
        )
    return None


def check_pod_template(template: Mapping[str, Any], where: str = "spec.template") -> list[str]:
    """Problems of a Deployment's pod template (empty when it can run)."""
    pod = template.get("spec")
    containers = pod.get("containers") if isinstance(pod, Mapping) else None
    if not isinstance(pod, Mapping) or not isinstance(containers, list) or not containers:
        return [f"{where}.spec.containers: at least one container is required"]
    where = f"{where}.spec"
    problems, volumes = _check_volumes(pod.get("volumes"), where)
    grace = pod.get("terminationGracePeriodSeconds")
    if grace is not None and not (is_int(grace) and grace >= 0):
        problems.append(f"{where}.terminationGracePeriodSeconds must be a whole number >= 0")
    for i, c in enumerate(containers):
        problems += _check_container(c, f"{where}.containers[{i}]", volumes)
    return problems


def _check_container(c: Any, where: str, volumes: set[str]) -> list[str]:
    if not isinstance(c, Mapping):
        return [f"{where} must be an object with name, image and command"]
    problems = []
    if not isinstance(c.get("name"), str) or not c.get("name"):
        problems.append(f"{where}.name is required")
    elif not c.get("image"):
        problems.append(f"{where}.image is required")
    for field in ("command", "args"):
        value = c.get(field)
        if value is not None and not (isinstance(value, list) and all(isinstance(a, str) for a in value)):
            problems.append(f"{where}.{field} must be a list of strings")
        elif value is not None and any("\x00" in a for a in value):
            problems.append(f"{where}.{field} must not contain a NUL character")
    problems += _check_env(c.get("env"), f"{where}.env")
    problems += _check_ports(c.get("ports"), f"{where}.ports")
    for probe in _PROBES:
        if c.get(probe) is not None:
            problems += _check_probe(c[probe], f"{where}.{probe}")
    mounts = c.get("volumeMounts")
    if mounts is not None and not isinstance(mounts, list):
        return [*problems, f"{where}.volumeMounts must be a list"]
    for j, m in enumerate(mounts or []):
        at = f"{where}.volumeMounts[{j}]"
        if not isinstance(m, Mapping) or not isinstance(m.get("name"), str) or not m.get("name"):
            problems.append(f"{at}.name is required")
        elif m["name"] not in volumes:
            problems.append(f'{at}.name: Not found: "{m["name"]}" (no volume of that name in spec.volumes)')
        if isinstance(m, Mapping) and not (isinstance(m.get("mountPath"), str) and m["mountPath"].strip("/")):
            problems.append(f'{at}.mountPath is required: an absolute path such as "/app"')
    return problems


def _check_env(env: Any, where: str) -> list[str]:
    if env is None:
        return []
    if not isinstance(env, list):
        return [f"{where} must be a list of {{name, value}}"]
    problems = []
    for i, item in enumerate(env):
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            problems.append(f"{where}[{i}].name is required")
        elif "=" in name or not name.isprintable() or not name.isascii():
            problems.append(f'{where}[{i}].name "{name[:60]}" is invalid: printable ASCII without "="')
        if isinstance(item, Mapping) and item.get("value") is not None and not isinstance(item["value"], str):
            problems.append(f'{where}[{i}].value must be a string (quote it: "{item["value"]}")')
        elif isinstance(item, Mapping) and isinstance(item.get("value"), str) and "\x00" in item["value"]:
            problems.append(f"{where}[{i}].value must not contain a NUL character")
    return problems


def _check_ports(ports: Any, where: str) -> list[str]:
    if ports is None:
        return []
    if not isinstance(ports, list):
        return [f"{where} must be a list of {{containerPort}}"]
    problems = []
    for i, p in enumerate(ports):
        if not isinstance(p, Mapping) or not is_port(p.get("containerPort")):
            problems.append(f"{where}[{i}].containerPort must be a number from 1 to 65535")
            continue
        host = p.get("hostPort")
        if host not in (None, 0) and not is_port(host):
            problems.append(f"{where}[{i}].hostPort must be a number from 1 to 65535")
        if p.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
            problems.append(f"{where}[{i}].protocol must be TCP, UDP or SCTP")
    return problems


def _check_probe(probe: Any, where: str) -> list[str]:
    if not isinstance(probe, Mapping):
        return [f"{where} must be an object (httpGet, tcpSocket, periodSeconds, ...)"]
    problems = [
        f"{where}.{field} must be a whole number >= 0 (seconds or a count; 0 means the default)"
        for field in _PROBE_NUMBERS
        if probe.get(field) is not None and not (is_int(probe[field]) and probe[field] >= 0)
    ]
    for handler in ("httpGet", "tcpSocket"):
        spec = probe.get(handler)
        if spec is None:
            continue
        port = spec.get("port") if isinstance(spec, Mapping) else None
        if not (is_port(port) or (isinstance(port, str) and port)):
            problems.append(f"{where}.{handler}.port must be a port number (1-65535) or a container port name")
        path = spec.get("path", "/") if isinstance(spec, Mapping) else "/"
        if handler == "httpGet" and not (isinstance(path, str) and path.startswith("/") and path.isprintable()):
            problems.append(f'{where}.httpGet.path must be a path starting with "/"')
    return problems


def _check_volumes(volumes: Any, where: str) -> tuple[list[str], set[str]]:
    if volumes is None:
        return [], set()
    if not isinstance(volumes, list):
        return [f"{where}.volumes must be a list"], set()
    problems: list[str] = []
    names: set[str] = set()
    for i, v in enumerate(volumes):
        at = f"{where}.volumes[{i}]"
        name = v.get("name") if isinstance(v, Mapping) else None
        if not isinstance(name, str) or not _DNS_LABEL.fullmatch(name) or len(name) > 63:
            problems.append(f'{at}.name is required: a DNS label such as "app"')
            continue
        if name in names:
            problems.append(f'{at}.name: Duplicate value: "{name}"')
        names.add(name)
        assert isinstance(v, Mapping)
        if "hostPath" in v:
            problems.append(
                f"{at}.hostPath: volumes from the host are forbidden by the restricted and baseline Pod "
                "Security Standards, and a lab pod stays in its own folder: use a configMap or emptyDir volume"
            )
        elif not any(source in v for source in _VOLUME_SOURCES):
            others = [k for k in v if k != "name"]
            problems.append(
                f"{at}: {', '.join(others) or 'no source'}: the local runtime supports configMap and emptyDir volumes"
            )
        elif "configMap" in v:
            problems += _check_configmap_volume(v["configMap"], f"{at}.configMap")
    return problems, names


def _check_configmap_volume(cm: Any, where: str) -> list[str]:
    if not isinstance(cm, Mapping) or not isinstance(cm.get("name"), str) or not cm.get("name"):
        return [f"{where}.name is required: the ConfigMap to mount"]
    mode = cm.get("defaultMode")
    problems = []
    if mode is not None and not (is_int(mode) and 0 <= mode <= 0o777):
        problems.append(f"{where}.defaultMode must be a file mode from 0 to 0777 (511)")
    items = cm.get("items")
    if items is None:
        return problems
    if not isinstance(items, list):
        return [*problems, f"{where}.items must be a list of {{key, path}}"]
    for j, item in enumerate(items):
        at = f"{where}.items[{j}]"
        if not isinstance(item, Mapping):
            problems.append(f"{at} must be an object with key and path")
            continue
        why = configmap_key_problem(item.get("key"))
        if why:
            problems.append(f"{at}.key: {why}")
        path = item.get("path")
        if not isinstance(path, str) or not path:
            problems.append(f"{at}.path is required: the file name inside the volume")
        elif path.startswith("/") or ".." in path.split("/") or "\x00" in path:
            problems.append(f'{at}.path "{path[:60]}" must be a relative path without ".." elements')
    return problems
