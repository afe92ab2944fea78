"""A Canary metric with ``templateRef``: its MetricTemplate's query run as Flagger runs it.

For each such metric, in Flagger's order (``runMetricChecks``): find the MetricTemplate
(``templateRef.namespace``, else the Canary's), read its ``secretRef`` Secret from the
same namespace, make the provider, render the query with the metric's variables
(``templates``), run it (``prometheus``) and compare the number with ``thresholdRange``
(with none, Flagger fails any value above 0). Each failure is the event Flagger
records, word for word ("Halt advancement no values found for custom metric: ...",
"Halt <canary>.<ns> advancement <metric> 12.34 > 5", "Metric template ... error: ...").
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from helpers.runtime.flagger import prometheus, templates
from helpers.runtime.servicedns import Table

Lookup = Callable[[tuple[str, str, str]], Mapping[str, Any] | None]  # (kind, namespace, name) -> object


def go_float(x: float) -> str:
    """A float64 as Go's ``%v`` prints it (``5``, ``99.5``, ``+Inf``)."""
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return str(int(x)) if x == int(x) and abs(x) < 1e21 else repr(x)


def go_fixed(x: float) -> str:
    """A float64 as Go's ``%.2f`` prints it."""
    return ("+Inf" if x > 0 else "-Inf") if math.isinf(x) else f"{x:.2f}"


def secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's keys and values: ``data`` decoded from base64, ``stringData`` over it."""
    found = {}
    for k, v in (secret.get("data") or {}).items():
        try:
            found[str(k)] = base64.b64decode(str(v), validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            continue  # the API server refuses such a Secret; nothing to read here
    found.update({str(k): str(v) for k, v in (secret.get("stringData") or {}).items()})
    return found


class TemplateChecks:
    """Runs the MetricTemplate metrics of a Canary: objects from ``lookup`` (the store),
    queries over ``session``, Service names through the in-lab DNS ``table``."""

    def __init__(self, lookup: Lookup, session: aiohttp.ClientSession, table: Table) -> None:
        self.lookup, self.session, self.table = lookup, session, table
        self.last_value: float | None = None  # the latest query's number, for tests and figures

    def _provider(self, canary: Mapping[str, Any], ref: Mapping[str, Any]) -> tuple[str, prometheus.Provider | str]:
        """(the template's query, its provider) or (``""``, the failure's event)."""
        ns = str(ref.get("namespace") or (canary.get("metadata") or {}).get("namespace") or "default")
        name = str(ref.get("name"))
        template = self.lookup(("MetricTemplate", ns, name))
        if template is None:
            return "", f'Metric template {name}.{ns} error: metrictemplate.flagger.app "{name}" not found'
        spec = template.get("spec") or {}
        provider_spec = spec.get("provider") or {}
        credentials = None
        secret_ref = provider_spec.get("secretRef")
        if isinstance(secret_ref, Mapping):
            secret = self.lookup(("Secret", ns, str(secret_ref.get("name"))))
            if secret is None:
                return "", (
                    f"Metric template {name}.{ns} secret {secret_ref.get('name')} error: "
                    f'secrets "{secret_ref.get("name")}" not found'
                )
            credentials = secret_data(secret)
        try:
            provider = prometheus.provider_of(provider_spec, credentials)
        except ValueError as e:
            return "", f"Metric template {name}.{ns} provider {provider_spec.get('type')} error: {e}"
        return str(spec.get("query") or ""), provider

    async def check(self, canary: Mapping[str, Any], metric: Mapping[str, Any]) -> str | None:
        """The event of ``metric``'s failed check, None when it passes."""
        meta = canary.get("metadata") or {}
        canary_name, canary_ns = str(meta.get("name")), str(meta.get("namespace") or "default")
        ref = metric.get("templateRef") or {}
        ns, name = str(ref.get("namespace") or canary_ns), str(ref.get("name"))
        query, provider = self._provider(canary, ref)
        if isinstance(provider, str):
            return provider
        try:
            rendered = templates.render(query, templates.model_of(canary, metric))
        except (templates.TemplateError, templates.Unsupported) as e:
            return f"Metric template {name}.{ns} query render error: {e}"
        metric_name = str(metric.get("name"))
        try:
            value = await prometheus.run_query(self.session, provider, rendered, self.table)
        except prometheus.NoValuesFound as e:
            return f"Halt advancement no values found for custom metric: {metric_name}: {e}"
        except prometheus.QueryFailed as e:
            return f"Metric query failed for {metric_name}: {e}"
        self.last_value = value
        return verdict(canary_name, canary_ns, metric, value)


def verdict(canary_name: str, canary_ns: str, metric: Mapping[str, Any], value: float) -> str | None:
    """Flagger's comparison of a custom metric's ``value`` with its ``thresholdRange``."""
    head = f"Halt {canary_name}.{canary_ns} advancement {metric.get('name')} {go_fixed(value)}"
    bounds = metric.get("thresholdRange")
    if isinstance(bounds, Mapping):
        low, high = bounds.get("min"), bounds.get("max")
        if low is not None and value < low:
            return f"{head} < {go_float(low)}"
        if high is not None and value > high:
            return f"{head} > {go_float(high)}"
        return None
    threshold = float(metric.get("threshold") or 0)  # Flagger's deprecated field, 0 when unset
    return f"{head} > {go_float(threshold)}" if value > threshold else None
