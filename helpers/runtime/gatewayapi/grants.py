"""ReferenceGrant: who may reference what across namespaces.

A reference from one namespace into another (an HTTPRoute's backendRef to a Service,
a Gateway listener's certificateRef to a Secret) is allowed only when the *target*
namespace holds a ReferenceGrant that names both sides:

- ``spec.from[]``: group, kind and namespace of the referring object;
- ``spec.to[]``: group and kind of the referenced object, and optionally its name
  (no name: every object of that kind in the grant's namespace).

Entries of each list are ORed. A reference inside one namespace never needs a grant.
Deleting the grant revokes the access at the next translation (the route answers 500
again), as ``apis/v1/referencegrant_types.go`` requires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reference:
    """One cross-object reference: ``source`` (group, kind, namespace) refers to
    ``target`` (group, kind, namespace, name). The core group is ``""``."""

    source: tuple[str, str, str]
    target: tuple[str, str, str, str]


class Grants:
    """The ReferenceGrants of a set of applied objects."""

    def __init__(self, objects: Iterable[Mapping[str, Any]]) -> None:
        self.by_namespace: dict[str, list[Mapping[str, Any]]] = {}
        for obj in objects:
            if obj.get("kind") == "ReferenceGrant":
                ns = (obj.get("metadata") or {}).get("namespace") or "default"
                self.by_namespace.setdefault(ns, []).append(obj.get("spec") or {})

    def permits(self, ref: Reference) -> bool:
        """Whether ``ref`` is allowed: same namespace, or a grant in the target's namespace."""
        group, kind, ns = ref.source
        to_group, to_kind, to_ns, to_name = ref.target
        if ns == to_ns:
            return True
        for spec in self.by_namespace.get(to_ns, []):
            sources = spec.get("from") or []
            targets = spec.get("to") or []
            if any(
                f.get("group", "") == group and f.get("kind") == kind and f.get("namespace") == ns for f in sources
            ) and any(
                t.get("group", "") == to_group and t.get("kind") == to_kind and t.get("name") in (None, "", to_name)
                for t in targets
            ):
                return True
        return False
