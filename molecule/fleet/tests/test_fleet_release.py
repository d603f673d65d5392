"""Releases across the fleet (molecule/fleet), on real hosts over SSH, under keep-alive POST load through the load
balancer with no client retries: a deploy and 20 switches fail no request; a release refused by one app host's
health gate is refused fleet-wide and names the host; a release that fails its analysis puts the whole fleet back
within 5 s of the decision; rollback.yml and status.yml work fleet-wide; a deploy while an app host is down is
refused by default, goes on with the others when asked (the record marks the host behind), and the fleet converges
on the next deploy once the host is back. The tests run in this order, each from where the last one left the fleet.
Figures are printed (the verifier's output)."""

from __future__ import annotations

import re

from fleet_harness import (APPS, PUBLIC_URL, admin, container, inspect, kill_host, release_history, release_state,
                           running_version, start_host, wait_for_engine)
from release_harness import describe, load, run_playbook, tail

RATE = 100
LOAD = {"rate": RATE, "duration": 300, "url": PUBLIC_URL + "/api/query"}
# Bounded gates so a refused release is refused quickly; the good version is healthy within a few seconds, also
# while CI runs another scenario beside this one (scripts/ci/molecule.sh).
FAST = {"release_health_timeout": 12}
# An app host that is down is found within seconds, not after SSH's default 10 s.
QUICK_SSH = {"ansible_ssh_timeout": 3}


def live_color() -> str:
    return admin("/live")["color"]


def other(color: str) -> str:
    return "green" if color == "blue" else "blue"


def assert_fleet_runs(version: str) -> None:
    """Every app host runs ``version`` on the live color, and the record says so for each of them."""
    color = live_color()
    for app in APPS:
        assert running_version(app, color) == version, f"{app} does not run {version} on {color}"
    live = release_state()["live"]
    assert (live["color"], live["version"]) == (color, version), live
    assert live["hosts"] == {container(app): {"color": color, "version": version} for app in APPS}, live


def under_load(case: str, playbook: str, *args: str, extra: dict | None = None):
    """Run a playbook under the keep-alive POST load; print and return its result and the load's summary."""
    with load(**LOAD) as run:
        result = run_playbook(playbook, *args, extra=extra)
    summary = run.stop()
    print(f"FLEET {case}: {summary['failed']} failed of {summary['sent']} requests, run {result.seconds:.1f} s "
          f"({describe(summary)})")
    return result, summary


def test_a_fleet_deploy_and_twenty_switches_fail_no_request():
    for app in APPS:
        assert running_version(app, live_color()) == "1.0.0", "the releases start from site.yml's 1.0.0 on every host"
    result, summary = under_load("deploy 1.1.0", "deploy.yml", "-e", "version=1.1.0")
    assert result.returncode == 0, tail(result)
    assert summary["failed"] == 0, describe(summary)
    assert_fleet_runs("1.1.0")
    entry = release_history()[-1]
    assert (entry["action"], entry["outcome"], entry["version"]) == ("deploy", "success", "1.1.0"), entry
    # Compared with the single-host deploy of the same versions in the same CI run (molecule/default, tests/test_bluegreen.py).
    print(f"FLEET deploy 1.0.0 -> 1.1.0 on {len(APPS)} app hosts: run {result.seconds:.1f} s, "
          f"recorded {entry['duration']} s, phases {entry['phases']}")

    start = live_color()
    flips, summary = under_load("20 switches", "tests/release/switch_back_and_forth.yml", "-e", "switches=20")
    assert flips.returncode == 0, tail(flips)
    assert flips.stdout.count("(item=switch ") == 20, tail(flips)
    assert summary["failed"] == 0, describe(summary)
    assert live_color() == start


def test_a_release_refused_by_one_app_host_s_gate_is_refused_fleet_wide():
    color, entries = live_color(), len(release_history())
    # Only app2's new color is unhealthy: the drill's environment is chosen per host.
    drill = {"release_app_env": "{{ {'RAG_CHAOS': 'unhealthy'} if inventory_hostname == '%s' else {} }}"
                                % container("app2"), **FAST}
    result, summary = under_load("refused by app2's gate", "deploy.yml", "-e", "version=1.2.0", extra=drill)
    out = result.stdout + result.stderr
    assert result.returncode != 0, tail(result)
    assert "FAILED before the switch" in out and f"{container('app2')}: Health gate" in out, tail(result)
    assert summary["failed"] == 0, describe(summary)
    assert live_color() == color
    for app in APPS:
        assert running_version(app, other(color)) is None, f"the refused color still runs on {app}"
    entry = release_history()[entries:][-1]
    assert (entry["outcome"], entry["version"]) == ("failed", "1.2.0"), entry
    assert entry["extra"]["refused_by"] == [container("app2")], entry
    assert_fleet_runs("1.1.0")


def test_a_release_failing_its_analysis_puts_the_whole_fleet_back_within_seconds():
    color, entries = live_color(), len(release_history())
    drill = {"release_app_env": {"RAG_CHAOS": "error_rate:0.5"}, "release_smoke_enabled": False,
             "release_quality_enabled": False, **FAST}
    result, summary = under_load("analysis failed", "deploy.yml", "-e", "version=1.2.0", extra=drill)
    out = result.stdout + result.stderr
    assert result.returncode != 0, tail(result)
    assert "ROLLED BACK after the switch" in out, tail(result)
    entry = release_history()[entries:][-1]
    assert (entry["outcome"], entry["version"]) == ("rolled_back", "1.2.0"), entry
    restore = entry["extra"]["restore_seconds"]
    print(f"FLEET analysis failed: whole fleet back {restore} s after the decision")
    assert restore is not None and restore <= 5, entry
    assert live_color() == color
    for app in APPS:
        assert running_version(app, other(color)) is None, f"the rolled-back color still runs on {app}"
    assert_fleet_runs("1.1.0")


def test_rollback_and_status_work_fleet_wide():
    result, summary = under_load("rollback", "rollback.yml")
    assert result.returncode == 0, tail(result)
    assert summary["failed"] == 0, describe(summary)
    assert_fleet_runs("1.0.0")

    status = run_playbook("status.yml")
    assert status.returncode == 0, tail(status)
    color = live_color()
    for app in APPS:
        row = re.compile(rf"{container(app)}\s+{color}\s+live\s+1\.0\.0\s+running")
        assert row.search(status.stdout), tail(status)
        assert re.search(rf"{container(app)}\s+{other(color)}\s+idle\s", status.stdout), tail(status)
    assert "Reconcile: CONSISTENT" in status.stdout, tail(status)


def containers_of(host: str) -> dict:
    """Each color's container on the host: its id and when it started (a restart or a new container changes it)."""
    found = {color: inspect(host, f"ragops-app-{color}") for color in ("blue", "green")}
    return {color: doc and (doc["Id"], doc["State"]["StartedAt"], doc["State"]["Running"]) for color, doc in found.items()}


def test_a_deploy_while_an_app_host_is_down_is_refused_then_the_fleet_converges():
    color, entries, before = live_color(), len(release_history()), containers_of("app1")
    kill_host("app2")
    try:
        refused = run_playbook("deploy.yml", "-e", "version=1.1.0", extra=QUICK_SSH)
        out = refused.stdout + refused.stderr
        assert refused.returncode != 0, tail(refused)
        assert "REFUSED; nothing was changed" in out and container("app2") in out, tail(refused)
        assert live_color() == color and release_history()[entries:][-1]["outcome"] == "aborted"
        assert containers_of("app1") == before, "a refused deploy touched app1's containers"

        behind, summary = under_load("deploy with app2 down (behind)", "deploy.yml", "-e", "version=1.1.0",
                                     extra={"release_unreachable_hosts": "behind", **QUICK_SSH})
        assert behind.returncode == 0, tail(behind)
        assert summary["failed"] == 0, describe(summary)
        hosts = release_state()["live"]["hosts"]
        assert hosts[container("app2")]["behind"] is True, hosts
        assert hosts[container("app1")] == {"color": live_color(), "version": "1.1.0"}, hosts
    finally:
        start_host("app2")
    wait_for_engine("app2")

    result, summary = under_load("deploy after app2 is back", "deploy.yml", "-e", "version=1.1.0")
    assert result.returncode == 0, tail(result)
    assert summary["failed"] == 0, describe(summary)
    assert_fleet_runs("1.1.0")
