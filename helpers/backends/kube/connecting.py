"""Reaching the API server with the official ``kubernetes`` client.

``connect`` reads the kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``, a context
may be chosen) or, inside a pod, the service account. ``KubeApi`` sends the few
requests the backend needs (get, list, server-side apply, delete) through the
client's own transport, so TLS, tokens and exec plugins work as in kubectl, and
turns every failure into an error that says what to do.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.errors import (
    ApplyRefused,
    ClusterError,
    ClusterUnreachable,
    Forbidden,
    NoKubeconfig,
    NotFound,
    Unauthorized,
)

FIELD_MANAGER = "coalmine"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_TIMEOUT = 30.0


@dataclass
class Connection:
    """What ``connect`` found: the client, the context's name, its namespace and server."""

    client: Any  # kubernetes.client.ApiClient
    context: str
    namespace: str
    server: str


def kubeconfig_paths() -> list[Path]:
    """The kubeconfig files kubectl would read: ``$KUBECONFIG`` (a list) or ~/.kube/config."""
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _kubernetes() -> Any:
    try:
        import kubernetes
    except ImportError as e:
        raise ClusterError(
            "the kubernetes backend needs the `kubernetes` package: "
            "pip install -e '.[kubernetes]' (or `make test`, which installs it)"
        ) from e
    return kubernetes


def connect(context: str | None = None) -> Connection:
    """A client for ``context`` (default: the kubeconfig's current one), or the pod's
    service account when there is no kubeconfig and this runs inside a cluster."""
    kubernetes = _kubernetes()
    from kubernetes.config.config_exception import ConfigException

    files = [p for p in kubeconfig_paths() if p.is_file()]
    if not files:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and context is None:
            configuration = kubernetes.client.Configuration()
            try:
                kubernetes.config.load_incluster_config(client_configuration=configuration)
            except ConfigException as e:
                raise NoKubeconfig(f"in-cluster configuration failed: {e}") from e
            namespace = _SA_NAMESPACE.read_text().strip() if _SA_NAMESPACE.is_file() else "default"
            return Connection(kubernetes.client.ApiClient(configuration), "in-cluster", namespace, configuration.host)
        where = "$KUBECONFIG" if os.environ.get("KUBECONFIG") else "~/.kube/config"
        raise NoKubeconfig(
            f"no kubeconfig at {where}: create a cluster with `kind create cluster` or "
            "`minikube start` (both write ~/.kube/config), or `export KUBECONFIG=/path/to/file`"
        )
    config_file = None if len(files) > 1 else str(files[0])
    try:
        contexts, current = kubernetes.config.list_kube_config_contexts(config_file=config_file)
    except ConfigException as e:
        raise NoKubeconfig(
            f"the kubeconfig {os.pathsep.join(map(str, files))} has no usable context ({e}): "
            "`kubectl config get-contexts`, then `kubectl config use-context NAME`"
        ) from e
    names = [c["name"] for c in contexts or []]
    chosen = context or (current or {}).get("name")
    if chosen is None or chosen not in names:
        raise NoKubeconfig(
            f'context "{chosen}" is not in the kubeconfig (it has: {", ".join(names) or "none"}): '
            "pick one with --context NAME or `kubectl config use-context NAME`"
        )
    entry = next(c for c in contexts if c["name"] == chosen)
    try:
        client = kubernetes.config.new_client_from_config(config_file=config_file, context=chosen, persist_config=False)
    except (ConfigException, OSError, ValueError) as e:
        raise NoKubeconfig(f'context "{chosen}" of the kubeconfig cannot be used: {e}') from e
    namespace = (entry.get("context") or {}).get("namespace") or "default"
    return Connection(client, chosen, namespace, client.configuration.host)


class KubeApi:
    """JSON requests to the API server, with errors a learner can act on."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.warnings: list[str] = []  # the API server's Warning headers on the last answer

    @property
    def context(self) -> str:
        return self.connection.context

    def request(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        what: str = "",
        timeout: float = _TIMEOUT,
    ) -> Any:
        """The decoded JSON answer; None for a 404 on GET. ``what`` names the object in errors."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        client = self.connection.client
        headers = {"Accept": "application/json", "Content-Type": content_type}
        # The body goes in as an object and the client encodes it once (JSON; JSON as
        # YAML for an apply patch), as its typed calls do: encoded here, it would be a
        # JSON string inside JSON, which the API server cannot decode.
        method_, url, headers, data, post = client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = client.call_api(method_, url, headers, data, post, _request_timeout=timeout)
            response.read()
        except ApiException as e:
            # The client's own transport errors (a failed TLS handshake among them) come
            # back as ApiException with status 0, not as the urllib3 error.
            if e.status:
                raise self._error(int(e.status), str(e.body or "").encode(), method, path, what) from None
            raise self.unreachable(e.reason or e) from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise self.unreachable(getattr(e, "reason", None) or e) from None
        status, raw = response.status, response.data or b""
        self.warnings = _warnings(response)
        if 200 <= status < 300:
            return json.loads(raw) if raw else None
        if status == 404 and method == "GET":
            return None
        raise self._error(status, raw, method, path, what)

    def unreachable(self, reason: object) -> ClusterUnreachable:
        """The error for a request that got no HTTP answer: TLS refused, or nobody listening."""
        text = " ".join(str(reason).split())
        where = f'the API server {self.connection.server} (context "{self.context}")'
        if any(mark in text for mark in ("SSL", "TLS", "certificate")):
            return ClusterUnreachable(
                f"{where} failed the TLS check: {text}. The kubeconfig's certificates do not match the "
                "cluster (was it recreated?): refresh them with `kind export kubeconfig --name NAME` or "
                "`minikube update-context`, then check with `kubectl cluster-info`"
            )
        return ClusterUnreachable(
            f"{where} does not answer: {text}. "
            "Is the cluster running? `kind get clusters` or `minikube status`, then `kubectl cluster-info`"
        )

    def _error(self, status: int, raw: bytes, method: str, path: str, what: str) -> Exception:
        try:
            message = str(json.loads(raw).get("message") or "")
        except (ValueError, AttributeError):
            message = raw.decode(errors="replace")[:300]
        target = what or path
        if "failed calling webhook" in message:
            return ApplyRefused(
                f"{target}: an admission webhook did not answer ({message}). Nothing was changed; "
                "if it is Gloo's, wait until Gloo is ready (`coalmine wait`) and try again"
            )
        if "admission webhook" in message:
            return ApplyRefused(f"{target}: {message}. The running configuration is unchanged.")
        if status == 401:
            return Unauthorized(
                f'the API server {self.connection.server} refused the credentials of context "{self.context}" '
                "(401 Unauthorized): they are missing or expired. Refresh them (`kind export kubeconfig`, "
                "`minikube update-context`, or your cloud's login), then try `kubectl get namespaces`"
            )
        if status == 403:
            verb = {"GET": "get", "PATCH": "patch", "DELETE": "delete", "POST": "create"}.get(method, method.lower())
            return Forbidden(
                f'context "{self.context}" may not {verb} {target} (403 Forbidden: {message}). '
                f"Check with `kubectl auth can-i {verb} {_resource_of(path)}` and ask for RBAC rights, "
                "or use a context with more rights (--context NAME)"
            )
        if status == 404:
            return NotFound(f"{target} not found ({message or '404'})")
        if status in (400, 409, 422):
            return ApplyRefused(f"{target}: {message}")
        return ClusterError(f"{method} {target}: the API server answered {status}: {message}")


def _resource_of(path: str) -> str:
    """``deployments.apps -n default`` from an API path, for ``kubectl auth can-i``."""
    parts = path.strip("/").split("/")
    group = "" if parts[0] == "api" else parts[1]
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] if rest else "namespaces"
    shown = f"{resource}.{group}" if group else resource
    return f"{shown} -n {namespace}" if namespace else shown


def _warnings(response: Any) -> list[str]:
    """The texts of ``Warning: 299 - "text"`` headers (deprecations, webhook warnings)."""
    headers = getattr(response, "headers", None) or {}
    values = headers.getlist("Warning") if hasattr(headers, "getlist") else None
    if values is None:
        raw = headers.get("Warning") if hasattr(headers, "get") else None
        values = [raw] if raw else []
    found = []
    for value in values:
        text = value.split(" ", 2)[-1].strip() if value.startswith("299") else value
        found.append(text.strip('"'))
    return found
