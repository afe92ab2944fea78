"""Lesson 7's exercise: the header canary through kgateway, as an HTTPRoute.

``states`` sets the lesson up like the others (kgateway, its Gateway and Gloo's
header canary beside it); this module holds the exercise's start, its reference
answer and its check.
"""

from __future__ import annotations

from typing import Any

from helpers.builders import httproutes
from helpers.errors import CheckFailed, NotFound
from helpers.lab import Lab
from helpers.lessons.inforce import settle
from helpers.lessons.probing import V1_PETS, V2_PETS, expect
from helpers.lessons.served import JUDGED

GATEWAY = f"{httproutes.GATEWAY_NAMESPACE}/{httproutes.GATEWAY_NAME}"
GATEWAY_MANIFEST = "manifests/gateway-api/0-gateway.yaml"


def exercise_start() -> dict[str, Any]:
    """The HTTPRoute the exercise starts from: every rule to v1 (``states`` applies it)."""
    return httproutes.route_to_v1()


def solve(lab: Lab) -> list[str]:
    """The reference answer: the header canary as an HTTPRoute."""
    return list(lab.apply(httproutes.header_canary()))


def check(lab: Lab) -> str:
    try:
        base = lab.proxy_url(gateway=GATEWAY)
    except NotFound:
        raise CheckFailed(
            f"the Gateway {GATEWAY} is not served", f'run lab.install("kgateway"), then lab.apply("{GATEWAY_MANIFEST}")'
        ) from None
    hint = (
        "add a rule for Exact /findPets with the header x-canary: true to petstore-v2, with the same "
        "URLRewrite as the /findPets rule: httproutes.canary_rule(), or apply httproutes.header_canary()"
    )
    settle(lab, JUDGED[7])  # on a cluster kgateway serves the learner's HTTPRoute a moment after apply
    expect(base, "/findPets", V2_PETS, "the v2 pets", hint, {"x-canary": "true"})
    keep = "keep the three rules of httproutes.route_to_v1(), all to v1"
    expect(base, "/findPets", V1_PETS, "the v1 pets", keep)
    expect(base, "/petstore", V1_PETS, "the v1 pets", keep)
    expect(base, "/findPetWithId/1", V1_PETS[0], "pet 1 (Dog)", keep)
    return f"through {GATEWAY}, x-canary: true sends /findPets to v2; other requests go to v1"
