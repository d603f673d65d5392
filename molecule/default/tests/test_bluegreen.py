"""Blue/green releases under load. The tests run in order on one converged stack (1.0.0 live on blue), after the
default scenario's other suites (conftest.py: RELEASE_SUITES).

The load is keep-alive POSTs to /api/query through nginx at 200 requests/s, never retried; a failed
request is one that got no answer or a status other than 200.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request

import pytest
from release_harness import (
    assert_no_failures,
    containers_snapshot,
    describe,
    ensure_image,
    history,
    live_color,
    load,
    lock_held,
    read_state,
    recap,
    release_files_snapshot,
    run_playbook,
    tail,
)

RATE = 200


@pytest.fixture(scope="module", autouse=True)
def images():
    # Build 1.1.0 before any load: the deploy under test then starts from a present image, as in production.
    ensure_image("1.0.0")
    ensure_image("1.1.0")


def test_deploying_the_live_version_is_a_noop():
    before = containers_snapshot()
    # site.yml started 1.0.0 but recorded no release: the first no-op records what serves and passed the checks.
    first = run_playbook("deploy.yml", "-e", "version=1.0.0")
    assert first.returncode == 0, tail(first)
    assert "already live on blue" in first.stdout
    live = read_state()["live"]
    assert (live["color"], live["version"]) == ("blue", "1.0.0") and live["image_id"], live
    result = run_playbook("deploy.yml", "-e", "version=1.0.0")
    assert result.returncode == 0, tail(result)
    assert recap(result.stdout)["changed"] == 0, tail(result)
    assert "already live on blue" in result.stdout
    assert read_state()["live"] == live
    assert containers_snapshot() == before
    assert [e["outcome"] for e in history()[-2:]] == ["noop", "noop"]


def test_deploy_1_1_0_under_load_fails_no_request():
    assert live_color() == "blue"
    with load(RATE) as run:
        result = run_playbook("deploy.yml", "-e", "version=1.1.0")
    summary = run.stop()
    assert result.returncode == 0, tail(result)
    assert_no_failures(summary, RATE)
    assert live_color() == "green"
    # Both served during the run, and the new color took over for good: no blue answer after green's first.
    assert set(summary["served"]) == {"blue 1.0.0", "green 1.1.0"}, describe(summary)
    assert summary["last_seen"]["blue 1.0.0"] <= summary["first_seen"]["green 1.1.0"] + 1.0
    state = read_state()
    assert (state["live"]["color"], state["live"]["version"]) == ("green", "1.1.0")
    assert (state["previous"]["color"], state["previous"]["version"]) == ("blue", "1.0.0")
    entry = history()[-1]
    assert (entry["action"], entry["outcome"], entry["version"]) == ("deploy", "success", "1.1.0")
    # Compared with the fleet's deploy of the same versions in the same CI run (molecule/fleet).
    print(f"SINGLE-HOST deploy 1.0.0 -> 1.1.0: run {result.seconds:.1f} s, recorded {entry['duration']} s; "
          f"{summary['failed']} failed of {summary['sent']}")
    assert {"start", "health_gate", "smoke", "switch", "analysis"} <= set(entry["phases"]), entry
    assert entry["image_id"].startswith("sha256:")
    assert not lock_held()
    # The previous color stays warm (policy running).
    assert containers_snapshot()["ragops-app-blue"].split()[1] == "running"


def test_redeploying_the_same_version_changes_nothing():
    before = containers_snapshot()
    result = run_playbook("deploy.yml", "-e", "version=1.1.0")
    assert result.returncode == 0, tail(result)
    assert recap(result.stdout)["changed"] == 0, tail(result)
    assert containers_snapshot() == before
    assert live_color() == "green"


@pytest.mark.parametrize("playbook", ["deploy.yml -e version=1.0.0", "rollback.yml"])
def test_check_mode_predicts_and_changes_nothing(playbook):
    files, containers = release_files_snapshot(), containers_snapshot()
    name, *args = playbook.split()
    result = run_playbook(name, "--check", *args)
    assert result.returncode == 0, tail(result)
    assert "CHECK MODE" in result.stdout and "1.0.0 is live on blue" in result.stdout, tail(result)
    assert recap(result.stdout)["changed"] > 0, "check mode must predict the switch"
    assert release_files_snapshot() == files
    assert containers_snapshot() == containers
    assert live_color() == "green"


def test_twenty_switches_under_load_fail_no_request():
    with load(RATE) as run:
        result = run_playbook("tests/release/switch_back_and_forth.yml", "-e", "switches=20")
    summary = run.stop()
    assert result.returncode == 0, tail(result)
    assert result.stdout.count("changed: [localhost] => (item=switch ") == 20, tail(result)
    assert_no_failures(summary, RATE)
    assert set(summary["served"]) == {"blue 1.0.0", "green 1.1.0"}, describe(summary)
    assert live_color() == "green"


def test_live_color_survives_an_nginx_restart():
    assert live_color() == "green"
    subprocess.run(["docker", "restart", "ragops-nginx"], check=True, capture_output=True, timeout=60)

    def served_by():
        try:
            with urllib.request.urlopen("http://127.0.0.1:8080/health", timeout=2) as resp:
                return resp.headers.get("X-Ragops-Color")
        except OSError:
            return None

    deadline = time.monotonic() + 30
    while served_by() is None:
        assert time.monotonic() < deadline, "nginx did not answer within 30 s of its restart"
        time.sleep(0.2)
    assert [served_by() for _probe in range(10)] == ["green"] * 10
    assert live_color() == "green"


def rollback_under_load_to_blue() -> None:
    with load(RATE) as run:
        result = run_playbook("rollback.yml")
    summary = run.stop()
    assert result.returncode == 0, tail(result)
    assert_no_failures(summary, RATE)
    assert live_color() == "blue"


def test_rollback_under_load_restores_the_previous_version():
    rollback_under_load_to_blue()
    state = read_state()
    assert (state["live"]["color"], state["live"]["version"]) == ("blue", "1.0.0")
    entry = history()[-1]
    assert (entry["action"], entry["outcome"], entry["version"]) == ("rollback", "success", "1.0.0")
    assert not lock_held()


def test_rollback_restarts_a_stopped_previous_color_under_load():
    result = run_playbook("deploy.yml", "-e", "version=1.1.0", extra={"ragops_previous_color_policy": "stopped"})
    assert result.returncode == 0, tail(result)
    assert live_color() == "green"
    assert containers_snapshot()["ragops-app-blue"].split()[1] == "exited"
    rollback_under_load_to_blue()
    assert history()[-1]["outcome"] == "success"
    assert containers_snapshot()["ragops-app-blue"].split()[1] == "running"


def test_rollback_to_a_named_retained_version():
    result = run_playbook("rollback.yml", "-e", "version=1.1.0")
    assert result.returncode == 0, tail(result)
    assert live_color() == "green"
    assert (read_state()["live"]["version"], history()[-1]["action"]) == ("1.1.0", "rollback")
    refused = run_playbook("rollback.yml", "-e", "version=0.0.1")
    assert refused.returncode != 0 and "is not retained on this host" in tail(refused), tail(refused)
    assert live_color() == "green"
    # Refused before any change, and still recorded.
    entry = history()[-1]
    assert (entry["action"], entry["outcome"], entry["version"]) == ("rollback", "aborted", "0.0.1"), entry
    assert "not retained" in entry["reason"]


def test_status_shows_colors_versions_health_history_and_lock():
    result = run_playbook("status.yml")
    assert result.returncode == 0, tail(result)
    out = result.stdout
    assert recap(out)["changed"] == 0
    for needle in ["RELEASE STATUS", "green   live    1.1.0", "blue    idle    1.0.0", "healthy (", "Lock: free",
                   "history entries (oldest first)"]:
        assert needle in out, f"{needle!r} not in:\n{out[-4000:]}"
    assert out.count(" rollback ") >= 3 and out.count(" success ") >= 4, out[-4000:]
