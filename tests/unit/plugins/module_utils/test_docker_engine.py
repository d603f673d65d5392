# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.ragops.platform.plugins.module_utils._docker_engine import crash_reason, demultiplex


def frame(stream, data):
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def test_demultiplex_joins_stdout_and_stderr_frames_in_order():
    raw = frame(1, b"out one\n") + frame(2, b"err two\n") + frame(1, b"out three\n")
    assert demultiplex(raw) == b"out one\nerr two\nout three\n"


def test_demultiplex_keeps_a_tty_stream_as_it_is():
    assert demultiplex(b"plain text from a tty\n") == b"plain text from a tty\n"


def inspected(status="running", restarting=False, restarts=0, code=0, error=""):
    return {"RestartCount": restarts,
            "State": {"Status": status, "Restarting": restarting, "ExitCode": code, "Error": error}}


@pytest.mark.parametrize("document, baseline, reason", [
    (inspected(), 0, None),
    (inspected(restarts=3), 3, None),
    (None, 0, "the container does not exist"),
    (inspected("exited", code=3), 0, "the container exited (exit code 3)"),
    (inspected("dead", code=137, error="oom"), 0, "the container dead (exit code 137, oom)"),
    (inspected("restarting", True, 2, 3), 0, "the container is crash-looping: restarting after exit code 3, 2 restart(s)"),
    (inspected(restarts=4), 3, "the container restarted 1 time(s) since the gate started"),
])
def test_crash_reason(document, baseline, reason):
    assert crash_reason(document, baseline) == reason
