# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time
import urllib.request

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.ragops.platform.plugins.module_utils._nginx_admin import NginxAdmin
from ansible_collections.ragops.platform.plugins.modules import traffic_switch
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_nginx import FakeAdmin, FakeLB
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_time import FakeTime
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import closed_port_url
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.module_runner import run_module


@pytest.fixture(autouse=True)
def default_urllib_opener():
    # ansible's Request installs its opener globally, unix socket handler included: a test ending with an admin
    # call would leave later urlopen() calls (in other test files) going to a socket that no longer exists.
    yield
    urllib.request.install_opener(None)


@pytest.fixture
def admin(tmp_path):
    fake = FakeAdmin(tmp_path, color="blue")
    yield fake
    fake.close()


@pytest.fixture
def lb(admin):
    fake = FakeLB(admin)
    yield fake
    fake.close()


def switch(admin, capsys, check_mode=False, **args):
    args = dict({"admin_socket": admin.socket_path, "request_timeout": 2}, **args)
    return run_module(traffic_switch, args, capsys, check_mode=check_mode)


def test_switch_makes_the_color_live_persists_and_verifies(admin, lb, capsys):
    result = switch(admin, capsys, color="green", verify_url=lb.url, state_file=admin.state_file)
    assert not result.get("failed"), result
    assert result["changed"] is True and result["switched"] is True
    assert result["previous_color"] == "blue" and result["color"] == "green"
    assert result["diff"] == {"before": {"color": "blue", "persisted": "blue"},
                              "after": {"color": "green", "persisted": "green"}}
    assert result["persisted"] is True and result["generation"] == 1
    assert result["switch_ms"] >= 0 and result["switched_at"] > 0
    assert admin.color == "green" and admin.persisted()[0] == "green"
    assert admin.puts == [{"body": "green", "expect": "blue"}]  # compare-and-set against the observed color
    assert result["verified"] is True
    assert result["verification"]["served_by"] == {"green": 10}
    assert result["verification"]["requests"] == 10 and result["verification"]["streak"] == 10


def test_second_run_is_idempotent_and_still_verifies(admin, lb, capsys):
    switch(admin, capsys, color="green", verify_url=lb.url)
    result = switch(admin, capsys, color="green", verify_url=lb.url, verify_requests=3)
    assert result["changed"] is False and result["switched"] is False
    assert result["switch_ms"] is None
    assert len(admin.puts) == 1
    assert result["verified"] is True and result["verification"]["served_by"] == {"green": 3}
    assert result["diff"]["before"] == result["diff"]["after"]


def test_without_verify_url_nothing_is_verified(admin, capsys):
    result = switch(admin, capsys, color="green")
    assert result["changed"] is True and result["verified"] is None and result["verification"] is None


def test_check_mode_predicts_the_switch_without_a_put(admin, lb, capsys):
    result = switch(admin, capsys, check_mode=True, color="green", verify_url=lb.url)
    assert result["changed"] is True and result["switched"] is False
    assert result["diff"]["before"]["color"] == "blue" and result["diff"]["after"]["color"] == "green"
    assert admin.puts == [] and admin.color == "blue" and admin.persisted()[0] == "blue"
    assert result["verified"] is None and lb.served == []


def test_check_mode_predicts_no_change_when_already_live(admin, capsys):
    result = switch(admin, capsys, check_mode=True, color="blue")
    assert result["changed"] is False and admin.puts == []


def test_expect_current_mismatch_changes_nothing(admin, capsys):
    result = switch(admin, capsys, color="green", expect_current="green")
    assert result["failed"] is True
    assert result["msg"] == "live color is blue, not the expected green: nothing switched"
    assert admin.puts == [] and admin.color == "blue"


def test_expect_current_is_sent_and_matches(admin, capsys):
    result = switch(admin, capsys, color="green", expect_current="blue")
    assert result["changed"] is True and admin.puts[0]["expect"] == "blue"


def test_a_concurrent_switch_is_not_overwritten(admin, capsys):
    def someone_else_switches(fake):
        fake.color = "green"
        fake.before_put = None

    # The module reads blue, then another client switches before our PUT ?expect=blue arrives.
    admin.before_put = someone_else_switches
    result = switch(admin, capsys, color="green")
    assert result["failed"] is True and result["changed"] is False and result["switched"] is False
    assert "the live color changed to green meanwhile" in result["msg"]


def test_a_put_without_answer_reports_what_is_live_now(admin, capsys):
    def applied_then_hangs(fake):
        fake.color = "green"
        fake.before_put = None
        time.sleep(1.5)

    admin.before_put = applied_then_hangs
    result = switch(admin, capsys, color="green", request_timeout=0.5)
    assert result["failed"] is True and result["switched"] is True and result["changed"] is True
    assert result["msg"].startswith("switch blue -> green: no answer to PUT /live (")
    assert result["msg"].endswith("); the live color is now green")


def test_busy_switch_lock_is_retried_with_backoff(admin, capsys):
    admin.busy_answers = 2
    result = switch(admin, capsys, color="green", switch_timeout=5)
    assert result["changed"] is True and len(admin.puts) == 3 and admin.color == "green"


def test_busy_switch_lock_gives_up_after_switch_timeout(admin, capsys):
    admin.busy_answers = 10 ** 6
    result = switch(admin, capsys, color="green", switch_timeout=0.3)
    assert result["failed"] is True and result["changed"] is False
    assert "HTTP 409: another switch is in progress" in result["msg"]
    assert admin.color == "blue"


def test_persist_failure_reports_unchanged(admin, capsys):
    admin.persist_fails = True
    result = switch(admin, capsys, color="green")
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"] == ("switch blue -> green refused, live color unchanged: nginx answered HTTP 500: "
                             "live color unchanged: cannot persist")


def test_stale_persisted_color_is_rewritten(admin, capsys):
    admin.write_state("green")  # live blue, but a restart would come back on green
    result = switch(admin, capsys, color="blue")
    assert result["changed"] is True and result["switched"] is False and result["persisted"] is True
    assert result["diff"] == {"before": {"color": "blue", "persisted": "green"},
                              "after": {"color": "blue", "persisted": "blue"}}
    assert admin.persisted()[0] == "blue"


def test_state_file_must_hold_the_new_color(admin, tmp_path, capsys):
    other = tmp_path / "other_live_color"
    other.write_text("blue\n")
    result = switch(admin, capsys, color="green", state_file=str(other))
    assert result["failed"] is True and result["switched"] is True and result["persisted"] is False
    assert result["msg"] == "green is live but %s holds 'blue'" % other


def test_verification_streak_resets_on_the_old_color(admin, lb, capsys):
    lb.lag = 3
    result = switch(admin, capsys, color="green", verify_url=lb.url, verify_requests=5)
    assert result["verified"] is True
    verification = result["verification"]
    assert verification["served_by"] == {"blue": 3, "green": 5}
    assert verification["requests"] == 8 and verification["streak"] == 5
    assert verification["last_error"] == "served by blue"


def test_verification_streak_resets_on_failed_requests(admin, lb, capsys):
    lb.fail_next = 2
    result = switch(admin, capsys, color="green", verify_url=lb.url, verify_requests=4)
    assert result["verified"] is True
    assert result["verification"]["failures"] == 2 and result["verification"]["requests"] == 6
    assert result["verification"]["served_by"] == {"green": 4, "none": 2}


def test_failed_verification_returns_the_partial_result(admin, lb, capsys):
    lb.stuck = "blue"
    result = switch(admin, capsys, color="green", verify_url=lb.url, verify_timeout=0.5)
    assert result["failed"] is True
    assert result["changed"] is True and result["switched"] is True and result["verified"] is False
    assert result["previous_color"] == "blue" and admin.color == "green"
    verification = result["verification"]
    assert verification["streak"] == 0 and verification["served_by"]["blue"] == verification["requests"] > 0
    assert result["msg"].startswith("switched blue -> green but verification failed: 0 of 10 requests in a row to %s"
                                    % lb.url)
    assert "served by blue=%d" % verification["requests"] in result["msg"]


def test_switch_back_after_a_failed_analysis(admin, lb, capsys):
    switch(admin, capsys, color="green", verify_url=lb.url)
    result = switch(admin, capsys, color="blue", expect_current="green", verify_url=lb.url, verify_requests=5)
    assert result["changed"] is True and result["previous_color"] == "green" and admin.color == "blue"
    assert admin.puts[-1] == {"body": "blue", "expect": "green"} and result["verified"] is True


def test_unreachable_admin_socket_fails_with_the_path(tmp_path, capsys):
    missing = str(tmp_path / "nope.sock")
    result = run_module(traffic_switch, {"color": "green", "admin_socket": missing}, capsys)
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("cannot reach the nginx admin API on %s" % missing)


@pytest.mark.parametrize("option, value", [("verify_requests", 0), ("verify_timeout", 0), ("request_timeout", -1)])
def test_bad_bounds_are_rejected(admin, capsys, option, value):
    result = switch(admin, capsys, color="green", **{option: value})
    assert result["failed"] is True and option in result["msg"] and admin.puts == []


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_color_that_is_not_serving_never_gets_traffic(admin, capsys, check_mode):
    result = switch(admin, capsys, check_mode=check_mode, color="green", precheck_url=closed_port_url("/health"))
    assert result["failed"] is True and result["changed"] is False and "diff" not in result
    assert "green is not serving" in result["msg"] and "nothing switched, blue stays live" in result["msg"]
    assert result["precheck"]["status"] is None and result["precheck"]["error"]
    assert admin.puts == [] and admin.color == "blue"


def test_a_serving_color_passes_the_precheck_and_is_switched(admin, lb, capsys):
    result = switch(admin, capsys, color="green", precheck_url=lb.url, verify_url=lb.url)
    assert not result.get("failed"), result
    assert result["switched"] is True and result["precheck"]["status"] == 200 and admin.color == "green"


def test_no_precheck_when_the_color_is_already_live(admin, capsys):
    result = switch(admin, capsys, color="blue", precheck_url=closed_port_url("/health"))
    assert not result.get("failed") and result["changed"] is False and "precheck" not in result


def test_only_the_color_header_counts_not_an_apps_own(admin, lb, capsys):
    # An app's X-App-Color says nothing to the platform: without nginx's header no answer is served by a color.
    lb.color_header = "X-App-Color"
    result = switch(admin, capsys, color="green", verify_url=lb.url, verify_timeout=0.5)
    assert result["failed"] is True and result["verified"] is False
    assert result["verification"]["served_by"] == {"none": result["verification"]["requests"]}
    assert "an answer without X-Ragops-Color" in result["msg"]


def test_the_color_header_can_be_named(admin, lb, capsys):
    lb.color_header = "X-Served-By"
    result = switch(admin, capsys, color="green", verify_url=lb.url, color_header="X-Served-By", verify_requests=3)
    assert result["verified"] is True and result["verification"]["served_by"] == {"green": 3}


# -- invalid_parameters and run_traffic_switch, driven directly ---------------------------------------------------

def params_for(**args):
    """Module params with defaults applied, for calling invalid_parameters and run_traffic_switch directly."""
    args.setdefault("color", "green")
    with patch_module_args(args):
        return AnsibleModule(argument_spec=traffic_switch.argument_spec(), supports_check_mode=True).params


class ScriptedProber:
    """Stands in for _http_probe.probe: answers from a list of (status, color header or None, error); the last
    one repeats. Records every (url, timeout) asked for."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked = []

    def __call__(self, method, url, timeout):
        self.asked.append((method, url, timeout))
        status, color, error = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        headers = {"x-ragops-color": color} if color else {}
        return {"status": status, "headers": headers, "error": error}


def switch_directly(admin, prober, time=None, check_mode=False, **args):
    time = time or FakeTime()
    params = params_for(admin_socket=admin.socket_path, request_timeout=2, **args)
    return traffic_switch.run_traffic_switch(params, NginxAdmin(admin.socket_path, 2), check_mode=check_mode,
                                             prober=prober, clock=time.clock, sleep=time.sleep,
                                             wall_clock=lambda: 1795609012.5)


def test_valid_parameters_have_no_problems():
    assert traffic_switch.invalid_parameters(params_for()) == []


def test_invalid_parameters_name_each_bad_field():
    problems = traffic_switch.invalid_parameters(params_for(verify_requests=0, verify_timeout=0, switch_timeout=-2))
    assert problems == ["verify_requests must be at least 1, got 0", "verify_timeout must be positive, got 0.0",
                        "switch_timeout must be positive, got -2.0"]


def test_bad_parameters_fail_with_the_same_partial_result(admin, capsys):
    result = switch(admin, capsys, color="green", verify_requests=0)
    assert result["msg"] == "verify_requests must be at least 1, got 0"
    assert {key: result[key] for key in ("changed", "color", "switched", "switch_ms", "verified", "verification")} == {
        "changed": False, "color": "green", "switched": False, "switch_ms": None, "verified": None,
        "verification": None}


def test_run_switches_and_verifies_on_the_fake_clock(admin):
    time = FakeTime(100.0)
    prober = ScriptedProber((200, "green", None))
    result = switch_directly(admin, prober, time, verify_url="http://lb/health", verify_requests=3)
    assert not result.get("failed"), result
    assert (result["switched"], result["changed"], result["persisted"]) == (True, True, True)
    assert result["switched_at"] == 1795609012.5 and result["switch_ms"] == 0.0
    assert result["verification"] == {"url": "http://lb/health", "required": 3, "requests": 3, "streak": 3,
                                      "served_by": {"green": 3}, "failures": 0, "last_error": None,
                                      "elapsed_ms": 0.0}
    assert prober.asked == [("GET", "http://lb/health", 2.0)] * 3 and time.sleeps == []
    assert admin.puts == [{"body": "green", "expect": "blue"}]


def test_run_verification_backs_off_after_the_old_color_and_a_failure(admin):
    time = FakeTime()
    prober = ScriptedProber((200, "blue", None), (None, None, "connection refused"), (200, "green", None))
    result = switch_directly(admin, prober, time, verify_url="http://lb/health", verify_requests=2)
    verification = result["verification"]
    assert result["verified"] is True
    assert (verification["requests"], verification["failures"], verification["served_by"]) == (4, 1, {"blue": 1, "green": 2})
    assert verification["last_error"] == "connection refused"
    assert len(time.sleeps) == 2 and all(0 <= delay <= traffic_switch.BACKOFF_CAP for delay in time.sleeps)
    assert verification["elapsed_ms"] == round(sum(time.sleeps) * 1000, 1)


def test_run_verification_gives_up_at_its_timeout(admin):
    time = FakeTime()
    prober = ScriptedProber((200, "blue", None))
    result = switch_directly(admin, prober, time, verify_url="http://lb/health", verify_requests=2, verify_timeout=3)
    assert result["failed"] is True and result["switched"] is True and result["verified"] is False
    assert time.now == pytest.approx(3.0)
    requests = result["verification"]["requests"]
    assert requests == len(prober.asked) == len(time.sleeps) and result["verification"]["served_by"] == {"blue": requests}
    assert all(timeout <= 2.0 for _method, _url, timeout in prober.asked)
    assert result["msg"] == ("switched blue -> green but verification failed: 0 of 2 requests in a row to "
                             "http://lb/health served by green within 3s (%d sent; served by blue=%d; 0 failed; "
                             "last: served by blue)" % (requests, requests))


def test_run_in_check_mode_sends_only_the_precheck(admin):
    prober = ScriptedProber((200, None, None))
    result = switch_directly(admin, prober, check_mode=True, precheck_url="http://green/health",
                             verify_url="http://lb/health")
    assert result["changed"] is True and result["switched"] is False and result["verified"] is None
    assert result["precheck"] == {"url": "http://green/health", "status": 200, "error": None}
    assert prober.asked == [("GET", "http://green/health", 2.0)] and admin.puts == []


def test_run_refuses_a_color_that_fails_the_precheck(admin):
    result = switch_directly(admin, ScriptedProber((503, None, None)), precheck_url="http://green/health")
    assert result["failed"] is True and result["changed"] is False and "diff" not in result
    assert result["msg"] == "green is not serving (HTTP 503 from http://green/health): nothing switched, blue stays live"
    assert admin.puts == []


def test_run_reports_an_unreachable_admin_api(tmp_path):
    missing = str(tmp_path / "nope.sock")
    params = params_for(admin_socket=missing)
    result = traffic_switch.run_traffic_switch(params, NginxAdmin(missing, 1), prober=ScriptedProber((200, None, None)))
    assert result["failed"] is True and result["msg"].startswith("cannot reach the nginx admin API on %s" % missing)
    assert "previous_color" not in result and result["switched"] is False
