# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import json
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.ragops.platform.plugins.module_utils import _deploy_lock
from ansible_collections.ragops.platform.plugins.module_utils._deploy_lock import (
    DeployLock,
    LockHeld,
    LockNotOwned,
    cmdline_digest,
    find_ansible_process,
    process_start_time,
)
from ansible_collections.ragops.platform.plugins.module_utils._release_record import default_host
from ansible_collections.ragops.platform.plugins.module_utils._utc_time import utc_now

FORK = multiprocessing.get_context("fork")
ALICE = {"holder": "deploy 1.2.0", "user": "alice", "host": "host1", "pid": 4242, "pid_start": None, "pid_host": None}
BOB = {"holder": "deploy 1.3.0", "user": "bob", "host": "host2", "pid": 77, "pid_start": None, "pid_host": None}


class Clock:
    def __init__(self):
        self.moment = utc_now()

    def __call__(self):
        return self.moment

    def advance(self, seconds):
        self.moment += datetime.timedelta(seconds=seconds)


def test_acquire_writes_holder_and_release_removes_it(tmp_path):
    lock = DeployLock(str(tmp_path / "release"))
    result = lock.acquire(ALICE, ttl=600)
    assert result["action"] == "acquired"
    on_disk = json.loads((tmp_path / "release" / "deploy.lock").read_text())
    assert on_disk == result["holder"]
    assert on_disk["lock_id"] == result["lock_id"]
    assert (on_disk["user"], on_disk["host"], on_disk["pid"], on_disk["holder"]) == ("alice", "host1", 4242, "deploy 1.2.0")
    assert on_disk["ttl"] == 600 and on_disk["acquired_at"].endswith("Z") and on_disk["expires_at"] > on_disk["acquired_at"]
    assert [name for name in os.listdir(str(tmp_path / "release")) if name != "deploy.lock"] == []
    assert lock.release(result["lock_id"]) == {"released": True, "holder": on_disk}
    assert not (tmp_path / "release" / "deploy.lock").exists()
    assert lock.release(result["lock_id"]) == {"released": False, "holder": None}


def test_without_hard_links_the_lock_is_created_with_o_excl(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(_deploy_lock.os, "link", no_link)
    lock = DeployLock(str(tmp_path))
    first = lock.acquire(ALICE, ttl=60)
    assert lock.read() == first["holder"]
    with pytest.raises(LockHeld):
        lock.acquire(BOB, ttl=60)
    assert lock._create(first["holder"]) is False  # O_EXCL refuses an existing lock
    assert os.listdir(str(tmp_path)) == ["deploy.lock"]


def test_second_acquire_fails_fast_naming_the_holder(tmp_path):
    lock = DeployLock(str(tmp_path))
    lock.acquire(ALICE, ttl=1800)
    started = time.monotonic()
    with pytest.raises(LockHeld) as held:
        lock.acquire(BOB, ttl=1800)
    assert time.monotonic() - started < 1
    assert re.match(r"deploy lock held by alice@host1 \(pid 4242, 'deploy 1\.2\.0'\) since \S+Z, expires in 1[78]\d\d s$",
                    held.value.message), held.value.message
    assert held.value.holder["user"] == "alice"


def test_wait_succeeds_when_the_holder_releases(tmp_path):
    lock = DeployLock(str(tmp_path))
    first = lock.acquire(ALICE, ttl=1800)
    timer = threading.Timer(0.4, lock.release, args=(first["lock_id"],))
    timer.start()
    try:
        second = lock.acquire(BOB, ttl=1800, wait=10, poll_max_interval=0.2)
    finally:
        timer.cancel()
    assert second["action"] == "acquired"
    assert second["holder"]["user"] == "bob"
    assert 0.3 <= second["waited"] < 5


def test_wait_gives_up_at_the_deadline(tmp_path):
    lock = DeployLock(str(tmp_path))
    lock.acquire(ALICE, ttl=1800)
    with pytest.raises(LockHeld) as held:
        lock.acquire(BOB, ttl=1800, wait=0.5, poll_max_interval=0.1)
    assert 0.5 <= held.value.waited < 2


def test_expired_lock_is_taken_over(tmp_path):
    clock = Clock()
    lock = DeployLock(str(tmp_path), now=clock)
    old = lock.acquire(ALICE, ttl=60)
    clock.advance(59)
    with pytest.raises(LockHeld):
        lock.acquire(BOB, ttl=60)
    clock.advance(2)
    new = lock.acquire(BOB, ttl=60)
    assert new["action"] == "taken_over"
    assert new["stale_reason"] == "expired"
    assert new["taken_over"] == old["holder"]
    assert lock.read()["lock_id"] == new["lock_id"]
    with pytest.raises(LockNotOwned):
        lock.release(old["lock_id"])


def test_wait_outlasts_a_short_ttl_in_real_time(tmp_path):
    lock = DeployLock(str(tmp_path))
    lock.acquire(ALICE, ttl=1)
    result = lock.acquire(BOB, ttl=60, wait=10, poll_max_interval=0.2)
    assert result["action"] == "taken_over"
    assert 0.5 < result["waited"] < 5


def test_lock_of_an_exited_holder_is_taken_over_at_once(tmp_path):
    lock = DeployLock(str(tmp_path))
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        holder = dict(ALICE, pid=sleeper.pid, pid_start=process_start_time(sleeper.pid), pid_host=default_host())
        lock.acquire(holder, ttl=1800)
        with pytest.raises(LockHeld):
            lock.acquire(BOB, ttl=1800)
    finally:
        sleeper.kill()
        sleeper.wait()
    result = lock.acquire(BOB, ttl=1800)
    assert (result["action"], result["stale_reason"]) == ("taken_over", "holder_exited")


def _started(argv):
    """A process, once its command line is readable (it reads empty for a moment after Popen returns)."""
    process = subprocess.Popen(argv)
    deadline = time.monotonic() + 10
    while True:
        with open("/proc/%d/cmdline" % process.pid, "rb") as handle:
            cmdline = handle.read()
        if cmdline:
            return process, cmdline
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_orphaned_worker_of_a_killed_holder_keeps_the_lock(tmp_path):
    tag = "%d.%d" % (300 + os.getpid() % 1000, os.getpid())  # a command line unique to this test
    main, cmdline = _started(["sleep", tag])
    digest = cmdline_digest(cmdline)
    worker = _started(["sleep", tag])[0]  # same command line, started later, like a forked task worker
    lock = DeployLock(str(tmp_path))
    try:
        lock.acquire(dict(ALICE, pid=main.pid, pid_start=process_start_time(main.pid), pid_host=default_host(),
                          pid_cmd=digest), ttl=1800)
        main.kill()
        main.wait()
        with pytest.raises(LockHeld) as held:
            lock.acquire(BOB, ttl=1800)
        assert "its worker pid %d is still finishing a task" % worker.pid in held.value.message
    finally:
        worker.kill()
        worker.wait()
        main.kill()
        main.wait()
    assert lock.acquire(BOB, ttl=1800)["stale_reason"] == "holder_exited"


def test_reused_pid_is_not_mistaken_for_the_holder(tmp_path):
    lock = DeployLock(str(tmp_path))
    pid = os.getpid()
    lock.acquire(dict(ALICE, pid=pid, pid_start=process_start_time(pid) - 1, pid_host=default_host()), ttl=1800)
    assert lock.acquire(BOB, ttl=1800)["stale_reason"] == "holder_exited"


def test_holder_on_another_host_is_judged_by_ttl_only(tmp_path):
    lock = DeployLock(str(tmp_path))
    lock.acquire(dict(ALICE, pid=999999, pid_start=1, pid_host="elsewhere"), ttl=1800)
    with pytest.raises(LockHeld):
        lock.acquire(BOB, ttl=1800)


def test_renew_keeps_acquired_at_and_moves_expiry(tmp_path):
    clock = Clock()
    lock = DeployLock(str(tmp_path), now=clock)
    first = lock.acquire(ALICE, ttl=60)
    clock.advance(30)
    renewed = lock.acquire(ALICE, ttl=60, lock_id=first["lock_id"])
    assert renewed["action"] == "renewed"
    assert renewed["holder"]["acquired_at"] == first["holder"]["acquired_at"]
    assert renewed["holder"]["expires_at"] > first["holder"]["expires_at"]
    assert renewed["before"] == first["holder"]


def test_release_refuses_another_lock_id_unless_forced(tmp_path):
    lock = DeployLock(str(tmp_path))
    held = lock.acquire(ALICE, ttl=1800)
    with pytest.raises(LockNotOwned) as refused:
        lock.release("not-mine")
    assert "alice@host1" in refused.value.message and "not-mine" in refused.value.message
    with pytest.raises(LockNotOwned):
        lock.release(None)
    assert lock.read()["lock_id"] == held["lock_id"]
    assert lock.release(None, force=True)["released"] is True
    assert lock.read() is None


def test_dry_run_writes_nothing(tmp_path):
    lock = DeployLock(str(tmp_path / "release"))
    assert lock.acquire(ALICE, ttl=60, dry_run=True)["action"] == "acquired"
    assert not (tmp_path / "release").exists()
    real = lock.acquire(ALICE, ttl=60)
    before = (tmp_path / "release" / "deploy.lock").read_bytes()
    with pytest.raises(LockHeld):
        lock.acquire(BOB, ttl=60, dry_run=True)
    assert lock.release(real["lock_id"], dry_run=True)["released"] is True
    assert (tmp_path / "release" / "deploy.lock").read_bytes() == before


def test_unreadable_lock_is_held_while_fresh_and_taken_over_when_old(tmp_path):
    lock = DeployLock(str(tmp_path))
    (tmp_path / "deploy.lock").write_text("garbage")
    with pytest.raises(LockHeld) as held:
        lock.acquire(BOB, ttl=60)
    assert "unreadable" in held.value.message
    old = time.time() - 120
    os.utime(str(tmp_path / "deploy.lock"), (old, old))
    assert lock.acquire(BOB, ttl=60)["action"] == "taken_over"


def test_describe_for_status(tmp_path):
    lock = DeployLock(str(tmp_path))
    assert lock.describe()["held"] is False
    lock.acquire(ALICE, ttl=600)
    described = lock.describe()
    assert described["held"] is True and described["stale"] is None
    assert 590 < described["expires_in"] <= 600
    assert described["summary"].startswith("held by alice@host1 (pid 4242, 'deploy 1.2.0') since ")


def _racer(directories, barrier, results, worker):
    lock_identity = dict(BOB, user="racer%d" % worker)
    for directory in directories:
        barrier.wait(30)
        try:
            outcome = DeployLock(directory).try_acquire(lock_identity, ttl=600)
            results.put((directory, worker, outcome["action"], outcome["lock_id"]))
        except LockHeld:
            results.put((directory, worker, "held", None))
        except Exception as exc:  # reported, so the test fails with the reason instead of a queue timeout
            results.put((directory, worker, "error", repr(exc)))


@pytest.mark.parametrize("stale", [False, True], ids=["free_lock", "stale_lock"])
def test_eight_processes_racing_exactly_one_wins(tmp_path, stale):
    rounds, racers = 15, 8
    directories = []
    for number in range(rounds):
        directory = str(tmp_path / ("round%d" % number))
        if stale:
            clock = Clock()
            clock.advance(-3600)
            DeployLock(directory, now=clock).acquire(ALICE, ttl=60)
        directories.append(directory)
    barrier = FORK.Barrier(racers)
    results = FORK.Queue()
    processes = [FORK.Process(target=_racer, args=(directories, barrier, results, worker)) for worker in range(racers)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=60) for attempt in range(rounds * racers)]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    for directory in directories:
        winners = [outcome for outcome in outcomes if outcome[0] == directory and outcome[2] != "held"]
        assert not [outcome for outcome in outcomes if outcome[2] == "error"]
        assert len(winners) == 1, winners
        assert winners[0][2] == ("taken_over" if stale else "acquired")
        assert DeployLock(directory).read()["lock_id"] == winners[0][3]
        assert [name for name in os.listdir(directory) if name != "deploy.lock"] == []


def test_find_ansible_process_names_the_outermost_cli(tmp_path):
    script = tmp_path / "ansible-playbook"
    script.write_text(
        "import subprocess, sys\n"
        "if len(sys.argv) > 1:\n"  # the nested 'worker', like ansible-playbook's forks
        "    from ansible_collections.ragops.platform.plugins.module_utils._deploy_lock import find_ansible_process\n"
        "    print(find_ansible_process())\n"
        "else:\n"
        "    import os\n"
        "    from ansible_collections.ragops.platform.plugins.module_utils._deploy_lock import (\n"
        "        cmdline_digest, process_start_time)\n"
        "    subprocess.check_call([sys.executable, __file__, 'worker'])\n"
        "    with open('/proc/self/cmdline', 'rb') as handle:\n"
        "        print((os.getpid(), process_start_time(os.getpid()), cmdline_digest(handle.read())))\n")
    output = subprocess.check_output([sys.executable, str(script)]).decode().splitlines()
    assert output[0] == output[1]
    assert "None" not in output[0]
    assert find_ansible_process() == (None, None, None)
