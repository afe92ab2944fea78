"""Progressive delivery, live: a Flagger Canary's analysis as it happens.

    from helpers.live.progressive import CanaryWatch, follow_rollout
    lab.apply(progressive.rollout("v2"))
    report = follow_rollout(lab)  # prints each step until Succeeded or Failed
    report.phase, report.seconds  # "Succeeded", how long it took

``CanaryWatch`` samples the Canary's status and the gateway's per-upstream stats, and
computes for the primary and the canary what Flagger's checks compute: the share of
requests that were not 5xx and the p99 latency over the metric's interval. ``progressive_view``
draws it (``RolloutPlot``, ``ProgressiveView``); ``coalmine demo --progressive`` saves the same plot
after a good and a bad rollout. Nothing here writes the Canary's state: the canary
controller does, from the same numbers.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from helpers.builders import progressive
from helpers.builders.progressive import NAME, NAMESPACE
from helpers.durations import parse_duration
from helpers.errors import NotFound
from helpers.loading import manifests_dir

if TYPE_CHECKING:
    import pandas as pd

    from helpers.lab import Lab

DONE = ("Succeeded", "Failed")
WAIT_S = 120.0
ROLES = {"primary": "#4C72B0", "canary": "#DD8452"}


class Sample(NamedTuple):
    """What the Canary and the gateway said at ``t`` (seconds since the watch began)."""

    t: float
    phase: str
    weight: int
    failed_checks: int
    iterations: int
    totals: dict[str, tuple[int, int, list[int]]]  # role -> requests, 5xx, latency bucket counts


class CanaryWatch:
    """Samples the Canary ``name`` and the gateway's stats of its primary and canary
    (the clusters ``role_clusters`` names for its provider: gloo or gatewayapi:v1).

    ``metrics`` of the Canary's spec give the thresholds and the window of each check;
    ``checks(role)`` computes them now for ``"primary"`` or ``"canary"``.
    """

    def __init__(self, lab: Lab, name: str = NAME, namespace: str = NAMESPACE, keep: int = 3600) -> None:
        self.lab, self.name, self.namespace, self.keep = lab, name, namespace, keep
        self.started = time.monotonic()
        self.samples: list[Sample] = []
        self.canary: dict[str, Any] = {}
        self.buckets: list[float] = []

    @property
    def elapsed(self) -> float:
        """Seconds since the watch began."""
        return time.monotonic() - self.started

    def poll(self) -> Sample:
        """Read the Canary and the stats now; returns (and keeps) the sample."""
        found = self.lab.objects("canaries", self.name, self.namespace)
        if not found:
            raise NotFound(f'canaries "{self.name}" not found: apply manifests/flagger/canary.yaml first')
        self.canary = found[0]
        status = self.canary.get("status") or {}
        totals: dict[str, tuple[int, int, list[int]]] = {}
        found_stats = self.lab.stats()
        found_stats = found_stats.get("upstreams") or found_stats
        for role, clusters in role_clusters(self.canary).items():
            for stats in (found_stats.get(cluster) for cluster in clusters):
                if isinstance(stats, Mapping):
                    totals[role] = _added(totals.get(role), stats)
                    self.buckets = list((stats.get("latency_ms") or {}).get("buckets") or self.buckets)
        sample = Sample(
            self.elapsed,
            str(status.get("phase") or ""),
            int(status.get("canaryWeight") or 0),
            int(status.get("failedChecks") or 0),
            int(status.get("iterations") or 0),
            totals,
        )
        self.samples.append(sample)
        del self.samples[: -self.keep]
        return sample

    def thresholds(self) -> dict[str, tuple[float | None, str]]:
        """``{metric name: (threshold, interval)}`` of the Canary's built-in checks."""
        found: dict[str, tuple[float | None, str]] = {}
        for metric in ((self.canary.get("spec") or {}).get("analysis") or {}).get("metrics") or []:
            limits = metric.get("thresholdRange") or {}
            found[str(metric.get("name"))] = (limits.get("min", limits.get("max")), str(metric.get("interval", "1m")))
        return found

    def step_targets(self) -> list[int]:
        """The weights the analysis steps through: ``stepWeights``, or ``stepWeight``
        up to ``maxWeight`` (Flagger's defaults: maxWeight 100)."""
        analysis = (self.canary.get("spec") or {}).get("analysis") or {}
        if analysis.get("stepWeights"):
            return [int(w) for w in analysis["stepWeights"]]
        step, top = int(analysis.get("stepWeight") or 0), int(analysis.get("maxWeight") or 100)
        return list(range(step, top + 1, step)) if step else []

    def checks(self, role: str, seconds: float = 4.0, at: int = -1) -> tuple[float | None, float | None, int]:
        """``(success %, p99 ms, requests)`` of ``role`` over the ``seconds`` before
        sample ``at``; None where no request was answered, as Flagger's "no values"."""
        if not self.samples:
            return None, None, 0
        last = self.samples[at]
        first = next((s for s in self.samples if s.t >= last.t - seconds), last)
        if first is last and len(self.samples) > 1:
            first = self.samples[max(0, self.samples.index(last) - 1)]
        r1, f1, c1 = last.totals.get(role, (0, 0, []))
        r0, f0, c0 = first.totals.get(role, (0, 0, []))
        requests = r1 - r0
        if requests <= 0:
            return None, None, 0
        counts = [a - (c0[i] if i < len(c0) else 0) for i, a in enumerate(c1)]
        return 100.0 * (requests - (f1 - f0)) / requests, _p99(counts, self.buckets), requests

    def frame(self) -> pd.DataFrame:
        """One row per sample: ``t``, ``phase``, ``weight``, ``failed_checks``, and
        ``<role>_success``, ``<role>_p99_ms`` over the checks' window."""
        import pandas as pd

        window = duration_seconds(self.thresholds().get("request-success-rate", (None, "4s"))[1])
        rows = []
        for i, s in enumerate(self.samples):
            row: dict[str, Any] = {"t": s.t, "phase": s.phase, "weight": s.weight, "failed_checks": s.failed_checks}
            for role in ROLES:
                row[f"{role}_success"], row[f"{role}_p99_ms"], _ = self.checks(role, window, i)
            rows.append(row)
        return pd.DataFrame(rows, columns=["t", "phase", "weight", "failed_checks", *_metric_columns()])

    def requests(self, role: str, since: float) -> tuple[int, int]:
        """``(requests, 5xx)`` that ``role`` answered since ``since`` (watch seconds)."""
        if not self.samples:
            return 0, 0
        first = next((s for s in self.samples if s.t >= since), self.samples[-1])
        r1, f1, _ = self.samples[-1].totals.get(role, (0, 0, []))
        r0, f0, _ = first.totals.get(role, (0, 0, []))
        return r1 - r0, f1 - f0

    def transitions(self) -> list[tuple[float, str]]:
        """``(t, phase)`` each time the phase changed."""
        found: list[tuple[float, str]] = []
        for s in self.samples:
            if not found or found[-1][1] != s.phase:
                found.append((s.t, s.phase))
        return found


def role_clusters(canary: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """The keys of ``lab.stats()`` that count each role's requests, from the Canary's
    provider and target, named as Flagger names what it makes (``<apex>`` is
    ``spec.service.name``, else ``spec.targetRef.name``; ``<port>`` is ``spec.service.port``):

    - ``gatewayapi:v1``: the HTTPRoute's backends, the Services ``<apex>-primary`` and
      ``<apex>-canary``, whose clusters the local gateway names
      ``kube-svc:<namespace>-<service>-<port>``;
    - gloo: the Upstreams ``<namespace>-<apex>-primaryupstream-<port>`` and
      ``...-canaryupstream-<port>`` (``<namespace>.`` before the name when another
      namespace has an Upstream of that name)."""
    meta, spec = canary.get("metadata") or {}, canary.get("spec") or {}
    ns = str(meta.get("namespace") or NAMESPACE)
    service = spec.get("service") or {}
    apex = str(service.get("name") or (spec.get("targetRef") or {}).get("name") or meta.get("name") or NAME)
    port = service.get("port") or progressive.PORT
    if spec.get("provider") == progressive.GATEWAY_API:
        return {role: (f"kube-svc:{ns}-{apex}-{role}-{port}",) for role in ROLES}
    upstreams = {role: f"{ns}-{apex}-{role}upstream-{port}" for role in ROLES}
    return {role: (name, f"{ns}.{name}") for role, name in upstreams.items()}


def _added(totals: tuple[int, int, list[int]] | None, stats: Mapping[str, Any]) -> tuple[int, int, list[int]]:
    """``totals`` (requests, 5xx, latency bucket counts) plus one cluster's ``stats``."""
    requests, fives, counts = totals or (0, 0, [])
    more = list((stats.get("latency_ms") or {}).get("counts") or [])
    counts = [a + b for a, b in zip(counts, more, strict=True)] if counts and more else counts or more
    requests += int(stats.get("requests", 0))
    return requests, fives + int((stats.get("by_class") or {}).get("5xx", 0)), counts


def wait_for_phase(
    lab: Lab,
    phases: Sequence[str] = ("Initialized",),
    timeout: float = 120.0,
    watch: CanaryWatch | None = None,
    iterations: int = 0,
) -> Sample:
    """Wait until the Canary's phase is one of ``phases`` (and, with ``iterations``, it
    has run at least that many); returns that sample."""
    watch = watch or CanaryWatch(lab)
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = watch.poll()
        except NotFound:
            s = None  # applied a moment ago: the controller has not written a status yet
        if s is not None and s.phase in phases and s.iterations >= iterations:
            return s
        if time.monotonic() >= deadline:
            now = s.phase if s is not None else "not found"
            raise TimeoutError(f"canary {watch.name} is {now or 'without a phase'}, not {' or '.join(phases)}")
        time.sleep(0.2)


def apply_canary(lab: Lab, *sources: Any) -> list[str]:
    """``lab.apply`` that returns the warnings among its lines without also printing
    them to stderr: the lessons' Canaries (a 2 s interval) get one on every apply."""
    with contextlib.redirect_stderr(io.StringIO()):
        return list(lab.apply(*sources))


def prepare(lab: Lab, canary: Mapping[str, Any] | None = None, fallback: bool = False) -> list[str]:
    """Set up lesson 8's lab from scratch on a running ``lab``: the petstore and the
    loadtester, Gloo and the canary controller, ``canary`` (``progressive.canary()``),
    initialized, then the VirtualService that delegates to its RouteTable."""
    folder = manifests_dir() / "flagger"
    lines = list(lab.apply(folder / "petstore.yaml", folder / "loadtester.yaml"))
    lab.install("gloo")
    lab.install("flagger")
    lab.wait(WAIT_S)
    lines += apply_canary(lab, dict(canary or progressive.canary()))
    wait_for_phase(lab, ("Initialized", "Succeeded"), WAIT_S)
    lines += lab.apply(progressive.delegating_virtual_service(fallback=fallback))
    lab.wait(WAIT_S)
    return lines


class Step(NamedTuple):
    """One state of a rollout, as the Canary's status shows it."""

    phase: str
    weight: int
    failed_checks: int
    iterations: int


class Rollout(NamedTuple):
    """What ``follow_rollout`` saw: the final phase, how long it took (s), each ``Step``
    (phase, weight, failed checks, iterations), and the requests the canary answered."""

    phase: str
    seconds: float
    steps: list[Step]
    canary_requests: int
    canary_errors: int


def follow_rollout(
    lab: Lab,
    timeout: float = 180.0,
    say: Callable[[str], None] | None = print,
    watch: CanaryWatch | None = None,
    every: float = 0.25,
    until: Sequence[str] = DONE,
) -> Rollout:
    """Wait for the rollout that was just started to end (Succeeded or Failed, or a
    phase of ``until``), with ``say`` told each new phase, weight or failed check as it
    happens (not the times: they differ from run to run)."""
    watch = watch or CanaryWatch(lab)
    began = watch.elapsed
    steps: list[Step] = []
    deadline = time.monotonic() + timeout
    started = False
    while True:
        s = watch.poll()
        # The status still shows the last rollout's end until the controller sees the new revision.
        started = started or s.phase not in (*DONE, "Initialized")
        step = Step(s.phase, s.weight, s.failed_checks, s.iterations)
        if started and (not steps or steps[-1] != step):
            steps.append(step)
            if say is not None:
                line = f"{s.phase:<16} canary weight {s.weight:>3}%   failed checks {s.failed_checks}"
                say(line + (f"   iteration {s.iterations}" if s.iterations else ""))
        if started and s.phase in until:
            requests, errors = watch.requests("canary", began)
            return Rollout(s.phase, s.t - began, steps, requests, errors)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"canary {watch.name} still {s.phase or 'without a phase'} after {timeout:g} s")
        time.sleep(every)


def loadtester_url(lab: Lab) -> str | None:
    """The loadtester pod's address on loopback (local lab), None if it runs nowhere
    this machine can reach."""
    for pod in lab.objects("pods", namespace=NAMESPACE):
        labels = (pod.get("metadata") or {}).get("labels") or {}
        port = (pod.get("status") or {}).get("localPort")
        if labels.get("app") == "flagger-loadtester" and port:
            return f"http://127.0.0.1:{port}"
    return None


def gate(lab: Lab, action: str, kind: str = "gate", name: str = NAME, namespace: str = NAMESPACE) -> str:
    """Open or close the loadtester's gate for the Canary (``action``: ``open`` or
    ``close``; ``kind``: ``gate`` or ``rollback``), as ``curl -d ... /gate/open`` would."""
    base = loadtester_url(lab)
    if base is None:
        raise NotFound("no running flagger-loadtester pod: apply manifests/flagger/loadtester.yaml")
    body = json.dumps({"name": name, "namespace": namespace}).encode()
    request = urllib.request.Request(f"{base}/{kind}/{action}", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        said = answer.read().decode(errors="replace").strip()
        return f"{kind} {action}: HTTP {answer.status}" + (f" {said}" if said else "")


def _p99(counts: Sequence[int], buckets: Sequence[float]) -> float | None:
    """The p99 (ms) of a per-bucket histogram, linear inside its bucket (as Prometheus)."""
    total = sum(counts)
    if total <= 0 or not buckets:
        return None
    rank, seen = 0.99 * total, 0
    for i, n in enumerate(counts):
        if n > 0 and seen + n >= rank:
            if i >= len(buckets):
                return float(buckets[-1])
            lower = buckets[i - 1] if i else 0.0
            return float(lower + (buckets[i] - lower) * (rank - seen) / n)
        seen += n
    return float(buckets[-1])


def duration_seconds(text: str) -> float:
    """Seconds in a Go duration such as ``4s``, ``1m``, ``1m30s`` or ``500ms`` (a minute,
    Flagger's default, when it is not one)."""
    try:
        return parse_duration(str(text)) or 60.0
    except ValueError:
        return 60.0


def _metric_columns() -> list[str]:
    return [f"{role}_{what}" for role in ROLES for what in ("success", "p99_ms")]
