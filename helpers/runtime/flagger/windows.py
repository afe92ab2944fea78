"""The stats the built-in checks read, over every gateway of the lab.

Each gateway keeps its own stats (one Envoy each): Gloo's proxy, and each kgateway
Gateway. A Canary's checks read its provider's clusters wherever they are (gloo's
``...-canaryupstream-...``, or the ``kube-svc:...-canary-...`` clusters of the
Gateways its HTTPRoute attaches to), so the controller reads them all through one
``AllGateways``: the union of the cluster names, and a cluster's window summed over
the gateways that have it, as a PromQL ``sum(rate(...))`` over their series would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from helpers.runtime.proxy.stats import quantile


class Windows(Protocol):
    """One gateway's stats, as ``proxy.stats.UpstreamStats`` keeps them."""

    def names(self) -> Iterable[str]: ...

    def window(self, cluster: str, seconds: float) -> dict[str, Any]: ...


class AllGateways:
    """Several gateways' stats read as one (``flagger.metrics.Windows``); ``sources``
    is asked each time, so gateways that come and go are followed."""

    def __init__(self, sources: Callable[[], Iterable[Windows]]) -> None:
        self._sources = sources

    def sources(self) -> list[Windows]:
        """Each gateway's stats once (gateways sharing one object count once)."""
        return list({id(s): s for s in self._sources()}.values())

    def names(self) -> list[str]:
        return sorted({name for source in self.sources() for name in source.names()})

    def window(self, cluster: str, seconds: float) -> dict[str, Any]:
        found: dict[str, Any] | None = None
        for source in self.sources():
            if cluster not in source.names():
                continue
            w = source.window(cluster, seconds)
            if found is None:
                found = {**w, "by_class": dict(w["by_class"]), "latency_ms": dict(w["latency_ms"])}
                continue
            found["requests"] += w["requests"]
            for k, n in w["by_class"].items():
                found["by_class"][k] = found["by_class"].get(k, 0) + n
            counts = found["latency_ms"]["counts"]
            found["latency_ms"]["counts"] = [a + b for a, b in zip(counts, w["latency_ms"]["counts"], strict=True)]
        if found is None:
            return {"requests": 0, "by_class": {}, "latency_ms": {"buckets": [], "counts": []}, "p99_ms": None}
        found["p99_ms"] = quantile(found["latency_ms"]["counts"], 0.99)  # quantiles do not add up: counts do
        return found
