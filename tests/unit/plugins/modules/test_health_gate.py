# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.ragops.platform.plugins.modules import health_gate
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_docker import FakeDockerEngine
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_time import FakeTime
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import (
    Reply,
    closed_port_url,
    tcp_server,
    unix_server,
)
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.module_runner import run_module

HEALTHY = {"status": "healthy", "version": "1.1.0", "color": "green", "checks": {"db": {"status": "ok"}}}
UNHEALTHY = {"status": "unhealthy", "reason": "drill: unhealthy"}


@pytest.fixture
def server():
    srv = tcp_server()
    yield srv
    srv.close()


def gate(server, checks, **options):
    args = dict(base_url=server.base_url if server else closed_port_url(), checks=checks, interval=0.02, max_interval=0.05)
    args.update(options)
    return args


def params_for(args):
    """Module params with defaults applied, for calling run_gate directly."""
    with patch_module_args(args):
        return AnsibleModule(argument_spec=health_gate.argument_spec(), supports_check_mode=True).params


def test_passes_after_a_slow_start_and_counts_attempts(server, capsys):
    server.script.route("/health", Reply(503, UNHEALTHY), Reply(503, UNHEALTHY), Reply(503, UNHEALTHY), Reply(200, HEALTHY))
    result = run_module(health_gate, gate(server, [{"url": "/health", "json": [{"path": "status", "value": "healthy"}]}]), capsys)
    assert result["passed"] is True
    assert result["changed"] is False
    assert "failed" not in result or result["failed"] is False
    check = result["checks"][0]
    assert (check["attempts"], check["successes"], check["consecutive"]) == (6, 3, 3)
    assert server.script.hits("/health") == 6
    assert len(check["latencies_ms"]) == 6 and all(latency > 0 for latency in check["latencies_ms"])
    assert check["last_status"] == 200
    assert check["last_response"] == HEALTHY
    assert check["failures"] == []
    assert check["last_failure"] == ["expected status 200, got 503", "status: expected eq 'healthy', got 'unhealthy'"]
    assert result["msg"].startswith("health gate passed after")


def test_a_failure_resets_the_streak(server, capsys):
    ok, bad = Reply(200, HEALTHY), Reply(503, UNHEALTHY)
    server.script.route("/health", ok, ok, bad, ok, ok, ok)
    result = run_module(health_gate, gate(server, [{"url": "/health"}]), capsys)
    check = result["checks"][0]
    assert result["passed"] is True
    assert (check["attempts"], check["successes"], check["consecutive"]) == (6, 5, 3)


def test_flapping_endpoint_never_passes_and_the_deadline_holds(server, capsys):
    ok, bad = Reply(200, HEALTHY), Reply(503, UNHEALTHY)
    server.script.route("/health", *([ok, ok, bad] * 200))
    timeout, request_timeout = 1.0, 0.5
    started = time.monotonic()
    result = run_module(health_gate, gate(server, [{"url": "/health", "request_timeout": request_timeout}],
                                          timeout=timeout), capsys)
    elapsed = time.monotonic() - started
    assert result["failed"] is True and result["passed"] is False and result["changed"] is False
    assert timeout <= result["elapsed"] <= timeout + request_timeout + 0.5
    assert elapsed <= timeout + request_timeout + 1.0
    check = result["checks"][0]
    assert check["attempts"] > 3 and check["consecutive"] < 3
    assert check["successes"] == check["attempts"] - check["attempts"] // 3
    assert result["msg"].startswith("health gate failed after ")
    assert "/health: " in result["msg"]


def test_failure_message_names_the_check_the_field_and_the_last_response(server, capsys):
    server.script.route("/health", Reply(200, dict(HEALTHY, version="1.0.0")))
    server.script.route("/health/db", Reply(200, {"status": "ok"}))
    checks = [
        {"url": "/health", "json": [{"path": "version", "value": "1.1.0"}, {"path": "status", "value": "healthy"}]},
        {"name": "db", "url": "/health/db", "json": [{"path": "status", "value": "ok"}]},
    ]
    result = run_module(health_gate, gate(server, checks, timeout=0.4), capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("health gate failed after 0.4 s: /health: version: expected eq '1.1.0', got '1.0.0' (last: {")
    assert '"version": "1.0.0"' in result["msg"]
    assert "db:" not in result["msg"]
    health, db = result["checks"]
    assert health["passed"] is False and health["failures"] == ["version: expected eq '1.1.0', got '1.0.0'"]
    assert db["passed"] is True and db["consecutive"] >= 3


def test_status_failure_message(server, capsys):
    server.script.route("/health", Reply(503, UNHEALTHY))
    result = run_module(health_gate, gate(server, [{"url": "/health"}], timeout=0.3), capsys)
    assert "/health: expected status 200, got 503 (last: {" in result["msg"]
    assert result["checks"][0]["last_status"] == 503


def test_slow_endpoint_times_out_per_request_and_the_deadline_holds(server, capsys):
    server.script.route("/health", Reply(200, HEALTHY, delay=3.0))
    timeout, request_timeout = 1.0, 0.3
    started = time.monotonic()
    result = run_module(health_gate, gate(server, [{"url": "/health", "request_timeout": request_timeout}],
                                          timeout=timeout), capsys)
    elapsed = time.monotonic() - started
    assert result["failed"] is True
    assert elapsed <= timeout + request_timeout + 0.5
    check = result["checks"][0]
    assert check["last_error"] == "timed out after 0.3 s"
    assert check["last_status"] is None and check["last_response"] is None
    assert check["attempts"] >= 2
    assert "/health: request failed: timed out after 0.3 s" in result["msg"]


def test_refused_connection_fails_at_the_deadline(capsys):
    started = time.monotonic()
    result = run_module(health_gate, gate(None, [{"url": "/health"}], timeout=0.5), capsys)
    assert time.monotonic() - started < 1.5
    assert result["failed"] is True
    assert "Connection refused" in result["checks"][0]["last_error"]
    assert "/health: request failed: connection failed:" in result["msg"]


def test_every_check_must_pass_at_the_same_time(server, capsys):
    server.script.route("/health", Reply(200, HEALTHY))
    server.script.route("/health/db", Reply(503, {"status": "error"}), Reply(200, {"status": "ok"}))
    checks = [{"url": "/health"}, {"url": "/health/db", "json": [{"path": "status", "value": "ok"}]}]
    result = run_module(health_gate, gate(server, checks), capsys)
    assert result["passed"] is True
    health, db = result["checks"]
    assert (health["attempts"], db["attempts"]) == (4, 4)
    assert (health["consecutive"], db["consecutive"]) == (4, 3)


def test_unix_socket_target(tmp_path, capsys):
    srv = unix_server(tmp_path / "admin.sock")
    try:
        srv.script.route("/live", Reply(200, {"color": "blue"}))
        args = dict(base_url="http://localhost", unix_socket=str(tmp_path / "admin.sock"), consecutive_successes=1,
                    checks=[{"name": "live", "url": "/live", "json": [{"path": "color", "op": "in", "value": ["blue", "green"]}]}])
        result = run_module(health_gate, args, capsys)
        assert result["passed"] is True
        assert result["checks"][0]["url"] == "http://localhost/live"
    finally:
        srv.close()


def test_check_mode_still_probes_and_reports_no_change(server, capsys):
    server.script.route("/health", Reply(200, HEALTHY))
    result = run_module(health_gate, gate(server, [{"url": "/health"}]), capsys, check_mode=True)
    assert result["passed"] is True and result["changed"] is False
    assert server.script.hits("/health") == 3


def test_method_headers_and_body_are_sent(server, capsys):
    server.script.route("/api/query", Reply(200, {"success": True}), method="POST")
    check = {"url": "/api/query", "method": "post", "headers": {"X-Request-ID": "gate"},
             "body": {"query": "ping", "client_id": "gate"}, "json": [{"path": "success", "value": True}]}
    result = run_module(health_gate, gate(server, [check], consecutive_successes=1), capsys)
    assert result["passed"] is True
    assert result["checks"][0]["method"] == "POST"
    assert server.script.requests[0]["body"] == b'{"query": "ping", "client_id": "gate"}'


def test_latency_history_is_bounded(server, capsys):
    server.script.route("/health", Reply(200, HEALTHY))
    result = run_module(health_gate, gate(server, [{"url": "/health"}], consecutive_successes=60, interval=0.001,
                                          max_interval=0.001), capsys)
    check = result["checks"][0]
    assert check["attempts"] == 60 and len(check["latencies_ms"]) == 50


@pytest.mark.parametrize("options, problem", [
    (dict(consecutive_successes=0), "consecutive_successes must be at least 1"),
    (dict(timeout=0), "timeout must be greater than 0"),
    (dict(interval=1, max_interval=0.5), "max_interval (0.5) must be at least interval (1.0)"),
    (dict(backoff_factor=0.5), "backoff_factor must be at least 1"),
    (dict(grace_period=-1), "grace_period must not be negative"),
    (dict(checks=[{"url": "/health", "json": [{"path": "version", "op": "regex", "value": "("}]}]),
     "checks[0] (/health): json version: invalid regex '('"),
    (dict(checks=[{"url": "/health", "status": [700]}]), "checks[0] (/health): status must be HTTP codes"),
    (dict(checks=[{"url": "/health", "request_timeout": 0}]), "checks[0] (/health): request_timeout must be greater than 0"),
])
def test_invalid_parameters_fail_before_any_request(server, capsys, options, problem):
    server.script.route("/health", Reply(200, HEALTHY))
    args = gate(server, [{"url": "/health"}])
    args.update(options)
    result = run_module(health_gate, args, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("invalid parameters: ")
    assert problem in result["msg"]
    assert server.script.requests == []


def test_single_status_or_list(server, capsys):
    server.script.route("/health", Reply(204))
    result = run_module(health_gate, gate(server, [{"url": "/health", "status": [200, 204]}]), capsys)
    assert result["passed"] is True
    result = run_module(health_gate, gate(server, [{"url": "/health", "status": 204}]), capsys)
    assert result["passed"] is True


def test_backoff_after_failures_and_reset_after_a_pass(server):
    ok, bad = Reply(200, HEALTHY), Reply(503, UNHEALTHY)
    server.script.route("/health", bad, bad, bad, ok, ok, bad, ok, ok, ok)
    fake = FakeTime()
    params = params_for(gate(server, [{"url": "/health"}], interval=0.125, max_interval=0.25, backoff_factor=2))
    result = health_gate.run_gate(params, sleep=fake.sleep, clock=fake.clock, rng=lambda: 1.0)
    assert result["passed"] is True
    # failing rounds: 0.125, 0.25, capped 0.25; passing rounds: interval; the failure after passes restarts at 0.125
    assert fake.sleeps == [0.125, 0.25, 0.25, 0.125, 0.125, 0.125, 0.125, 0.125]


def test_full_jitter_delays_stay_within_their_bounds(server):
    server.script.route("/health", Reply(503, UNHEALTHY))
    fake = FakeTime()
    params = params_for(gate(server, [{"url": "/health"}], interval=0.1, max_interval=1.0, backoff_factor=2, timeout=20))
    health_gate.run_gate(params, sleep=fake.sleep, clock=fake.clock)
    bounds = [min(1.0, 0.1 * 2 ** n) for n in range(len(fake.sleeps))]
    assert all(0 <= delay <= bound + 1e-9 for delay, bound in zip(fake.sleeps[:-1], bounds))
    assert sum(fake.sleeps) == pytest.approx(20.0)
    assert len(set(fake.sleeps)) > 10


def test_grace_period_polls_at_the_interval_then_backs_off(server):
    server.script.route("/health", Reply(503, UNHEALTHY))
    fake = FakeTime()
    params = params_for(gate(server, [{"url": "/health"}], interval=0.125, max_interval=1.0, backoff_factor=2,
                             grace_period=0.5, timeout=3.0))
    result = health_gate.run_gate(params, sleep=fake.sleep, clock=fake.clock, rng=lambda: 1.0)
    assert result["passed"] is False
    assert fake.sleeps[:4] == [0.125] * 4
    assert fake.sleeps[4:8] == [0.125, 0.25, 0.5, 1.0]
    assert fake.sleeps[8:] == [0.625]  # the capped 1.0 is cut to the deadline (t=2.375 -> 3.0)
    assert result["checks"][0]["attempts"] == 9


def test_a_target_up_during_the_grace_passes_at_once(server):
    server.script.route("/health", Reply(200, HEALTHY))
    fake = FakeTime()
    params = params_for(gate(server, [{"url": "/health"}], interval=0.125, max_interval=1, grace_period=30,
                             timeout=60))
    result = health_gate.run_gate(params, sleep=fake.sleep, clock=fake.clock)
    assert result["passed"] is True
    assert fake.sleeps == [0.125, 0.125]


@pytest.fixture
def docker_engine():
    started = []

    def make(name, states, **kwargs):
        engine = FakeDockerEngine(name, states, **kwargs)
        started.append(engine)
        return engine

    yield make
    for engine in started:
        engine.close()


def watched(engine, name="ragops-app-green"):
    return {"name": name, "docker_socket": engine.socket_path}


def test_a_crash_looping_container_fails_the_gate_at_once_with_its_logs(docker_engine, capsys):
    # Nothing listens on the target, as with a release that exits before serving; the deadline is far away.
    engine = docker_engine("ragops-app-green", [("running", False, 0, 0), ("restarting", True, 1, 3)],
                           logs=["starting", "CRITICAL drill crash_on_start: exiting on purpose"])
    started = time.monotonic()
    result = run_module(health_gate, gate(None, [{"url": "/health"}], timeout=30, container=watched(engine)), capsys)
    assert time.monotonic() - started < 5
    assert result["failed"] is True and result["passed"] is False and result["changed"] is False
    assert result["container"]["crashed"] is True and result["container"]["status"] == "restarting"
    assert result["container"]["exit_code"] == 3 and result["container"]["restart_count"] == 1
    assert result["container"]["logs"] == ["starting", "CRITICAL drill crash_on_start: exiting on purpose"]
    assert "ragops-app-green: the container is crash-looping: restarting after exit code 3, 1 restart(s)" in result["msg"]
    assert "exiting on purpose" in result["msg"]


@pytest.mark.parametrize("states, reason", [
    ([("exited", False, 0, 1)], "the container exited (exit code 1)"),
    ([("running", False, 4, 0), ("running", False, 5, 0)], "restarted 1 time(s) since the gate started"),
])
def test_an_exited_or_restarted_container_fails_the_gate(docker_engine, capsys, states, reason):
    engine = docker_engine("ragops-app-green", states)
    result = run_module(health_gate, gate(None, [{"url": "/health"}], timeout=30, container=watched(engine)), capsys)
    assert result["failed"] is True and reason in result["container"]["reason"] and reason in result["msg"]


def test_a_container_running_again_after_a_restart_reports_no_exit_code(docker_engine, capsys):
    # Running again, Docker reports the new run's ExitCode (0): the code of the run that ended is not known.
    engine = docker_engine("ragops-app-green", [("running", False, 4, 0), ("running", False, 5, 0)])
    result = run_module(health_gate, gate(None, [{"url": "/health"}], timeout=30, container=watched(engine)), capsys)
    container = result["container"]
    assert result["failed"] is True and container["crashed"] is True and container["status"] == "running"
    assert container["exit_code"] is None and container["restart_count"] == 5
    assert "exit code" not in container["reason"] and "exit code" not in result["msg"]


def test_a_missing_container_fails_the_gate(docker_engine, capsys):
    engine = docker_engine("ragops-app-green", [("running", False, 0, 0)])
    result = run_module(health_gate, gate(None, [{"url": "/health"}], timeout=30,
                                          container=watched(engine, name="ragops-app-blue")), capsys)
    assert result["failed"] is True and "ragops-app-blue: the container does not exist" in result["msg"]


def test_a_healthy_watched_container_passes_and_reports_its_state(server, docker_engine, capsys):
    server.script.route("/health", Reply(200, HEALTHY))
    engine = docker_engine("ragops-app-green", [("running", False, 2, 0)])
    result = run_module(health_gate, gate(server, [{"url": "/health"}], container=watched(engine)), capsys)
    assert result["passed"] is True
    assert result["container"] == {"name": "ragops-app-green", "status": "running", "exit_code": 0,
                                   "restart_count": 2, "crashed": False, "reason": None, "logs": []}
    assert engine.inspects == result["rounds"]


def test_an_unreachable_docker_engine_fails_naming_the_socket(capsys, tmp_path):
    spec = {"name": "ragops-app-green", "docker_socket": str(tmp_path / "none.sock")}
    result = run_module(health_gate, gate(None, [{"url": "/health"}], timeout=5, container=spec), capsys)
    assert result["failed"] is True and "cannot reach the Docker engine on %s" % spec["docker_socket"] in result["msg"]


def test_a_plain_text_check_with_the_workload_names(server, capsys):
    server.script.route("/healthz", Reply(503, body="starting"), Reply(200, body="ok\n"))
    check = {"path": "/healthz", "status": [200], "body_contains": "ok", "timeout": 0.5}
    result = run_module(health_gate, gate(server, [check], consecutive_successes=2), capsys)
    assert result["passed"] is True
    report = result["checks"][0]
    assert report["name"] == "/healthz" and report["url"] == server.base_url + "/healthz"
    assert report["last_response"] == "ok\n"
    assert report["last_failure"] == ["expected status 200, got 503", "body: expected to contain 'ok', got 'starting'"]


def test_the_timeout_alias_is_the_request_timeout_not_the_deadline(server):
    params = params_for(gate(server, [{"path": "/healthz", "timeout": 0.25}], timeout=7))
    assert params["checks"][0]["request_timeout"] == 0.25 and params["checks"][0]["url"] == "/healthz"
    assert params["timeout"] == 7.0


def test_body_contains_failure_shows_what_was_expected_and_the_start_of_the_body(server, capsys):
    server.script.route("/healthz", Reply(200, body="degraded: redis down " + "x" * 200))
    result = run_module(health_gate, gate(server, [{"url": "/healthz", "body_contains": "ok"}], timeout=0.3), capsys)
    assert result["failed"] is True
    failure = result["checks"][0]["failures"][0]
    assert failure.startswith("body: expected to contain 'ok', got 'degraded: redis down xxx")
    assert failure.endswith("...") and len(failure) < 140  # the start of the body only
    assert "/healthz: body: expected to contain 'ok', got 'degraded: redis down" in result["msg"]


def test_body_regex_is_searched_in_the_body(server, capsys):
    server.script.route("/version", Reply(200, body="app v1.4.2 (build 77)"))
    passing = {"url": "/version", "body_regex": r"v1\.4\.\d+"}
    assert run_module(health_gate, gate(server, [passing], consecutive_successes=1), capsys)["passed"] is True
    anchored = {"url": "/version", "body_regex": r"^v1\.4"}
    result = run_module(health_gate, gate(server, [anchored], consecutive_successes=1, timeout=0.3), capsys)
    assert result["failed"] is True
    assert result["checks"][0]["failures"] == [r"body: expected to match regex '^v1\.4', got 'app v1.4.2 (build 77)'"]


def test_body_checks_combine_with_json_expectations(server, capsys):
    server.script.route("/health", Reply(200, HEALTHY))
    check = {"url": "/health", "json": [{"path": "status", "value": "healthy"}], "body_contains": '"color": "green"',
             "body_regex": '"version": "1\\.1\\.'}
    assert run_module(health_gate, gate(server, [check], consecutive_successes=1), capsys)["passed"] is True
    check = dict(check, body_contains='"color": "blue"')
    result = run_module(health_gate, gate(server, [check], consecutive_successes=1, timeout=0.3), capsys)
    assert result["checks"][0]["failures"][0].startswith("body: expected to contain '\"color\": \"blue\"', got '{")


def test_an_empty_body_is_named(server, capsys):
    server.script.route("/healthz", Reply(204))
    check = {"url": "/healthz", "status": [204], "body_contains": "ok"}
    result = run_module(health_gate, gate(server, [check], timeout=0.3), capsys)
    assert result["checks"][0]["failures"] == ["body: expected to contain 'ok', got an empty body"]


@pytest.mark.parametrize("check, problem", [
    ({"url": "/healthz", "body_regex": "(ok"}, "checks[0] (/healthz): body_regex '(ok' is not a valid regular expression"),
    ({"path": "/healthz", "body_contains": ""}, "checks[0] (/healthz): body_contains must not be empty"),
    ({"path": "/healthz", "timeout": 0}, "checks[0] (/healthz): request_timeout must be greater than 0"),
])
def test_invalid_body_checks_and_aliases_fail_before_any_request(server, capsys, check, problem):
    result = run_module(health_gate, gate(server, [check]), capsys)
    assert result["failed"] is True and problem in result["msg"]
    assert server.script.requests == []
