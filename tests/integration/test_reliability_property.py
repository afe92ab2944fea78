"""Issue 12, property-based: generated malformed manifests thrown at a real lab.

Each example is one of the lab's own objects (a ConfigMap, Service, Deployment,
Upstream or VirtualService) with a few fields set to arbitrary JSON values, deleted,
or added, or a YAML text with arbitrary bytes spliced in. Whatever it is, ``apply``
either accepts it or answers one clear line (a refusal, never an internal error or a
traceback); the gateway keeps answering; and nothing already in the store is lost or
changed. Deterministic (``derandomize``), so CI sees the same examples every run.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import CoalmineError, Lab, ManifestError, load_manifests

from .conftest import MANIFESTS, Client

pytestmark = pytest.mark.integration

PETSTORE = load_manifests(MANIFESTS / "petstore-v1.yaml")
BASES: list[dict[str, Any]] = [
    *PETSTORE,  # ConfigMap, Service, Deployment
    *load_manifests(MANIFESTS / "gloo" / "3-weighted-10-90.yaml"),
    {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Upstream",
        "metadata": {"name": "static", "namespace": "gloo-system"},
        "spec": {"static": {"hosts": [{"addr": "127.0.0.1", "port": 9}]}},
    },
]
for base in BASES:
    if base["kind"] == "Deployment":  # it runs no pod unless an example asks for one
        base["spec"]["replicas"] = 0
    if base["kind"] == "ConfigMap":  # small, so that a failing example prints readably
        base["data"] = {"petstore.py": "print('petstore')\n", "notes.txt": "x"}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["", "\x00", "a/b", "..", "0.0.0.0", "(a+)+$", r"(a)\1", "-1", "99999", "2020-01-01"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place inside ``obj`` (dict keys and list indexes), depth first."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from paths(v, (*prefix, i))


@st.composite
def malformed(draw: st.DrawFn) -> dict[str, Any]:
    obj = copy.deepcopy(draw(st.sampled_from(BASES)))
    obj["metadata"]["name"] = draw(st.sampled_from(["fuzz", "fuzz-2"]))
    for _ in range(draw(st.integers(1, 3))):
        places = [p for p in paths(obj) if len(p) > 0 and p[0] not in ("apiVersion", "kind")]
        if not places:
            break
        place = draw(st.sampled_from(places))
        parent = obj
        for part in place[:-1]:
            parent = parent[part]
        op = draw(st.sampled_from(["set", "delete", "add"]))
        if op == "set":
            parent[place[-1]] = draw(values)
        elif op == "delete":
            del parent[place[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
        elif isinstance(parent, list):
            parent.append(draw(values))
    return obj


@st.composite
def broken_yaml(draw: st.DrawFn) -> str:
    obj = copy.deepcopy(draw(st.sampled_from(BASES)))
    obj["metadata"]["name"] = "fuzz-text"  # never one of the objects that must stay
    text = yaml.safe_dump(obj, sort_keys=False)
    at = draw(st.integers(0, len(text)))
    junk = draw(st.sampled_from(["&a [*a]", "!!binary x", "!!set {a}", ": : :", "\t", "[" * 200, "- 3", "*x", ""]))
    return text[:at] + junk + text[at:] + "\n"


@pytest.fixture
def sentinels(lab: Lab) -> Iterator[tuple[Lab, list[dict[str, Any]]]]:
    lab.install("gloo")
    sentinel = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sentinel"}, "data": {"a": "b"}}
    lab.apply(MANIFESTS / "gloo" / "1-route-to-v1.yaml", sentinel)
    yield lab, _snapshot(lab)
    log = (lab.backend.home.log_file).read_text()  # type: ignore[attr-defined]
    assert "Traceback" not in log, log[-3000:]  # no example hit a bug, even one answered politely


def _snapshot(lab: Lab) -> list[dict[str, Any]]:
    return sorted(
        (
            {k: o[k] for k in ("kind", "metadata", "spec", "data") if k in o}
            for kind in ("configmaps", "virtualservices")
            for o in lab.objects(kind, all_namespaces=True)
            if o["metadata"]["name"] in ("sentinel", "coalmine")
        ),
        key=lambda o: (o["kind"], o["metadata"]["name"]),
    )


def _clear(message: str) -> bool:
    return bool(message) and "Traceback" not in message and "internal error" not in message


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(example=st.one_of(malformed(), broken_yaml()))
def test_malformed_manifests_get_a_clear_answer_and_lose_nothing(
    sentinels: tuple[Lab, list[dict[str, Any]]], example: dict[str, Any] | str
) -> None:
    lab, before = sentinels
    try:
        results = lab.apply_each(example)
    except (ManifestError, CoalmineError) as e:  # refused before it reached the lab
        assert type(e) is not CoalmineError and _clear(str(e)) and "\n" not in str(e), repr(e)
        results = []
    for r in results:
        assert ("action" in r) != ("error" in r), r
        if "error" in r:
            assert _clear(r["error"]), r
        else:  # accepted: take it away again, so examples do not pile up pods
            lab.delete_each(example)
    gateway = Client(lab.proxy_url())
    try:
        status, _ = gateway.get("/petstore")
        assert status in (200, 404, 503)
    finally:
        gateway.close()
    assert _snapshot(lab) == before
