"""One lab for the whole conformance folder: kgateway installed with the Gateway API's
experimental channel (the extended features it covers, such as HTTPRoute ``retry``,
are in that channel only, as on a cluster), the suite's base infrastructure applied
(``base``) and ready, as the suite's setup leaves a cluster.

Each test applies its own manifests through ``suite.apply`` and they are deleted after
it, as the suite deletes a test's manifests, so every test starts from the base.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from helpers import Lab
from tests.integration.conftest import stop_lab

from . import base
from .harness import STATUS_S, eventually, get, has

READY_S = 120.0


class Suite:
    """The session's lab, its CA, and the objects the current test applied."""

    def __init__(self, lab: Lab, home: Path, ca: trustme.CA) -> None:
        self.lab, self.home, self.ca = lab, home, ca
        self.applied: list[dict[str, Any]] = []

    def apply(self, manifests: str | list[dict[str, Any]]) -> None:
        """Apply a test's manifests (YAML text or objects); they go after the test."""
        objects = [o for o in yaml.safe_load_all(manifests) if o] if isinstance(manifests, str) else manifests
        self.applied += objects
        self.lab.apply(objects)

    def cleanup(self) -> None:
        for obj in reversed(self.applied):
            meta = obj["metadata"]
            self.lab.delete_each(kind=obj["kind"], name=meta["name"], namespace=meta.get("namespace"))
        self.applied = []

    def tls(self) -> ssl.SSLContext:
        """A client context that trusts the lab's CA (the suite's serverCertPem)."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def logs(self, deployment: str) -> str:
        """The output of every pod of a Deployment (``kubectl logs``), from the lab home."""
        return "".join(p.read_text(errors="replace") for p in sorted((self.home / "pods").glob(f"{deployment}-*/log")))


def _ready(lab: Lab) -> None:
    """What the suite checks before its tests: the GatewayClass Accepted, the base Gateways
    Programmed, every Deployment ready."""
    lab.wait(READY_S)

    def gateway_class() -> str | None:
        gc = get(lab, "GatewayClass", "", base.CLASS)
        conditions = (gc.get("status") or {}).get("conditions") or []
        return None if has(gc, conditions, "Accepted", "True") else f"conditions are {conditions}"

    eventually(gateway_class, f"GatewayClass {base.CLASS} Accepted", STATUS_S)
    for gw in ("same-namespace", "all-namespaces", "backend-namespaces", "same-namespace-with-https-listener"):

        def programmed(gw: str = gw) -> str | None:
            obj = get(lab, "Gateway", base.INFRA, gw)
            conditions = (obj.get("status") or {}).get("conditions") or []
            return None if has(obj, conditions, "Programmed", "True") else f"conditions are {conditions}"

        eventually(programmed, f"Gateway {gw} Programmed", STATUS_S)


@pytest.fixture(scope="session")
def conformance_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    home = tmp_path_factory.mktemp("conformance") / "lab"
    lab = Lab(home=home)
    try:
        lab.up()
        lab.install("kgateway", channel="experimental")
        ca = trustme.CA()
        lab.apply(base.manifests(ca))
        _ready(lab)
        yield Suite(lab, home, ca)
    finally:
        stop_lab(lab, home)


@pytest.fixture
def suite(conformance_lab: Suite) -> Iterator[Suite]:
    yield conformance_lab
    conformance_lab.cleanup()
