"""What each lesson's state serves: the probes that say its routes are in force.

On a cluster a route change reaches Envoy a moment after ``apply`` returns (see
``inforce``). ``states`` waits after setting a state up until the gateway serves what
these tables say; the checks wait (briefly) for the answer their exercise wants before
they judge traffic. The local lab never waits and sends none of these requests.

Four tables, by lesson: ``STARTS`` (``ensure(n)``), ``EXERCISES`` (``reset(n)``),
``ANSWERS`` (``solve(n)``) and ``JUDGED`` (the part of the answer ``check(n)`` sends
requests to, and waits for). Each names the paths that
tell the state apart from its neighbours: e.g. ``/findPets`` with ``x-canary: true``
answers v1 with every route to v1 but v2 with the header canary. A state without
routes has no probe: a gateway with no routes may answer 404, refuse the connection,
or for a while still serve the routes it had, and the lesson's next change waits itself.
"""

from __future__ import annotations

from helpers.builders.progressive import KGATEWAY
from helpers.builders.routing import CANARY_HEADER
from helpers.lessons.inforce import Serves

CANARY = ((CANARY_HEADER, "true"),)


def all_to(version: str, gateway: str | None = None) -> tuple[Serves, ...]:
    """Every seed route to ``version``, with or without the header (``route_to_v1``, ``all_to_v2``)."""
    return (
        Serves("/petstore", version, gateway=gateway),
        Serves("/findPets", version, gateway=gateway),
        Serves("/findPets", version, CANARY, gateway),
        Serves("/findPetWithId/1", version, gateway=gateway),
    )


def header_canary(gateway: str | None = None) -> tuple[Serves, ...]:
    """``/findPets`` with ``x-canary: true`` to v2; the rest to v1 (``header_canary``)."""
    return (
        Serves("/findPets", "v2", CANARY, gateway),
        Serves("/findPets", "v1", gateway=gateway),
        Serves("/petstore", "v1", gateway=gateway),
        Serves("/findPetWithId/1", "v1", gateway=gateway),
    )


def weighted(v2_percent: int) -> tuple[Serves, ...]:
    """The header canary, and ``v2_percent``% of the other requests to v2 (``weighted``)."""
    shares = tuple(sorted({"v2": v2_percent / 100, "v1": 1 - v2_percent / 100}.items()))
    return (Serves("/findPets", "v2", CANARY), Serves("/findPets", shares), Serves("/petstore", shares))


def primary(version: str = "v1", gateway: str | None = None) -> tuple[Serves, ...]:
    """A Canary's primary (running ``version``) answers ``/api/pets`` alone (lessons 8-9)."""
    return (Serves("/api/pets", version, gateway=gateway),)


STARTS: dict[int, tuple[Serves, ...]] = {
    4: all_to("v1"),
    5: header_canary(),
    6: weighted(50),
    7: header_canary(),  # Gloo's; kgateway's Gateway starts without routes
}
EXERCISES: dict[int, tuple[Serves, ...]] = {
    3: all_to("v1"),
    4: header_canary(),
    5: weighted(10),
    6: weighted(50),
    7: (*header_canary(), *all_to("v1", KGATEWAY)),
    8: primary(),
    9: primary(gateway=KGATEWAY),
}
# What each check judges by its requests, once the learner's answer is in force.
JUDGED: dict[int, tuple[Serves, ...]] = {
    3: (Serves("/pet/2", "v1"), Serves("/findPets", "v1"), Serves("/petstore", "v1"), Serves("/findPetWithId/1", "v1")),
    4: (
        Serves("/petstore", "v2", CANARY),
        Serves("/petstore", "v1"),
        Serves("/findPets", "v2", CANARY),
        Serves("/findPets", "v1"),
    ),
    5: weighted(25)[1:2],  # the check samples /findPets without the header
    6: (Serves("/petstore", "v2"),),
    7: header_canary(KGATEWAY),
}
ANSWERS: dict[int, tuple[Serves, ...]] = {
    3: (Serves("/pet/2", "v1"), *all_to("v1")),
    4: (Serves("/petstore", "v2", CANARY), *header_canary()),
    5: weighted(25),
    6: all_to("v2"),
    7: (*header_canary(), *header_canary(KGATEWAY)),
    8: primary(),  # the slow version rolled back
    9: primary(gateway=KGATEWAY),  # the bad version rolled back
}
