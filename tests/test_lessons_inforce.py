"""The lessons wait until their routes are in force, on a backend that needs it.

On a cluster the gateway serves a route change a moment after ``apply`` returns, so
``ensure``, ``reset`` and ``solve`` end with ``lab.wait_in_force`` on the probes of
``helpers.lessons.served``, and a check waits (briefly) for the answer its exercise
wants before it judges traffic. Unit tests drive the lessons with a stand-in lab that
records what it is asked to wait for; the integration tests use a real local lab:
its own ``wait_in_force`` sends no request, the tables' probes are what each state
really serves, and a check given a gateway that is late judges only once it is not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from helpers.builders.routing import add_route, header_canary
from helpers.errors import WaitTimeout
from helpers.lab import Lab
from helpers.lessons import exercises, gatewayapi, progressive, promql, served, states
from helpers.lessons.inforce import CHECK_WAIT_S, InForce, Probe, Serves, Split, settle, splits

GLOO, KGATEWAY = "http://gloo", "http://kgateway"
CANARY = {"x-canary": "true"}
ALL_V1 = [("/petstore", "v1", {}), ("/findPets", "v1", {}), ("/findPets", "v1", CANARY)]
ALL_V1 += [("/findPetWithId/1", "v1", {})]
HEADER_CANARY = [
    ("/findPets", "v2", CANARY),
    ("/findPets", "v1", {}),
    ("/petstore", "v1", {}),
    ("/findPetWithId/1", "v1", {}),
]


def on(base: str, rows: list[tuple[str, Any, dict[str, str]]]) -> list[tuple[str, Any, dict[str, str]]]:
    return [(base + path, want, headers) for path, want, headers in rows]


def split(v2: float) -> list[tuple[str, Any, dict[str, str]]]:
    shares = {"v1": 1 - v2, "v2": v2}
    return on(GLOO, [("/findPets", "v2", CANARY), ("/findPets", shares, {}), ("/petstore", shares, {})])


# What the gateway must serve before each step returns, written out by hand.
ENSURE = {3: None, 4: on(GLOO, ALL_V1), 5: on(GLOO, HEADER_CANARY), 6: split(0.5), 7: on(GLOO, HEADER_CANARY)}
ENSURE |= {8: None, 9: None}  # they start without routes: nothing to wait for
RESET = {
    3: on(GLOO, ALL_V1),
    4: on(GLOO, HEADER_CANARY),
    5: split(0.1),
    6: split(0.5),
    7: on(GLOO, HEADER_CANARY) + on(KGATEWAY, ALL_V1),
    8: [(GLOO + "/api/pets", "v1", {})],
    9: [(KGATEWAY + "/api/pets", "v1", {})],
}
SOLVE = {
    3: on(GLOO, [("/pet/2", "v1", {}), *ALL_V1]),
    4: on(GLOO, [("/petstore", "v2", CANARY), *HEADER_CANARY]),
    5: split(0.25),
    6: on(GLOO, [(path, "v2", headers) for path, _, headers in ALL_V1]),
    7: on(GLOO, HEADER_CANARY) + on(KGATEWAY, HEADER_CANARY),
    8: [(GLOO + "/api/pets", "v1", {})],
    9: [(KGATEWAY + "/api/pets", "v1", {})],
}


def described(probe: Probe) -> tuple[str, Any, dict[str, str]]:
    """A probe as (url, what it wants, headers): a version, or the shares of a split."""
    if isinstance(probe, Split):
        return probe.url, probe.shares, probe.headers
    (version,) = probe.versions
    return probe.url, version, probe.headers


class RecordingLab:
    """Just enough of ``Lab`` for ``states`` with its converging stubbed out: records each
    ``wait_in_force`` and never asks the probe (so no request is ever sent)."""

    def __init__(self) -> None:
        self.waits: list[tuple[InForce, float]] = []

    def wait_in_force(self, served_: Callable[[], bool], timeout: float = 60.0) -> bool:
        assert isinstance(served_, InForce)
        self.waits.append((served_, timeout))
        return False

    def proxy_url(self, gateway: str | None = None) -> str:
        return GLOO if gateway is None else {"kgateway-system/http": KGATEWAY}[gateway]

    def up(self) -> dict[str, Any]:
        return {}

    def status(self) -> dict[str, Any]:
        return {"prometheus": {"available": False}}

    def objects(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return []  # no Canary, no pods

    def apply(self, *sources: Any) -> list[str]:
        return ["virtualservice/coalmine configured"]

    def delete(self, *args: Any, **kwargs: Any) -> list[str]:
        return ["deployment/petstore-v1 deleted"]

    def wait(self, timeout: float = 120.0) -> dict[str, Any]:
        return {}

    def asked_for(self) -> list[list[tuple[str, Any, dict[str, str]]]]:
        return [[described(p) for p in served_.probes()] for served_, _ in self.waits]


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> RecordingLab:
    """A ``RecordingLab``, with what would really install, apply and roll out stubbed."""
    monkeypatch.setattr(states, "converge", lambda lab, components, objects: [])
    for module in (progressive, promql):
        monkeypatch.setattr(module, "exercise_start", lambda lab: [])
    for module in (gatewayapi, progressive, promql):
        monkeypatch.setattr(module, "solve", lambda lab: ["x/y configured"])
    return RecordingLab()


@pytest.mark.parametrize("lesson", range(3, 10))
def test_ensure_waits_until_the_lessons_starting_routes_are_served(recording: RecordingLab, lesson: int) -> None:
    exercises.ensure(lesson, cast(Lab, recording))
    want = ENSURE[lesson]
    assert recording.asked_for() == ([] if want is None else [want])
    assert all(timeout == states.WAIT_S for _, timeout in recording.waits)


@pytest.mark.parametrize("lesson", range(3, 10))
def test_reset_waits_until_the_exercises_starting_routes_are_served(recording: RecordingLab, lesson: int) -> None:
    exercises.reset(lesson, cast(Lab, recording))
    assert recording.asked_for() == [RESET[lesson]], "once, after the exercise's objects, not after the lesson's"


@pytest.mark.parametrize("lesson", range(3, 10))
def test_solve_waits_until_the_reference_answer_is_served(recording: RecordingLab, lesson: int) -> None:
    exercises.solve(lesson, cast(Lab, recording))
    # Lesson 6 deletes v1 only once v2 serves every route: else requests would fail in between.
    assert recording.asked_for() == [SOLVE[lesson]] * (2 if lesson == 6 else 1)


def test_lessons_1_and_2_have_no_gateway_to_wait_for(recording: RecordingLab) -> None:
    for lesson in (1, 2):
        exercises.ensure(lesson, cast(Lab, recording))
        exercises.reset(lesson, cast(Lab, recording))
        exercises.solve(lesson, cast(Lab, recording))
    assert recording.waits == []


def test_the_probes_are_made_only_when_a_backend_asks() -> None:
    asked: list[str | None] = []

    class Addresses:
        def proxy_url(self, gateway: str | None = None) -> str:
            asked.append(gateway)
            return GLOO

    in_force = InForce(cast(Lab, Addresses()), served.STARTS[4])
    assert asked == [] and in_force.asked == 0 and str(in_force) == "nothing asked yet"
    assert [p.url for p in in_force.probes()] == [GLOO + path for path, _, _ in ALL_V1]
    assert asked == [None], "one address per gateway"


def test_a_split_probe_tells_a_25_75_split_from_a_10_90_one() -> None:
    probe = splits(GLOO + "/findPets", {"v2": 0.25, "v1": 0.75})
    assert probe.requests == 400
    assert probe.judge(Counter(v2=100, v1=300))
    assert not probe.judge(Counter(v2=40, v1=360)), "what a 10/90 split answers"
    assert not probe.judge(Counter(v2=100, v1=290, **{"status 503": 10})), "an error is never in force"
    assert not probe.judge(Counter(v1=400)) and not probe.judge(Counter())
    assert str(probe) == "GET /findPets: want v1 75% and v2 25% of the answers; last nothing yet"


class Late:
    """A backend's ``wait_in_force`` for a gateway that is late: asks the probe, and each
    time it says no, ``push()`` (the xDS update) runs; gives up after ``give_up`` noes."""

    def __init__(self, push: Callable[[], object] = lambda: None, give_up: int = 100) -> None:
        self.push, self.give_up = push, give_up
        self.answers: list[bool] = []
        self.timeouts: list[float] = []

    def __call__(self, served_: Callable[[], bool], timeout: float = 60.0) -> bool:
        self.timeouts.append(timeout)
        while not served_():
            self.answers.append(False)
            if len(self.answers) >= self.give_up:
                raise WaitTimeout(f"the gateway did not serve the change within {timeout:g}s ({served_})")
            self.push()
        self.answers.append(True)
        return True


def test_settle_gives_up_quietly_so_that_the_check_judges() -> None:
    late = Late(give_up=2)

    class Never:
        wait_in_force = late

        def proxy_url(self, gateway: str | None = None) -> str:
            return "http://127.0.0.1:9"  # the discard port: nothing answers

    no_answer = Serves("/findPets", "v1")
    assert settle(cast(Lab, Never()), [no_answer]) is False
    assert late.answers == [False, False] and late.timeouts == [CHECK_WAIT_S]
    assert settle(cast(Lab, Never()), []) is True and late.timeouts == [CHECK_WAIT_S], "nothing to wait for"


# ── a real local lab ─────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def real_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    from tests.integration.conftest import module_lab

    with module_lab(tmp_path_factory, "inforce") as lab:
        yield lab


@pytest.fixture
def recorded(real_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> list[tuple[InForce, bool]]:
    """Each wait of the local backend: the probe it was given and what it returned."""
    calls: list[tuple[InForce, bool]] = []
    local = real_lab.backend.wait_in_force

    def recording(served_: Callable[[], bool], timeout: float = 60.0) -> bool:
        assert isinstance(served_, InForce)
        calls.append((served_, local(served_, timeout)))
        return calls[-1][1]

    monkeypatch.setattr(real_lab.backend, "wait_in_force", recording)
    return calls


@pytest.mark.integration
def test_locally_ensure_asks_the_gateway_nothing(real_lab: Lab, recorded: list[tuple[InForce, bool]]) -> None:
    exercises.ensure(5, real_lab)
    verdict = exercises.check(4, real_lab)  # the header canary, without the exercise's /petstore route
    assert [(in_force.expected, result) for in_force, result in recorded] == [
        (served.STARTS[5], False),
        (served.JUDGED[4], False),
    ]
    assert all(in_force.asked == 0 and in_force._probes == [] for in_force, _ in recorded), "no request sent"
    assert str(verdict).startswith("FAIL: GET /petstore with x-canary: true through the gateway answered the v1 pets")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("step", "table"),
    [
        (exercises.ensure, served.STARTS),
        (exercises.reset, served.EXERCISES),
        (exercises.solve, served.ANSWERS),
    ],
    ids=["ensure", "reset", "solve"],
)
def test_each_state_really_serves_what_its_probes_want(
    real_lab: Lab, step: Callable[[int, Lab], object], table: dict[int, tuple[Serves, ...]]
) -> None:
    for lesson in (3, 4, 5, 6, 7):
        step(lesson, real_lab)
        probe = InForce(real_lab, table.get(lesson, ()))
        assert probe(), f"lesson {lesson}: {probe}"


@pytest.mark.integration
def test_a_check_judges_only_once_the_learners_answer_is_in_force(
    real_lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    exercises.reset(4, real_lab)
    late = Late(push=lambda: real_lab.apply(add_route(header_canary(), states.PETSTORE_CANARY)))
    monkeypatch.setattr(real_lab.backend, "wait_in_force", late)
    result = exercises.check(4, real_lab)
    assert late.answers == [False, True], "not in force at first; the check waited for the push"
    assert late.timeouts == [CHECK_WAIT_S]
    assert str(result) == "PASS: x-canary: true sends /petstore and /findPets to v2; other requests go to v1"


@pytest.mark.integration
def test_a_wrong_answer_still_fails_with_the_same_verdict(real_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.test_exercises import FAILS_AT_START

    exercises.reset(4, real_lab)
    late = Late(give_up=3)
    monkeypatch.setattr(real_lab.backend, "wait_in_force", late)
    assert str(exercises.check(4, real_lab)) == FAILS_AT_START[4]
    assert late.answers == [False, False, False] and late.timeouts == [CHECK_WAIT_S]
