# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.ragops.platform.plugins.module_utils import _atomic_file
from ansible_collections.ragops.platform.plugins.module_utils._deploy_lock import DeployLock
from ansible_collections.ragops.platform.plugins.modules import release_state
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.module_runner import run_module


def run(capsys, check_mode=False, **args):
    return run_module(release_state, args, capsys, check_mode=check_mode)


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "release"


def state_file(folder):
    return json.loads((folder / "state.json").read_text())


def history_lines(folder):
    return (folder / "history.jsonl").read_text().splitlines()


def test_read_of_a_fresh_host_creates_nothing(folder, capsys):
    result = run(capsys, path=str(folder))
    assert result["changed"] is False
    assert result["state"] == {"schema": 1, "live": None, "previous": None, "attempt": None, "updated_at": None}
    assert result["history"] == [] and result["history_skipped"] == 0
    assert result["lock"]["held"] is False and result["lock"]["summary"] == "free"
    assert not folder.exists()


def test_live_transitions_move_the_old_live_to_previous(folder, capsys):
    first = run(capsys, path=str(folder), state="live", color="blue", version="1.0.0", image_id="sha256:aa")
    assert first["changed"] is True
    assert first["diff"]["before"] == {"live": None, "previous": None, "attempt": None}
    assert first["diff"]["after"]["live"]["version"] == "1.0.0"
    assert state_file(folder)["live"] == first["state"]["live"]
    assert state_file(folder)["previous"] is None

    again = run(capsys, path=str(folder), state="live", color="blue", version="1.0.0", image_id="sha256:aa")
    assert again["changed"] is False and "diff" not in again
    assert run(capsys, path=str(folder), state="live", color="blue", version="1.0.0")["changed"] is False

    second = run(capsys, path=str(folder), state="live", color="green", version="1.1.0", image_id="sha256:bb")
    assert second["changed"] is True
    saved = state_file(folder)
    assert saved["live"]["color"] == "green" and saved["live"]["version"] == "1.1.0"
    assert saved["previous"]["color"] == "blue" and saved["previous"]["version"] == "1.0.0"
    assert saved["previous"]["since"] == first["state"]["live"]["since"]
    assert saved["previous"]["until"] == saved["live"]["since"] == saved["updated_at"]
    assert second["diff"]["before"]["live"]["color"] == "blue"
    assert second["diff"]["after"]["previous"]["color"] == "blue"

    rollback = run(capsys, path=str(folder), state="live", color="blue", version="1.0.0", image_id="sha256:aa")
    saved = state_file(folder)
    assert rollback["changed"] is True
    assert (saved["live"]["color"], saved["previous"]["color"]) == ("blue", "green")


def test_same_color_and_version_with_a_new_image_updates_in_place(folder, capsys):
    run(capsys, path=str(folder), state="live", color="blue", version="1.0.0", image_id="sha256:aa")
    run(capsys, path=str(folder), state="live", color="green", version="1.1.0", image_id="sha256:bb")
    rebuilt = run(capsys, path=str(folder), state="live", color="green", version="1.1.0", image_id="sha256:cc")
    assert rebuilt["changed"] is True
    saved = state_file(folder)
    assert saved["live"]["image_id"] == "sha256:cc"
    assert saved["previous"]["version"] == "1.0.0"  # not replaced by the same deployment


def test_check_mode_predicts_and_writes_nothing(folder, capsys):
    predicted = run(capsys, check_mode=True, path=str(folder), state="live", color="blue", version="1.0.0")
    assert predicted["changed"] is True and predicted["diff"]["after"]["live"]["color"] == "blue"
    assert not folder.exists()

    run(capsys, path=str(folder), state="live", color="blue", version="1.0.0")
    before = {name: (folder / name).read_bytes() for name in os.listdir(str(folder))}
    predicted = run(capsys, check_mode=True, path=str(folder), state="live", color="green", version="1.1.0")
    assert predicted["changed"] is True and predicted["state"]["previous"]["color"] == "blue"
    assert run(capsys, check_mode=True, path=str(folder), state="live", color="blue", version="1.0.0")["changed"] is False
    recorded = run(capsys, check_mode=True, path=str(folder), state="record", version="1.1.0", outcome="success")
    assert recorded["changed"] is True and recorded["entry"]["version"] == "1.1.0"
    assert run(capsys, check_mode=True, path=str(folder), state="previous", color="green", version="0.9.0")["changed"]
    assert {name: (folder / name).read_bytes() for name in os.listdir(str(folder))} == before


def test_record_appends_one_complete_line_with_defaults(folder, capsys, monkeypatch):
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setenv("USER", "alice")
    result = run(capsys, path=str(folder), state="record", action="deploy", version="1.1.0", color="green",
                 image_id="sha256:bb", outcome="rolled_back", reason="error rate 0.48 > 0.05",
                 started_at="2026-01-05T10:00:00Z", finished_at="2026-01-05T10:00:42.5+00:00",
                 phases={"start": "6.25", "health_gate": 2, "analysis": 30.1}, extra={"from_version": "1.0.0"})
    assert result["changed"] is True
    entry = result["entry"]
    assert entry["user"] == "alice" and entry["host"] == os.uname()[1]
    assert entry["started_at"] == "2026-01-05T10:00:00.000Z" and entry["finished_at"] == "2026-01-05T10:00:42.500Z"
    assert entry["duration"] == 42.5
    assert entry["phases"] == {"start": 6.25, "health_gate": 2.0, "analysis": 30.1}
    assert (entry["outcome"], entry["reason"], entry["extra"]) == ("rolled_back", "error rate 0.48 > 0.05", {"from_version": "1.0.0"})
    assert [json.loads(line) for line in history_lines(folder)] == [entry]
    assert result["history"] == [entry]
    assert result["diff"]["after"] == history_lines(folder)[0] + "\n"


def test_record_defaults_times_to_now_and_duration_to_the_phases(folder, capsys):
    entry = run(capsys, path=str(folder), state="record", version="1.0.0", outcome="aborted", user="bob", host="ci",
                phases={"preflight": 1.5, "lock": 0.25})["entry"]
    assert entry["started_at"] == entry["finished_at"] and entry["finished_at"].endswith("Z")
    assert entry["duration"] == 1.75
    assert (entry["user"], entry["host"], entry["action"], entry["color"]) == ("bob", "ci", "deploy", None)


def test_noop_is_recorded_but_not_a_change(folder, capsys):
    result = run(capsys, path=str(folder), state="record", version="1.0.0", outcome="noop")
    assert result["changed"] is False and "diff" not in result
    assert json.loads(history_lines(folder)[0])["outcome"] == "noop"


def test_history_is_append_only_and_limited(folder, capsys):
    for number in range(15):
        run(capsys, path=str(folder), state="record", version="1.0.%d" % number, outcome="success")
    read = run(capsys, path=str(folder), history_limit=10)
    assert [entry["version"] for entry in read["history"]] == ["1.0.%d" % n for n in range(5, 15)]
    assert len(history_lines(folder)) == 15
    assert run(capsys, path=str(folder), history_limit=0)["history"] == []


def test_torn_history_line_is_skipped_and_the_next_record_is_valid(folder, capsys):
    run(capsys, path=str(folder), state="record", version="1.0.0", outcome="success")
    with open(str(folder / "history.jsonl"), "ab") as handle:
        handle.write(b'{"id": "torn", "version": "1.1')
    read = run(capsys, path=str(folder))
    assert [entry["version"] for entry in read["history"]] == ["1.0.0"]
    assert read["history_skipped"] == 1
    run(capsys, path=str(folder), state="record", version="1.2.0", outcome="failed", reason="unhealthy")
    read = run(capsys, path=str(folder))
    assert [entry["version"] for entry in read["history"]] == ["1.0.0", "1.2.0"]
    assert json.loads(history_lines(folder)[-1])["reason"] == "unhealthy"


def test_crash_before_rename_leaves_the_old_record(folder, capsys, monkeypatch):
    run(capsys, path=str(folder), state="live", color="blue", version="1.0.0")
    before = (folder / "state.json").read_bytes()

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_atomic_file.os, "replace", crash)
    failed = run(capsys, path=str(folder), state="live", color="green", version="1.1.0")
    assert failed["failed"] is True and "No space left on device" in failed["msg"]
    monkeypatch.undo()
    assert (folder / "state.json").read_bytes() == before
    assert sorted(os.listdir(str(folder))) == ["state.json"]
    assert run(capsys, path=str(folder))["state"]["live"]["color"] == "blue"


def test_corrupt_state_fails_naming_the_file(folder, capsys):
    folder.mkdir()
    (folder / "state.json").write_text('{"schema": 1, "live": {"color": "bl')
    result = run(capsys, path=str(folder))
    assert result["failed"] is True
    assert str(folder / "state.json") in result["msg"] and "not valid JSON" in result["msg"]
    (folder / "state.json").write_text('{"schema": 1, "live": {"version": "1.0.0"}}')
    assert "must be null or an object with color and version" in run(capsys, path=str(folder))["msg"]
    (folder / "state.json").write_text('{"schema": 9, "live": null}')
    assert "schema 9" in run(capsys, path=str(folder), state="live", color="blue", version="1.0.0")["msg"]


def test_previous_sets_only_the_previous_slot(folder, capsys):
    run(capsys, path=str(folder), state="live", color="green", version="1.1.0")
    result = run(capsys, path=str(folder), state="previous", color="blue", version="1.0.0", image_id="sha256:aa")
    assert result["changed"] is True
    saved = state_file(folder)
    assert saved["live"]["color"] == "green" and saved["previous"]["version"] == "1.0.0"
    assert run(capsys, path=str(folder), state="previous", color="blue", version="1.0.0")["changed"] is False


def test_read_reports_the_deploy_lock(folder, capsys):
    DeployLock(str(folder)).acquire({"holder": "deploy 1.2.0", "user": "alice", "host": "host1", "pid": 42}, ttl=600)
    lock = run(capsys, path=str(folder))["lock"]
    assert lock["held"] is True and lock["holder"]["user"] == "alice"
    assert lock["summary"].startswith("held by alice@host1 (pid 42, 'deploy 1.2.0')")


@pytest.mark.parametrize("args, message", [
    ({"state": "record", "version": "1.0.0"}, "outcome"),
    ({"state": "live", "color": "blue"}, "version"),
    ({"state": "live", "color": "red", "version": "1.0.0"}, "color"),
    ({"state": "record", "version": "1.0.0", "outcome": "success", "started_at": "yesterday"}, "started_at"),
    ({"state": "record", "version": "1.0.0", "outcome": "success", "phases": {"start": "slow"}}, "phases.start"),
    ({"history_limit": -1}, "history_limit"),
    ({"state": "live", "color": "blue", "version": "1.0.0", "mode": "rw"}, "mode"),
])
def test_invalid_arguments_fail_with_the_reason(folder, capsys, args, message):
    result = run(capsys, path=str(folder), **args)
    assert result["failed"] is True and message in result["msg"]
    assert not (folder / "state.json").exists() and not (folder / "history.jsonl").exists()


def test_commit_sets_live_and_previous_and_appends_the_entry_in_one_call(folder, capsys):
    run(capsys, path=str(folder), state="live", color="blue", version="1.0.0", image_id="sha256:aa")
    result = run(capsys, path=str(folder), state="commit", color="green", version="1.1.0", image_id="sha256:bb",
                 previous_color="blue", previous_version="1.0.0", previous_image_id="sha256:aa",
                 outcome="success", phases={"switch": 0.4})
    assert result["changed"] is True
    saved = state_file(folder)
    assert saved["live"]["color"] == "green" and saved["live"]["image_id"] == "sha256:bb"
    # The old live slot moved to previous keeps its since/until, since it matches what the caller saw.
    assert saved["previous"]["version"] == "1.0.0" and saved["previous"]["until"] is not None
    assert result["diff"]["after"] == {"live": saved["live"], "previous": saved["previous"], "attempt": None}
    lines = history_lines(folder)
    assert len(lines) == 1 and json.loads(lines[0])["outcome"] == "success"
    assert result["entry"] == json.loads(lines[0])


def test_commit_trusts_the_containers_over_a_record_that_is_behind(folder, capsys):
    # No record yet: the stack was installed by site.yml, so blue 1.0.0 is live but state.json is empty.
    result = run(capsys, path=str(folder), state="commit", color="green", version="1.1.0",
                 previous_color="blue", previous_version="1.0.0", previous_image_id="sha256:aa", outcome="success")
    saved = state_file(folder)
    assert saved["previous"]["color"] == "blue" and saved["previous"]["image_id"] == "sha256:aa"
    assert result["state"] == saved


def test_commit_of_the_live_version_on_the_other_color_keeps_the_moved_slot(folder, capsys):
    run(capsys, path=str(folder), state="live", color="blue", version="1.0.0")
    run(capsys, path=str(folder), state="commit", color="green", version="1.0.0",
        previous_color="green", previous_version="1.0.0", outcome="success")
    saved = state_file(folder)
    assert saved["live"]["color"] == "green" and saved["previous"]["color"] == "blue"


def test_commit_in_check_mode_predicts_and_writes_nothing(folder, capsys):
    run(capsys, path=str(folder), state="live", color="blue", version="1.0.0")
    before = (folder / "state.json").read_bytes()
    result = run(capsys, check_mode=True, path=str(folder), state="commit", color="green", version="1.1.0",
                 previous_color="blue", previous_version="1.0.0", outcome="success")
    assert result["changed"] is True and result["state"]["live"]["color"] == "green"
    assert result["entry"]["outcome"] == "success"
    assert (folder / "state.json").read_bytes() == before
    assert not (folder / "history.jsonl").exists()


@pytest.mark.parametrize("args, message", [
    ({"outcome": "success", "phases": {"start": "slow"}}, "phases.start"),
    ({"outcome": "success", "previous_color": "blue"}, "previous_version"),
    ({}, "outcome"),
])
def test_bad_commit_changes_nothing(folder, capsys, args, message):
    run(capsys, path=str(folder), state="live", color="blue", version="1.0.0")
    before = (folder / "state.json").read_bytes()
    result = run(capsys, path=str(folder), state="commit", color="green", version="1.1.0", **args)
    assert result["failed"] is True and message in result["msg"]
    assert (folder / "state.json").read_bytes() == before
    assert not (folder / "history.jsonl").exists()


# -- invalid_parameters and run_release_state, driven directly -----------------------------------------------------

T0 = datetime.datetime(2026, 1, 5, 10, 0, 0, tzinfo=datetime.timezone.utc)


def params_for(**args):
    """Module params with defaults applied, for calling invalid_parameters and run_release_state directly."""
    with patch_module_args(args):
        return AnsibleModule(argument_spec=release_state.argument_spec(), supports_check_mode=True).params


def at(seconds):
    moment = T0 + datetime.timedelta(seconds=seconds)
    return lambda: moment


def run_directly(folder, seconds=0, check_mode=False, **args):
    return release_state.run_release_state(params_for(path=str(folder), **args), check_mode=check_mode, now=at(seconds))


def test_valid_parameters_have_no_problems(folder):
    assert release_state.invalid_parameters(params_for(path=str(folder))) == []


def test_entry_options_are_checked_only_when_an_entry_is_written(folder):
    bad_entry = {"phases": {"start": "slow"}, "started_at": "yesterday"}
    assert release_state.invalid_parameters(params_for(path=str(folder), state="live", color="blue", version="1",
                                                       **bad_entry)) == []
    problems = release_state.invalid_parameters(params_for(path=str(folder), state="commit", color="blue", version="1",
                                                           outcome="success", **bad_entry))
    assert problems == ["phases.start must be a number of seconds, not 'slow'",
                        "started_at: 'yesterday' is not an ISO 8601 time or epoch seconds"]


def test_invalid_parameters_name_each_bad_field(folder):
    problems = release_state.invalid_parameters(params_for(path=str(folder), mode="rw", history_limit=-1,
                                                           state="record", version="1", outcome="failed",
                                                           finished_at="soon"))
    assert problems == ["mode must be an octal string such as '0644', not 'rw'", "history_limit must be 0 or more, not -1",
                        "finished_at: 'soon' is not an ISO 8601 time or epoch seconds"]


def test_bad_parameters_write_nothing_and_keep_the_message(folder, capsys):
    result = run(capsys, path=str(folder), state="record", version="1.0.0", outcome="success", phases={"start": "slow"})
    assert result["msg"] == "phases.start must be a number of seconds, not 'slow'"
    assert not folder.exists()


def test_run_live_then_commit_on_a_fixed_clock(folder):
    first = run_directly(folder, state="live", color="blue", version="1.0.0", image_id="sha256:aa")
    blue = {"color": "blue", "version": "1.0.0", "image_id": "sha256:aa", "since": "2026-01-05T10:00:00.000Z"}
    assert first["changed"] is True
    assert first["state"] == {"schema": 1, "live": blue, "previous": None, "attempt": None,
                              "updated_at": "2026-01-05T10:00:00.000Z"}
    assert first["diff"] == {"before": {"live": None, "previous": None, "attempt": None},
                             "after": {"live": blue, "previous": None, "attempt": None}}

    result = run_directly(folder, seconds=90, state="commit", color="green", version="1.1.0", image_id="sha256:bb",
                          previous_color="blue", previous_version="1.0.0", previous_image_id="sha256:aa",
                          outcome="success", user="alice", host="host1", phases={"start": 1.25, "switch": "0.5"})
    green = {"color": "green", "version": "1.1.0", "image_id": "sha256:bb", "since": "2026-01-05T10:01:30.000Z"}
    moved = dict(blue, until="2026-01-05T10:01:30.000Z")
    assert result["state"] == {"schema": 1, "live": green, "previous": moved, "attempt": None,
                               "updated_at": "2026-01-05T10:01:30.000Z"}
    assert result["state"] == state_file(folder)
    entry = dict(result["entry"])
    assert len(entry.pop("id")) == 16
    assert entry == {"action": "deploy", "version": "1.1.0", "color": "green", "image_id": "sha256:bb",
                     "outcome": "success", "reason": None, "user": "alice", "host": "host1",
                     "started_at": "2026-01-05T10:01:30.000Z", "finished_at": "2026-01-05T10:01:30.000Z",
                     "duration": 1.75, "phases": {"start": 1.25, "switch": 0.5}, "extra": {}}
    assert result["history"] == [result["entry"]] and result["history_skipped"] == 0


def test_run_record_takes_the_duration_from_started_at(folder):
    entry = run_directly(folder, seconds=42.5, state="record", version="1.0.0", outcome="failed",
                         started_at="2026-01-05T10:00:00Z")["entry"]
    assert (entry["started_at"], entry["finished_at"], entry["duration"]) == (
        "2026-01-05T10:00:00.000Z", "2026-01-05T10:00:42.500Z", 42.5)


def test_run_in_check_mode_predicts_what_a_real_run_does(folder):
    run_directly(folder, state="live", color="blue", version="1.0.0")
    before = state_file(folder)
    args = dict(seconds=60, state="commit", color="green", version="1.1.0", previous_color="blue",
                previous_version="1.0.0", outcome="success", user="alice", host="host1")
    predicted = run_directly(folder, check_mode=True, **args)
    assert state_file(folder) == before and not (folder / "history.jsonl").exists()
    applied = run_directly(folder, **args)
    assert predicted["history"] == [] and len(applied["history"]) == 1
    for result in (predicted, applied):
        result["entry"].pop("id")
        result.pop("history")
    assert predicted == applied


def test_run_noop_record_is_not_a_change(folder):
    result = run_directly(folder, state="record", version="1.0.0", outcome="noop")
    assert result["changed"] is False and "diff" not in result and result["entry"]["outcome"] == "noop"


def test_run_read_reports_the_lock_on_the_same_clock(folder):
    DeployLock(str(folder), now=at(0)).acquire({"holder": "deploy", "user": "alice", "host": "host1", "pid": 42}, ttl=600)
    lock = run_directly(folder, seconds=100)["lock"]
    assert lock["held"] is True and lock["expires_in"] == 500.0 and lock["stale"] is None
    assert run_directly(folder, seconds=601)["lock"]["stale"] == "expired"


def test_run_reports_a_corrupt_record_naming_the_file(folder):
    folder.mkdir()
    (folder / "state.json").write_text("{")
    result = run_directly(folder)
    assert result["failed"] is True and result["file"] == str(folder / "state.json")
    assert "not valid JSON" in result["msg"] and "line 1 column 2" in result["msg"]
    copies = list(folder.glob("state.json.corrupt-*"))
    assert [c.read_text() for c in copies] == ["{"] and str(copies[0]) in result["msg"]
    assert (folder / "state.json").read_text() == "{", "the damaged file is left as it was"
    assert run_directly(folder, seconds=5)["backup"] == "a copy is kept at %s" % copies[0], "one copy, reused"


def test_run_reports_a_newer_schema(folder):
    folder.mkdir()
    (folder / "state.json").write_text('{"schema": 9, "live": null}')
    result = run_directly(folder, state="live", color="blue", version="1.0.0")
    assert result["failed"] is True and result["msg"].startswith("release state in %s: " % folder)
    assert "schema 9" in result["msg"]


# -- the journal of an attempt: begin, phase, and the final record that closes it -----------------------------------

BEGIN = dict(state="begin", attempt_id="a1", color="green", version="1.1.0", from_color="blue", from_version="1.0.0",
             lock_id="L1", user="alice", host="host1")


def test_begin_opens_an_attempt_in_phase_started(folder):
    result = run_directly(folder, **BEGIN)
    attempt = {"id": "a1", "action": "deploy", "lock_id": "L1", "from": {"color": "blue", "version": "1.0.0"},
               "to": {"color": "green", "version": "1.1.0"}, "needs_analysis": True, "user": "alice", "host": "host1",
               "started_at": "2026-01-05T10:00:00.000Z", "phase": "started",
               "phases_at": {"started": "2026-01-05T10:00:00.000Z"}, "updated_at": "2026-01-05T10:00:00.000Z"}
    assert result["changed"] is True and result["attempt"] == attempt
    assert state_file(folder)["attempt"] == attempt
    assert result["diff"] == {"before": {"live": None, "previous": None, "attempt": None},
                              "after": {"live": None, "previous": None, "attempt": attempt}}
    assert not (folder / "history.jsonl").exists() and "entry" not in result


def test_begin_keeps_started_at_and_makes_an_id(folder):
    attempt = run_directly(folder, seconds=30, state="begin", color="green", version="1.1.0", needs_analysis=False,
                           started_at="2026-01-05T10:00:00Z")["attempt"]
    assert len(attempt["id"]) == 16 and attempt["needs_analysis"] is False
    assert (attempt["started_at"], attempt["phases_at"]) == (
        "2026-01-05T10:00:00.000Z", {"started": "2026-01-05T10:00:30.000Z"})


def test_begin_fails_while_another_attempt_is_open(folder):
    run_directly(folder, **BEGIN)
    before = (folder / "state.json").read_bytes()
    second = dict(BEGIN)
    second["attempt_id"] = "a2"
    result = run_directly(folder, seconds=5, **second)
    assert result["failed"] is True
    assert result["msg"] == ("release state in %s: attempt a1 (deploy, phase started) is still open: reconcile closes "
                             "it first" % folder)
    assert (folder / "state.json").read_bytes() == before


def test_phase_moves_the_attempt_and_records_when(folder):
    run_directly(folder, **BEGIN)
    gated = run_directly(folder, seconds=9.5, state="phase", attempt_id="a1", phase="gated")
    assert gated["changed"] is True
    saved = state_file(folder)["attempt"]
    assert saved == gated["attempt"]
    assert (saved["phase"], saved["updated_at"]) == ("gated", "2026-01-05T10:00:09.500Z")
    assert saved["phases_at"] == {"started": "2026-01-05T10:00:00.000Z", "gated": "2026-01-05T10:00:09.500Z"}
    assert gated["diff"]["before"]["attempt"]["phase"] == "started"
    again = run_directly(folder, seconds=12, state="phase", attempt_id="a1", phase="gated")
    assert again["changed"] is False and state_file(folder)["attempt"] == saved


@pytest.mark.parametrize("begin, message", [
    (True, "attempt zz is not open (open: a1)"),
    (False, "attempt zz is not open (open: None)"),
])
def test_phase_of_an_attempt_that_is_not_open_fails(folder, begin, message):
    if begin:
        run_directly(folder, **BEGIN)
    result = run_directly(folder, state="phase", attempt_id="zz", phase="switched")
    assert result["failed"] is True and result["msg"] == "release state in %s: %s" % (folder, message)
    if begin:
        assert state_file(folder)["attempt"]["phase"] == "started"
    else:
        assert not (folder / "state.json").exists()


def test_commit_with_attempt_id_closes_it_in_the_same_write(folder):
    run_directly(folder, state="live", color="blue", version="1.0.0")
    run_directly(folder, seconds=1, **BEGIN)
    result = run_directly(folder, seconds=40, state="commit", attempt_id="a1", color="green", version="1.1.0",
                          previous_color="blue", previous_version="1.0.0", outcome="success")
    saved = state_file(folder)
    assert saved["attempt"] is None and result["attempt"] is None
    assert (saved["live"]["color"], saved["previous"]["color"]) == ("green", "blue")
    assert result["diff"]["before"]["attempt"]["id"] == "a1" and result["diff"]["after"]["attempt"] is None
    assert result["entry"]["id"] == "a1"
    assert [json.loads(line)["id"] for line in history_lines(folder)] == ["a1"]


def test_record_of_a_failed_attempt_closes_it(folder):
    run_directly(folder, state="live", color="blue", version="1.0.0")
    run_directly(folder, seconds=1, **BEGIN)
    live = state_file(folder)["live"]
    result = run_directly(folder, seconds=20, state="record", attempt_id="a1", version="1.1.0", color="green",
                          outcome="failed", reason="health gate: unhealthy")
    assert result["changed"] is True
    saved = state_file(folder)
    assert saved["attempt"] is None and saved["live"] == live
    assert saved["updated_at"] == "2026-01-05T10:00:20.000Z"
    entry = json.loads(history_lines(folder)[0])
    assert (entry["id"], entry["outcome"], entry["reason"]) == ("a1", "failed", "health gate: unhealthy")


def test_record_with_another_attempt_id_leaves_the_open_one(folder):
    run_directly(folder, **BEGIN)
    result = run_directly(folder, seconds=3, state="record", attempt_id="zz", version="1.1.0", outcome="aborted")
    assert result["entry"]["id"] == "zz"
    assert state_file(folder)["attempt"]["id"] == "a1"


def test_begin_and_phase_in_check_mode_write_nothing(folder):
    predicted = run_directly(folder, check_mode=True, **BEGIN)
    assert predicted["changed"] is True and predicted["attempt"]["phase"] == "started"
    assert not folder.exists()
    run_directly(folder, **BEGIN)
    before = (folder / "state.json").read_bytes()
    moved = run_directly(folder, seconds=5, check_mode=True, state="phase", attempt_id="a1", phase="switched")
    assert moved["changed"] is True and moved["attempt"]["phase"] == "switched"
    assert (folder / "state.json").read_bytes() == before


@pytest.mark.parametrize("attempt", [
    {"id": "a1", "phase": "bogus", "to": {"color": "green", "version": "1.1.0"}},
    {"id": "a1", "phase": "gated", "to": {"color": "red", "version": "1.1.0"}},
    {"phase": "gated", "to": {"color": "green", "version": "1.1.0"}},
    "a1",
], ids=["unknown_phase", "unknown_color", "no_id", "not_an_object"])
def test_a_malformed_attempt_is_reported_corrupt(folder, attempt):
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps({"schema": 1, "live": None, "attempt": attempt}))
    result = run_directly(folder)
    assert result["failed"] is True and result["file"] == str(folder / "state.json")
    assert "'attempt' must be null or an object with id, phase and to.color" in result["msg"]


@pytest.mark.parametrize("args, message", [
    ({"state": "begin", "color": "green"}, "version"),
    ({"state": "phase", "attempt_id": "a1"}, "phase"),
    ({"state": "phase", "phase": "gated"}, "attempt_id"),
    ({"state": "phase", "attempt_id": "a1", "phase": "bogus"}, "phase"),
])
def test_journal_steps_need_their_options(folder, capsys, args, message):
    result = run(capsys, path=str(folder), **args)
    assert result["failed"] is True and message in result["msg"]
    assert not folder.exists()


FLEET = {"app1": {"color": "green", "version": "1.1.0"}, "app2": {"color": "green", "version": "1.1.0"}}


def test_a_fleet_commit_keeps_each_host_in_the_live_slot(folder, capsys):
    run(capsys, path=str(folder), state="live", color="blue", version="1.0.0")
    run(capsys, path=str(folder), state="commit", color="green", version="1.1.0", previous_color="blue",
        previous_version="1.0.0", outcome="success", hosts=FLEET)
    assert state_file(folder)["live"]["hosts"] == FLEET


def test_a_host_left_behind_updates_the_live_slot_in_place(folder, capsys):
    run(capsys, path=str(folder), state="live", color="green", version="1.1.0", hosts=FLEET)
    since = state_file(folder)["live"]["since"]
    behind = dict(FLEET, app2={"behind": True, "reason": "did not answer at deploy"})
    result = run(capsys, path=str(folder), state="live", color="green", version="1.1.0", hosts=behind)
    saved = state_file(folder)
    assert result["changed"] is True and saved["live"]["hosts"] == behind and saved["live"]["since"] == since
    assert saved["previous"] is None
    again = run(capsys, path=str(folder), state="live", color="green", version="1.1.0", hosts=behind)
    assert again["changed"] is False
