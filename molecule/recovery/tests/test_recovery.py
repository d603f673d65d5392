"""A deploy killed at any instant leaves the truth on disk, and the next run repairs it (one converged stack).

Each drill runs under the keep-alive POST load with no client retries and asserts the failed count. The figures are
printed and written to $RAGOPS_FIGURES (JSON lines).
"""

from __future__ import annotations

import json
import os
import time

import pytest
from release_harness import (
    describe,
    ensure_image,
    history,
    kill_group_at,
    load,
    lock_held,
    nginx_live_color,
    read_state,
    run_playbook,
    start_playbook,
    tail,
    wait_for_orphans,
)

RATE = 200
FIGURES = os.environ.get("RAGOPS_FIGURES", "/tmp/ragops-recovery-figures.jsonl")
VERSIONS = ("1.0.0", "1.1.0")


def report(case: str, **figures) -> None:
    line = json.dumps({"case": case, **figures})
    print(f"FIGURES {line}")
    with open(FIGURES, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def epoch(text: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module", autouse=True)
def images():
    for version in VERSIONS:
        ensure_image(version)


def assert_in_agreement() -> dict:
    """The record, nginx and the lock agree, and no attempt is open: what every drill ends with."""
    state = read_state()
    assert state["attempt"] is None, state
    assert nginx_live_color() == state["live"]["color"], state
    assert not lock_held()
    return state


# (phase, the task whose start is the kill point, seconds after it, the run that repairs)
KILLS = [
    ("start", "Run the container of", 0.3, "deploy.yml"),
    ("health_gate", "Health gate of the new color", 0.5, "rollback.yml"),
    ("after_switch", "Note the end of the switch", 0.0, "rollback.yml"),
    ("analysis", "Analyse under traffic", 2.0, "deploy.yml"),
    ("commit", "Record the new live deployment", 0.0, "deploy.yml"),
]


@pytest.mark.parametrize(("phase", "marker", "delay", "repair"), KILLS, ids=[k[0] for k in KILLS])
def test_deploy_killed_is_shown_by_status_and_repaired_by_the_next_run(phase, marker, delay, repair):
    good = assert_in_agreement()["live"]
    new = next(v for v in VERSIONS if v != good["version"])
    entries = len(history())
    with load(RATE) as run:
        killed = start_playbook("deploy.yml", "-e", f"version={new}", new_session=True)
        kill_group_at(killed, marker, delay)
        orphans = wait_for_orphans()
        status = run_playbook("status.yml")
        repair_started = time.time()
        repaired = run_playbook(repair, *(["-e", f"version={new}"] if repair == "deploy.yml" else []))
    summary = run.stop()
    status_out = status.stdout + status.stderr
    assert status.returncode == 0, tail(status)
    assert repaired.returncode == 0, tail(repaired)
    assert summary["failed"] == 0, describe(summary)
    state = assert_in_agreement()
    new_entries = history()[entries:]
    interrupted = [e for e in new_entries if e["outcome"] == "interrupted"]
    if phase == "commit" and not interrupted:
        # The commit's module had started before the kill and finished on its own: nothing was left open.
        assert "CONSISTENT" in status_out, status_out[-3000:]
    else:
        assert "INTERRUPTED" in status_out and "repair:" in status_out, status_out[-3000:]
        assert len(interrupted) == 1, new_entries
        assert interrupted[0]["version"] == new and interrupted[0]["extra"]["last_phase"], interrupted[0]
    assert any(e["action"] == "lock" and e["outcome"] == "taken_over" for e in new_entries), new_entries
    if repair == "deploy.yml":
        assert (state["live"]["version"]) == new, state  # the repair, then the deploy itself
    restored = [e for e in new_entries if e.get("extra", {}).get("repaired_unverified")]
    known_good_after = round(epoch(restored[0]["finished_at"]) - repair_started, 1) if restored else None
    if phase in ("after_switch", "analysis"):
        assert restored and restored[0]["version"] == good["version"], new_entries
    report(f"kill during {phase}", failed=summary["failed"], sent=summary["sent"], orphan_wait_s=round(orphans, 1),
           repair_run=repair, repair_run_s=round(repaired.seconds, 1), known_good_serving_after_s=known_good_after,
           interrupted_phase=interrupted[0]["extra"]["last_phase"] if interrupted else None,
           outcomes=[(e["action"], e["outcome"]) for e in new_entries])
