"""The Gateway API's two release channels, and what the experimental one adds.

A cluster gets the Gateway API CRDs of one channel: ``standard-install.yaml`` (what
kgateway's docs install, and the lab's default) or ``experimental-install.yaml``,
which has every standard field plus experimental ones. ``coalmine install kgateway
--channel experimental`` picks the second; the schema (``gatewayapi.schema``) then
takes the experimental fields of v1.6.1's CRDs with their constraints and CEL rules.

Of those, the local runtime implements HTTPRoute ``retry`` (the proxy retries; its
``backoff`` is accepted but not waited). The others are refused (they would change
what a route does: ``sessionPersistence``, the ``ExternalAuth`` filter,
``useDefaultGateways: All``) or warned about (a Gateway's ``defaultScope``), each
naming the field and saying it is not implemented by the local runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.errors import InvalidArgument
from helpers.runtime import regex
from helpers.runtime.gatewayapi.fields import Duration, Pattern, enum
from helpers.runtime.schema import Found, ListOf, Node, Obj, Scalar, at

STANDARD, EXPERIMENTAL = "standard", "experimental"
CHANNELS = (STANDARD, EXPERIMENTAL)
RELEASE = "v1.6.1"
INSTALL_EXPERIMENTAL = "coalmine install kgateway --channel experimental"
NOT_LOCAL = "not implemented by the local runtime"


def channel_named(name: str | None) -> str:
    """``name`` checked: ``standard`` (also for None) or ``experimental``."""
    if name is None or name == "":
        return STANDARD
    if name not in CHANNELS:
        raise InvalidArgument(f'unknown Gateway API channel "{name}": use "standard" or "experimental"')
    return name


def only_experimental(field: str, more: str = "") -> str:
    """The hint of the standard schema for a field only the experimental channel has."""
    return (
        f"{field} is in the Gateway API's experimental channel; this lab has the standard channel ({RELEASE}) "
        f"installed, which has no such field{more}: run `{INSTALL_EXPERIMENTAL}` to install the experimental one"
    )


# ── experimental fields the local runtime serves ─────────────────────────────


def _unique_codes(value: Mapping[str, Any], path: str, found: Found) -> None:
    # ``codes`` is a list of type set: the API server refuses a repeated value.
    seen: set[Any] = set()
    for i, code in enumerate(value.get("codes") or [] if isinstance(value.get("codes"), list) else []):
        if code in seen:
            found.error(f"{at(path, 'codes')}[{i}]", f"Duplicate value: {code}")
        seen.add(code)


def _backoff_not_waited(value: Mapping[str, Any], path: str, found: Found) -> None:
    if value.get("backoff") is not None:
        found.warn(at(path, "backoff"), f"{NOT_LOCAL}: the local proxy retries at once, without waiting")


RETRY = Obj(
    {"attempts": Scalar("int", 1), "backoff": Duration(), "codes": ListOf(Scalar("int", 400, 599))},
    rules=(_unique_codes, _backoff_not_waited),
)

# Experimental header values (filters' set/add, header matches): printable ASCII words
# separated by one space or tab, none at either end.
HEADER_VALUE = Pattern(
    regex.compile(r"^[!-~]+([\t ]?[!-~]+)*$"),
    "a valid header value (printable characters; single spaces or tabs between words, none at the ends)",
    4096,
)


# ── experimental fields it does not ──────────────────────────────────────────


class NotLocal(Node):
    """An experimental field the local runtime does not implement: refused, so a
    route is not served differently from the cluster."""

    def __init__(self, what: str) -> None:
        self.what = what

    def check(self, value: Any, path: str, found: Found) -> None:
        found.error(path, f"{self.what} is {NOT_LOCAL} (it is valid in the experimental channel on a cluster)")


SESSION_PERSISTENCE = NotLocal("session persistence")
EXTERNAL_AUTH = NotLocal("the ExternalAuth filter")


class DefaultGateways(Node):
    """HTTPRoute ``useDefaultGateways``: ``None`` is what the local runtime does."""

    def check(self, value: Any, path: str, found: Found) -> None:
        enum("All", "None").check(value, path, found)
        if value == "All":
            found.error(path, f"default Gateways (GEP-3793) are {NOT_LOCAL}; list the Gateway in parentRefs")


def default_scope(value: Mapping[str, Any], path: str, found: Found) -> None:
    """Gateway ``defaultScope``: without routes that use default Gateways, it does nothing."""
    if value.get("defaultScope") == "All":
        found.warn(at(path, "defaultScope"), f"{NOT_LOCAL}; ignored (no route can use default Gateways here)")


DEFAULT_SCOPE = enum("All", "None")


def unique_rule_names(value: Mapping[str, Any], path: str, found: Found) -> None:
    """Experimental HTTPRoute ``rules``: a rule name appears once."""
    rules = value.get("rules")
    names = (
        [r.get("name") for r in rules if isinstance(r, Mapping) and r.get("name")] if isinstance(rules, list) else []
    )
    if len(set(map(str, names))) != len(names):
        found.error(at(path, "rules"), "Rule name must be unique within the route")


# ── back to the standard channel ─────────────────────────────────────────────

# Where the experimental fields the schema accepts live, per kind: (list path, field).
_EXPERIMENTAL_FIELDS = {
    "HTTPRoute": (("spec", "useDefaultGateways"), ("spec.rules", "retry"), ("spec.rules", "sessionPersistence")),
    "Gateway": (("spec", "defaultScope"),),
}


def prune(obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``obj`` without the fields only the experimental channel has, and their paths
    (what the API server drops from an object the standard CRDs do not describe)."""
    out = dict(obj)
    removed: list[str] = []
    spec = dict(out.get("spec") or {}) if isinstance(out.get("spec"), Mapping) else {}
    for where, name in _EXPERIMENTAL_FIELDS.get(str(obj.get("kind")), ()):
        if where == "spec" and name in spec:
            del spec[name]
            removed.append(f"spec.{name}")
        elif where == "spec.rules" and isinstance(spec.get("rules"), list):
            rules = []
            for i, r in enumerate(spec["rules"]):
                if isinstance(r, Mapping) and name in r:
                    r = {k: v for k, v in r.items() if k != name}
                    removed.append(f"spec.rules[{i}].{name}")
                rules.append(r)
            spec["rules"] = rules
    if removed:
        out["spec"] = spec
    return out, removed
