"""The self-paced exercises over one real lab, Instruqt-style: for each lesson, the check
fails at the start, passes after solve (and after the reference answer the lesson
shows), and fails again after reset; going back to a lesson puts the lab exactly at
its start; refusals and warnings read well. Also sample()."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from helpers import ApplyRefused, Lab, NotFound, httproutes, load_manifests, progressive, routing, sampling
from helpers.errors import GatewayUnreachable
from helpers.lessons.exercises import CheckResult, check, ensure, reset, solve
from helpers.lessons.inforce import serves
from helpers.live.progressive import apply_canary, follow_rollout
from helpers.live.sampling import curl, sample, shares
from helpers.runtime import prometheus as prometheus_server

from .conftest import ROOT, module_lab

pytestmark = pytest.mark.integration

# What a learner sees; the notebooks store these lines, so they must never vary.
FAILS_AT_START = {
    1: "FAIL: there is no deployment petstore-v2\n"
    "Hint: apply manifests/petstore-v2.yaml with lab.apply(...), then wait with lab.wait()",
    2: "FAIL: deployment petstore-v1 asks for 1 replica, not 2\n"
    "Hint: read manifests/petstore-v1.yaml with load_manifests(...), set spec.replicas to 2 in its Deployment, "
    "lab.apply(...) the list, then lab.wait()",
    3: "FAIL: GET /pet/2 through the gateway answered 404, not pet 2 (Cat)\n"
    "Hint: add a route matching prefix /pet/ that calls findPetById on v1 with parameters "
    "{':path': '/pet/{id}'}: routing.function_route(...), routing.add_route(routing.route_to_v1(), ...), "
    "then lab.apply(...)",
    4: "FAIL: GET /petstore with x-canary: true through the gateway answered the v1 pets, not the v2 pets\n"
    'Hint: put routing.header_route(routing.prefix_route("/petstore", "/api/pets", "v2")) first: '
    "routing.add_route(routing.header_canary(), ...), then lab.apply(...)",
    5: "FAIL: the weighted route /findPetWithId/ has v2 weight 10 and v1 weight 90, not 25 and 75\n"
    "Hint: apply a VirtualService whose weighted routes give v2 25 and v1 75, e.g. routing.weighted(...)",
    6: "FAIL: the route /findPetWithId/ still sends traffic to v1\n"
    "Hint: promote first: lab.apply(routing.all_to_v2()), so that every route goes to v2 only",
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
    6: "PASS: every route goes to v2, all of petstore v1 is gone and /petstore answers with the v2 pets",
    7: "PASS: through kgateway-system/http, x-canary: true sends /findPets to v2; other requests go to v1",
    8: "PASS: a 500 ms request-duration check rolled the 1000 ms version back; the primary still serves",
    9: "PASS: your error-rate template (at most 1% of 5xx) rolled the bad version back; the primary still serves",
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One lab for every lesson (each reset sets its own state); always stopped."""
    with module_lab(tmp_path_factory, "exercises") as lab:
        yield lab


def test_ensure_prints_nothing_and_returns_the_lab(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert ensure(1, lab) is lab
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("lesson", [1, 2, 3, 4, 5, 6, 7])
def test_check_fails_after_reset_and_passes_after_solve(lab: Lab, lesson: int) -> None:
    lines = reset(lesson, lab)
    assert all(isinstance(line, str) for line in lines)
    result = check(lesson, lab)
    assert isinstance(result, CheckResult) and not result.passed and not result
    assert str(result) == repr(result) == FAILS_AT_START[lesson]
    found, hint = FAILS_AT_START[lesson].removeprefix("FAIL: ").split("\nHint: ")
    assert result._repr_html_() == (
        '<div class="coalmine-check"><b style="color:#C44E52">FAIL: not done yet</b>'
        f"<br><b>found:</b> {html.escape(found)}<br><b>hint:</b> {html.escape(hint)}</div>"
    ), "three lines in a notebook: the verdict, what was found, the hint"

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
    with pytest.raises(ValueError, match="lesson must be one of 1, 2, 3, 4, 5, 6, 7, 8, 9"):
        check(10, lab)


# ── the exercises as a learner meets them ────────────────────────────────────

NOTEBOOKS = ROOT / "notebooks"


def shown_reference_answer(lesson: int) -> str:
    """The code under "Show the reference answer" in lesson ``lesson``'s notebook."""
    (path,) = NOTEBOOKS.glob(f"{lesson:02d}-*.ipynb")
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown" and cell.source.startswith("### Reference answer"):
            found = re.search(r"```python\n(.*?)\n```", cell.source, re.DOTALL)
            assert found, f"{path.name}: no python block in the reference answer"
            return found.group(1)
    raise AssertionError(f"{path.name} has no reference answer")


def learner_namespace(lab: Lab, lesson: int) -> dict[str, object]:
    """What a lesson's earlier cells defined, as its reference answer uses them."""

    def pod_url(app: str) -> str:  # lesson 1, Step 3
        for pod in lab.objects("pods"):
            ready = all(c["ready"] for c in pod["status"]["containerStatuses"])
            running = pod["status"]["phase"] == "Running" and "deletionTimestamp" not in pod["metadata"]
            if pod["metadata"]["labels"].get("app") == app and running and ready:
                return f"http://127.0.0.1:{pod['status']['localPort']}"
        raise LookupError(app)

    names: dict[str, object] = {"lab": lab, "routing": routing, "httproutes": httproutes, "sampling": sampling}
    names |= {"curl": curl, "pod_url": pod_url, "CANARY": {"x-canary": "true"}, "serves": serves}
    names |= {"progressive": progressive, "apply_canary": apply_canary, "follow_rollout": follow_rollout}
    if 3 <= lesson <= 8:  # lesson 9 runs on kgateway only
        names["gateway"] = lab.proxy_url()
    if lesson == 7:
        names["kgateway"] = lab.proxy_url(gateway="kgateway-system/http")
    if lesson == 9:  # Step 1's Canary and Step 6's metrics
        names["canary"] = progressive.canary(provider="gatewayapi:v1", gateway="kgateway-system/http")
        names["metrics"] = lab.objects("canaries", "petstore", "default")[0]["spec"]["analysis"]["metrics"]
    return names


@pytest.mark.parametrize("lesson", [1, 2, 3, 4, 5, 6, 7, 8, 9])
def test_the_reference_answer_shown_in_the_lesson_passes(
    lab: Lab, lesson: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if lesson == 9 and prometheus_server.find_binary() is None:
        pytest.skip("lesson 9's exercise runs a PromQL query: `make prometheus` installs Prometheus")
    reset(lesson, lab)
    monkeypatch.chdir(NOTEBOOKS)  # the lessons read ../manifests
    code = compile(shown_reference_answer(lesson), f"<lesson {lesson}: the reference answer>", "exec")
    exec(code, learner_namespace(lab, lesson))
    assert str(check(lesson, lab)) == PASSES[lesson]
    assert capsys.readouterr().err == "", "no warning"


def test_the_learners_own_calls_in_lesson_2(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path as a string is one file, and what load_manifests returns can be applied."""
    reset(2, lab)
    monkeypatch.chdir(NOTEBOOKS)
    docs = load_manifests("../manifests/petstore-v1.yaml")
    assert [d["kind"] for d in docs] == ["ConfigMap", "Service", "Deployment"]
    docs[2]["spec"]["replicas"] = 2
    assert lab.apply(docs) == [
        "configmap/petstore-v1-app unchanged",
        "service/petstore-v1 unchanged",
        "deployment.apps/petstore-v1 configured",
    ]
    lab.wait()
    assert str(check(2, lab)) == PASSES[2]
    assert lab.apply([docs, "../manifests/petstore-v2.yaml"])[-1] == "deployment.apps/petstore-v2 unchanged"


def test_lesson_6_wants_all_of_v1_gone_not_only_its_deployment(lab: Lab) -> None:
    reset(6, lab)
    lab.apply(routing.all_to_v2())
    lab.delete(kind="deployment", name="petstore-v1")
    assert str(check(6, lab)) == (
        "FAIL: petstore v1 is not decommissioned: service petstore-v1, configmap petstore-v1-app still exist\n"
        'Hint: delete all of v1, as kubectl delete -f does: lab.delete("../manifests/petstore-v1.yaml")'
    )


def pods(lab: Lab) -> list[tuple[str, str, bool]]:
    """(app, phase, terminating) of every pod in the lessons' namespace."""
    return sorted(
        (p["metadata"]["labels"]["app"], p["status"]["phase"], "deletionTimestamp" in p["metadata"])
        for p in lab.objects("pods")
    )


def test_going_back_puts_each_lesson_exactly_at_its_start(lab: Lab) -> None:
    solve(2, lab)  # v1 scaled to 2
    solve(7, lab)  # kgateway, its Gateway, an HTTPRoute, Gloo's header canary

    ensure(1, lab)  # nothing deployed, no gateway: lesson 1 deploys v1 itself
    status = lab.status()
    assert not status["gateway"]["installed"] and not status["gatewayApi"]["installed"]
    assert lab.objects("deployments") == lab.objects("services") == [] and pods(lab) == []

    ensure(2, lab)  # v1 and v2 run, one pod each, and no gateway answers yet
    assert pods(lab) == [("petstore-v1", "Running", False), ("petstore-v2", "Running", False)]
    with pytest.raises(NotFound, match="the gateway is not installed"):
        lab.proxy_url()
    lab.install("gloo")
    lab.wait()
    with pytest.raises(GatewayUnreachable, match="Connect call failed"):  # no VirtualService: no listener yet
        sample(lab, "/petstore", n=3)

    solve(3, lab)
    ensure(3, lab)  # the gateway, and no virtual service: step 1 creates it
    assert lab.apply(routing.virtual_service([])) == ["virtualservice.gateway.solo.io/coalmine created"]

    solve(2, lab)  # scaled again, then back to lesson 1 from lesson 2's answer
    ensure(1, lab)
    assert pods(lab) == [], "no pod left shutting down for lesson 1 to pick"


def test_a_refusal_is_a_short_error_and_a_warning_is_shown(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    ensure(4, lab)
    bad = routing.route_to_v1()
    bad["spec"]["virtualHost"]["routes"][0]["matchers"][0] = {"regex": "/find(Pets"}
    with pytest.raises(ApplyRefused) as refused:
        lab.apply(bad)
    shown = refused.value._render_traceback_()
    assert shown[0].startswith("\x1b[1;31mApplyRefused\x1b[0m: error: virtualservice.gateway.solo.io/coalmine: ")
    assert "routes[0].matchers[0]" in shown[0] and len(shown) == 2, shown
    assert re.fullmatch(r"\x1b\[2m\(raised by line \d+: lab\.apply\(bad\)\)\x1b\[0m", shown[1]), shown[1]

    missing = routing.route_to_v1()
    missing["spec"]["virtualHost"]["routes"][2]["routeAction"]["single"]["upstream"]["name"] = (
        "default-petstore-v3-8080"
    )
    applied = lab.apply(missing)
    assert applied[0] == "virtualservice.gateway.solo.io/coalmine configured"
    assert len(applied.warnings) == 1 and "default-petstore-v3-8080" in applied.warnings[0]
    assert capsys.readouterr().err == applied.warnings[0] + "\n", "printed, so it shows even when not displayed"
