"""Live traffic through a real lab: the generator's split, the dashboard's controls,
and the `coalmine traffic` and `coalmine demo` commands."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import Lab, routing
from helpers.lessons.exercises import ensure
from helpers.live.control import CanaryControl
from helpers.live.dashboard import Dashboard
from helpers.live.traffic import Traffic
from tests.conftest import wait_for

from .conftest import ROOT, env_without_coalmine, lab_processes

pytestmark = pytest.mark.integration


def within(count: int, n: int, p: float, sigmas: float = 5) -> bool:
    """``count`` of ``n`` is within ``sigmas`` binomial standard deviations of ``n * p``."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_weighted_split_matches_the_weights(petstore_lab: Lab) -> None:
    petstore_lab.apply(routing.canary(25, header=False))
    frame = Traffic(petstore_lab, rate=500).run(requests=800)
    assert set(frame["status"]) == {200}
    v2 = int((frame["version"] == "v2").sum())
    assert within(v2, 800, 0.25), f"{v2} of 800 went to v2 with weight 25"


def test_header_requests_follow_the_canary_route(petstore_lab: Lab) -> None:
    petstore_lab.apply(routing.canary(10))
    frame = Traffic(petstore_lab, rate=500, headers={"x-canary": "true"}, header_share=0.25).run(requests=800)
    canary, plain = frame[frame["canary"]], frame[~frame["canary"]]
    assert len(canary) == 200 and (canary["version"] == "v2").all()
    assert within(int((plain["version"] == "v2").sum()), 600, 0.10)


def test_a_route_change_is_followed_while_traffic_flows(petstore_lab: Lab) -> None:
    petstore_lab.apply(routing.canary(0, header=False))
    traffic = Traffic(petstore_lab, rate=300)
    control = CanaryControl(petstore_lab, clock=lambda: traffic.elapsed)
    with traffic:
        traffic.wait_for_answers(50)
        control.promote()
        traffic.wait_for_answers(100)
    frame = traffic.frame()
    applied = control.last_apply["applied_s"]
    before, after = frame[frame["sent_s"] < control.last_apply["started_s"]], frame[frame["sent_s"] > applied]
    assert (before["version"] == "v1").all() and len(before) >= 50
    assert (after["version"] == "v2").all() and len(after) >= 50
    assert set(frame["status"]) == {200}, "no request failed during the change"


def test_dashboard_controls_apply_the_virtual_service(petstore_lab: Lab) -> None:
    ensure(5, petstore_lab)  # the header canary
    dash = Dashboard(petstore_lab, rate=200, refresh=0.1)
    try:
        assert (dash.weight.value, dash.header.value) == (0, True), "it starts from the applied state"
        assert dash.running.value and dash.traffic.running

        dash.set_weight(40)
        assert petstore_lab.objects("vs", "coalmine")[0]["spec"] == routing.canary(40)["spec"]
        assert "weight: 40" in dash.yaml_view.value and "configured" in dash.message.value
        dash.header.value = False
        assert petstore_lab.objects("vs", "coalmine")[0]["spec"] == routing.canary(40, header=False)["spec"]
        dash.promote_button.click()
        assert (dash.weight.value, dash.control.describe()) == (100, "100% to v2, header canary off")
        assert petstore_lab.objects("vs", "coalmine")[0]["spec"] == routing.all_to_v2()["spec"]
        # The readout follows: only v2 answers once the last 5 s are all after the promotion.
        wait_for(
            lambda: re.search(r"v2 100% · v1 0% · errors 0", dash.readout.value),
            timeout=30,
            what="the readout to show v2 100%",
        )
        dash.rollback_button.click()
        assert (dash.weight.value, dash.header.value) == (0, False)
        assert petstore_lab.objects("vs", "coalmine")[0]["spec"] == routing.route_to_v1()["spec"]

        dash.rate.value = 50
        assert dash.traffic.rate == 50
        dash.running.value = False
        assert not dash.traffic.running
        assert dash.stats()["refreshes"] >= 2
        dash.running.value = True
        assert dash.traffic.running and dash.control.changes[0].v2_percent == 0

        newer = Dashboard(petstore_lab, rate=50)  # as when the learner runs the cell again
        try:
            assert newer.traffic.running and not dash.traffic.running
            assert "a newer dashboard took over" in dash.message.value
        finally:
            newer.close()
    finally:
        dash.close()
    assert not dash.traffic.running


def test_the_dashboard_follows_a_route_change_made_elsewhere(petstore_lab: Lab) -> None:
    ensure(5, petstore_lab)  # the header canary: v2 gets only the fifth of the requests with the header
    dash = Dashboard(petstore_lab, rate=200, refresh=0.1)
    try:
        assert dash.control.expected() == pytest.approx(20.0)
        petstore_lab.apply(routing.weighted(25))  # as a cell would, or exercises.solve(5)
        wait_for(lambda: dash.weight.value == 25, 10, "the slider to follow the applied routes")
        assert dash.header.value and "weight: 25" in dash.yaml_view.value
        assert dash.message.value == "changed outside the dashboard: now 25% to v2, header canary on"
        change = dash.control.changes[-1]
        assert (change.v2_percent, change.expected) == (25, pytest.approx(40.0)), "0.2 + 0.8 x 0.25 of the traffic"
        # What is measured after the change follows the dashed line, not the weight alone.
        dash.traffic.wait_for_answers(600)
        frame = dash.traffic.frame()
        after = frame[frame["sent_s"] > change.at_s + 0.5]
        assert len(after) >= 300 and set(after["status"]) == {200}
        assert within(int((after["version"] == "v2").sum()), len(after), 0.40)

        # Routes the controls do not build (lesson 4's answer) are followed, and said so.
        petstore = routing.header_route(routing.prefix_route("/petstore", "/api/pets", "v2"))
        petstore_lab.apply(routing.add_route(routing.header_canary(), petstore))
        wait_for(lambda: "the controls do not build" in dash.message.value, 10, "the dashboard to say so")
        assert (dash.weight.value, dash.header.value) == (0, True)

        # Stopped, it still follows, and it still beats: the page knows the kernel is there.
        dash.stop()
        beat = int(re.findall(r'data-beat="(\d+)"', dash.status.value)[0])
        petstore_lab.apply(routing.weighted(10))
        assert dash.sync() is True or dash.weight.value == 10  # sync, unless the loop was first
        assert (dash.weight.value, dash.control.describe()) == (10, "10% to v2, header canary on")
        wait_for(lambda: int(re.findall(r'data-beat="(\d+)"', dash.status.value)[0]) > beat, 10, "a heartbeat")
        assert "not connected to a running kernel" in dash.status.value and "animation" in dash.status.value
    finally:
        dash.close()


def test_dashboard_shows_a_refusal_and_keeps_the_controls_true(lab: Lab, tmp_path: Path) -> None:
    dash = Dashboard(lab, start=False)
    try:
        lab.down()  # nothing can be applied now
        dash.set_weight(30)
        assert "refused, nothing changed" in dash.message.value and "not running" in dash.message.value
        assert dash.weight.value == 0, "the slider goes back to the state that is applied"
    finally:
        dash.close()


def run(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**env_without_coalmine(), "COALMINE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "helpers", *args], capture_output=True, text=True, env=env, timeout=180, cwd=cwd
    )


def test_traffic_command_prints_the_split(petstore_lab: Lab, lab_home: Path) -> None:
    petstore_lab.apply(routing.header_canary())
    result = run(
        lab_home, "traffic", "--rate", "200", "--duration", "1", "--header", "x-canary: true", "--header-share", "0.5"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.match(r"\d+ requests in 1 s to /findPets \([\d.]+ req/s achieved, 200 requested\)", lines[0])
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    sent = int(lines[0].split()[0])
    assert int(rows["v2"][1]) == sent // 2, result.stdout  # every other request is a canary, and only those
    assert int(rows["v1"][1]) == sent - sent // 2, result.stdout

    bad = run(lab_home, "traffic", "--header", "x-canary")
    assert bad.returncode == 2 and "--header takes NAME:VALUE" in bad.stderr


def test_traffic_command_through_a_gateway_api_listener(petstore_lab: Lab, lab_home: Path) -> None:
    petstore_lab.install("kgateway")
    petstore_lab.apply(
        ROOT / "manifests/gateway-api/0-gateway.yaml", ROOT / "manifests/gateway-api/4-weighted-50-50.yaml"
    )
    result = run(
        lab_home,
        "traffic",
        "--rate",
        "300",
        "--duration",
        "1",
        "--path",
        "/petstore",
        "--gateway",
        "kgateway-system/http",
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[3:]}  # after the table's header
    sent = int(result.stdout.split()[0])
    assert set(rows) == {"v1", "v2"} and int(rows["v1"][1]) + int(rows["v2"][1]) == sent  # no errors
    assert within(int(rows["v2"][1]), sent, 0.5)


def test_demo_runs_the_rollout_on_a_fresh_lab(tmp_path: Path) -> None:
    result = run(tmp_path / "unused", "demo", "--rate", "150", "--seconds", "1", "--output", "demo.png", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    steps = [line for line in result.stdout.splitlines() if "requests   v1" in line]
    assert [s.split("  ")[0].strip() for s in steps] == [
        "all to v1",
        "header canary",
        "10% to v2",
        "50% to v2",
        "all to v2",
    ]
    assert "v2   0%" in steps[0] and "v2 100%" in steps[-1] and all("errors 0" in s for s in steps)
    assert (tmp_path / "demo.png").read_bytes()[:4] == b"\x89PNG"
    home = re.search(r"starting a fresh lab in (\S+)", result.stdout).group(1)  # type: ignore[union-attr]
    assert not Path(home).exists() and not lab_processes(Path(home))
