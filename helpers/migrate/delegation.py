"""A Gloo ``delegateAction`` as kgateway route delegation.

Gloo hands a path prefix to RouteTables, named (``ref``) or picked by label
(``selector``); kgateway hands it to child HTTPRoutes: the parent rule's backendRef
names an HTTPRoute (``group: gateway.networking.k8s.io, kind: HTTPRoute``, name
``"*"`` for every HTTPRoute of a namespace) or a label value (``group:
delegation.kgateway.dev, kind: label``, children labelled
``delegation.kgateway.dev/label: <value>``; namespace ``all`` for every namespace).
In both, a child's paths must start with the prefix the parent delegates, and a
parent delegates with a prefix match only (kgateway.dev docs, route-delegation
overview). A RouteTable converts to a child HTTPRoute without ``parentRefs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.kinds import GLOO_NAMESPACE

HTTPROUTE_GROUP = "gateway.networking.k8s.io"
LABEL_GROUP = "delegation.kgateway.dev"
DELEGATION_LABEL = "delegation.kgateway.dev/label"


class Delegation:
    """The ``delegateAction`` part of the converter (mixed into it, as ``Filters`` is)."""

    vs_ns: str
    delegated_labels: dict[tuple[str, str], str]

    def warn(self, path: str, message: str) -> None:
        raise NotImplementedError

    def delegate(self, route: Mapping[str, Any], path: str) -> list[dict[str, Any]] | None:
        """The parent rule's backendRefs for ``route``'s delegateAction; None (with a
        warning) when kgateway cannot express it."""
        action = route.get("delegateAction") or {}
        matchers = route.get("matchers") or [{}]
        if any(m.get("exact") is not None or m.get("regex") is not None for m in matchers):
            self.warn(f"{path}.matchers", "a delegating route must match a prefix (in Gloo and kgateway); left out")
            return None
        where = f"{path}.delegateAction"
        if action.get("selector") is not None:
            return self._by_selector(action["selector"], where)
        ref = action.get("ref") or {k: action[k] for k in ("name", "namespace") if k in action}
        if not ref.get("name"):
            self.warn(where, "names no RouteTable (ref.name) and has no selector; left out")
            return None
        ns = ref.get("namespace") or self.vs_ns
        self.warn(where, f"delegates to the HTTPRoute {ns}/{ref['name']} (convert its RouteTable too)")
        return [{"group": HTTPROUTE_GROUP, "kind": "HTTPRoute", "name": ref["name"], "namespace": ns}]

    def _by_selector(self, selector: Mapping[str, Any], where: str) -> list[dict[str, Any]] | None:
        labels = dict(selector.get("labels") or {})
        namespaces = list(selector.get("namespaces") or [self.vs_ns])
        if selector.get("expressions") or len(labels) != 1:
            self.warn(
                f"{where}.selector",
                "kgateway selects child routes by one label value (delegation.kgateway.dev/label), not by "
                f"{len(labels)} labels or expressions; left out: name the children instead",
            )
            return None
        [(key, value)] = labels.items()
        refs = []
        for ns in namespaces:
            refs.append({"group": LABEL_GROUP, "kind": "label", "name": value, "namespace": "all" if ns == "*" else ns})
            self.delegated_labels[(ns, f"{key}={value}")] = value
        self.warn(
            f"{where}.selector",
            f'children are picked by the label {DELEGATION_LABEL}: "{value}", not by {key}={value}: '
            "label the child HTTPRoutes so",
        )
        return refs


def child_labels(table: Mapping[str, Any], selected: Mapping[tuple[str, str], str]) -> dict[str, str]:
    """The kgateway label a converted RouteTable needs for the selectors that picked it."""
    meta = table.get("metadata") or {}
    ns = meta.get("namespace") or GLOO_NAMESPACE
    for k, v in (meta.get("labels") or {}).items():
        for where in (ns, "*"):
            if (where, f"{k}={v}") in selected:
                return {DELEGATION_LABEL: selected[(where, f"{k}={v}")]}
    return {}
