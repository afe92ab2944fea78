"""routing.canary builds every canary state; state_of reads it back."""

from __future__ import annotations

import pytest

from helpers import routing
from helpers.live.control import SEED_STEPS, state_of
from helpers.live.demo import expected_v2_share


def test_the_seed_states_are_the_seed_files() -> None:
    assert routing.canary(0, header=False) == routing.route_to_v1()
    assert routing.canary(0) == routing.header_canary()
    assert routing.canary(10) == routing.weighted(10)
    assert routing.canary(50) == routing.weighted(50)
    assert routing.canary(100) == routing.canary(100, header=False) == routing.all_to_v2()


@pytest.mark.parametrize("percent", [0, 1, 25, 50, 99, 100])
@pytest.mark.parametrize("header", [True, False])
def test_state_of_reads_back_what_canary_built(percent: int, header: bool) -> None:
    want = (percent, header and percent != 100)  # promoted: the header route is gone
    assert state_of(routing.canary(percent, header)) == want


def test_without_header_the_weights_are_on_every_route() -> None:
    routes = routing.canary(30, header=False)["spec"]["virtualHost"]["routes"]
    assert len(routes) == 3
    for route in routes:
        weights = {routing.version_of_destination(d): w for d, w in routing.destination_weights(route)}
        assert weights == {"v2": 30, "v1": 70}


@pytest.mark.parametrize("bad", [-1, 101, 2.5, "10", True])
def test_bad_weights_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="v2_percent must be a whole number from 0 to 100"):
        routing.canary(bad, header=False)  # type: ignore[arg-type]


def test_state_of_an_unknown_virtual_service() -> None:
    assert state_of({"spec": {"virtualHost": {"routes": []}}}) == (0, False)


def test_expected_share_of_each_seed_step() -> None:
    assert [expected_v2_share(s, 0.2) for s in SEED_STEPS] == pytest.approx([0.0, 0.2, 0.28, 0.6, 1.0])
