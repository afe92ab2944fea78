"""Progressive delivery builders: a Flagger Canary, the VirtualService in front of it and
the rollouts that start an analysis, as plain dicts you can read, change and apply.

    from helpers.builders.progressive import canary, delegating_virtual_service, rollout
    from helpers.builders.routing import to_yaml
    print(to_yaml(canary()))               # manifests/flagger/canary.yaml
    lab.apply(canary(), delegating_virtual_service())
    lab.apply(rollout("v2"))               # a new pod template: Flagger starts an analysis

``canary()`` is ``manifests/flagger/canary.yaml``, ``delegating_virtual_service()`` is
``virtualservice.yaml``, ``rollout("v2")`` and ``rollout("v3", error_rate=...)`` are
``rollout-good.yaml`` and ``rollout-bad.yaml``, ``canary(provider="gatewayapi:v1")`` is
``gatewayapi/canary.yaml`` (a test keeps builders and files equal).
The Canary is Flagger's own ``flagger.app/v1beta1`` kind: the same object runs on a
cluster with real Flagger. Builders never change what you pass them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from helpers import kinds
from helpers.errors import InvalidArgument

API_VERSION = kinds.FLAGGER_V1BETA1
NAME = "petstore"  # the Deployment, the Canary, and the RouteTable Flagger makes
NAMESPACE = "default"
PORT = 80  # the port of the Services Flagger makes (petstore, -primary, -canary)
TARGET_PORT = 8080  # the petstore's container port
LOADTESTER = "http://flagger-loadtester.default/"
GATEWAY = "http://gateway-proxy.gloo-system"
GLOO, GATEWAY_API = "gloo", "gatewayapi:v1"  # the providers the local runtime runs
KGATEWAY = "kgateway-system/http"  # the Gateway of manifests/gateway-api/0-gateway.yaml
KGATEWAY_PORT = 8080  # its listener's port
AB_HEADER = "x-canary"
VERSIONS = ("v1", "v2", "v3")
_PETSTORE = Path(__file__).resolve().parents[1] / "manifests" / "flagger" / "petstore.yaml"


def load_test(
    rate: int = 20,
    workers: int = 2,
    duration: str = "1m",
    headers: Mapping[str, str] | None = None,
    gateway: str = GATEWAY,
) -> str:
    """The loadtester's ``hey`` command: ``workers`` clients each sending ``rate``
    requests a second for ``duration`` to the petstore's API through ``gateway`` (Gloo's
    by default; ``gateway_url()`` for a Gateway API Gateway), with ``headers`` on every
    request (``-H 'x-canary: insider'``)."""
    extra = "".join(f" -H '{k}: {v}'" for k, v in (headers or {}).items())
    return f"hey -z {duration} -q {rate} -c {workers}{extra} {gateway}/api/pets"


def gateway_url(gateway: str = KGATEWAY, port: int = KGATEWAY_PORT) -> str:
    """A Gateway's address inside the cluster: kgateway gives each Gateway a Service
    of the same name (``http://http.kgateway-system:8080``)."""
    namespace, _, name = gateway.partition("/")
    if not namespace or not name:
        raise InvalidArgument(f'gateway must be "namespace/name", e.g. "{KGATEWAY}", not {gateway!r}')
    return f"http://{name}.{namespace}:{port}"


def webhook(name: str, type: str, url: str = LOADTESTER, **metadata: str) -> dict[str, Any]:
    """One ``analysis.webhooks`` entry: Flagger calls ``url`` at the moment ``type``
    names (``rollout`` every interval, ``confirm-promotion`` before promoting, ...);
    ``metadata`` is sent along (the loadtester runs ``cmd``)."""
    found: dict[str, Any] = {"name": name, "type": type, "url": url}
    if "cmd" in metadata:
        found["timeout"] = "5s"
    if metadata:
        found["metadata"] = {"type": "cmd", **metadata} if "cmd" in metadata else dict(metadata)
    return found


def load_tests(cmd: str) -> list[dict[str, Any]]:
    """The two webhooks that keep a load test running during an analysis: ``pre-rollout``
    starts it before the first check (a rollout hook runs just before each check, so the
    first check would find no traffic); ``rollout`` restarts it whenever it has ended
    (the loadtester runs one copy of a command per canary at a time)."""
    return [webhook("load-test-start", "pre-rollout", cmd=cmd), webhook("load-test", "rollout", cmd=cmd)]


def gate(type: str = "confirm-promotion") -> dict[str, Any]:
    """A manual gate: Flagger asks the loadtester's ``/gate/check`` before it goes on and
    waits while the gate is closed. Open it with ``/gate/open`` (the dashboard's button)."""
    return webhook(f"{type}-gate", type, LOADTESTER + "gate/check")


METRIC_INTERVAL = "15s"  # three scrapes of Flagger's chart Prometheus (every 5 s): rate() needs two
PROMETHEUS = "http://flagger-prometheus.gloo-system:9090"  # Flagger chart's name for its Prometheus (Gloo's namespace)
# kgateway names the cluster of a Service kube_<namespace>_<service>_<port> (Envoy's envoy_cluster_name).
_KGATEWAY_CLUSTER = 'envoy_cluster_name=~"kube_{{ namespace }}_{{ target }}-%s_[0-9]+"'
_P95 = "histogram_quantile(0.95, sum(rate(envoy_cluster_upstream_rq_time_bucket{%s}[{{ interval }}])) by (le))"
LATENCY_REGRESSION_QUERY = f"""{_P95 % (_KGATEWAY_CLUSTER % "canary")}
-
{_P95 % (_KGATEWAY_CLUSTER % "primary")}
"""


def success_rate(minimum: float = 99, interval: str = METRIC_INTERVAL) -> dict[str, Any]:
    """Flagger's built-in check: at least ``minimum`` % of the canary's requests are not
    5xx, over the last ``interval``."""
    return {"name": "request-success-rate", "thresholdRange": {"min": minimum}, "interval": interval}


def duration(maximum_ms: float = 500, interval: str = METRIC_INTERVAL) -> dict[str, Any]:
    """Flagger's built-in check: the canary's p99 latency is at most ``maximum_ms``
    milliseconds, over the last ``interval``."""
    return {"name": "request-duration", "thresholdRange": {"max": maximum_ms}, "interval": interval}


def metric_template(name: str, query: str, namespace: str = NAMESPACE, address: str = PROMETHEUS) -> dict[str, Any]:
    """A Flagger ``MetricTemplate``: a PromQL ``query`` that Flagger runs against the
    Prometheus at ``address`` for each check of a metric that names it (``templateRef``).
    The query may use Flagger's variables ``{{ namespace }}``, ``{{ target }}`` (the
    Deployment) and ``{{ interval }}`` (the metric's)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "MetricTemplate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"provider": {"type": "prometheus", "address": address}, "query": query},
    }


def template_metric(
    name: str,
    maximum: float | None = None,
    minimum: float | None = None,
    interval: str = METRIC_INTERVAL,
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """A Canary metric checked by the MetricTemplate ``name``: the query's number must
    be at most ``maximum`` and at least ``minimum``, over the last ``interval``."""
    if maximum is None and minimum is None:
        raise InvalidArgument("give a maximum or a minimum: a template metric checks its query's number against it")
    limits = {k: v for k, v in (("min", minimum), ("max", maximum)) if v is not None}
    return {
        "name": name,
        "templateRef": {"name": name, "namespace": namespace},
        "thresholdRange": limits,
        "interval": interval,
    }


def latency_regression() -> dict[str, Any]:
    """The MetricTemplate of ``manifests/flagger/gatewayapi/latency-regression.yaml``: how
    many ms the canary's p95 is above the primary's, from kgateway's Envoy histograms."""
    return metric_template("latency-regression", LATENCY_REGRESSION_QUERY)


def canary(
    interval: str = "2s",
    threshold: int = 2,
    step_weight: int = 10,
    max_weight: int = 50,
    metrics: Sequence[Mapping[str, Any]] | None = None,
    webhooks: Sequence[Mapping[str, Any]] | None = None,
    provider: str = GLOO,
    gateway: str = KGATEWAY,
) -> dict[str, Any]:
    """The Canary of ``manifests/flagger/canary.yaml``: provider gloo, target the
    Deployment ``petstore``, every ``interval`` the canary gets ``step_weight`` % more
    traffic up to ``max_weight`` while the checks pass; ``threshold`` failed checks roll
    it back. By default the checks are ``success_rate()`` and ``duration()`` and the
    webhooks are ``load_tests(...)``; pass ``metrics`` or ``webhooks`` to replace them.

    ``provider="gatewayapi:v1"`` is ``manifests/flagger/gatewayapi/canary.yaml``: Flagger
    makes an HTTPRoute attached to ``gateway`` ("namespace/name") instead of a
    RouteTable, and the load test goes through that Gateway."""
    for name, value, low, high in (
        ("threshold", threshold, 1, 1000),
        ("step_weight", step_weight, 1, 100),
        ("max_weight", max_weight, 1, 100),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidArgument(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    analysis: dict[str, Any] = {
        "interval": interval,
        "threshold": threshold,
        "maxWeight": max_weight,
        "stepWeight": step_weight,
    }
    return _canary(analysis, metrics, webhooks, provider, gateway)


def ab_canary(
    header: str = AB_HEADER,
    value: str = "insider",
    iterations: int = 5,
    interval: str = "2s",
    threshold: int = 2,
    webhooks: Sequence[Mapping[str, Any]] | None = None,
    provider: str = GLOO,
    gateway: str = KGATEWAY,
) -> dict[str, Any]:
    """A/B testing: only requests with ``header: value`` reach the canary, for
    ``iterations`` intervals of checks, then it is promoted. No weights: ``match`` and
    ``iterations`` replace ``stepWeight`` and ``maxWeight``. The load test sends the header.
    ``provider`` and ``gateway`` as for ``canary()``."""
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise InvalidArgument(f"iterations must be a whole number of at least 1, not {iterations!r}")
    analysis: dict[str, Any] = {
        "interval": interval,
        "threshold": threshold,
        "iterations": iterations,
        "match": [{"headers": {header: {"exact": value}}}],
    }
    if webhooks is None:
        webhooks = load_tests(load_test(headers={header: value}, gateway=_load_target(provider, gateway)))
    return _canary(analysis, None, webhooks, provider, gateway)


def _load_target(provider: str, gateway: str) -> str:
    if provider not in (GLOO, GATEWAY_API):
        raise InvalidArgument(f"provider must be {GLOO!r} or {GATEWAY_API!r} (the local runtime's), not {provider!r}")
    return gateway_url(gateway) if provider == GATEWAY_API else GATEWAY


def _canary(
    analysis: dict[str, Any],
    metrics: Sequence[Mapping[str, Any]] | None,
    webhooks: Sequence[Mapping[str, Any]] | None,
    provider: str = GLOO,
    gateway: str = KGATEWAY,
) -> dict[str, Any]:
    target = _load_target(provider, gateway)
    analysis["metrics"] = copy.deepcopy(list(metrics if metrics is not None else [success_rate(), duration()]))
    hooks = webhooks if webhooks is not None else load_tests(load_test(gateway=target))
    analysis["webhooks"] = copy.deepcopy(list(hooks))
    service: dict[str, Any] = {"port": PORT, "targetPort": TARGET_PORT}
    if provider == GATEWAY_API:
        namespace, _, name = gateway.partition("/")
        service["gatewayRefs"] = [{"name": name, "namespace": namespace}]
    return {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
            "progressDeadlineSeconds": 60,
            "service": service,
            "analysis": analysis,
        },
    }


def with_webhook(obj: Mapping[str, Any], hook: Mapping[str, Any]) -> dict[str, Any]:
    """A NEW Canary: ``obj`` with ``hook`` added to its webhooks (e.g. ``gate()``)."""
    found = copy.deepcopy(dict(obj))
    found["spec"]["analysis"].setdefault("webhooks", []).append(copy.deepcopy(dict(hook)))
    return found


def with_metrics(obj: Mapping[str, Any], metrics: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A NEW Canary: ``obj`` whose checks are ``metrics`` (e.g. ``[success_rate()]``)."""
    found = copy.deepcopy(dict(obj))
    found["spec"]["analysis"]["metrics"] = copy.deepcopy(list(metrics))
    return found


def delegating_virtual_service(route_table: str = NAME, fallback: bool = False) -> dict[str, Any]:
    """The VirtualService ``petstore`` that hands every request under ``/`` to the
    RouteTable ``route_table`` (in ``default``), which Flagger creates and steers.

    With ``fallback``, a second route sends what the table does not match to the
    primary: needed for A/B testing, where the table's one route matches only requests
    with the header. Gloo puts the table's routes in place of the delegating route, so
    the fallback is tried after them."""
    routes: list[dict[str, Any]] = [
        {"matchers": [{"prefix": "/"}], "delegateAction": {"ref": {"name": route_table, "namespace": NAMESPACE}}}
    ]
    if fallback:
        routes.append(
            {
                "matchers": [{"prefix": "/"}],
                "routeAction": {"single": {"upstream": {"name": primary_upstream(), "namespace": NAMESPACE}}},
            }
        )
    return {
        "apiVersion": kinds.GLOO_GATEWAY_V1,
        "kind": "VirtualService",
        "metadata": {"name": NAME, "namespace": kinds.GLOO_NAMESPACE},
        "spec": {"displayName": NAME, "virtualHost": {"domains": ["*"], "routes": routes}},
    }


def primary_upstream(port: int = PORT) -> str:
    """The Upstream Flagger's Gloo router makes for the primary:
    ``<namespace>-<name>-primaryupstream-<port>``, in the Canary's namespace."""
    return f"{NAMESPACE}-{NAME}-primaryupstream-{port}"


def canary_upstream(port: int = PORT) -> str:
    """The Upstream of the canary (the target's pods): ``default-petstore-canaryupstream-80``."""
    return f"{NAMESPACE}-{NAME}-canaryupstream-{port}"


def rollout(version: str, error_rate: float = 0, latency_ms: float = 0) -> dict[str, Any]:
    """The Deployment ``petstore`` running ``version`` ("v1", "v2" or "v3"): its pod
    template changes, so an applied Canary starts an analysis. ``error_rate`` (0..1) of
    the API requests answer 500 and ``latency_ms`` is added to each, to make a bad
    version: ``rollout("v2")`` is ``rollout-good.yaml``, ``rollout("v3", error_rate=0.3)``
    ``rollout-bad.yaml`` and ``rollout("v3", latency_ms=1000)`` ``rollout-slow.yaml``."""
    if version not in VERSIONS:
        raise InvalidArgument(f"version must be one of {', '.join(VERSIONS)} (the petstore's), not {version!r}")
    if not 0 <= error_rate <= 1:
        raise InvalidArgument(f"error_rate must be between 0 and 1, not {error_rate!r}")
    if latency_ms < 0:
        raise InvalidArgument(f"latency_ms must be 0 or more, not {latency_ms!r}")
    deployment = petstore_deployment()
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    faults = [
        {"name": k, "value": _env_value(v)} for k, v in (("ERROR_RATE", error_rate), ("LATENCY_MS", latency_ms)) if v
    ]
    env: list[dict[str, Any]] = []
    for e in container.get("env") or []:
        if e.get("name") == "VERSION":
            env += [{"name": "VERSION", "value": version}, *faults]  # right after VERSION, as the files
        elif e.get("name") not in ("ERROR_RATE", "LATENCY_MS"):
            env.append(e)
    container["env"] = env
    return deployment


def petstore_deployment() -> dict[str, Any]:
    """The Deployment of ``manifests/flagger/petstore.yaml`` (v1), a new copy each time."""
    with _PETSTORE.open(encoding="utf-8") as f:
        for doc in yaml.safe_load_all(f):
            if doc and doc.get("kind") == "Deployment":
                return dict(doc)
    raise InvalidArgument(f"{_PETSTORE} has no Deployment")


def _env_value(value: float) -> str:
    return f"{value:g}"
