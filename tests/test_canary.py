"""routing.canary builds every canary state; state_of reads it back, and
helpers.live.following reads any VirtualService the way the gateway does."""

from __future__ import annotations

import pytest

from helpers import routing
from helpers.live.control import SEED_STEPS, state_of
from helpers.live.demo import expected_v2_share
from helpers.live.following import expected_v2, split


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


# ── reading any VirtualService the way the gateway does ─────────────────────


def test_the_expected_share_of_each_seed_state_counts_the_header_requests() -> None:
    for step in SEED_STEPS:
        vs = routing.canary(step.v2_percent, step.header)
        assert expected_v2(vs, header_share=0.2) == pytest.approx(expected_v2_share(step, 0.2)), step
    assert expected_v2(None, header_share=0.2) == 0.0, "no VirtualService: every request is a 404"


def test_a_virtual_service_the_dashboard_did_not_build() -> None:
    # Lesson 4's answer: a header route for /petstore first, then the header canary.
    petstore = routing.header_route(routing.prefix_route("/petstore", "/api/pets", "v2"))
    vs = routing.add_route(routing.header_canary(), petstore)
    assert state_of(vs) == (0, True)
    assert state_of(vs, path="/petstore") == (0, True)
    assert split(vs, "/petstore", {"x-canary": "true"}) == {"v2": 1.0}
    # Only /petstore has a header route: header requests to /findPetWithId/1 go to v1.
    assert split(vs, "/findPetWithId/1", {"x-canary": "true"}) == {"v1": 1.0}
    assert split(vs, "/nowhere") == {}


def test_first_match_wins_and_every_matcher_condition_counts() -> None:
    canary = routing.canary_route()
    last = routing.add_route(routing.route_to_v1(), canary, index=3)
    assert state_of(last) == (0, False), "below the plain /findPets route, the header route is never reached"
    regex = routing.virtual_service(
        [
            {
                "matchers": [{"regex": "/find.*", "headers": [{"name": "x-canary", "value": "t.*", "regex": True}]}],
                "routeAction": {"single": {"upstream": routing.upstream("v2")}},
            },
            {
                "matchers": [{"prefix": "/", "headers": [{"name": "x-canary", "invertMatch": True}]}],
                "routeAction": {"single": {"upstream": routing.upstream("v1")}},
            },
            {"matchers": [{"prefix": "/", "methods": ["POST"]}], "routeAction": {"single": {"upstream": {}}}},
        ]
    )
    assert split(regex, "/findPets", {"X-Canary": "true"}) == {"v2": 1.0}
    assert split(regex, "/findPets") == {"v1": 1.0}  # no header at all: the inverted presence matches
    assert split(regex, "/petstore", {"x-canary": "true"}) == {}, "a POST-only route does not take a GET"


def test_weights_of_an_upstream_group_are_looked_up() -> None:
    vs = routing.virtual_service(
        [{"matchers": [{"exact": "/findPets"}], "routeAction": {"upstreamGroup": {"name": "g", "namespace": "ns"}}}]
    )
    asked: list[tuple[str, str]] = []

    def groups(namespace: str, name: str) -> list[tuple[dict[str, object], int]]:
        asked.append((namespace, name))
        return [({"upstream": routing.upstream("v2")}, 1), ({"upstream": routing.upstream("v1")}, 3)]

    assert split(vs, "/findPets", groups=groups) == {"v2": 0.25, "v1": 0.75}
    assert asked == [("ns", "g")]
    assert split(vs, "/findPets") == {}, "without a lookup the group's versions are unknown"
