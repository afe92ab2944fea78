"""Installing Gloo Edge on a cluster, and removing exactly what that installed.

Helm (chart ``gloo``, pinned in ``pins``) or, without helm, ``glooctl install
gateway`` with the same values: discovery on (off by default since 1.20), function
discovery for Services labelled ``discovery.solo.io/function_discovery=enabled``
(WHITELIST), and the validation the lab calls strict, spelled out in full:

- ``alwaysAcceptResources: false``: a resource Gloo would reject is refused at
  apply (the local runtime does the same);
- ``allowWarnings: true``: a resource with only warnings (a missing upstream) is
  accepted, and its status says Warning (as locally);
- ``failurePolicy: Ignore`` (the chart's default): the webhook fails open. While
  Gloo's validation service does not answer (during the install, or while the
  ``gloo`` pod restarts) the API server accepts such resources unvalidated; Gloo
  then marks an invalid one Rejected and keeps serving its last valid config.
  ``Fail`` would also block deleting the lab's routes whenever Gloo is down.

A Gloo that was there before the lab is used as it is and never uninstalled.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from helpers.backends.kube.connecting import KubeApi
from helpers.backends.kube.installing import PENDING, Apply, Installer
from helpers.backends.kube.pins import GLOO_REPO, GLOO_VERSION
from helpers.backends.kube.reading import FDS_LABEL, get_objects
from helpers.backends.kube.tools import INSTALL_TOOLS
from helpers.errors import ClusterError, CoalmineError, MissingTool
from helpers.kinds import GLOO_NAMESPACE
from helpers.runtime.gloo.discovering import upstreams_for, with_functions
from helpers.runtime.gloo.functions import transformations_from_swagger

GLOO_VALUES: dict[str, Any] = {
    "discovery": {"enabled": True, "fdsMode": "WHITELIST"},
    "gateway": {"validation": {"alwaysAcceptResources": False, "allowWarnings": True, "failurePolicy": "Ignore"}},
}
GLOO_CRD = "virtualservices.gateway.solo.io"
SOLO_GROUP_SUFFIX = ".solo.io"
STRICT = "validation refuses what Gloo would reject, accepts warnings, fails open while Gloo is down"


def _solo(group: str) -> bool:
    return group.endswith(SOLO_GROUP_SUFFIX)


class GlooInstaller(Installer):
    """``install gloo`` and ``uninstall gloo``."""

    component = "gloo"

    def install(self) -> dict[str, Any]:
        record = self.recorded()
        if record and record.get("state") != PENDING:
            return {**record, "component": "gloo", "message": "gloo is already installed by this lab"}
        if record is None and self.exists("CustomResourceDefinition", GLOO_CRD):
            record = {
                "ours": False,
                "via": "existing",
                "discovery": self.exists("Deployment", "discovery", GLOO_NAMESPACE),
            }
            self.done(record)
            message = "Gloo was already installed in this cluster: the lab uses it and will not uninstall it"
            return {**record, "component": "gloo", "message": message}
        via = self._tool()
        if record is None:
            record = {
                "ours": True,
                "version": GLOO_VERSION,
                "createdNamespace": not self.exists("Namespace", GLOO_NAMESPACE),
                "crdsBefore": self.crds(_solo),
            }
        record.update(via=via, discovery=True)
        self.begin(record)
        try:
            self._run(via)
        except ClusterError as e:
            raise self.unfinished(e) from None
        record["crds"] = self.created_crds(record, _solo, "crds")
        self.done(record)
        message = f"Gloo Edge {GLOO_VERSION} installed with {via} (discovery on; {STRICT})"
        return {**record, "state": "installed", "component": "gloo", "message": message}

    def _tool(self) -> str:
        if self.tools.which("helm"):
            return "helm"
        if self.tools.which("glooctl"):
            self._require_current_context()
            return "glooctl"
        raise MissingTool(
            f"neither helm nor glooctl is on PATH: install helm with {INSTALL_TOOLS['helm']} "
            f"(or glooctl: {INSTALL_TOOLS['glooctl']})"
        )

    def _run(self, via: str) -> None:
        with tempfile.TemporaryDirectory(prefix="coalmine-") as tmp:
            values = Path(tmp) / "gloo-values.yaml"
            values.write_text(yaml.safe_dump(GLOO_VALUES, sort_keys=False))
            if via == "glooctl":
                # glooctl installs through Helm's library without waiting for readiness
                # (solo-io/gloo v1.22.1 projects/gloo/cli/pkg/cmd/install/helm_client.go).
                argv = ["glooctl", "install", "gateway", "--version", GLOO_VERSION, "--values", str(values)]
                self.tools.run([*argv, "--create-namespace"])
                return
            self.tools.run(
                [
                    "helm",
                    "upgrade",
                    "--install",
                    "gloo",
                    "gloo",
                    "--repo",
                    GLOO_REPO,
                    "--version",
                    GLOO_VERSION,
                    "--namespace",
                    GLOO_NAMESPACE,
                    "--create-namespace",
                    *self.context_flags(),
                    "--values",
                    str(values),
                    # no --wait: gateway-proxy is a LoadBalancer (see installing); the
                    # timeout still bounds the chart's hook jobs
                    "--timeout",
                    "10m",
                ]
            )

    def _require_current_context(self) -> None:
        if self.api.context == "in-cluster":
            return
        current = (
            self.tools.run(["kubectl", "config", "current-context"]).stdout.strip()
            if self.tools.which("kubectl")
            else self.api.context
        )
        if current != self.api.context:
            raise ClusterError(
                f'glooctl installs into the current context "{current}", not "{self.api.context}": '
                f"`kubectl config use-context {self.api.context}`, or install helm"
            )

    def uninstall(self) -> list[str]:
        record = self.recorded()
        if not record:
            return ["gloo: not installed by this lab; nothing to do"]
        lines = []
        if record.get("ours"):
            if record.get("via") == "glooctl":
                self._require_current_context()
                self.tools.run(["glooctl", "uninstall", "--all"])
                lines.append("gloo: uninstalled with glooctl")
            else:
                lines += self.helm_uninstall("gloo", GLOO_NAMESPACE)
            # Helm never deletes a chart's CRDs; only the ones this install created go.
            for name in self.created_crds(record, _solo, "crds"):
                lines += self.delete("CustomResourceDefinition", name)
            if "crds" not in record and "crdsBefore" not in record:
                lines.append("gloo: CRDs left in place (this record predates CRD tracking): `kubectl get crd`")
            if record.get("createdNamespace"):
                lines += self.delete("Namespace", GLOO_NAMESPACE)
        else:
            lines.append("gloo: installed before the lab; left as it is")
        self.ledger.drop("gloo")
        return lines


def write_upstreams(api: KubeApi, services: list[dict[str, Any]], apply: Apply) -> None:
    """Where Gloo's discovery is off: write the Upstreams it would have written, with
    REST functions read from the Service's swagger through the API server's proxy."""
    existing = {u["metadata"]["name"] for u in get_objects(api, "Upstream", GLOO_NAMESPACE, None)}
    for svc in services:
        for us in upstreams_for(svc):
            if us["metadata"]["name"] in existing:
                continue
            kube = us["spec"]["kube"]
            if (svc["metadata"].get("labels") or {}).get(FDS_LABEL) == "enabled":
                name, namespace, port = kube["serviceName"], kube["serviceNamespace"], kube["servicePort"]
                path = f"/api/v1/namespaces/{namespace}/services/{name}:{port}/proxy/swagger.json"
                try:
                    swagger = api.request("GET", path, what=f"the swagger of {name}")
                except CoalmineError:
                    continue  # not serving yet: next time
                if swagger:
                    url = f"http://{name}.{namespace}.svc.cluster.local:{port}/swagger.json"
                    us = with_functions(us, url, transformations_from_swagger(swagger))
            apply(us)
