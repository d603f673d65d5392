"""Bad releases and misuse, on one converged stack with 1.0.0 live on blue (the good version).

Each bad release is 1.1.0 made to misbehave with a RAG_CHAOS drill. Every deploy must exit non-zero and
name its reason, leave (or put back) traffic on blue 1.0.0, record the attempt, and free the lock. The
figures (failed requests, time to restore) are printed and written to $RAGOPS_FIGURES (JSON lines).
"""

from __future__ import annotations

import json
import os
import time

import pytest
from release_harness import (
    containers_snapshot,
    describe,
    ensure_image,
    history,
    live_color,
    load,
    lock_held,
    release_files_snapshot,
    run_playbook,
    start_playbook,
    tail,
)

RATE = 200
FIGURES = os.environ.get("RAGOPS_FIGURES", "/tmp/ragops-faults-figures.jsonl")
# Bounded gates so a refused release is refused quickly; the good version is healthy within a few seconds.
FAST = {"release_health_timeout": 15}


def report(case: str, **figures) -> None:
    line = json.dumps({"case": case, **figures})
    print(f"FIGURES {line}")
    with open(FIGURES, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


@pytest.fixture(scope="module", autouse=True)
def images():
    ensure_image("1.0.0")
    ensure_image("1.1.0")


@pytest.fixture(autouse=True)
def good_version_live():
    assert live_color() == "blue", "each case starts with the good version live"
    yield
    assert live_color() == "blue"
    assert not lock_held(), "the lock must be free after every deploy"


def deploy_bad(mode: str, **extra):
    return run_playbook("deploy.yml", "-e", "version=1.1.0", extra={"ragops_app_env": {"RAG_CHAOS": mode}, **FAST, **extra})


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("crash_on_start", "Health gate"),
        ("unhealthy", "Health gate"),
        ("bad_contract", "Smoke test"),
        ("slow:1500", "Smoke test"),
    ],
)
def test_release_refused_before_the_switch_fails_no_request(mode, reason):
    entries = len(history())
    with load(RATE) as run:
        result = deploy_bad(mode)
    summary = run.stop()
    out = result.stdout + result.stderr
    assert result.returncode != 0, tail(result)
    assert "FAILED before the switch" in out and reason in out, tail(result)
    assert summary["failed"] == 0, describe(summary)
    assert set(summary["served"]) == {"blue 1.0.0"}, describe(summary)
    new = history()[entries:]
    assert [e["outcome"] for e in new] == ["failed"], new
    assert reason in new[0]["reason"] and new[0]["version"] == "1.1.0", new[0]
    if mode == "crash_on_start":
        # The gate watches the container: the crash is named with the container's own last log line, at once
        # rather than at the health deadline.
        # Which of Docker's states the gate sees depends on when it looks: between runs, exited, or running again.
        assert any(seen in new[0]["reason"] for seen in ("crash-looping", "exited", "restarted")), new[0]
        assert "drill crash_on_start" in new[0]["reason"], new[0]
    assert containers_snapshot()["ragops-app-green"].split()[1] in ("exited", "created")
    report(mode, failed=summary["failed"], sent=summary["sent"], deploy_seconds=round(result.seconds, 1),
           reason=new[0]["reason"][:160])


def test_release_failing_its_analysis_loses_traffic_within_seconds():
    entries = len(history())
    with load(RATE) as run:
        # The smoke test and the quality gate would catch these releases before the switch; this drill is
        # aimed at the analysis after it.
        result = deploy_bad("error_rate:0.5", release_smoke_enabled=False, release_quality_enabled=False)
    summary = run.stop()
    out = result.stdout + result.stderr
    assert result.returncode != 0, tail(result)
    assert "ROLLED BACK after the switch" in out and "error rate" in out, tail(result)
    entry = history()[entries:][-1]
    assert (entry["outcome"], entry["version"]) == ("rolled_back", "1.1.0"), entry
    restore = entry["extra"]["restore_seconds"]
    assert restore is not None and restore <= 5, entry
    # Independent of the record: no request was answered by the bad color more than 5 s after the decision.
    bad_last = max([summary["last_seen"].get("green 1.1.0", 0)]
                   + [f["at"] for f in summary["failures"] if f["color"] == "green"])
    decision = entry["extra"]["decision_epoch"]
    assert bad_last <= decision + 5, (bad_last, decision)
    assert summary["served"].get("blue 1.0.0", 0) > 0
    report("error_rate:0.5", failed_during_analysis=summary["failed"], sent=summary["sent"],
           restore_seconds=restore, last_bad_answer_after_decision_s=round(bad_last - decision, 3),
           deploy_seconds=round(result.seconds, 1))


def test_second_deploy_during_a_deploy_fails_fast_naming_the_holder():
    first = start_playbook("deploy.yml", "-e", "version=1.1.0",
                           extra={"ragops_app_env": {"RAG_CHAOS": "unhealthy"}, "release_health_timeout": 25})
    try:
        deadline = time.monotonic() + 60
        while not lock_held():
            assert first.poll() is None and time.monotonic() < deadline, "the first deploy never took the lock"
            time.sleep(0.1)
        started = time.monotonic()
        entries = len(history())
        second = run_playbook("deploy.yml", "-e", "version=1.1.0")
        seconds = time.monotonic() - started
        refused = history()[entries:]
    finally:
        first_out = first.communicate(timeout=300)[0]
    out = second.stdout + second.stderr
    assert second.returncode != 0, tail(second)
    assert "held by" in out and "deploy 1.1.0" in out and "pid" in out, tail(second)
    assert [(e["outcome"], e["version"]) for e in refused] == [("aborted", "1.1.0")], refused
    assert "held by" in refused[0]["reason"], refused[0]
    assert first.returncode != 0 and "FAILED before the switch" in first_out
    report("concurrent deploy", second_deploy_seconds=round(seconds, 1))


@pytest.mark.parametrize("version", ["", "../x", "1.0;rm -rf /", "v" * 200], ids=["empty", "traversal", "injection", "200-chars"])
def test_malformed_version_is_rejected_before_anything_changes(version):
    files, containers = release_files_snapshot(), containers_snapshot()
    result = run_playbook("deploy.yml", extra={"version": version})
    out = result.stdout + result.stderr
    assert result.returncode != 0, tail(result)
    assert "rejected before any change" in out and "version" in out, tail(result)
    assert release_files_snapshot() == files
    assert containers_snapshot() == containers


def test_version_without_image_that_cannot_be_pulled_fails_in_preflight():
    files_before = release_files_snapshot()
    containers = containers_snapshot()
    entries = len(history())
    # Registry mode with a registry that does not answer (a closed loopback port): nothing can be pulled.
    result = run_playbook("deploy.yml", "-e", "version=9.9.9",
                          extra={"ragops_image_source": "registry", "ragops_image_registry": "127.0.0.1:9"})
    out = result.stdout + result.stderr
    assert result.returncode != 0, tail(result)
    assert "FAILED in preflight" in out and "could not be" in out, tail(result)
    assert containers_snapshot() == containers
    new = history()[entries:]
    assert [(e["outcome"], e["version"]) for e in new] == [("failed", "9.9.9")]
    state_file = next(p for p in files_before if p.endswith("live_color"))
    assert release_files_snapshot()[state_file] == files_before[state_file]
