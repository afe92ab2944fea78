"""The lesson checks' messages for objects Gloo accepts but a lesson cannot use."""

from __future__ import annotations

from typing import Any, cast

import pytest

from helpers.errors import CheckFailed
from helpers.lessons.checks import check_5, check_6


class _Lab:
    """Just enough of ``Lab`` for a check that fails before sending a request."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self._objects = list(objects)

    def proxy_url(self) -> str:
        return "http://127.0.0.1:9"  # never called: the check fails on the objects first

    def objects(self, kind: str, name: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        return [o for o in self._objects if name is None or o["metadata"]["name"] == name]


@pytest.mark.parametrize("check", [check_5, check_6])
def test_a_virtual_service_without_a_virtual_host_fails_the_check_clearly(check: Any) -> None:
    # Gloo 1.22.1 accepts it (with a warning) and serves nothing for it.
    vs = {"kind": "VirtualService", "metadata": {"name": "coalmine", "namespace": "gloo-system"}, "spec": {}}
    with pytest.raises(CheckFailed) as failed:
        check(cast(Any, _Lab(vs)))
    assert "has no spec.virtualHost" in str(failed.value)
