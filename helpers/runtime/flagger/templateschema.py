"""What a MetricTemplate may say, checked as Flagger's CRD checks it (1.44).

``spec.provider`` (``type`` required, one of the CRD's enum; ``address``, ``headers``,
``secretRef.name``, ``region``, ``insecureSkipVerify``) and ``spec.query`` are
required; unknown fields are refused. The local runtime runs the ``prometheus``
provider only (the lab's Prometheus, or any reachable one): another type is refused,
saying so. A query using Go template constructs the local renderer lacks is refused;
one Go would fail to run too (an unknown function) is accepted with a warning, as
on a cluster, where the check then fails at every analysis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from helpers.kinds import FLAGGER_V1BETA1
from helpers.runtime.flagger import templates
from helpers.runtime.schema import BOOL, STR, Anything, Found, Ignored, ListOf, MapOf, Obj, Scalar, at, shown
from helpers.runtime.servicedns import PROMETHEUS_URL as LAB_PROMETHEUS

PROVIDER_TYPES = tuple(
    "prometheus influxdb datadog externalmetrics stackdriver cloudwatch newrelic graphite dynatrace keptn "
    "splunk".split()
)
LOCAL_TYPES = ("prometheus",)


def _provider(value: Mapping[str, Any], path: str, found: Found) -> None:
    kind = value.get("type")
    if isinstance(kind, str) and kind in PROVIDER_TYPES and kind not in LOCAL_TYPES:
        found.error(
            at(path, "type"),
            f'"{kind}": the local runtime runs MetricTemplates with provider prometheus only '
            f"(the lab's Prometheus after `coalmine install prometheus`: {LAB_PROMETHEUS})",
        )
    address = value.get("address")
    if kind in LOCAL_TYPES and not address:
        found.warn(
            at(path, "address"),
            f"missing: Flagger fails every check with this template (e.g. address: {LAB_PROMETHEUS})",
        )
    elif isinstance(address, str) and urlsplit(address).scheme not in ("http", "https"):
        found.warn(
            at(path, "address"),
            f'"{address}" is not an http:// or https:// URL: Flagger\'s queries to it fail (e.g. {LAB_PROMETHEUS})',
        )


def _query(value: Mapping[str, Any], path: str, found: Found) -> None:
    query = value.get("query")
    if not isinstance(query, str):
        return
    try:
        templates.parse(query)
    except templates.Unsupported as e:
        found.error(at(path, "query"), str(e))
    except templates.TemplateError as e:
        found.warn(at(path, "query"), f"Flagger cannot render it ({e}): every check with this template fails")


_SPEC = Obj(
    {
        "provider": Obj(
            {
                "type": Scalar("string", choices=PROVIDER_TYPES),
                "address": STR,
                "headers": MapOf(ListOf(STR)),
                "secretRef": Obj({"name": STR}, required=("name",)),
                "region": Ignored("not used by the prometheus provider; ignored (on a cluster too)"),
                "insecureSkipVerify": BOOL,
            },
            required=("type",),
            rules=(_provider,),
        ),
        "query": STR,
    },
    required=("provider", "query"),
    rules=(_query,),
)


def flagger_object(spec: Obj) -> Obj:
    """The envelope every Flagger kind shares (apiVersion, kind, metadata with a name,
    status), around that kind's ``spec``."""
    return Obj(
        {
            "apiVersion": STR,
            "kind": STR,
            "metadata": Obj({"name": STR, "namespace": STR}, required=("name",), open=True),
            "spec": spec,
            "status": Anything(),
        },
        required=("metadata", "spec"),
    )


_TEMPLATE = flagger_object(_SPEC)


def check_metric_template(obj: Any) -> tuple[list[str], list[str]]:
    """(errors, warnings) of one MetricTemplate, each starting with the field path."""
    found = Found()
    if not isinstance(obj, Mapping):
        found.error("", f"expected an object (a YAML mapping), got {shown(obj)}")
        return found.errors, found.warnings
    if obj.get("apiVersion") != FLAGGER_V1BETA1:
        found.error("apiVersion", f'MetricTemplate is "{FLAGGER_V1BETA1}", not "{obj.get("apiVersion")}"')
    _TEMPLATE.check(obj, "", found)
    return found.errors, found.warnings
