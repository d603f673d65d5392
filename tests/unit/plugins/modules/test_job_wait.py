# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.ragops.platform.plugins.module_utils._docker_engine import DockerEngine
from ansible_collections.ragops.platform.plugins.modules import job_wait
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_docker import (
    STDERR,
    STDOUT,
    FakeDockerEngine,
    state,
)
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_time import FakeTime
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.module_runner import run_module

JOB = "ragops-job-migrate"
RUNNING = state("running", started_at="2026-03-01T10:00:00.000000000Z")


def exited(code, oom_killed=False):
    return state("exited", exit_code=code, oom_killed=oom_killed, started_at="2026-03-01T10:00:00.000000000Z",
                 finished_at="2026-03-01T10:00:01.234567890Z")


@pytest.fixture
def fake():
    """Makes fake engines on a shared FakeTime; closes them after the test."""
    started = []
    time = FakeTime()

    def make(states, timed=True, **kwargs):
        engine = FakeDockerEngine(kwargs.pop("name", JOB), states, clock=time.clock if timed else None, **kwargs)
        started.append(engine)
        return engine

    make.time = time
    yield make
    for engine in started:
        engine.close()


def params_for(**args):
    """Module params with defaults applied, for calling run_job_wait directly."""
    args.setdefault("name", JOB)
    args.setdefault("timeout", 30)
    with patch_module_args(args):
        return AnsibleModule(argument_spec=job_wait.argument_spec(), supports_check_mode=True).params


def wait(fake, engine, **args):
    return job_wait.run_job_wait(params_for(**args), DockerEngine(engine.socket_path), clock=fake.time.clock,
                                 sleep=fake.time.sleep)


def assert_read_only(engine):
    assert engine.requests, "the engine was never asked"
    for method, path in engine.requests:
        assert method == "GET"
        assert path.split("?")[0] in ("/containers/%s/json" % JOB, "/containers/%s/logs" % JOB)


def test_a_job_that_exits_0_succeeds_with_its_output(fake):
    logs = [(0.1, STDOUT, "migrating schema 4 -> 5"), (0.9, STDERR, "warning: slow table"), (1.1, STDOUT, "done: 1200 rows")]
    engine = fake([(0, RUNNING), (1.2, exited(0))], logs=logs)
    result = wait(fake, engine)
    assert result["failed"] is False and result["passed"] is True and result["changed"] is False
    assert (result["exit_code"], result["status"], result["timed_out"]) == (0, "exited", False)
    assert fake.time.sleeps == [0.5, 0.5, 0.5]  # inspects at 0, 0.5, 1.0 see it running, at 1.5 exited
    assert result["duration"] == 1.5
    assert result["run_time"] == pytest.approx(1.235, abs=0.001)
    assert result["output"] == ["migrating schema 4 -> 5", "warning: slow table", "done: 1200 rows"]
    assert result["output_error"] is None
    assert result["msg"] == "job ragops-job-migrate exited with code 0 after 1.2 s"
    assert engine.inspects == 4
    assert_read_only(engine)


def test_an_unexpected_exit_code_fails_with_the_code_the_time_and_the_output(fake):
    engine = fake([(0, RUNNING), (1.0, state("exited", exit_code=3))],
                  logs=["connecting", (STDERR, "ERROR: relation documents does not exist")])
    result = wait(fake, engine, interval=0.25)
    assert result["failed"] is True and result["passed"] is False and result["changed"] is False
    assert result["exit_code"] == 3 and result["timed_out"] is False and result["duration"] == 1.0
    assert result["run_time"] is None  # Docker's times are unset, so the message gives the time waited
    assert result["msg"] == ("job ragops-job-migrate exited with code 3 after 1.0 s, expected 0; "
                             "last output: connecting | ERROR: relation documents does not exist")
    assert result["output"] == ["connecting", "ERROR: relation documents does not exist"]
    assert_read_only(engine)


def test_expected_exit_codes_accept_other_codes(fake):
    engine = fake([(0, exited(3))])
    result = wait(fake, engine, expected_exit_codes=[0, 3])
    assert result["failed"] is False and result["exit_code"] == 3 and fake.time.sleeps == []
    result = wait(fake, engine, expected_exit_codes=[1, 2])
    assert result["failed"] is True and ", expected 1, 2; " in result["msg"]


def test_a_job_still_running_at_the_timeout_fails_with_the_output_so_far(fake):
    engine = fake([(0, RUNNING)], logs=[(0.3, STDOUT, "re-indexing 1/3"), (1.7, STDOUT, "re-indexing 2/3"),
                                        (9.0, STDOUT, "re-indexing 3/3")])
    result = wait(fake, engine, timeout=2)
    assert result["failed"] is True and result["passed"] is False and result["timed_out"] is True
    assert result["exit_code"] is None and result["status"] == "running"
    assert fake.time.sleeps == [0.5] * 4 and result["duration"] == 2.0
    assert result["output"] == ["re-indexing 1/3", "re-indexing 2/3"]
    assert result["msg"] == "job ragops-job-migrate still running after 2 s; last output: re-indexing 1/3 | re-indexing 2/3"
    assert_read_only(engine)  # a timed-out job is left to the caller, not stopped


def test_the_last_sleep_is_cut_to_the_deadline_and_the_job_is_inspected_at_it(fake):
    engine = fake([(0, RUNNING), (1.2, exited(0))])
    result = wait(fake, engine, timeout=1.2)
    assert fake.time.sleeps == [0.5, 0.5, pytest.approx(0.2)]
    assert result["failed"] is False and result["timed_out"] is False


def test_a_job_that_never_started_says_so_at_the_timeout(fake):
    engine = fake([(0, state("created"))], logs=[])
    result = wait(fake, engine, timeout=1)
    assert result["failed"] is True and result["timed_out"] is True and result["status"] == "created"
    assert result["msg"] == "job ragops-job-migrate was not started within 1 s (status created); no output"


def test_a_job_that_could_not_start_fails_at_once(fake):
    engine = fake([(0, state("created", exit_code=127, error="exec: \"migrate\": executable file not found"))], logs=[])
    result = wait(fake, engine)
    assert result["failed"] is True and result["timed_out"] is False and fake.time.sleeps == []
    assert result["exit_code"] == 127
    assert 'could not start: exec: "migrate": executable file not found; no output' in result["msg"]


def test_a_restarting_job_fails_at_once(fake):
    engine = fake([(0, RUNNING), (0.5, state("restarting", exit_code=1, restarting=True, restarts=1))],
                  logs=["boom"])
    result = wait(fake, engine)
    assert result["failed"] is True and result["status"] == "restarting" and result["exit_code"] == 1
    assert fake.time.sleeps == [0.5]
    assert result["msg"] == ("job ragops-job-migrate is restarting after exit code 1: a job container must have "
                             "restart_policy no; last output: boom")


def test_an_out_of_memory_kill_is_named(fake):
    engine = fake([(0, exited(137, oom_killed=True))], logs=["loading embeddings"])
    result = wait(fake, engine)
    assert result["failed"] is True
    assert "exited with code 137 after 1.2 s (killed: out of memory), expected 0; last output: loading embeddings" in result["msg"]


def test_a_dead_container_fails_even_with_an_expected_code(fake):
    engine = fake([(0, state("dead", exit_code=0))], logs=[])
    result = wait(fake, engine)
    assert result["failed"] is True and result["status"] == "dead" and "(the container is dead)" in result["msg"]


def test_a_missing_container_fails_without_waiting(fake):
    engine = fake([(0, RUNNING)], name="ragops-job-other")
    result = wait(fake, engine)
    assert result["failed"] is True and result["passed"] is False and fake.time.sleeps == []
    assert (result["exit_code"], result["status"], result["output"]) == (None, None, [])
    assert result["msg"] == ("job ragops-job-migrate does not exist: create and start it first "
                             "(community.docker.docker_container)")


def test_a_container_removed_while_waited_for_fails(fake):
    engine = fake([(0, RUNNING), (1.0, None)])
    result = wait(fake, engine)
    assert result["failed"] is True and result["status"] is None and result["exit_code"] is None
    assert result["msg"].startswith("job ragops-job-migrate disappeared after 1.0 s of waiting")


def test_output_keeps_the_last_lines_oldest_first(fake):
    engine = fake([(0, exited(0))], logs=["line %d" % number for number in range(120)])
    result = wait(fake, engine, output_lines=50)
    assert result["output"] == ["line %d" % number for number in range(70, 120)]
    result = wait(fake, engine)
    assert len(result["output"]) == 50  # the default


def test_no_output_lines_reads_no_logs(fake):
    engine = fake([(0, state("exited", exit_code=2))])
    result = wait(fake, engine, output_lines=0)
    assert result["output"] == [] and result["msg"].endswith("; no output")
    assert all("/logs" not in path for dummy, path in engine.requests)


def test_long_lines_are_cut(fake):
    engine = fake([(0, state("exited", exit_code=1))], logs=["x" * 1500])
    result = wait(fake, engine)
    assert result["output"] == ["x" * 1000]
    assert result["msg"].endswith("last output: " + "x" * 197 + "...")


def test_the_output_of_a_tty_container(fake):
    engine = fake([(0, exited(0))], logs=["from a tty", (STDERR, "same stream")], tty=True)
    assert wait(fake, engine)["output"] == ["from a tty", "same stream"]


def test_unreadable_logs_leave_the_exit_code_in_charge(fake):
    engine = fake([(0, exited(0))], log_status=501)
    result = wait(fake, engine)
    assert result["failed"] is False and result["output"] == []
    assert result["output_error"] == ("the Docker engine answered HTTP 501 to the logs of ragops-job-migrate: "
                                      "configured logging driver does not support reading")


def test_an_unreachable_docker_engine_fails_naming_the_socket(tmp_path):
    socket_path = str(tmp_path / "none.sock")
    time = FakeTime()
    result = job_wait.run_job_wait(params_for(), DockerEngine(socket_path), clock=time.clock, sleep=time.sleep)
    assert result["failed"] is True and result["passed"] is False and result["exit_code"] is None
    assert result["msg"].startswith("job ragops-job-migrate: cannot reach the Docker engine on %s" % socket_path)


def test_through_the_module_a_failed_job_fails_with_its_output(fake, capsys):
    # The n-th inspect gets the n-th state: running twice, then exited 3. Real time, a short interval.
    engine = fake([RUNNING, RUNNING, state("exited", exit_code=3)], timed=False,
                  logs=["step 1", (STDERR, "Traceback: boom")])
    result = run_module(job_wait, dict(name=JOB, timeout=10, interval=0.01, docker_socket=engine.socket_path), capsys)
    assert result["failed"] is True and result["passed"] is False and result["changed"] is False
    assert result["exit_code"] == 3 and result["timed_out"] is False and result["status"] == "exited"
    assert result["output"] == ["step 1", "Traceback: boom"]
    assert result["msg"].startswith("job ragops-job-migrate exited with code 3 after ")
    assert result["msg"].endswith(", expected 0; last output: step 1 | Traceback: boom")
    assert 0 < result["duration"] < 5
    assert engine.inspects == 3
    assert_read_only(engine)


def test_through_the_module_a_successful_job_succeeds(fake, capsys):
    engine = fake([RUNNING, exited(0)], timed=False)
    result = run_module(job_wait, dict(name=JOB, timeout=10, interval=0.01, docker_socket=engine.socket_path), capsys)
    assert result.get("failed", False) is False and result["passed"] is True and result["changed"] is False
    assert result["exit_code"] == 0 and result["output"] == ["line one", "line two"]
    assert result["msg"] == "job ragops-job-migrate exited with code 0 after 1.2 s"


def test_check_mode_skips_without_asking_docker(fake, capsys):
    engine = fake([exited(3)], timed=False)
    result = run_module(job_wait, dict(name=JOB, timeout=10, docker_socket=engine.socket_path), capsys, check_mode=True)
    assert result["skipped"] is True and result["passed"] is True
    assert result.get("failed", False) is False and result["changed"] is False
    assert result["exit_code"] is None and result["output"] == []
    assert engine.requests == []


@pytest.mark.parametrize("args, problem", [
    (dict(timeout=0), "timeout must be greater than 0"),
    (dict(interval=-1), "interval must be greater than 0"),
    (dict(output_lines=-1), "output_lines must not be negative"),
    (dict(expected_exit_codes=[]), "expected_exit_codes must be exit codes between 0 and 255"),
    (dict(expected_exit_codes=[0, 256]), "expected_exit_codes must be exit codes between 0 and 255"),
    (dict(name=" "), "name must not be empty"),
])
def test_invalid_parameters_fail_before_docker_is_asked(fake, capsys, args, problem):
    engine = fake([exited(0)], timed=False)
    module_args = dict(name=JOB, timeout=10, docker_socket=engine.socket_path)
    module_args.update(args)
    result = run_module(job_wait, module_args, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("invalid parameters: ") and problem in result["msg"]
    assert engine.requests == []
