# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.ragops.platform.plugins.module_utils._deploy_lock import DeployLock
from ansible_collections.ragops.platform.plugins.module_utils._docker_engine import DockerEngineError
from ansible_collections.ragops.platform.plugins.modules import release_reconcile
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_release_host import (
    STARTED_AT,
    FakeInspect,
    inspect_document,
    journal,
    nginx_serves,
    nginx_unreachable,
    write_record,
)
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_time import utc_clock
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.module_runner import run_module

BLUE = ("blue", "1.0.0", "sha256:b1")
AT_60 = "2026-01-05T10:01:00.000Z"


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "release"


def params_for(**args):
    """Module params with defaults applied, for calling invalid_parameters and run_release_reconcile directly."""
    with patch_module_args(args):
        return AnsibleModule(argument_spec=release_reconcile.argument_spec(), supports_check_mode=True).params


def both_colors():
    """blue runs the known good 1.0.0, green the new 1.1.0."""
    return FakeInspect(blue=inspect_document("1.0.0", image_id="sha256:b1"),
                       green=inspect_document("1.1.0", image_id="sha256:g2"))


def reconcile(folder, nginx="blue", inspect=None, seconds=60, check_mode=False, **args):
    live = nginx_serves(nginx) if isinstance(nginx, str) else nginx
    return release_reconcile.run_release_reconcile(params_for(path=str(folder), **args), live,
                                                   inspect or both_colors(), check_mode=check_mode,
                                                   now=utc_clock(seconds))


def hold_lock(folder, lock_id, ttl=600):
    """A live holder: taken at T0 for ``ttl`` seconds, with no pid, so it goes stale by expiry only."""
    holder = {"holder": "deploy", "user": "bob", "host": "host2"}
    DeployLock(str(folder), now=utc_clock(0)).acquire(holder, ttl, lock_id=lock_id)


def state_file(folder):
    return json.loads((folder / "state.json").read_text())


def history(folder):
    return [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()]


def snapshot(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(str(folder)))}


# -- parameters -------------------------------------------------------------------------------------------------------

def test_valid_parameters_have_no_problems(folder):
    assert release_reconcile.invalid_parameters(params_for(path=str(folder))) == []
    assert release_reconcile.invalid_parameters(params_for(path=str(folder), close=True, lock_id="OURS")) == []


@pytest.mark.parametrize("args, problems", [
    ({"close": True}, ["close needs lock_id, the deploy lock this run holds: only the lock holder closes an attempt"]),
    ({"timeout": 0}, ["timeout must be more than 0, not 0.0"]),
    ({"close": True, "timeout": -1}, [
        "close needs lock_id, the deploy lock this run holds: only the lock holder closes an attempt",
        "timeout must be more than 0, not -1.0"]),
])
def test_invalid_parameters_name_each_bad_field(folder, args, problems):
    assert release_reconcile.invalid_parameters(params_for(path=str(folder), **args)) == problems


def test_bad_parameters_fail_the_module_before_any_call(folder, capsys):
    result = run_module(release_reconcile, {"path": str(folder), "close": True}, capsys)
    assert result["failed"] is True and result["msg"].startswith("close needs lock_id")
    assert not folder.exists()


# -- the views --------------------------------------------------------------------------------------------------------

def test_consistent_host_reads_each_color_s_container(folder):
    write_record(folder, live=BLUE)
    inspect = both_colors()
    result = reconcile(folder, inspect=inspect)
    assert (result["verdict"], result["attempt_state"], result["changed"], result["closed"]) == (
        "consistent", "none", False, None)
    assert inspect.names == ["ragops-app-blue", "ragops-app-green"]
    assert result["serving"] == {"color": "blue", "version": "1.0.0", "image_id": "sha256:b1", "running": True}
    assert result["containers"] == ["blue: 1.0.0 running (healthy)", "green: 1.1.0 running (healthy)"]


def test_container_prefix_and_version_label(folder):
    write_record(folder, live=BLUE)
    inspect = FakeInspect(blue=inspect_document("1.0.0", label="app.version"), prefix="x-")
    result = reconcile(folder, inspect=inspect, container_prefix="x-", version_label="app.version")
    assert inspect.names == ["x-blue", "x-green"]
    assert result["containers"] == ["blue: 1.0.0 running (healthy)", "green: no container"]


def test_a_docker_error_is_named_in_the_containers(folder):
    write_record(folder, live=BLUE)
    inspect = FakeInspect(blue=inspect_document("1.0.0"), green=DockerEngineError("HTTP 500"))
    result = reconcile(folder, inspect=inspect)
    assert result["verdict"] == "consistent" and result["containers"][1] == "green: unknown: HTTP 500"


def test_nginx_unreachable_is_unknown(folder):
    write_record(folder, live=BLUE)
    result = reconcile(folder, nginx=nginx_unreachable("connection refused"))
    assert (result["verdict"], result["serving"], result["repair"]) == ("unknown", None, None)
    assert result["drift"] == ["nginx: connection refused"]


def test_unverified_names_the_repair(folder):
    write_record(folder, live=BLUE)
    result = reconcile(folder, nginx="green")
    assert result["verdict"] == "unverified" and result["changed"] is False
    assert result["repair"] == {"color": "blue", "version": "1.0.0", "image_id": "sha256:b1",
                                "from_color": "green", "from_version": "1.1.0"}


@pytest.mark.parametrize("content, drift", [
    ("green\n", ["nginx's persisted live color file says green while nginx serves blue"]),
    ("blue\n", []),
    (None, []),  # no such file
])
def test_persisted_live_color_file(folder, tmp_path, content, drift):
    write_record(folder, live=BLUE)
    color_file = tmp_path / "live_color"
    if content is not None:
        color_file.write_text(content)
    assert reconcile(folder, live_color_file=str(color_file))["drift"] == drift


# -- closing an interrupted attempt -----------------------------------------------------------------------------------

def test_close_ends_an_interrupted_attempt_in_one_history_line(folder):
    write_record(folder, live=BLUE, attempt=journal(), phase="gated")
    hold_lock(folder, "OURS")  # this run's lock; the attempt's run (L1) is gone
    result = reconcile(folder, close=True, lock_id="OURS")
    assert (result["verdict"], result["attempt_state"], result["roll_forward"]) == ("consistent", "interrupted", None)
    assert result["changed"] is True
    saved = state_file(folder)
    assert saved["attempt"] is None and saved["updated_at"] == AT_60
    assert saved["live"] == {"color": "blue", "version": "1.0.0", "image_id": "sha256:b1", "since": STARTED_AT}
    assert history(folder) == [result["closed"]]
    entry = result["closed"]
    assert (entry["id"], entry["action"], entry["outcome"], entry["version"], entry["color"]) == (
        "a1", "deploy", "interrupted", "1.1.0", "green")
    assert (entry["started_at"], entry["finished_at"], entry["duration"]) == (STARTED_AT, AT_60, 120.0)
    assert entry["extra"]["last_phase"] == "gated"
    assert entry["extra"]["resolution"] == "traffic never left (or is back on) the known good blue 1.0.0"
    assert entry["reason"].startswith("deploy 1.1.0 was interrupted in phase gated")
    assert result["diff"]["before"]["attempt"]["id"] == "a1" and result["diff"]["after"]["attempt"] is None


def test_close_rolls_forward_an_attempt_that_had_passed_its_analysis(folder):
    write_record(folder, live=BLUE, attempt=journal(), phase="analysed")
    result = reconcile(folder, nginx="green", close=True, lock_id="OURS")
    assert result["roll_forward"]["color"] == "green" and result["verdict"] == "consistent"
    saved = state_file(folder)
    assert saved["live"] == {"color": "green", "version": "1.1.0", "image_id": "sha256:g2", "since": AT_60}
    assert saved["previous"] == {"color": "blue", "version": "1.0.0", "image_id": "sha256:b1", "since": STARTED_AT,
                                 "until": AT_60}
    assert saved["attempt"] is None
    [entry] = history(folder)
    assert (entry["id"], entry["outcome"]) == ("a1", "interrupted")
    assert entry["extra"]["resolution"] == "committed: its target serves and had passed all it had to"


def test_roll_forward_of_the_first_release_sets_its_origin_as_previous(folder):
    write_record(folder, attempt=journal(needs_analysis=False), phase="switched")
    reconcile(folder, nginx="green", close=True, lock_id="OURS")
    saved = state_file(folder)
    assert (saved["live"]["color"], saved["live"]["version"]) == ("green", "1.1.0")
    assert saved["previous"] == {"color": "blue", "version": "1.0.0", "image_id": None, "since": None, "until": None}


def test_check_mode_predicts_the_close_and_writes_nothing(folder):
    write_record(folder, live=BLUE, attempt=journal(), phase="analysed")
    before = snapshot(folder)
    predicted = reconcile(folder, nginx="green", check_mode=True, close=True, lock_id="OURS")
    assert snapshot(folder) == before
    assert predicted["changed"] is True and predicted["closed"]["id"] == "a1"
    assert predicted["diff"]["after"]["attempt"] is None and predicted["diff"]["after"]["live"]["color"] == "green"
    applied = reconcile(folder, nginx="green", close=True, lock_id="OURS")
    assert predicted["closed"] == applied["closed"] and predicted["diff"] == applied["diff"]


def test_without_close_nothing_is_written(folder):
    write_record(folder, live=BLUE, attempt=journal(), phase="analysed")
    before = snapshot(folder)
    result = reconcile(folder, nginx="green", lock_id="OURS")
    assert result["attempt_state"] == "interrupted" and result["roll_forward"] is not None
    assert (result["changed"], result["closed"]) == (False, None)
    assert snapshot(folder) == before


def test_a_running_attempt_is_not_closed_until_its_lock_goes_stale(folder):
    write_record(folder, live=BLUE, attempt=journal(), phase="switched")
    hold_lock(folder, "L1", ttl=600)  # the attempt's own run, still alive
    before = snapshot(folder)
    running = reconcile(folder, nginx="green", close=True, lock_id="OURS")
    assert (running["attempt_state"], running["verdict"], running["changed"], running["closed"]) == (
        "running", "consistent", False, None)
    assert snapshot(folder) == before

    expired = reconcile(folder, nginx="green", seconds=601, close=True, lock_id="OURS")
    assert expired["attempt_state"] == "interrupted" and expired["verdict"] == "unverified"
    assert expired["closed"]["id"] == "a1" and state_file(folder)["attempt"] is None


def test_a_corrupt_state_file_fails_naming_it(folder):
    folder.mkdir()
    (folder / "state.json").write_text('{"schema": 1, "live": {"color": "bl')
    result = reconcile(folder, close=True, lock_id="OURS")
    assert result["failed"] is True and result["file"] == str(folder / "state.json")
    assert str(folder / "state.json") in result["msg"]
    assert not (folder / "history.jsonl").exists()


def test_a_newer_schema_fails_instead_of_crashing(folder):
    folder.mkdir()
    (folder / "state.json").write_text('{"schema": 9, "live": null}')
    result = reconcile(folder)
    assert result["failed"] is True and result["msg"].startswith("release reconcile in %s: " % folder)
    assert "schema 9" in result["msg"]
