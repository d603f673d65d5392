# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.ragops.platform.plugins.module_utils._deploy_lock import DeployLock
from ansible_collections.ragops.platform.plugins.module_utils._release_record import default_host
from ansible_collections.ragops.platform.plugins.modules import release_lock
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_time import FakeTime
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.module_runner import run_module

ALICE = {"holder": "deploy 1.2.0", "user": "alice", "host": "host1", "pid": 4242}


def run(capsys, check_mode=False, **args):
    return run_module(release_lock, args, capsys, check_mode=check_mode)


def lock_file(tmp_path):
    return tmp_path / "deploy.lock"


def test_acquire_then_release(tmp_path, capsys):
    acquired = run(capsys, path=str(tmp_path), holder="deploy 1.2.0", user="alice", host="host1", pid=4242, ttl=600)
    assert acquired["changed"] is True and acquired["acquired"] is True and acquired["renewed"] is False
    holder = json.loads(lock_file(tmp_path).read_text())
    assert acquired["holder"] == holder and acquired["lock_id"] == holder["lock_id"]
    assert (holder["user"], holder["host"], holder["pid"], holder["holder"], holder["ttl"]) == ("alice", "host1", 4242, "deploy 1.2.0", 600)
    assert acquired["diff"] == {"before": {}, "after": holder}
    assert acquired["stale_lock_taken_over"] is None and acquired["waited"] < 1

    released = run(capsys, path=str(tmp_path), state="absent", lock_id=acquired["lock_id"])
    assert released["changed"] is True and released["released"] is True and released["holder"] == holder
    assert not lock_file(tmp_path).exists()
    again = run(capsys, path=str(tmp_path), state="absent", lock_id=acquired["lock_id"])
    assert again["changed"] is False and again["released"] is False and again["holder"] is None


def test_default_identity(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SUDO_USER", "carol")
    holder = run(capsys, path=str(tmp_path))["holder"]
    assert holder["user"] == "carol" and holder["host"] == os.uname()[1]
    assert holder["pid"] is None  # no ansible-playbook among pytest's ancestors


def test_second_acquire_fails_fast_naming_the_holder(tmp_path, capsys):
    run(capsys, path=str(tmp_path), holder="deploy 1.2.0", user="alice", host="host1", pid=4242)
    before = lock_file(tmp_path).read_bytes()
    started = time.monotonic()
    failed = run(capsys, path=str(tmp_path), holder="deploy 1.3.0", user="bob")
    assert time.monotonic() - started < 1
    assert failed["failed"] is True and failed["acquired"] is False
    assert re.match(r"deploy lock held by alice@host1 \(pid 4242, 'deploy 1\.2\.0'\) since 20\S+Z, expires in \d+ s$",
                    failed["msg"]), failed["msg"]
    assert failed["holder"]["user"] == "alice"
    assert lock_file(tmp_path).read_bytes() == before


def test_wait_succeeds_when_the_other_releases(tmp_path, capsys):
    first = DeployLock(str(tmp_path)).acquire(ALICE, ttl=1800)
    timer = threading.Timer(0.5, DeployLock(str(tmp_path)).release, args=(first["lock_id"],))
    timer.start()
    try:
        result = run(capsys, path=str(tmp_path), holder="deploy 1.3.0", user="bob", wait=15, poll_max_interval=0.25)
    finally:
        timer.cancel()
    assert result["acquired"] is True and result["holder"]["user"] == "bob"
    assert 0.4 <= result["waited"] < 10


def test_wait_times_out_naming_the_holder(tmp_path, capsys):
    DeployLock(str(tmp_path)).acquire(ALICE, ttl=1800)
    failed = run(capsys, path=str(tmp_path), wait=0.6, poll_max_interval=0.1)
    assert failed["failed"] is True and "alice@host1" in failed["msg"] and "(waited 0." in failed["msg"]
    assert failed["waited"] >= 0.6


def test_expired_lock_is_taken_over_and_reported(tmp_path, capsys):
    old = run(capsys, path=str(tmp_path), holder="deploy 1.2.0", user="alice", ttl=1)
    result = run(capsys, path=str(tmp_path), holder="deploy 1.3.0", user="bob", wait=10, poll_max_interval=0.2)
    assert result["changed"] is True and result["acquired"] is True
    assert result["stale_lock_taken_over"] == old["holder"] and result["stale_reason"] == "expired"
    assert result["diff"]["before"] == old["holder"]
    refused = run(capsys, path=str(tmp_path), state="absent", lock_id=old["lock_id"])
    assert refused["failed"] is True and "bob@" in refused["msg"]


def test_renew_with_the_lock_id(tmp_path, capsys):
    first = run(capsys, path=str(tmp_path), ttl=60)
    renewed = run(capsys, path=str(tmp_path), ttl=600, lock_id=first["lock_id"])
    assert renewed["changed"] is True and renewed["renewed"] is True and renewed["lock_id"] == first["lock_id"]
    assert renewed["holder"]["expires_at"] > first["holder"]["expires_at"]
    assert renewed["holder"]["acquired_at"] == first["holder"]["acquired_at"]


def test_release_with_another_lock_id_refuses_and_force_releases(tmp_path, capsys):
    held = run(capsys, path=str(tmp_path), holder="deploy 1.2.0", user="alice", host="host1")
    refused = run(capsys, path=str(tmp_path), state="absent", lock_id="0123")
    assert refused["failed"] is True and refused["released"] is False
    assert "alice@host1" in refused["msg"] and "not by lock_id 0123" in refused["msg"] and "force" in refused["msg"]
    assert refused["holder"]["lock_id"] == held["lock_id"]
    assert lock_file(tmp_path).exists()
    missing = run(capsys, path=str(tmp_path), state="absent")
    assert missing["failed"] is True and "lock_id" in missing["msg"]
    forced = run(capsys, path=str(tmp_path), state="absent", force=True)
    assert forced["changed"] is True and forced["released"] is True and forced["holder"]["lock_id"] == held["lock_id"]
    assert not lock_file(tmp_path).exists()


def test_check_mode_reports_and_writes_nothing(tmp_path, capsys):
    folder = tmp_path / "release"
    would = run(capsys, check_mode=True, path=str(folder))
    assert would["changed"] is True and would["acquired"] is True and would["lock_id"]
    assert not folder.exists()

    held = run(capsys, path=str(folder), holder="deploy 1.2.0", user="alice")
    before = lock_file(folder).read_bytes()
    blocked = run(capsys, check_mode=True, path=str(folder), holder="deploy 1.3.0")
    assert blocked["failed"] is True and "alice@" in blocked["msg"]
    release = run(capsys, check_mode=True, path=str(folder), state="absent", lock_id=held["lock_id"])
    assert release["changed"] is True and release["released"] is True
    unknown = run(capsys, check_mode=True, path=str(folder), state="absent", lock_id=would["lock_id"])
    assert unknown["failed"] is True
    assert lock_file(folder).read_bytes() == before
    assert sorted(os.listdir(str(folder))) == ["deploy.lock"]


@pytest.mark.parametrize("args, message", [
    ({"ttl": 0}, "ttl"),
    ({"wait": -1}, "wait"),
    ({"force": True}, "force applies to state=absent only"),
])
def test_invalid_arguments(tmp_path, capsys, args, message):
    result = run(capsys, path=str(tmp_path), **args)
    assert result["failed"] is True and message in result["msg"]
    assert not lock_file(tmp_path).exists()


RACER = r"""
import json, os, sys, time
from ansible.module_utils.testing import patch_module_args
from ansible_collections.ragops.platform.plugins.modules import release_lock
args, ready, go = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
open(ready, "w").close()
deadline = time.monotonic() + 30
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.002)
with patch_module_args(args):
    release_lock.main()
"""


@pytest.mark.parametrize("stale", [False, True], ids=["free_lock", "stale_lock"])
def test_eight_module_processes_racing_exactly_one_acquires(tmp_path, stale):
    folder = tmp_path / "release"
    if stale:
        an_hour_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
        DeployLock(str(folder), now=lambda: an_hour_ago).acquire(ALICE, ttl=60)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
    go = tmp_path / "go"
    racers = []
    for number in range(8):
        args = json.dumps({"path": str(folder), "holder": "racer %d" % number, "ttl": 600})
        racers.append(subprocess.Popen([sys.executable, "-c", RACER, args, str(tmp_path / ("ready%d" % number)), str(go)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env))
    deadline = time.monotonic() + 60
    while not all((tmp_path / ("ready%d" % number)).exists() for number in range(8)):
        assert time.monotonic() < deadline and all(racer.poll() is None for racer in racers)
        time.sleep(0.01)
    go.touch()
    results = []
    for racer in racers:
        out, err = racer.communicate(timeout=60)
        results.append(json.loads(out.decode()))
    winners = [result for result in results if not result.get("failed")]
    assert len(winners) == 1, results
    assert all("deploy lock held by" in result["msg"] for result in results if result.get("failed"))
    assert json.loads(lock_file(folder).read_text())["lock_id"] == winners[0]["lock_id"]
    assert (winners[0]["stale_reason"] == "expired") is stale


# -- invalid_parameters and run_release_lock, driven directly ------------------------------------------------------

T0 = datetime.datetime(2026, 1, 5, 10, 0, 0, tzinfo=datetime.timezone.utc)
NO_PROCESS = (None, None, None)


def params_for(**args):
    """Module params with defaults applied, for calling invalid_parameters and run_release_lock directly."""
    args.setdefault("user", "alice")
    args.setdefault("host", "host1")
    with patch_module_args(args):
        return AnsibleModule(argument_spec=release_lock.argument_spec(), supports_check_mode=True).params


def lock_at(tmp_path, seconds=0):
    moment = T0 + datetime.timedelta(seconds=seconds)
    return DeployLock(str(tmp_path), now=lambda: moment)


def run_directly(tmp_path, seconds=0, time=None, check_mode=False, find_process=lambda: NO_PROCESS, **args):
    time = time or FakeTime()
    return release_lock.run_release_lock(params_for(path=str(tmp_path), **args), lock=lock_at(tmp_path, seconds),
                                         check_mode=check_mode, find_process=find_process, clock=time.clock,
                                         sleep=time.sleep)


def test_valid_parameters_have_no_problems(tmp_path):
    assert release_lock.invalid_parameters(params_for(path=str(tmp_path))) == []
    assert release_lock.invalid_parameters(params_for(path=str(tmp_path), state="absent", force=True)) == []


@pytest.mark.parametrize("args, problems", [
    ({"ttl": 0}, ["ttl must be at least 1 second, not 0"]),
    ({"poll_max_interval": 0}, ["wait must be 0 or more and poll_max_interval more than 0"]),
    ({"ttl": -5, "wait": -1, "force": True}, [
        "ttl must be at least 1 second, not -5", "wait must be 0 or more and poll_max_interval more than 0",
        "force applies to state=absent only; a held lock is taken over only when stale"]),
    ({"state": "absent"}, [
        "state=absent needs the lock_id returned by the acquire (or force: true to release any holder)"]),
])
def test_invalid_parameters_name_each_bad_field(tmp_path, args, problems):
    assert release_lock.invalid_parameters(params_for(path=str(tmp_path), **args)) == problems


def test_bad_parameters_fail_with_the_initial_result(tmp_path, capsys):
    result = run(capsys, path=str(tmp_path), state="absent")
    assert result["msg"] == "state=absent needs the lock_id returned by the acquire (or force: true to release any holder)"
    assert result["lock_file"] == str(lock_file(tmp_path)) and result["released"] is False and result["holder"] is None


def test_run_acquires_with_the_injected_clock_and_process(tmp_path):
    result = run_directly(tmp_path, ttl=600, holder="deploy 1.2.0", find_process=lambda: (4242, 881234, "5d41402abc4b2a76"))
    assert not result.get("failed"), result
    holder = json.loads(lock_file(tmp_path).read_text())
    assert result["holder"] == holder and result["lock_id"] == holder["lock_id"]
    assert (holder["acquired_at"], holder["expires_at"]) == ("2026-01-05T10:00:00.000Z", "2026-01-05T10:10:00.000Z")
    assert (holder["pid"], holder["pid_start"], holder["pid_host"], holder["pid_cmd"]) == (
        4242, 881234, default_host(), "5d41402abc4b2a76")
    assert result["waited"] == 0.0 and result["diff"] == {"before": {}, "after": holder}


def test_run_records_an_explicit_pid_without_looking_for_a_process(tmp_path):
    def must_not_be_called():
        raise AssertionError("find_process called although pid was given")

    holder = run_directly(tmp_path, pid=77, find_process=must_not_be_called)["holder"]
    assert (holder["pid"], holder["pid_start"], holder["pid_host"]) == (77, None, None)


def test_run_waits_on_the_fake_clock_until_the_deadline(tmp_path):
    first = run_directly(tmp_path, pid=4242, ttl=1800)
    time = FakeTime()
    result = run_directly(tmp_path, seconds=1, time=time, user="bob", wait=5, poll_max_interval=1)
    assert result["failed"] is True and result["acquired"] is False and result["holder"] == first["holder"]
    assert time.sleeps and time.now == pytest.approx(5.0) and result["waited"] == round(time.now, 3)
    assert result["msg"] == ("deploy lock held by alice@host1 (pid 4242) since 2026-01-05T10:00:00.000Z, "
                             "expires in 1799 s (waited 5.0 s)")


def test_run_fails_at_once_without_wait(tmp_path):
    run_directly(tmp_path, pid=4242)
    time = FakeTime()
    result = run_directly(tmp_path, seconds=60, time=time, user="bob")
    assert result["failed"] is True and time.sleeps == [] and result["waited"] == 0.0
    assert result["msg"].endswith("expires in 1740 s")


def test_run_takes_over_an_expired_lock(tmp_path):
    old = run_directly(tmp_path, pid=4242, ttl=60)
    result = run_directly(tmp_path, seconds=61, user="bob")
    assert result["acquired"] is True and result["stale_reason"] == "expired"
    assert result["stale_lock_taken_over"] == old["holder"] and result["diff"]["before"] == old["holder"]


def test_run_takes_over_the_lock_of_an_exited_ansible_process(tmp_path):
    # A pid with a start time that no running process has: the holder has exited.
    run_directly(tmp_path, find_process=lambda: (os.getpid(), -1, "0000000000000000"))
    result = run_directly(tmp_path, seconds=1, user="bob")
    assert result["acquired"] is True and result["stale_reason"] == "holder_exited"


def test_run_renews_with_the_lock_id(tmp_path):
    first = run_directly(tmp_path, ttl=60)
    renewed = run_directly(tmp_path, seconds=30, ttl=60, lock_id=first["lock_id"])
    assert renewed["renewed"] is True and renewed["holder"]["expires_at"] == "2026-01-05T10:01:30.000Z"
    assert renewed["holder"]["acquired_at"] == "2026-01-05T10:00:00.000Z"


def test_run_in_check_mode_writes_nothing(tmp_path):
    folder = tmp_path / "release"
    would = run_directly(folder, check_mode=True)
    assert would["acquired"] is True and would["changed"] is True and not folder.exists()
    held = run_directly(folder)
    release = run_directly(folder, check_mode=True, state="absent", lock_id=held["lock_id"])
    assert release["released"] is True and release["diff"] == {"before": held["holder"], "after": {}}
    assert lock_file(folder).exists()


def test_run_releases_and_refuses_another_token(tmp_path):
    held = run_directly(tmp_path)
    refused = run_directly(tmp_path, state="absent", lock_id="0123")
    assert refused["failed"] is True and refused["holder"] == held["holder"] and refused["released"] is False
    released = run_directly(tmp_path, state="absent", lock_id=held["lock_id"])
    assert (released["changed"], released["released"], released["holder"]) == (True, True, held["holder"])
    again = run_directly(tmp_path, state="absent", lock_id=held["lock_id"])
    assert (again["changed"], again["released"], again["holder"]) == (False, False, None)


def test_run_reports_a_folder_it_cannot_create(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_directly(blocker / "release")
    assert result["failed"] is True and result["errno"] is not None
    assert result["msg"].startswith("deploy lock %s: " % (blocker / "release" / "deploy.lock"))


# -- a takeover is recorded in history.jsonl ---------------------------------------------------------------------------

def history_file(tmp_path):
    return tmp_path / "history.jsonl"


def test_takeover_appends_one_history_line(tmp_path):
    old = run_directly(tmp_path, pid=4242, ttl=60, holder="deploy 1.2.0")
    result = run_directly(tmp_path, seconds=61, user="bob", holder="deploy 1.3.0")
    entry = result["takeover_entry"]
    assert [json.loads(line) for line in history_file(tmp_path).read_text().splitlines()] == [entry]
    assert (entry["action"], entry["outcome"], entry["version"], entry["user"], entry["host"]) == (
        "lock", "taken_over", None, "bob", "host1")
    assert entry["reason"] == ("stale deploy lock (expired) of alice@host1 (pid 4242, 'deploy 1.2.0'), held since "
                               "2026-01-05T10:00:00.000Z, taken over by deploy 1.3.0")
    assert entry["extra"] == {"replaced": old["holder"], "stale_reason": "expired", "new_lock_id": result["lock_id"]}


def test_takeover_of_an_exited_holder_names_the_reason(tmp_path):
    run_directly(tmp_path, find_process=lambda: (os.getpid(), -1, "0000000000000000"))
    entry = run_directly(tmp_path, seconds=1, user="bob")["takeover_entry"]
    assert entry["extra"]["stale_reason"] == "holder_exited"
    assert entry["reason"].startswith("stale deploy lock (holder_exited) of alice@host1 (pid %d)" % os.getpid())
    assert entry["reason"].endswith(", taken over by ?")


def test_takeover_appends_after_the_existing_history(tmp_path):
    history_file(tmp_path).write_text('{"id": "d1", "action": "deploy", "outcome": "success"}\n')
    run_directly(tmp_path, pid=4242, ttl=60)
    run_directly(tmp_path, seconds=61, user="bob")
    lines = [json.loads(line) for line in history_file(tmp_path).read_text().splitlines()]
    assert [(line["id"], line["outcome"]) for line in lines][:1] == [("d1", "success")]
    assert [line["outcome"] for line in lines] == ["success", "taken_over"]


def test_takeover_without_record_takeover_appends_nothing(tmp_path):
    run_directly(tmp_path, pid=4242, ttl=60)
    result = run_directly(tmp_path, seconds=61, user="bob", record_takeover=False)
    assert result["acquired"] is True and result["stale_reason"] == "expired"
    assert result["takeover_entry"] is None
    assert not history_file(tmp_path).exists()


def test_takeover_in_check_mode_predicts_the_line_and_appends_nothing(tmp_path):
    old = run_directly(tmp_path, pid=4242, ttl=60)
    before = lock_file(tmp_path).read_bytes()
    result = run_directly(tmp_path, seconds=61, check_mode=True, user="bob")
    assert result["takeover_entry"]["outcome"] == "taken_over"
    assert result["takeover_entry"]["extra"]["replaced"] == old["holder"]
    assert not history_file(tmp_path).exists()
    assert lock_file(tmp_path).read_bytes() == before


def test_acquire_renew_and_release_append_nothing(tmp_path):
    held = run_directly(tmp_path, ttl=60)
    renewed = run_directly(tmp_path, seconds=30, ttl=60, lock_id=held["lock_id"])
    run_directly(tmp_path, seconds=31, state="absent", lock_id=held["lock_id"])
    assert held["takeover_entry"] is None and renewed["takeover_entry"] is None
    assert not history_file(tmp_path).exists()
