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

from ansible_collections.ragops.platform.plugins.module_utils._deploy_lock import DeployLock
from ansible_collections.ragops.platform.plugins.modules import release_lock
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
