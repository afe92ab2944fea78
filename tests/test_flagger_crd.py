"""The lab's Flagger objects against Flagger's own CRD schema, offline.

``manifests/flagger/`` (and its folders) and the builders' Canaries must apply unchanged on a cluster
with real Flagger (``coalmine install flagger`` installs chart 1.44.0): each
``flagger.app`` object is checked against the vendored CRDs of that release
(``tests/schema_mutations/crds/flagger-crds.yaml``) by the structural-schema oracle of
the schema-mutation tests: field names, types, enums, required fields, unknown fields
refused as under strict field validation. Nothing is downloaded.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers.backends.kube.pins import FLAGGER_VERSION
from helpers.builders import progressive
from tests.schema_mutations import oracle

ROOT = Path(__file__).resolve().parent.parent
CRDS = oracle.CRDS / "flagger-crds.yaml"
FLAGGER_GROUP = "flagger.app"


@functools.cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """``(apiVersion, kind)`` -> the openAPIV3Schema each served version has."""
    found = {}
    for crd in yaml.safe_load_all(CRDS.read_text()):
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version["served"]:
                found[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return found


def refused(obj: Mapping[str, Any]) -> list[str]:
    """Why an API server with Flagger's CRDs refuses ``obj`` (empty: accepted); the
    oracle's checks, with the schema taken from Flagger's CRD file."""
    schema = schemas().get((str(obj.get("apiVersion")), str(obj.get("kind"))))
    if schema is None:
        return [f"{obj.get('apiVersion')} {obj.get('kind')} is not served by Flagger's CRDs"]
    problems = oracle._metadata(obj.get("metadata"))
    value = copy.deepcopy(dict(obj))
    oracle._default(value, schema)
    oracle._check(value, schema, "", problems, top=True)
    return problems


def flagger_objects() -> list[tuple[str, dict[str, Any]]]:
    out = []
    folder = ROOT / "manifests" / "flagger"
    for path in sorted(folder.rglob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith(f"{FLAGGER_GROUP}/"):
                out.append((f"{path.relative_to(folder)}#{i}", doc))
    return out


def test_the_vendored_crds_are_the_pinned_release():
    header = CRDS.read_text().splitlines()[0]
    assert f"fluxcd/flagger v{FLAGGER_VERSION} " in header and "artifacts/flagger/crd.yaml" in header
    assert set(schemas()) == {
        ("flagger.app/v1beta1", "Canary"),
        ("flagger.app/v1beta1", "MetricTemplate"),
        ("flagger.app/v1beta1", "AlertProvider"),
    }


def test_the_manifests_hold_flagger_objects():
    assert "canary.yaml#0" in [where for where, _ in flagger_objects()]


@pytest.mark.parametrize(("where", "obj"), flagger_objects(), ids=[w for w, _ in flagger_objects()])
def test_every_flagger_manifest_is_accepted_by_flaggers_crds(where: str, obj: dict[str, Any]):
    assert refused(obj) == [], where


@pytest.mark.parametrize(
    "obj",
    [
        progressive.canary(),
        progressive.ab_canary(),
        progressive.canary(webhooks=[*progressive.load_tests(progressive.load_test()), progressive.gate()]),
    ],
    ids=["canary", "ab_canary", "canary-with-gate"],
)
def test_the_builders_canaries_are_accepted_by_flaggers_crds(obj: dict[str, Any]):
    assert refused(obj) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda c: c["spec"]["analysis"].update(stepweight=10), ".spec.analysis.stepweight: unknown field"),
        (lambda c: c["spec"]["analysis"].update(threshold="2"), ".spec.analysis.threshold: wrong type"),
        (lambda c: c["spec"].update(service={"targetPort": 8080}), ".spec.service.port: required"),
        (lambda c: c["spec"]["analysis"]["webhooks"][0].update(type="later"), ".spec.analysis.webhooks[0].type: not"),
        (lambda c: c["spec"].pop("targetRef"), ".spec.targetRef: required"),
        (lambda c: c["spec"]["analysis"].pop("stepWeight"), ".spec.analysis: oneOf"),
        (lambda c: c["spec"]["analysis"].update(iterations=3), ".spec.analysis: oneOf"),
    ],
    ids=["unknown-field", "wrong-type", "required", "enum", "no-target", "no-step", "steps-and-iterations"],
)
def test_the_check_refuses_what_flagger_refuses(change: Any, problem: str):
    obj = progressive.canary()
    change(obj)
    assert any(p.startswith(problem) for p in refused(obj)), refused(obj)
