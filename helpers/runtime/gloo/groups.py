"""UpstreamGroups as Gloo 1.22.1 treats them: stored whatever they point at, reported on.

No webhook checks a group (Gloo's chart registers none for ``upstreamgroups``), so
every group its CRD's schema lets through is stored. Gloo then writes in the group's
status (``reportedBy: gloo``, Rejected) each destination it cannot use:

- ``destination # N: destination is nil``: an entry without ``destination``;
- ``no destination type specified``: a destination with neither ``upstream`` nor ``kube``;
- ``destination # N: upstream not found: list did not find upstream <ns>.<name>``
  (an ``upstream`` without a namespace is looked for in the group's namespace).

The group is used all the same. A route that uses it gets an error (its VirtualService
or RouteTable is Rejected) when the group has no destinations, a destination without a
type, or weights adding up to less than 1; and a warning for each destination whose
target is missing, whose share Envoy answers 503 (no such cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from helpers.runtime.gloo.fields import LOW_TOTAL_WEIGHT, NO_DESTINATIONS
from helpers.runtime.gloo.status import Report
from helpers.runtime.routes import Destination, WeightedDestination

NO_TYPE = "no destination type specified"  # Gloo's DestinationToUpstreamRef error

# (destination spec, its path, report for a missing target, report for the rest) → Destination
Resolve = Callable[[Mapping[str, Any], str, Report, Report], Destination]


@dataclass(frozen=True)
class Group:
    """An UpstreamGroup as the routes that use it see it."""

    destinations: tuple[WeightedDestination, ...]
    errors: tuple[str, ...] = ()  # on every route that uses the group
    warnings: tuple[str, ...] = ()


def translate_group(spec: Mapping[str, Any], namespace: str, resolve: Resolve, report: Report) -> Group:
    """The group ``spec`` (in ``namespace``) for its routes; Gloo's errors about the
    group itself go on ``report``."""
    entries = [e for e in spec.get("destinations") or [] if isinstance(e, Mapping)]
    dests: list[WeightedDestination] = []
    untyped, warnings = False, []
    for i, entry in enumerate(entries):
        path, target = f"spec.destinations[{i}]", entry.get("destination")
        if not isinstance(target, Mapping):
            report.errors.append(f"{path}: destination # {i + 1}: destination is nil")
            untyped = True
            continue
        if target.get("upstream") is None and target.get("kube") is None:
            report.errors.append(f"{path}.destination: {NO_TYPE}")
            untyped = True
            continue
        missing, other = Report(), Report()
        dest = resolve(target, f"{path}.destination", missing, other)
        if missing.warnings:
            report.errors.append(
                f"{path}.destination: destination # {i + 1}: upstream not found: "
                f"list did not find upstream {_upstream_ref(target, namespace)}"
            )
        warnings += missing.warnings + other.warnings
        dests.append(WeightedDestination(dest, entry.get("weight") or 0))
    # Gloo's setWeightedClusters: the first problem it meets is the route's error.
    if not entries:
        errors: tuple[str, ...] = (NO_DESTINATIONS,)
    elif untyped:
        errors = (NO_TYPE,)
    elif sum(d.weight for d in dests) < 1:
        errors = (LOW_TOTAL_WEIGHT,)
    else:
        errors = ()
    return Group(tuple(dests), errors, tuple(warnings))


def _upstream_ref(target: Mapping[str, Any], namespace: str) -> str:
    # What Gloo looks up: the upstream's ref, or the in-memory upstream of a Service port.
    if target.get("upstream") is not None:
        ref = target["upstream"]
        return f"{ref.get('namespace') or namespace}.{ref.get('name') or ''}"
    kube = target["kube"]
    ref = kube.get("ref") or {}
    ns, name = ref.get("namespace") or namespace, ref.get("name") or ""
    return f"{ns}.kube-svc:{ns}-{name}-{kube.get('port') or 0}"
