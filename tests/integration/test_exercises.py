"""The self-paced exercises over one real lab, Instruqt-style: for each lesson, the check
fails at the start, passes after solve, and fails again after reset. Also sample()."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import Lab
from helpers.lessons.exercises import CheckResult, check, ensure, reset, solve
from helpers.live.sampling import sample, shares

from .conftest import lab_processes

pytestmark = pytest.mark.integration

# What a learner sees; the notebooks store these lines, so they must never vary.
FAILS_AT_START = {
    1: "FAIL: there is no deployment petstore-v2\n"
    "Hint: apply manifests/petstore-v2.yaml with lab.apply(...), then wait with lab.wait()",
    2: "FAIL: deployment petstore-v1 asks for 1 replica, not 2\n"
    "Hint: set spec.replicas to 2 in the Deployment of manifests/petstore-v1.yaml and lab.apply(...) it "
    "(a dict or a copy of the file), then lab.wait()",
    3: "FAIL: GET /pet/2 through the gateway answered 404, not pet 2 (Cat)\n"
    "Hint: add a route matching prefix /pet/ that calls findPetById on v1 with parameters "
    "{':path': '/pet/{id}'}: function_route(...), add_route(route_to_v1(), ...), then lab.apply(...)",
    4: "FAIL: GET /petstore with x-canary: true through the gateway answered the v1 pets, not the v2 pets\n"
    "Hint: add a header route for prefix /petstore (prefixRewrite /api/pets) to v2 at index 0: "
    "add_route(header_canary(), header_route(prefix_route(...)))",
    5: "FAIL: the weighted route /findPetWithId/ has v2 weight 10 and v1 weight 90, not 25 and 75\n"
    "Hint: apply a VirtualService whose weighted routes give v2 25 and v1 75, e.g. from weighted(...)",
    6: "FAIL: the route /findPetWithId/ still sends traffic to v1\n"
    "Hint: promote first: lab.apply(all_to_v2()), so that every route goes to v2 only",
    7: "FAIL: GET /findPets with x-canary: true through the gateway answered the v1 pets, not the v2 pets\n"
    "Hint: add a rule for Exact /findPets with the header x-canary: true to petstore-v2, with the same URLRewrite "
    "as the /findPets rule: httproutes.canary_rule(), or apply httproutes.header_canary()",
}
PASSES = {
    1: "PASS: petstore-v2 is ready and its pod answers with the three v2 pets",
    2: "PASS: petstore-v1 runs 2 ready replicas behind its service",
    3: "PASS: GET /pet/2 answers Cat and the three earlier routes still work",
    4: "PASS: x-canary: true sends /petstore and /findPets to v2; other requests go to v1",
    5: "PASS: every weighted route sends 25% to v2 and 75% to v1, and so does the traffic",
    6: "PASS: every route goes to v2, petstore-v1 is gone and /petstore answers with the v2 pets",
    7: "PASS: through kgateway-system/http, x-canary: true sends /findPets to v2; other requests go to v1",
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One lab for every lesson (each reset sets its own state); always stopped."""
    home = tmp_path_factory.mktemp("exercises") / "lab"
    lab = Lab(home=home)
    try:
        yield lab
    finally:
        lab.down()
        left = lab_processes(home)
        for proc in left:
            proc.kill()
        assert not left, f"processes left running after down: {[p.pid for p in left]}"


def test_ensure_prints_nothing_and_returns_the_lab(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert ensure(1, lab) is lab
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("lesson", [1, 2, 3, 4, 5, 6, 7])
def test_check_fails_after_reset_and_passes_after_solve(lab: Lab, lesson: int) -> None:
    lines = reset(lesson, lab)
    assert all(isinstance(line, str) for line in lines)
    result = check(lesson, lab)
    assert isinstance(result, CheckResult) and not result.passed and not result
    assert str(result) == repr(result) == result._repr_markdown_() == FAILS_AT_START[lesson]

    solved = solve(lesson, lab)
    assert solved and all(re.fullmatch(r"\S+/\S+ (created|configured|unchanged|deleted)", line) for line in solved)
    result = check(lesson, lab)
    assert result.passed, str(result)
    assert str(result) == PASSES[lesson]

    reset(lesson, lab)
    assert str(check(lesson, lab)) == FAILS_AT_START[lesson]


def test_sample_measures_a_50_50_split(lab: Lab) -> None:
    ensure(6, lab)  # weighted(50)
    n = 400
    df = sample(lab, "/findPets", n=n)
    assert list(df.columns) == ["request", "sent_s", "version", "status", "latency_ms", "canary", "error"]
    assert list(df["request"]) == list(range(n)) and set(df["status"]) == {200}
    assert (df["latency_ms"] > 0).all()
    table = shares(df)
    assert list(table.index) == ["v1", "v2"] and list(table.columns) == ["requests", "share"]
    assert table["requests"].sum() == n and math.isclose(table["share"].sum(), 1.0)
    v2 = int(table.loc["v2", "requests"])
    assert abs(v2 - n / 2) <= 5 * math.sqrt(n / 4), f"{v2} of {n} went to v2"

    pinned = sample(lab.proxy_url(), "/findPets", n=20, headers={"x-canary": "true"})
    assert list(shares(pinned)["requests"]) == [0, 20]
    missing = shares(sample(lab, "/nowhere", n=5))
    assert list(missing.index) == ["v1", "v2", "errors"] and list(missing["requests"]) == [0, 0, 5]


def test_check_on_a_lab_that_is_not_running(tmp_path: Path) -> None:
    stopped = Lab(home=tmp_path / "never-started")
    assert str(check(3, stopped)) == (
        "FAIL: the lab is not running\nHint: start it with lab.up(), or run reset(3) to set up this lesson"
    )


def test_lesson_numbers(lab: Lab) -> None:
    with pytest.raises(ValueError, match="lesson must be one of 1, 2, 3, 4, 5, 6, 7"):
        check(8, lab)
