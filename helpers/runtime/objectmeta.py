"""What the Kubernetes API server refuses in ``metadata``, the same for every kind.

Names are DNS-1123 subdomains (253 characters, dot-separated labels), except the
kinds whose name becomes a DNS label (a Namespace: RFC 1123 label; a Service:
RFC 1035 label, starting with a letter). Label keys and annotation keys are
qualified names (``prefix/name``: a DNS subdomain prefix, a 63-character name);
label values are at most 63 characters. ``kubectl apply`` uses strict field
validation, so an unknown field under ``metadata`` is refused too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.runtime import regex

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_LABEL = regex.compile(_LABEL)
DNS_SUBDOMAIN = regex.compile(rf"{_LABEL}(\.{_LABEL})*")
DNS_1035_LABEL = regex.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_NAME_PART = regex.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
# ObjectMeta's fields as JSON names them; anything else is an unknown field.
KNOWN_FIELDS = frozenset(
    "name generateName namespace selfLink uid resourceVersion generation creationTimestamp "
    "deletionTimestamp deletionGracePeriodSeconds labels annotations ownerReferences finalizers "
    "managedFields".split()
)
# Kinds whose name must be a DNS label rather than a DNS subdomain.
_LABEL_NAMED = {"Namespace": "label", "Service": "1035"}
MAX_ANNOTATIONS_BYTES = 256 * 1024


def subdomain_problem(value: str, what: str) -> str | None:
    """Why ``value`` is not a DNS-1123 subdomain (None when it is)."""
    if len(value) > 253:
        return f'{what} "{value[:40]}..." is {len(value)} characters long: at most 253 are allowed'
    if not DNS_SUBDOMAIN.fullmatch(value):
        return (
            f'{what} "{value}" is invalid: lower-case letters, digits, "-" and "." '
            '(each part between dots starts and ends with a letter or digit, e.g. "petstore-v1")'
        )
    return None


def label_problem(value: str, what: str, rfc1035: bool = False) -> str | None:
    """Why ``value`` is not a DNS label (RFC 1123, or RFC 1035: starts with a letter)."""
    if len(value) > 63:
        return f'{what} "{value[:40]}..." is {len(value)} characters long: at most 63 are allowed'
    pattern, first = (DNS_1035_LABEL, "a letter") if rfc1035 else (DNS_LABEL, "a letter or digit")
    if not pattern.fullmatch(value):
        return (
            f'{what} "{value}" is invalid: lower-case letters, digits and "-", starting with {first} '
            'and ending with a letter or digit (no ".")'
        )
    return None


def qualified_name_problem(key: str, what: str) -> str | None:
    """Why ``key`` is not a qualified name (``[prefix/]name``), as label and annotation keys must be."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or "/" in prefix):
        return f'{what} "{key}" is invalid: at most one "/", between a DNS prefix and a name'
    if slash:
        why = subdomain_problem(prefix, f"{what} prefix")
        if why:
            return why
    if not name:
        return f'{what} "{key}" is invalid: the name part must not be empty'
    if len(name) > 63:
        return f'{what} "{key[:40]}..." is invalid: the name part is {len(name)} characters long, at most 63'
    if not _NAME_PART.fullmatch(name):
        return (
            f'{what} "{key}" is invalid: the name part holds letters, digits, "-", "_" and ".", '
            "and starts and ends with a letter or digit"
        )
    return None


def label_value_problem(value: str, what: str) -> str | None:
    """Why ``value`` cannot be a label value (at most 63 characters, may be empty)."""
    if len(value) > 63:
        return f'{what} "{value[:40]}..." is {len(value)} characters long: at most 63 are allowed'
    if value and not _NAME_PART.fullmatch(value):
        return (
            f'{what} "{value}" is invalid: letters, digits, "-", "_" and ".", '
            "starting and ending with a letter or digit"
        )
    return None


def labels_problems(labels: Any, where: str) -> list[str]:
    """Problems of a map of labels (keys qualified names, values label values)."""
    if not isinstance(labels, Mapping):
        return [f"{where} must map names to strings"]
    problems = []
    for k, v in labels.items():
        if not isinstance(v, str):
            problems.append(f'{where}["{k}"] must be a string (quote numbers and booleans)')
            continue
        why = qualified_name_problem(str(k), f"{where} key") or label_value_problem(v, f'{where}["{k}"]')
        if why:
            problems.append(why)
    return problems


def metadata_problems(meta: Any, kind: str) -> list[str]:
    """What the API server refuses in an object's ``metadata`` (empty when fine)."""
    if not isinstance(meta, Mapping):
        return ["metadata is missing: add `metadata: {name: ...}`"]
    unknown = sorted(str(k) for k in meta if str(k) not in KNOWN_FIELDS)
    if unknown:
        return [f'metadata.{name}: unknown field "{name}" (strict field validation)' for name in unknown]
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        return ["metadata.name is required"]
    shape = _LABEL_NAMED.get(kind)
    why = (
        label_problem(name, "metadata.name", rfc1035=shape == "1035")
        if shape
        else subdomain_problem(name, "metadata.name")
    )
    problems = [why] if why else []
    ns = meta.get("namespace")
    if ns is not None:
        why = label_problem(ns, "metadata.namespace") if isinstance(ns, str) else "metadata.namespace must be a string"
        if why:
            problems.append(why)
    if meta.get("labels") is not None:
        problems += labels_problems(meta["labels"], "metadata.labels")
    annotations = meta.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, Mapping) or not all(isinstance(v, str) for v in annotations.values()):
            problems.append("metadata.annotations must map names to strings (quote numbers and booleans)")
        else:
            for k in annotations:
                why = qualified_name_problem(str(k).lower(), "metadata.annotations key")
                if why:
                    problems.append(why)
            size = sum(len(str(k)) + len(v) for k, v in annotations.items())
            if size > MAX_ANNOTATIONS_BYTES:
                problems.append(f"metadata.annotations: {size} bytes, at most {MAX_ANNOTATIONS_BYTES} (256 KiB)")
    return problems
