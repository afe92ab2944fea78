"""The versions the kubernetes backend installs, and where each pin comes from.

One table, read by ``installing`` (what to install), by ``docs/real-cluster.md``
(which lists the same rows) and by ``make cluster-check`` (which prints them with
the helm it finds). Change a version here and in the docs together; a test checks
that the two agree and that kgateway and the Gateway API stay a documented pair.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from helpers.backends.kube.tools import Tools
from helpers.errors import ClusterError

# 1.22.1 is the newest open-source Gloo Edge tag we could confirm; COALMINE_GLOO_VERSION picks another.
GLOO_VERSION = os.environ.get("COALMINE_GLOO_VERSION", "1.22.1")
GLOO_REPO = "https://storage.googleapis.com/solo-public-helm"
HELM_MAJOR = 3
KGATEWAY_VERSION = "v2.4.3"
KGATEWAY_CHARTS = "oci://cr.kgateway.dev/kgateway-dev/charts"
GATEWAY_API_RELEASE = "v1.6.1"
GATEWAY_API_DOWNLOADS = f"https://github.com/kubernetes-sigs/gateway-api/releases/download/{GATEWAY_API_RELEASE}"
# The release's two bundles (kgateway's install docs show both): the standard channel,
# and the experimental one (every standard field plus experimental ones, e.g. HTTPRoute retry).
GATEWAY_API_CRDS = f"{GATEWAY_API_DOWNLOADS}/standard-install.yaml"
GATEWAY_API_CRDS_BY_CHANNEL = {
    "standard": GATEWAY_API_CRDS,
    "experimental": f"{GATEWAY_API_DOWNLOADS}/experimental-install.yaml",
}

# Flagger's chart and its loadtester's, as tagged together in fluxcd/flagger v1.44.0
# (charts/flagger/Chart.yaml, charts/loadtester/Chart.yaml), from Flagger's Helm repository.
FLAGGER_VERSION = "1.44.0"
FLAGGER_LOADTESTER_VERSION = "0.38.0"
FLAGGER_REPO = "https://flagger.app"

# kgateway's docs, per minor: the Gateway API release its install steps apply
# (kgateway.dev assets/kgw-docs/versions/k8s-gw-version.md) and the Gateway API
# and Kubernetes minors it supports (assets/kgw-docs/pages/reference/versions.md).
KGATEWAY_GATEWAY_API = {"2.4": "v1.6.1", "2.3": "v1.5.1", "2.2": "v1.4.0", "2.1": "v1.4.0", "2.0": "v1.3.0"}
KGATEWAY_SUPPORTS_GATEWAY_API = {"2.4": ((1, 4), (1, 6)), "2.3": ((1, 3), (1, 5)), "2.2": ((1, 2), (1, 4))}
KGATEWAY_SUPPORTS_KUBERNETES = {"2.4": ((1, 32), (1, 36)), "2.3": ((1, 31), (1, 35)), "2.2": ((1, 31), (1, 35))}


@dataclass(frozen=True)
class Pin:
    """One pinned version: what it is, the version, and the source that names it."""

    what: str
    version: str
    source: str


PINS = (
    Pin(
        "Gloo Edge chart",
        GLOO_VERSION,
        "solo-io/gloo tag v1.22.1, install/helm/gloo: the newest open-source tag found (2026-08-04)",
    ),
    Pin(
        "Helm major",
        str(HELM_MAJOR),
        "helm/helm v3.21.4 pkg/kube/ready.go and wait.go (what --wait waits for); kgateway 2.4 needs Helm >= 3.12",
    ),
    Pin(
        "kgateway charts",
        KGATEWAY_VERSION,
        "kgateway-dev/kgateway.dev assets/kgw-docs/versions/n-patch.md: the latest 2.4 patch (2026-08-20)",
    ),
    Pin(
        "Gateway API CRDs",
        GATEWAY_API_RELEASE,
        "kgateway-dev/kgateway.dev assets/kgw-docs/versions/k8s-gw-version.md: what kgateway 2.4.x installs",
    ),
    Pin(
        "Flagger chart",
        FLAGGER_VERSION,
        "fluxcd/flagger tag v1.44.0, charts/flagger/Chart.yaml: the release the local runtime follows",
    ),
    Pin(
        "Flagger loadtester chart",
        FLAGGER_LOADTESTER_VERSION,
        "fluxcd/flagger tag v1.44.0, charts/loadtester/Chart.yaml: the loadtester released with it",
    ),
)


def minor(version: str) -> str:
    """``2.4`` from ``v2.4.3``."""
    return ".".join(version.lstrip("v").split(".")[:2])


def version_tuple(version: str) -> tuple[int, int] | None:
    """``(1, 6)`` from ``v1.6.1`` or ``1.33+``; None when it is not a version."""
    found = re.match(r"v?(\d+)\.(\d+)", version.strip())
    return (int(found[1]), int(found[2])) if found else None


def helm_found(tools: Tools) -> str:
    """The helm on PATH, as ``helm version --short`` prints it, or why there is none."""
    if tools.which("helm") is None:
        return "not on PATH"
    try:
        return tools.run(["helm", "version", "--short"], timeout=30).stdout.strip() or "unknown"
    except ClusterError as e:
        return f"unknown ({str(e).splitlines()[0]})"


def describe(tools: Tools | None = None) -> list[str]:
    """One line per pin, ``what: version (source: ...)``; with ``tools``, the helm found too."""
    lines = []
    for pin in PINS:
        found = f", found {helm_found(tools)}" if tools is not None and pin.what.startswith("Helm") else ""
        lines.append(f"{pin.what}: {pin.version}{found} (source: {pin.source})")
    return lines
