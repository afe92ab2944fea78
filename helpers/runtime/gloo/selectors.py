"""``delegateAction``: its schema, and which RouteTables it picks.

A route hands its requests to RouteTables by ``ref: {name, namespace}`` (or the
older flat ``name``/``namespace``, which wins over ``ref`` and ``selector`` when
set; a ref without a name finds nothing) or by ``selector``: ``labels`` (all must be equal), ``expressions``
(Kubernetes' set-based requirements) and ``namespaces`` (default: the namespace of
the resource that delegates; ``"*"``: every namespace). As in Gloo, a ref is taken
literally: a ref without a namespace looks in the namespace ``""`` and finds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from helpers.runtime import regex
from helpers.runtime.schema import STR, Found, ListOf, MapOf, Node, Obj, Scalar, one_of, shown

ResourceKey = tuple[str, str, str]

# Gloo's enum for a selector expression's operator, by name and number.
OPERATORS = ("Equals", "DoubleEquals", "NotEquals", "In", "NotIn", "Exists", "DoesNotExist", "GreaterThan", "LessThan")


class Operator(Node):
    """A protobuf enum in YAML: one of the names, or its number."""

    def check(self, value: Any, path: str, found: Found) -> None:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(OPERATORS):
            return
        if value not in OPERATORS:
            found.error(path, f"expected one of {', '.join(OPERATORS)}, got {shown(value)}")


# Neither the CRD nor Gloo's webhook requires the name: without one, Gloo warns
# "route table <namespace>. missing" and the route serves nothing (``delegating``).
_REF = Obj({"name": STR, "namespace": STR})
_SELECTOR = Obj(
    {
        "namespaces": ListOf(STR),
        "labels": MapOf(STR),
        "expressions": ListOf(Obj({"key": STR, "operator": Operator(), "values": ListOf(STR)}, required=("key",))),
    }
)
DELEGATE_ACTION = Obj(
    {"ref": _REF, "selector": _SELECTOR, "name": STR, "namespace": STR},
    rules=(one_of(("ref", "selector")),),
)
WEIGHT = Scalar("int", -(2**31), 2**31 - 1)  # RouteTable.spec.weight: an Int32Value


class SelectorProblem(Exception):
    """A selector Gloo cannot use: a warning on the resource that delegates."""


def target_ref(delegate: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, name) of a delegation by reference, or None for a selector."""
    if delegate.get("name") or delegate.get("namespace"):  # the deprecated flat form wins
        return (str(delegate.get("namespace") or ""), str(delegate.get("name") or ""))
    ref = delegate.get("ref")
    if isinstance(ref, Mapping):
        return (str(ref.get("namespace") or ""), str(ref.get("name") or ""))
    return None


def select(
    selector: Mapping[str, Any], tables: Sequence[tuple[ResourceKey, Mapping[str, Any]]], owner_namespace: str
) -> list[tuple[ResourceKey, Mapping[str, Any]]]:
    """The tables (in the given order) a ``selector`` picks; raises ``SelectorProblem``."""
    namespaces = [str(n) for n in selector.get("namespaces") or []]
    labels = {str(k): str(v) for k, v in (selector.get("labels") or {}).items()}
    expressions = list(selector.get("expressions") or [])
    if labels and expressions:
        raise SelectorProblem("cannot use both labels and expressions within the same selector")
    requirements = [_requirement(e) for e in expressions]
    picked = []
    for k, table in tables:
        meta = table.get("metadata") or {}
        have = {str(a): str(b) for a, b in (meta.get("labels") or {}).items()}
        if any(have.get(name) != value for name, value in labels.items()):
            continue
        if not all(_satisfied(r, have) for r in requirements):
            continue
        if "*" in namespaces or k[1] in (namespaces or [owner_namespace]):
            picked.append((k, table))
    return picked


# ── Kubernetes label requirements (labels.NewRequirement and Matches) ────────

_NAME = r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)"
_KEY = regex.compile(rf"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}")
_VALUE = regex.compile(rf"{_NAME}?")
_INTEGER = regex.compile(r"-?\d+")
Requirement = tuple[str, str, tuple[str, ...]]


def _requirement(expression: Mapping[str, Any]) -> Requirement:
    key, op = str(expression.get("key") or ""), expression.get("operator") or "Equals"
    op = OPERATORS[op] if isinstance(op, int) else str(op)
    values = tuple(str(v) for v in expression.get("values") or [])

    def invalid(why: str) -> SelectorProblem:
        return SelectorProblem(f"the route table selector expression is invalid: {why}")

    if not _KEY.fullmatch(key) or len(key.rpartition("/")[0]) > 253:
        raise invalid(f'key "{key}" is not a valid label key')
    if op in ("In", "NotIn") and not values:
        raise invalid(f"for '{op}' operator, values set can't be empty")
    if op in ("Equals", "DoubleEquals", "NotEquals") and len(values) != 1:
        raise invalid(f"exact-match compatibility requires one single value, got {len(values)}")
    if op in ("Exists", "DoesNotExist") and values:
        raise invalid(f"values set must be empty for {op}")
    if op in ("GreaterThan", "LessThan"):
        if len(values) != 1 or not _INTEGER.fullmatch(values[0]):
            raise invalid(f"for '{op}' operator, exactly one integer value is required")
    else:
        for v in values:
            if not _VALUE.fullmatch(v):
                raise invalid(f'"{v}" is not a valid label value')
    return (key, op, values)


def _satisfied(requirement: Requirement, labels: Mapping[str, str]) -> bool:
    key, op, values = requirement
    if op in ("Equals", "DoubleEquals", "In"):
        return key in labels and labels[key] in values
    if op in ("NotEquals", "NotIn"):
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if key not in labels or not _INTEGER.fullmatch(labels[key]):
        return False
    have, want = int(labels[key]), int(values[0])
    return have > want if op == "GreaterThan" else have < want
