"""The canary controller's shell: its world over a store, statuses, events and clean-up.

A fake control plane stands in for the real one (apply puts into a real ``Store``,
pods are as ready as the test says); the state machine is the real ``analysis.tick``.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from helpers.kinds import key
from helpers.runtime.flagger.controller import CanaryController, CanaryWorld
from helpers.runtime.flagger.status import CanaryStatus
from helpers.runtime.flagger.world import Event, Tick
from helpers.runtime.proxy.stats import UpstreamStats
from helpers.runtime.store import Store
from tests.conftest import until

TARGET: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "petstore", "namespace": "default"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "petstore"}},
        "template": {
            "metadata": {"labels": {"app": "petstore"}},
            "spec": {
                "containers": [
                    {"name": "app", "command": ["python", "/app/p.py"], "env": [{"name": "VERSION", "value": "v1"}]}
                ],
                "volumes": [{"name": "app", "configMap": {"name": "petstore-app"}}],
            },
        },
    },
}
CONFIG = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "petstore-app", "namespace": "default"},
    "data": {"p.py": "x"},
}
CANARY: dict[str, Any] = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "petstore", "namespace": "default"},
    "spec": {
        "provider": "gloo",
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "petstore"},
        "service": {"port": 80, "targetPort": 8080},
        "analysis": {
            "interval": "1s",
            "threshold": 2,
            "stepWeight": 25,
            "maxWeight": 50,
            "webhooks": [{"name": "load", "url": "http://tester.default/", "timeout": "1s"}],
        },
    },
}
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class FakeControlPlane:
    """apply and delete on a real store; every Deployment as ready as ``ready`` says."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.ready = True
        self.refuse: str | None = None

    def apply(self, objects: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        if self.refuse:
            return [{"ref": "routetable.gateway.solo.io/petstore", "error": self.refuse}]
        return [{"ref": o["metadata"]["name"], "action": self.store.put(o)[0]} for o in objects]

    def delete(self, refs: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
        return [{"ref": r[2], "action": "deleted" if self.store.delete(r) else "missing"} for r in refs]

    def deployment_status(self, namespace: str, name: str) -> dict[str, int]:
        dep = self.store.get(("Deployment", namespace, name)) or {}
        n = int((dep.get("spec") or {}).get("replicas", 1))
        ready = n if self.ready else 0
        return {"replicas": n, "readyReplicas": ready, "updatedReplicas": n, "availableReplicas": ready}


def lab(tmp_path: Path) -> tuple[CanaryController, FakeControlPlane]:
    store = Store(tmp_path / "store.json")
    for obj in (CONFIG, TARGET):
        store.put(copy.deepcopy(obj))
    cp = FakeControlPlane(store)
    table = {"version": 1, "services": {"tester.default": {"80": []}}}
    return CanaryController(store, cp, UpstreamStats(), lambda: table, clock=lambda: NOW), cp


def apply_canary(controller: CanaryController) -> None:
    controller.store.put(copy.deepcopy(CANARY))


def test_first_step_initializes_as_flagger(tmp_path: Path) -> None:
    async def main() -> None:
        controller, _ = lab(tmp_path)
        controller.install()
        apply_canary(controller)
        await controller.step_once(("default", "petstore"))
        store = controller.store
        assert controller.status_of("default", "petstore")["phase"] == "Initialized"
        made = {k for k in (key(o) for o in store) if k[2] != "petstore" or k[0] == "Service"}
        assert {
            ("Deployment", "default", "petstore-primary"),
            ("ConfigMap", "default", "petstore-app-primary"),
            ("Service", "default", "petstore"),
            ("Service", "default", "petstore-primary"),
            ("Service", "default", "petstore-canary"),
            ("Upstream", "default", "default-petstore-primaryupstream-80"),
            ("Upstream", "default", "default-petstore-canaryupstream-80"),
        } <= made
        rt = store.get(("RouteTable", "default", "petstore"))
        assert rt is not None
        weights = [d["weight"] for d in rt["spec"]["routes"][0]["routeAction"]["multi"]["destinations"]]
        assert weights == [100, 0]
        assert store.get(("Deployment", "default", "petstore"))["spec"]["replicas"] == 0  # target scaled down
        messages = [e["message"] for e in controller.events.list("default")]
        assert "Initialization done! petstore.default" in messages
        assert all(
            e["involvedObject"]["kind"] == "Canary" and e["reason"] == "Synced" for e in controller.events.list()
        )
        await controller.close()

    asyncio.run(main())


def test_status_survives_a_restart(tmp_path: Path) -> None:
    async def main() -> None:
        controller, _ = lab(tmp_path)
        controller.install()
        apply_canary(controller)
        await controller.step_once(("default", "petstore"))
        await controller.close()
        again = Store(tmp_path / "store.json")
        assert again.extra["flagger"]["canaries"]["default/petstore"]["phase"] == "Initialized"

    asyncio.run(main())


def test_deleting_the_canary_deletes_what_it_made(tmp_path: Path) -> None:
    async def main() -> None:
        controller, _ = lab(tmp_path)
        mine = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "petstore-canary", "namespace": "default"},
            "spec": {"ports": [{"port": 80}]},
        }
        controller.store.put(mine)  # a Service the user wrote: Flagger takes it over, but it is not its own
        controller.install()
        apply_canary(controller)
        controller.sync()
        await controller.step_once(("default", "petstore"))
        canary = controller.store.get(("Canary", "default", "petstore"))
        assert canary is not None
        controller.store.delete(key(canary))
        controller.sync()
        left = {key(o) for o in controller.store}
        assert left == {
            ("ConfigMap", "default", "petstore-app"),
            ("Deployment", "default", "petstore"),
            ("Service", "default", "petstore-canary"),
        }
        assert controller.status_of("default", "petstore") is None
        await controller.close()

    asyncio.run(main())


def test_world_weights_scale_and_failed_writes(tmp_path: Path) -> None:
    async def main() -> None:
        controller, cp = lab(tmp_path)
        controller.install()
        apply_canary(controller)
        await controller.step_once(("default", "petstore"))
        world = CanaryWorld(controller, controller.store.get(("Canary", "default", "petstore")) or {})
        await world.set_weights(75, 25)
        rt = controller.store.get(("RouteTable", "default", "petstore")) or {}
        assert [d["weight"] for d in rt["spec"]["routes"][0]["routeAction"]["multi"]["destinations"]] == [75, 25]
        await world.scale_target(1)  # from zero: the primary's replicas
        assert (controller.store.get(("Deployment", "default", "petstore")) or {})["spec"]["replicas"] == 1
        cp.ready = False
        ok, why = await world.target_ready()
        assert (
            not ok
            and why == "waiting for rollout to finish: 0 of 1 (readyThreshold 100%) updated replicas are available"
        )
        cp.refuse = "admission refused"
        with pytest.raises(Exception, match="admission refused"):
            await world.set_weights(50, 50)
        (failure,) = await world.run_webhooks("rollout", "Progressing")
        assert failure.startswith("load failed ") and "no ready endpoints" in failure
        await controller.close()

    asyncio.run(main())


def test_a_new_revision_includes_tracked_configmaps(tmp_path: Path) -> None:
    async def main() -> None:
        controller, _ = lab(tmp_path)
        world = CanaryWorld(controller, copy.deepcopy(CANARY))
        before = await world.target_revision()
        changed = copy.deepcopy(CONFIG)
        changed["data"] = {"p.py": "y"}
        controller.store.put(changed)
        assert await world.target_revision() not in (None, before)
        controller.store.delete(("Deployment", "default", "petstore"))
        assert await world.target_revision() is None

    asyncio.run(main())


def test_the_loop_ticks_at_once_on_apply_and_stops_on_close(tmp_path: Path) -> None:
    steps: list[str] = []

    async def step(canary: Mapping[str, Any], status: CanaryStatus, world: Any, now: datetime) -> Tick:
        steps.append(canary["metadata"]["name"])
        status.phase = "Initialized"
        return Tick(status, (Event("step", False, "Initialized"),))

    async def main() -> None:
        store = Store(tmp_path / "store.json")
        cp = FakeControlPlane(store)
        controller = CanaryController(store, cp, UpstreamStats(), lambda: {}, step=step, clock=lambda: NOW)
        controller.install()
        apply_canary(controller)
        controller.sync(applied=("default", "petstore"))
        await until(lambda: steps, "the first step", 10)
        assert steps == ["petstore"]
        assert controller.status_of("default", "petstore") == CanaryStatus(phase="Initialized").to_dict()
        await controller.close()
        assert all(t.done() for t in asyncio.all_tasks() if t is not asyncio.current_task())

    asyncio.run(main())
