"""Waiting until a route change is in force: the probe reads who answers through the
real gateway, and the local lab never needs to wait (apply returns after the swap)."""

from __future__ import annotations

import pytest

from helpers import Lab, routing
from helpers.lessons.inforce import PROBE_REQUESTS, serves

pytestmark = pytest.mark.integration


def test_the_probe_says_yes_only_for_the_versions_that_answer(petstore_lab: Lab):
    petstore_lab.apply(routing.header_canary())
    url = petstore_lab.proxy_url() + "/findPets"
    assert serves(url, "v2", headers={"x-canary": "true"})()
    assert serves(url, "v1")()
    both = serves(url, {"v1", "v2"})
    assert not both()
    assert str(both) == f"GET /findPets: want answers from v1 and v2; last v1 {PROBE_REQUESTS}"
    missing = serves(petstore_lab.proxy_url() + "/nowhere", "v1")
    assert not missing()
    assert f"last status 404 {PROBE_REQUESTS}" in str(missing)


def test_locally_the_change_is_in_force_when_apply_returns(petstore_lab: Lab):
    asked = []
    petstore_lab.apply(routing.all_to_v2())
    assert petstore_lab.wait_in_force(lambda: asked.append(1) or False) is False
    assert asked == []
    assert serves(petstore_lab.proxy_url() + "/petstore", "v2")()
