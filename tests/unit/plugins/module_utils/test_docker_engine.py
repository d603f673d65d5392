# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.ragops.platform.plugins.module_utils._docker_engine import (
    DockerEngine,
    DockerEngineError,
    crash_reason,
    demultiplex,
)
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_docker import FakeDockerEngine


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


@pytest.fixture
def engine():
    engines = []

    def make(*args, **kwargs):
        fake = FakeDockerEngine("ragops-job", *args, **kwargs)
        engines.append(fake)
        return fake, DockerEngine(fake.socket_path)

    yield make
    for fake in engines:
        fake.close()


def test_logs_interleave_stdout_and_stderr_and_keep_the_last_lines(engine):
    fake, docker = engine([("exited", False, 0, 0)], logs=["one", (2, "two"), "", "four"])
    assert docker.logs("ragops-job") == ["one", "two", "", "four"]
    assert docker.logs("ragops-job", tail=2) == ["", "four"]
    assert docker.logs("ragops-job", tail=0) == []
    assert docker.log_tail("ragops-job", 2) == ["four"]  # the crash watch drops blank lines
    assert docker.logs("ragops-job", line_length=2) == ["on", "tw", "", "fo"]
    assert ("GET", "/containers/ragops-job/logs?stdout=1&stderr=1&tail=2") in fake.requests


def test_logs_errors_carry_dockers_message(engine):
    fake, docker = engine([("exited", False, 0, 0)], log_status=501)
    with pytest.raises(DockerEngineError, match="HTTP 501 to the logs of ragops-job: configured logging driver"):
        docker.logs("ragops-job")
    assert docker.log_tail("ragops-job") == []
    with pytest.raises(DockerEngineError, match="HTTP 404 to the logs of ragops-other: No such container: ragops-other"):
        docker.logs("ragops-other")


def test_inspect_of_a_missing_container_is_none(engine):
    fake, docker = engine([("running", False, 0, 0)])
    assert docker.inspect("ragops-other") is None
    assert docker.inspect("ragops-job")["State"]["Status"] == "running"
