"""The versions the backend installs: kgateway and the Gateway API stay a pair kgateway's
docs name, the docs list every pin with its source, and cluster-check prints them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers.backends.kube.gloo import GLOO_VALUES
from helpers.backends.kube.pins import (
    GATEWAY_API_CRDS,
    GATEWAY_API_RELEASE,
    KGATEWAY_GATEWAY_API,
    KGATEWAY_SUPPORTS_GATEWAY_API,
    KGATEWAY_VERSION,
    PINS,
    minor,
    version_tuple,
)

from .conftest import ROOT

DOC = ROOT / "docs" / "real-cluster.md"


def test_the_gateway_api_is_the_release_kgateways_docs_name_for_the_pinned_kgateway():
    assert KGATEWAY_GATEWAY_API[minor(KGATEWAY_VERSION)] == GATEWAY_API_RELEASE
    low, high = KGATEWAY_SUPPORTS_GATEWAY_API[minor(KGATEWAY_VERSION)]
    assert low <= (version_tuple(GATEWAY_API_RELEASE) or (0, 0)) <= high
    assert GATEWAY_API_CRDS.endswith(f"/download/{GATEWAY_API_RELEASE}/standard-install.yaml")


def test_the_docs_list_every_pin_with_its_version_and_source():
    section = DOC.read_text().split("\n## Versions\n", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(): line.split("|")[2:4] for line in section.splitlines() if line.startswith("| ")}
    for pin in PINS:
        version, source = rows[pin.what]
        assert version.strip() == pin.version, pin.what
        assert pin.source.split(" ")[0].split(",")[0] in source, pin.what  # the repository (and tag) it names


def test_the_docs_say_what_strict_validation_is_on_a_cluster():
    validation = GLOO_VALUES["gateway"]["validation"]
    assert validation == {"alwaysAcceptResources": False, "allowWarnings": True, "failurePolicy": "Ignore"}
    text = " ".join(DOC.read_text().split())
    for key, value in validation.items():
        assert f"{key}: {str(value).lower() if isinstance(value, bool) else value}" in text
    assert "The webhook fails open (`failurePolicy: Ignore`)" in text


def test_cluster_check_prints_the_pins_without_a_cluster(tmp_path: Path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "none")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cluster_check.py"), "--versions"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [pin.what for pin in PINS]
    for line, pin in zip(lines, PINS, strict=True):
        assert line.startswith(f"{pin.what}: {pin.version}") and f"(source: {pin.source})" in line
    assert "Helm major: 3, found " in done.stdout


def test_cluster_check_with_rollouts_says_clearly_when_there_is_no_cluster(tmp_path: Path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "none")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cluster_check.py"), "--rollouts"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("no cluster to check: ") and "Traceback" not in done.stderr
    assert done.stdout == ""
