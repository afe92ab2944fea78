#!/usr/bin/env python3
"""The seed's whole canary flow against the current kube context, PASS/FAIL per step.

    make cluster-check                      # or: .venv/bin/python scripts/cluster_check.py
    make cluster-check ROLLOUTS=1           # also Flagger: a good and a bad rollout
    scripts/cluster_check.py --context kind-coalmine --keep --rollouts
    scripts/cluster_check.py --versions     # only the pinned versions and the helm found

It first prints the versions it installs (Gloo chart, Helm major, kgateway charts,
Gateway API, Flagger's charts), each with where the pin comes from. Steps: deploy
petstore v1 and v2, install Gloo Edge, route everything to v1, the header canary, a
10/90 split, a 50/50 split, everything to v2. With ``--rollouts``, then Flagger's:
install Flagger (its chart with Prometheus, and the loadtester chart), the Canary of
``manifests/flagger/`` initialized, a good rollout promoted, a bad one rolled back.
Afterwards the lab's objects and what it installed are removed (``--keep`` leaves
them), so the cluster is as it was. Exit status: 0 all passed, 1 a step failed, 2 no
cluster.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers import Lab  # noqa: E402
from helpers.backends.kube.pins import describe  # noqa: E402
from helpers.backends.kube.tools import Tools  # noqa: E402
from helpers.errors import ClusterError, CoalmineError  # noqa: E402
from helpers.lessons.probing import V1_PETS, V2_PETS  # noqa: E402
from helpers.live.sampling import curl, sample  # noqa: E402

MANIFESTS = ROOT / "manifests"
GLOO = MANIFESTS / "gloo"
FLAGGER = MANIFESTS / "flagger"
SETTLE_S = 60.0  # Gloo applies a route to Envoy a moment after the API server accepts it
SAMPLES = 200
ROLLOUT_S = 900.0  # a rollout at Flagger's 10 s interval, with image pulls for the new pods
# manifests/flagger/canary.yaml applies unchanged: Flagger raises its 2 s analysis interval to
# 10 s (v1.44 GetAnalysisInterval), and its metric intervals (15 s) hold three scrapes of the
# chart's Prometheus (every 5 s), enough for rate().


class StepFailed(Exception):
    pass


def get_json(lab: Lab, path: str, headers: dict[str, str] | None = None) -> object:
    import json

    try:
        return json.loads(curl(lab.proxy_url() + path, headers))
    except (OSError, ValueError) as e:
        return f"no JSON answer ({e})"


def eventually(what: str, check: Callable[[], object], want: object) -> None:
    """Poll until ``check()`` returns ``want`` (routes reach Envoy asynchronously)."""
    deadline = time.monotonic() + SETTLE_S
    got: object = None
    while time.monotonic() < deadline:
        got = check()
        if got == want:
            return
        time.sleep(1)
    raise StepFailed(f"{what}: got {str(got)[:120]} after {SETTLE_S:g}s")


def split(lab: Lab, v2_share: float) -> str:
    """Sample /findPets; the v2 share must be within 5 sigma of the weights."""
    df = sample(lab, "/findPets", n=SAMPLES)
    errors = int(df["version"].isna().sum())
    v2 = int((df["version"] == "v2").sum())
    sigma = math.sqrt(SAMPLES * v2_share * (1 - v2_share))
    if errors or abs(v2 - SAMPLES * v2_share) > 5 * sigma:
        raise StepFailed(f"{v2}/{SAMPLES} to v2 and {errors} errors, expected about {v2_share:.0%} to v2")
    return f"{v2}/{SAMPLES} requests to v2"


def run(lab: Lab) -> list[tuple[str, Callable[[], str | None]]]:
    def deploy() -> str:
        lab.apply(MANIFESTS / "petstore-v1.yaml", MANIFESTS / "petstore-v2.yaml")
        lab.wait(600)
        return "both deployments rolled out"

    def install() -> str:
        message = lab.install("gloo")["message"]
        lab.wait(900)
        functions = lab.objects("upstreams", "default-petstore-v1-8080")[0]["spec"]["kube"]["serviceSpec"]["rest"]
        return f"{message}; discovered {', '.join(sorted(functions['transformations']))}"

    def route_to_v1() -> str:
        lab.apply(GLOO / "1-route-to-v1.yaml")
        eventually("GET /petstore", lambda: get_json(lab, "/petstore"), V1_PETS)
        eventually("GET /findPetWithId/1", lambda: get_json(lab, "/findPetWithId/1"), V1_PETS[0])
        return f"{lab.proxy_url()}/petstore answers the v1 pets"

    def header_canary() -> str:
        lab.apply(GLOO / "2-header-canary.yaml")
        eventually(
            "GET /findPets with x-canary: true", lambda: get_json(lab, "/findPets", {"x-canary": "true"}), V2_PETS
        )
        eventually("GET /findPets", lambda: get_json(lab, "/findPets"), V1_PETS)
        return "x-canary: true reaches v2, other requests v1"

    def weighted(manifest: str, share: float) -> Callable[[], str]:
        def step() -> str:
            lab.apply(GLOO / manifest)
            time.sleep(5)  # let Envoy take the new weights
            return split(lab, share)

        return step

    def all_to_v2() -> str:
        lab.apply(GLOO / "5-all-to-v2.yaml")
        eventually("GET /petstore", lambda: get_json(lab, "/petstore"), V2_PETS)
        eventually("GET /findPets", lambda: get_json(lab, "/findPets"), V2_PETS)
        return "every route answers v2"

    return [
        ("deploy petstore v1 and v2", deploy),
        ("install Gloo Edge", install),
        ("route everything to v1", route_to_v1),
        ("header canary", header_canary),
        ("weighted 10/90", weighted("3-weighted-10-90.yaml", 0.10)),
        ("weighted 50/50", weighted("4-weighted-50-50.yaml", 0.50)),
        ("all to v2", all_to_v2),
    ]


def canary_phase(lab: Lab) -> tuple[str, int]:
    """The Canary's phase and failed checks, as Flagger wrote them ("" before it did)."""
    found = lab.objects("canaries", "petstore", "default")
    status = (found[0].get("status") or {}) if found else {}
    return str(status.get("phase") or ""), int(status.get("failedChecks") or 0)


def rollout_ends(lab: Lab, manifest: str, want: str) -> str:
    """Apply a rollout and wait for its analysis to start, then to end in ``want``."""
    lab.apply(FLAGGER / manifest)
    deadline, seen = time.monotonic() + ROLLOUT_S, ["?"]
    started = False
    while time.monotonic() < deadline:
        phase, failed = canary_phase(lab)
        if phase != seen[-1]:
            seen.append(phase)
        started = started or phase in ("Progressing", "Promoting", "Finalising", "Waiting", "WaitingPromotion")
        if started and phase in ("Succeeded", "Failed"):
            if phase != want:
                raise StepFailed(f"the rollout ended {phase}, not {want} (phases {' > '.join(seen[1:])})")
            return f"{' > '.join(seen[1:])} ({failed} failed checks)"
        time.sleep(2)
    raise StepFailed(f"no {want} within {ROLLOUT_S:g}s (phases {' > '.join(seen[1:])}): `coalmine events`")


def rollouts(lab: Lab) -> list[tuple[str, Callable[[], str | None]]]:
    def install() -> str:
        # The seed's VirtualService claims every domain, as the Canary's does: Gloo takes one per domain.
        lab.delete(kind="VirtualService", name="coalmine", namespace="gloo-system")
        lab.apply(FLAGGER / "petstore.yaml")
        message = str(lab.install("flagger")["message"])
        lab.wait(600)
        return message.splitlines()[0]

    def initialized() -> str:
        lab.apply(FLAGGER / "canary.yaml", FLAGGER / "virtualservice.yaml")
        deadline = time.monotonic() + ROLLOUT_S
        while canary_phase(lab)[0] != "Initialized":
            if time.monotonic() >= deadline:
                raise StepFailed(f"the Canary is {canary_phase(lab)[0] or 'without a status'}, not Initialized")
            time.sleep(2)
        return "canary.yaml as the lessons apply it (Flagger analyses every 10 s, metrics over 15 s)"

    return [
        ("install Flagger", install),
        ("Canary initialized", initialized),
        ("good rollout promoted", lambda: rollout_ends(lab, "rollout-good.yaml", "Succeeded")),
        ("bad rollout rolled back", lambda: rollout_ends(lab, "rollout-bad.yaml", "Failed")),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context", help="kube context (default: the current one)")
    parser.add_argument("--keep", action="store_true", help="leave the petstore and Gloo installed afterwards")
    parser.add_argument("--versions", action="store_true", help="print the pinned versions and stop")
    parser.add_argument("--rollouts", action="store_true", help="then install Flagger and run a good and a bad rollout")
    args = parser.parse_args(argv)
    if args.versions:
        print("\n".join(describe(Tools())))
        return 0
    home = Path(tempfile.gettempdir()) / f"coalmine-cluster-check-{os.getpid()}"  # made only once connected
    try:
        from helpers.backends.kube import KubernetesBackend

        lab = Lab(KubernetesBackend(home, context=args.context))
        lab.up()
    except ClusterError as e:
        print(f"no cluster to check: {e}", file=sys.stderr)
        return 2
    print(f"cluster-check on context {lab.status()['context']} (lab home {home})")
    for line in describe(Tools()):
        print(f"      version: {line}")
    failed = False
    for name, step in run(lab) + (rollouts(lab) if args.rollouts else []):
        started = time.monotonic()
        try:
            detail = step()
        except (StepFailed, CoalmineError, KeyError, IndexError) as e:
            print(f"FAIL  {name}: {e}")
            failed = True
            break
        print(f"PASS  {name} ({time.monotonic() - started:.0f}s): {detail}")
    if args.keep:
        lab.down()
        print(f"kept; undo with: COALMINE_HOME={home} coalmine --backend kubernetes reset")
    else:
        for line in lab.reset():
            print(f"      cleanup: {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
