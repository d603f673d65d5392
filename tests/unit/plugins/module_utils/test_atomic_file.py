# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import multiprocessing
import os
import signal
import stat
import threading

import pytest

from ansible_collections.ragops.platform.plugins.module_utils import _atomic_file
from ansible_collections.ragops.platform.plugins.module_utils._atomic_file import (
    CorruptFileError,
    DirectoryLockTimeout,
    append_json_line,
    atomic_write,
    atomic_write_json,
    locked_directory,
    read_json,
    read_json_lines,
)

FORK = multiprocessing.get_context("fork")


def leftovers(folder):
    return sorted(name for name in os.listdir(str(folder)) if name.endswith(".tmp"))


def test_atomic_write_json_round_trip_and_no_temp_left(tmp_path):
    target = tmp_path / "state.json"
    atomic_write_json(str(target), {"live": {"color": "blue"}})
    atomic_write_json(str(target), {"live": {"color": "green"}})
    assert read_json(str(target)) == {"live": {"color": "green"}}
    assert target.read_text().endswith("\n")
    assert leftovers(tmp_path) == []


def test_atomic_write_mode_new_preserved_and_explicit(tmp_path):
    target = tmp_path / "f"
    atomic_write(str(target), b"a")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    os.chmod(str(target), 0o600)
    atomic_write(str(target), b"b")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    atomic_write(str(target), b"c", mode=0o640, owner=str(os.getuid()), group=str(os.getgid()))
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.read_bytes() == b"c"


def test_failed_rename_keeps_old_content_and_removes_temp(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    atomic_write_json(str(target), {"version": "1.0.0"})

    def failing_replace(src, dst):
        assert os.path.exists(src)  # the new content is complete on disk, only the rename is missing
        raise OSError(5, "simulated crash before rename")

    monkeypatch.setattr(_atomic_file.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        atomic_write_json(str(target), {"version": "2.0.0"})
    assert read_json(str(target)) == {"version": "1.0.0"}
    assert leftovers(tmp_path) == []


def _killed_writer(target, where):
    """Runs in a forked child: dies by SIGKILL at ``where`` in the middle of an atomic write."""
    def die(*args):
        os.kill(os.getpid(), signal.SIGKILL)

    if where == "before_rename":
        _atomic_file.os.replace = die
    else:
        real_write = os.write

        def half_write(fd, data):
            real_write(fd, bytes(data[: len(data) // 2]))
            die()

        _atomic_file.os.write = half_write
    atomic_write_json(target, {"version": "2.0.0", "padding": "x" * 10000})


@pytest.mark.parametrize("where", ["before_rename", "mid_write"])
def test_sigkill_mid_write_never_corrupts(tmp_path, where):
    target = tmp_path / "state.json"
    atomic_write_json(str(target), {"version": "1.0.0"})
    child = FORK.Process(target=_killed_writer, args=(str(target), where))
    child.start()
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    assert read_json(str(target)) == {"version": "1.0.0"}
    assert len(leftovers(tmp_path)) == 1  # the dead writer's temp file: harmless, never read
    atomic_write_json(str(target), {"version": "3.0.0"})
    assert read_json(str(target)) == {"version": "3.0.0"}


def test_read_json_missing_and_corrupt(tmp_path):
    assert read_json(str(tmp_path / "absent.json"), default={"x": 1}) == {"x": 1}
    corrupt = tmp_path / "state.json"
    corrupt.write_text('{"live": {"col')
    with pytest.raises(CorruptFileError) as raised:
        read_json(str(corrupt))
    assert str(corrupt) in str(raised.value)
    assert "not valid JSON" in str(raised.value)
    corrupt.write_bytes(b"\xff\xfe")
    with pytest.raises(CorruptFileError, match="not UTF-8"):
        read_json(str(corrupt))


def test_append_and_read_lines_oldest_first_with_limit(tmp_path):
    history = str(tmp_path / "history.jsonl")
    assert read_json_lines(history) == ([], 0)
    for number in range(5):
        line = append_json_line(history, {"n": number})
        assert json.loads(line) == {"n": number}
    assert read_json_lines(history) == ([{"n": n} for n in range(5)], 0)
    assert read_json_lines(history, limit=2) == ([{"n": 3}, {"n": 4}], 0)
    assert read_json_lines(history, limit=0) == ([], 0)
    assert stat.S_IMODE(os.stat(history).st_mode) == 0o644


def test_tail_read_across_blocks(tmp_path):
    history = str(tmp_path / "history.jsonl")
    with open(history, "w") as handle:
        for number in range(3000):
            handle.write(json.dumps({"n": number, "pad": "p" * 90}) + "\n")
    assert os.path.getsize(history) > 3 * 64 * 1024
    entries, skipped = read_json_lines(history, limit=1500)
    assert [entry["n"] for entry in entries] == list(range(1500, 3000))
    assert skipped == 0
    assert [entry["n"] for entry in read_json_lines(history)[0]] == list(range(3000))


def test_torn_last_line_is_skipped_and_next_append_is_valid(tmp_path):
    history = tmp_path / "history.jsonl"
    append_json_line(str(history), {"n": 1})
    append_json_line(str(history), {"n": 2})
    with open(str(history), "ab") as handle:  # a crash in the middle of a write
        handle.write(b'{"n": 3, "outco')
    assert read_json_lines(str(history)) == ([{"n": 1}, {"n": 2}], 1)
    append_json_line(str(history), {"n": 4})
    lines = history.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert json.loads(lines[-2].decode()) == {"n": 4}
    assert read_json_lines(str(history)) == ([{"n": 1}, {"n": 2}, {"n": 4}], 1)
    assert read_json_lines(str(history), limit=3) == ([{"n": 1}, {"n": 2}, {"n": 4}], 1)


def test_truncated_history_keeps_the_complete_lines(tmp_path):
    history = tmp_path / "history.jsonl"
    for number in range(3):
        append_json_line(str(history), {"n": number, "reason": "r" * 50})
    data = history.read_bytes()
    history.write_bytes(data[: len(data) - 20])  # lost tail of the last line
    assert read_json_lines(str(history)) == ([{"n": 0, "reason": "r" * 50}, {"n": 1, "reason": "r" * 50}], 1)


def test_non_object_lines_are_skipped(tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_text('{"n": 1}\n[1, 2]\n\n"text"\n{"n": 2}\n')
    assert read_json_lines(str(history)) == ([{"n": 1}, {"n": 2}], 2)


def test_newlines_inside_values_stay_on_one_line(tmp_path):
    line = append_json_line(str(tmp_path / "h.jsonl"), {"reason": "two\nlines"})
    assert "\n" not in line
    assert read_json_lines(str(tmp_path / "h.jsonl"))[0] == [{"reason": "two\nlines"}]


def _appender(history, worker, count):
    for number in range(count):
        append_json_line(history, {"worker": worker, "n": number, "pad": "z" * (worker * 97 % 700)})


def test_concurrent_appends_never_interleave(tmp_path):
    history = str(tmp_path / "history.jsonl")
    workers = [FORK.Process(target=_appender, args=(history, worker, 60)) for worker in range(8)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    entries, skipped = read_json_lines(history)
    assert skipped == 0
    assert len(entries) == 8 * 60
    for worker in range(8):
        assert [e["n"] for e in entries if e["worker"] == worker] == list(range(60))


def test_locked_directory_excludes_other_threads_and_times_out(tmp_path):
    entered = threading.Event()
    leave = threading.Event()

    def holder():
        with locked_directory(str(tmp_path)):
            entered.set()
            leave.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    assert entered.wait(10)
    with pytest.raises(DirectoryLockTimeout, match=str(tmp_path)):
        with locked_directory(str(tmp_path), timeout=0.2):
            pass
    threading.Timer(0.1, leave.set).start()
    with locked_directory(str(tmp_path), timeout=10):
        assert leave.is_set()
    thread.join(10)
