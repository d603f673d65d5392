# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
import yaml

from ansible_collections.ragops.platform.plugins.modules import metric_analysis
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_app import FakeApp
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_nginx import FakeAdmin, FakeLB
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_prometheus import FakePrometheus, LBAnswers
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import Reply, closed_port_url, tcp_server
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.module_runner import run_module

FAST = {"window": 0.6, "interval": 0.1, "request_timeout": 2}
# Probes sent at a color directly, not through the load balancer: the app's own header names who answered.
DIRECT = {"color_header": "X-App-Color"}


@pytest.fixture
def servers():
    started = []
    yield started
    for server in started:
        server.close()


@pytest.fixture
def nginx(tmp_path):
    fake = FakeAdmin(tmp_path, color="green")
    yield fake
    fake.close()


def app(servers, **kwargs):
    fake = FakeApp(**kwargs)
    servers.append(fake)
    return fake


def analyse(capsys, check_mode=False, **args):
    return run_module(metric_analysis, dict(FAST, color="green", **args), capsys, check_mode=check_mode)


def from_app(fake, capsys, **args):
    return analyse(capsys, source="app_metrics", app_metrics_url=fake.metrics_url, **args)


def test_good_release_passes_every_check(servers, capsys):
    fake = app(servers, per_scrape=[(50, 0, 0.02)])
    result = from_app(fake, capsys, version="1.1.0")
    assert not result.get("failed"), result
    assert result["verdict"] == "pass" and result["changed"] is False
    assert result["source_used"] == "app_metrics" and result["checks_planned"] == 6
    assert len(result["checks"]) == 6 and result["failing_checks"] == 0
    for check in result["checks"]:
        assert check["requests"] == 50 and check["errors"] == 0 and check["error_rate"] == 0.0
        assert check["p95_ms"] == 24.25 and check["ok"] is True  # 0.02 s falls in the (0.01, 0.025] bucket
        assert check["reason"] == "error rate 0.0% <= 5.0%, p95 latency 24.2 ms <= 1000 ms"
    assert result["decision_at"].endswith("Z") and result["decision_epoch"] > 0
    assert result["msg"] == "metric analysis of green 1.1.0 via app_metrics: pass: 6 of 6 checks passed, " \
                            "0 failing (limit 1)"


def test_slow_checks_do_not_stretch_the_window(servers, capsys):
    # Each scrape takes 0.15 s. Checks on a fixed grid end the 1.2 s window after about 1.35 s; checks that each
    # waited a full interval after the previous one would take 6 x (0.2 + 0.15) = 2.1 s.
    fake = app(servers, per_scrape=[(50, 0, 0.02)], scrape_delay=0.15)
    result = from_app(fake, capsys, window=1.2, interval=0.2)
    assert result["verdict"] == "pass" and len(result["checks"]) == 6
    assert result["elapsed_ms"] < 1800, result["elapsed_ms"]


def test_half_errors_fail_fast_with_the_numbers(servers, capsys):
    fake = app(servers, per_scrape=[(50, 0, 0.01), (100, 48, 0.01), (50, 0, 0.01)])
    result = from_app(fake, capsys)
    assert result["failed"] is True and result["verdict"] == "fail"
    assert len(result["checks"]) == 2, "stops at the first failing check"
    assert fake.scrapes == 3  # baseline + 2 checks, nothing after the decision
    failing = result["checks"][1]
    assert failing["ok"] is False and failing["requests"] == 100 and failing["errors"] == 48
    assert failing["error_rate"] == 0.48
    assert result["failing_checks"] == 1
    assert result["msg"] == ("metric analysis of green via app_metrics: fail: "
                             "error rate 48.0% > 5.0% at check 2/6 (100 requests)")


def test_slow_release_fails_on_p95(servers, capsys):
    fake = app(servers, per_scrape=[(40, 0, 2.0)])
    result = from_app(fake, capsys, max_p95_latency_ms=500)
    assert result["failed"] is True and len(result["checks"]) == 1
    assert result["checks"][0]["p95_ms"] == 2425.0
    assert result["msg"].endswith("p95 latency 2425 ms > 500 ms at check 1/6 (40 requests)")


def test_failure_limit_tolerates_isolated_failures(servers, capsys):
    fake = app(servers, per_scrape=[(50, 10, 0.01), (50, 0, 0.01)])
    result = from_app(fake, capsys, failure_limit=2)
    assert result["verdict"] == "pass" and result["failing_checks"] == 1 and len(result["checks"]) == 6


def test_failure_limit_reached_names_the_count(servers, capsys):
    fake = app(servers, per_scrape=[(50, 10, 0.01), (50, 0, 0.01), (50, 10, 0.01)])
    result = from_app(fake, capsys, failure_limit=2)
    assert result["failed"] is True and len(result["checks"]) == 3
    assert result["msg"].endswith("error rate 20.0% > 5.0% at check 3/6 (50 requests); "
                                  "2 failing checks reached failure_limit 2")


def test_too_few_samples_is_inconclusive_and_fails_by_default(servers, capsys):
    fake = app(servers, per_scrape=[(5, 0, 0.01)])
    result = from_app(fake, capsys)
    assert result["failed"] is True and result["verdict"] == "inconclusive"
    assert all(check["ok"] is None for check in result["checks"]) and len(result["checks"]) == 6
    assert result["checks"][0]["reason"] == "5 requests < min_samples 20"
    assert result["msg"].endswith("no check reached min_samples 20 in 6 checks (most: 5 requests; probes disabled)")
    assert result["probes_sent"] == 0


def test_inconclusive_can_pass(servers, capsys):
    fake = app(servers, per_scrape=[(5, 0, 0.01)])
    result = from_app(fake, capsys, on_inconclusive="pass")
    assert not result.get("failed") and result["verdict"] == "inconclusive" and result["changed"] is False


def test_probes_raise_the_samples_to_a_verdict(servers, capsys):
    fake = app(servers, per_scrape=[(0, 0, 0.01)])
    result = from_app(fake, capsys, window=0.9, interval=0.3, probe_url=fake.query_url, probe_rate=200, **DIRECT)
    assert not result.get("failed"), result
    assert result["verdict"] == "pass"
    assert result["probes_sent"] >= 20 and result["probe_failures"] == 0 and fake.queries == result["probes_sent"]
    first = result["checks"][0]
    assert first["probes_sent"] >= 20 and first["requests"] == first["probes_sent"] and first["ok"] is True


def test_probes_stop_while_real_traffic_is_enough(servers, capsys):
    fake = app(servers, per_scrape=[(100, 0, 0.01)])
    result = from_app(fake, capsys, window=0.9, interval=0.3, probe_url=fake.query_url, probe_rate=50, **DIRECT)
    assert result["verdict"] == "pass"
    assert result["checks"][0]["probes_sent"] > 0, "the first interval is probed"
    assert [check["probes_sent"] for check in result["checks"][1:]] == [0, 0]


def test_probe_errors_answered_by_the_color_fail_the_check(servers, capsys):
    fake = app(servers, per_scrape=[(0, 0, 0.01)], query_status=500)
    result = from_app(fake, capsys, window=0.9, interval=0.3, probe_url=fake.query_url, probe_rate=200, **DIRECT)
    assert result["failed"] is True and len(result["checks"]) == 1
    check = result["checks"][0]
    assert check["errors"] == check["requests"] == check["probes_sent"] == check["probe_failures"] >= 20
    assert "error rate 100.0% > 5.0%; last probe failure: HTTP 500 at check 1/3" in result["msg"]


def test_unanswered_probes_count_as_failed_requests(servers, capsys):
    fake = app(servers, per_scrape=[(0, 0, 0.01)])
    result = from_app(fake, capsys, window=0.9, interval=0.3, probe_url=closed_port_url("/api/query"),
                      probe_rate=200)
    assert result["failed"] is True
    check = result["checks"][0]
    assert check["requests"] == check["errors"] == check["probe_failures"] >= 20 and fake.queries == 0
    assert check["reason"].startswith("error rate 100.0% > 5.0%; last probe failure: connection failed")


def test_unreachable_metrics_is_a_failing_check(capsys):
    result = analyse(capsys, source="app_metrics", app_metrics_url=closed_port_url("/metrics"))
    assert result["failed"] is True and result["verdict"] == "fail" and len(result["checks"]) == 1
    assert result["checks"][0]["reason"].startswith("cannot scrape http://127.0.0.1:")


def test_wrong_color_behind_the_metrics_url_fails_at_once(servers, capsys):
    fake = app(servers, color="blue", version="1.0.0")
    result = from_app(fake, capsys, version="1.1.0")
    assert result["failed"] is True and result["verdict"] == "fail" and result["checks"] == []
    assert result["msg"] == "metric analysis of green: %s is served by color blue version 1.0.0, not green " \
                            "version 1.1.0" % fake.metrics_url


ALWAYS_RETURNED = sorted(key for key, spec in yaml.safe_load(metric_analysis.RETURN).items()
                         if spec.get("returned") == "always")


@pytest.mark.parametrize("failure", ["identity", "prometheus_down", "no_source"])
def test_failures_before_any_check_return_every_always_key(servers, capsys, tmp_path, failure):
    if failure == "identity":
        result = from_app(app(servers, color="blue", version="1.0.0"), capsys, version="1.1.0")
    elif failure == "prometheus_down":
        result = analyse(capsys, source="prometheus", prometheus_url=closed_port_url(""))
    else:
        result = analyse(capsys, prometheus_url=closed_port_url("/"), admin_socket=str(tmp_path / "absent.sock"))
    assert result["failed"] is True and result["verdict"] == "fail"
    assert "decision_at" in ALWAYS_RETURNED and "aborted" in ALWAYS_RETURNED
    assert [key for key in ALWAYS_RETURNED if key not in result] == []
    assert result["checks"] == [] and result["failing_checks"] == 0 and result["aborted"] is None
    assert result["checks_planned"] == 6 and result["decision_at"].endswith("Z") and result["decision_epoch"] > 0


def test_a_restarted_process_counts_from_zero(servers, capsys):
    fake = app(servers, per_scrape=[(50, 0, 0.01)])
    fake.observe("200", 0.01, 10000)
    original = fake.handle

    def restart_after_baseline(method, path, headers, body):
        if path == "/metrics" and fake.scrapes == 1:
            fake.reset()
        return original(method, path, headers, body)

    fake.handle = restart_after_baseline
    result = from_app(fake, capsys, window=0.2)
    assert result["verdict"] == "pass" and [check["requests"] for check in result["checks"]] == [50, 50]


def test_check_mode_skips(capsys):
    result = analyse(capsys, check_mode=True, source="app_metrics", app_metrics_url=closed_port_url("/metrics"))
    assert result["verdict"] == "skipped" and result["changed"] is False and not result.get("failed")
    assert result["checks"] == []


def lb_prometheus(servers, traffic=None, **kwargs):
    answers = LBAnswers(**kwargs)
    answers.traffic.update(traffic or {})
    prometheus = FakePrometheus(answers)
    servers.append(prometheus)
    return prometheus


def test_prometheus_queries_nginx_metrics_of_the_color_and_job(servers, capsys):
    prometheus = lb_prometheus(servers, {"green": (200.4, 2, 0.012), "blue": (1000, 1000, 9.0)})
    result = analyse(capsys, source="prometheus", prometheus_url=prometheus.url, version="1.1.0")
    assert not result.get("failed"), result
    assert result["verdict"] == "pass" and result["source_used"] == "prometheus"
    check = result["checks"][0]
    assert check["requests"] == 200 and check["errors"] == 2 and check["p95_ms"] == 12.0
    assert check["error_rate"] == round(2 / 200.4, 4)
    selector = '{color="green",job="ragops-lb"'
    assert prometheus.queries[0] == 'up{job="ragops-lb"} == 1'
    assert prometheus.queries[1:4] == [
        "sum(increase(ragops_lb_requests_total%s}[15000ms]))" % selector,
        'sum(increase(ragops_lb_requests_total%s,status_class=~"5xx"}[15000ms]))' % selector,
        "histogram_quantile(0.95, sum by (le) (increase(ragops_lb_request_duration_seconds_bucket%s}[15000ms])))"
        % selector,
    ]
    assert all('color="green"' in query for query in prometheus.queries[1:])


def test_lb_job_option_names_the_prometheus_job(servers, capsys):
    prometheus = lb_prometheus(servers, {"green": (50, 0, 0.01)}, job="edge")
    result = analyse(capsys, source="prometheus", prometheus_url=prometheus.url, lb_job="edge", window=0.1)
    assert result["verdict"] == "pass" and prometheus.queries[0] == 'up{job="edge"} == 1'
    assert all('job="edge"' in query for query in prometheus.queries)


def test_prometheus_range_option(servers, capsys):
    prometheus = lb_prometheus(servers, {"green": (200, 0, 0.01)})
    analyse(capsys, source="prometheus", prometheus_url=prometheus.url, prometheus_range=7.5, window=0.1)
    assert prometheus.queries[1].endswith("[7500ms]))")


def test_prometheus_error_rate_fails_fast(servers, capsys):
    prometheus = lb_prometheus(servers, {"green": (96, 46, 0.01)})
    result = analyse(capsys, source="auto", prometheus_url=prometheus.url)
    assert result["failed"] is True and result["source_used"] == "prometheus" and len(result["checks"]) == 1
    assert result["msg"] == ("metric analysis of green via prometheus: fail: "
                             "error rate 47.9% > 5.0% at check 1/6 (96 requests)")


def test_prometheus_without_data_is_inconclusive(servers, capsys):
    prometheus = lb_prometheus(servers)
    result = analyse(capsys, source="prometheus", prometheus_url=prometheus.url, on_inconclusive="pass")
    assert result["verdict"] == "inconclusive" and result["checks"][0]["requests"] == 0
    assert result["checks"][0]["p95_ms"] is None


def lb_in_front_of(servers, nginx, fake):
    balancer = FakeLB(nginx, backends={"green": fake.base_url})
    servers.append(balancer)
    return balancer


def test_lagging_prometheus_is_overruled_by_failing_probes(servers, nginx, capsys):
    # Prometheus has not scraped the new color yet (0 requests), but the color itself fails its probes.
    prometheus = lb_prometheus(servers, {"green": (0, 0, float("nan"))})
    balancer = lb_in_front_of(servers, nginx, app(servers, query_status=500))
    result = analyse(capsys, source="prometheus", prometheus_url=prometheus.url, window=0.9, interval=0.3,
                     probe_url=balancer.base_url + "/api/query", probe_rate=200)
    assert result["failed"] is True and len(result["checks"]) == 1, result
    check = result["checks"][0]
    assert check["judged_on"] == "probes" and check["requests"] == check["probes_sent"] >= 20
    assert check["errors"] == check["probe_failures"] == check["requests"]
    assert "error rate 100.0% > 5.0%" in result["msg"]


def test_lagging_prometheus_with_passing_probes_is_judged_on_them(servers, nginx, capsys):
    prometheus = lb_prometheus(servers, {"green": (0, 0, float("nan"))})
    balancer = lb_in_front_of(servers, nginx, app(servers))
    result = analyse(capsys, source="prometheus", prometheus_url=prometheus.url, window=2, interval=1,
                     probe_url=balancer.base_url + "/api/query", probe_rate=50)
    assert not result.get("failed"), result
    assert result["verdict"] == "pass"
    assert all(check["judged_on"] == "probes" and check["ok"] is True for check in result["checks"])


def test_prometheus_query_errors_make_checks_inconclusive(servers, capsys):
    def answer(query):
        if query.startswith("up{"):
            return [({}, 1)]
        return 400, {"status": "error", "errorType": "bad_data", "error": "parse error"}
    prometheus = FakePrometheus(answer)
    servers.append(prometheus)
    result = analyse(capsys, source="prometheus", prometheus_url=prometheus.url)
    assert result["verdict"] == "inconclusive" and result["checks"][0]["ok"] is None
    assert "parse error" in result["checks"][0]["reason"]


def test_auto_falls_back_to_nginx_metrics_when_prometheus_is_down(servers, nginx, capsys, monkeypatch):
    warnings = []
    # Where warnings land in the result depends on what else the test process loaded: record them at the source.
    monkeypatch.setattr(metric_analysis.AnsibleModule, "warn", lambda module, text: warnings.append(text))
    nginx.metrics.per_scrape = [{"green": (50, 0, 0.01), "blue": (500, 500, 5.0)}]
    result = analyse(capsys, prometheus_url=closed_port_url("/"), admin_socket=nginx.socket_path)
    assert not result.get("failed"), result
    assert result["verdict"] == "pass" and result["source_used"] == "lb_metrics"
    assert [check["requests"] for check in result["checks"]] == [50] * 6
    assert len(warnings) == 1 and "is unreachable" in warnings[0]
    assert warnings[0].endswith("analysing green from nginx /metrics on %s instead" % nginx.socket_path)


def test_auto_falls_back_when_prometheus_does_not_scrape_nginx(servers, nginx, capsys):
    prometheus = lb_prometheus(servers, {"green": (1, 1, 1)}, up=None)
    nginx.metrics.per_scrape = [{"green": (50, 0, 0.01)}]
    result = analyse(capsys, prometheus_url=prometheus.url, admin_socket=nginx.socket_path)
    assert result["source_used"] == "lb_metrics" and prometheus.queries == ['up{job="ragops-lb"} == 1']


def test_auto_falls_back_when_nginx_is_down_for_prometheus(servers, nginx, capsys):
    prometheus = lb_prometheus(servers, {"green": (1, 1, 1)}, up=0)
    result = analyse(capsys, prometheus_url=prometheus.url, admin_socket=nginx.socket_path, on_inconclusive="pass")
    assert result["source_used"] == "lb_metrics"


def test_auto_without_any_source_fails(capsys, tmp_path):
    socket_path = str(tmp_path / "absent.sock")
    result = analyse(capsys, prometheus_url=closed_port_url("/"), admin_socket=socket_path)
    assert result["failed"] is True and result["msg"].startswith("no metrics source for green: Prometheus at ")
    assert "and cannot scrape nginx /metrics on %s" % socket_path in result["msg"]


def test_explicit_prometheus_down_fails(capsys):
    url = closed_port_url("")
    result = analyse(capsys, source="prometheus", prometheus_url=url)
    assert result["failed"] is True and result["msg"].startswith("Prometheus at %s is unreachable" % url)


@pytest.mark.parametrize("args, message", [
    ({"interval": 2, "window": 1}, "interval (2.0) must not exceed window (1.0)"),
    ({"max_error_rate": 1.5}, "max_error_rate must be between 0 and 1"),
    ({"min_samples": 0}, "min_samples must be at least 1"),
    ({"failure_limit": 0}, "failure_limit must be at least 1"),
    ({"probe_body": "{not json"}, "probe_body is not JSON"),
])
def test_bad_settings_are_rejected(capsys, args, message):
    result = analyse(capsys, source="app_metrics", app_metrics_url=closed_port_url("/"), **args)
    assert result["failed"] is True and message in result["msg"]


def test_app_metrics_source_needs_its_url(capsys):
    result = analyse(capsys, source="app_metrics")
    assert result["failed"] is True and "app_metrics_url" in result["msg"]


def test_failing_analysis_gives_traffic_back_at_once(servers, nginx, capsys):
    fake = app(servers, per_scrape=[(100, 48, 0.01)])
    result = from_app(fake, capsys, abort_to="blue", admin_socket=nginx.socket_path)
    assert result["failed"] is True and result["changed"] is True
    aborted = result["aborted"]
    assert aborted["switched"] is True and aborted["color"] == "blue" and aborted["error"] is None
    assert 0 <= aborted["switched_at"] - result["decision_epoch"] < 1
    assert nginx.color == "blue" and nginx.puts == [{"body": "blue", "expect": "green"}]
    assert result["msg"].endswith("; traffic given back to blue")


def test_abort_never_overrides_a_switch_made_meanwhile(servers, nginx, capsys):
    nginx.color = "blue"  # someone else already moved traffic
    fake = app(servers, per_scrape=[(100, 48, 0.01)])
    result = from_app(fake, capsys, abort_to="blue", admin_socket=nginx.socket_path)
    assert result["failed"] is True and result["changed"] is False
    assert result["aborted"]["switched"] is False and "HTTP 409" in result["aborted"]["error"]
    assert "NOT given back" in result["msg"]


def test_passing_analysis_does_not_touch_traffic(servers, nginx, capsys):
    fake = app(servers, per_scrape=[(50, 0, 0.01)])
    result = from_app(fake, capsys, abort_to="blue", admin_socket=nginx.socket_path)
    assert not result.get("failed") and result["changed"] is False and result["aborted"] is None
    assert nginx.puts == [] and nginx.color == "green"


def test_abort_to_the_analysed_color_is_rejected(capsys):
    result = analyse(capsys, source="app_metrics", app_metrics_url=closed_port_url("/metrics"), abort_to="green")
    assert result["failed"] is True and "abort_to must be the other color" in result["msg"]


# Probes through the load balancer, judged on nginx's own metrics

def through_lb(servers, nginx, capsys, balancer, **args):
    settings = dict(source="lb_metrics", admin_socket=nginx.socket_path, window=0.6, interval=0.3,
                    probe_url=balancer.base_url + "/api/query", probe_rate=100)
    settings.update(args)
    return analyse(capsys, **settings)


def test_probes_through_the_lb_count_once_by_its_color_header(servers, nginx, capsys):
    balancer = lb_in_front_of(servers, nginx, app(servers))
    result = through_lb(servers, nginx, capsys, balancer, min_samples=5)
    assert not result.get("failed"), result
    check = result["checks"][0]
    assert check["requests"] == check["probes_sent"] >= 5 and check["errors"] == 0 and check["ok"] is True
    assert nginx.metrics.count("green") == result["probes_sent"] and balancer.served.count("green") == result["probes_sent"]


def test_lb_errors_naming_no_color_are_failed_requests(servers, nginx, capsys):
    balancer = lb_in_front_of(servers, nginx, app(servers))
    balancer.fail_next = 4
    result = through_lb(servers, nginx, capsys, balancer, min_samples=5)
    assert result["failed"] is True and len(result["checks"]) == 1
    check = result["checks"][0]
    assert check["requests"] == check["probes_sent"] and check["errors"] == check["probe_failures"] == 4
    assert nginx.metrics.count("none") == 4 and nginx.metrics.count("green") == check["probes_sent"] - 4
    assert "; last probe failure: HTTP 502 at check 1/2" in result["msg"]


def test_probes_answered_by_the_other_color_do_not_count(servers, nginx, capsys):
    blue = app(servers, color="blue", version="1.0.0")
    balancer = FakeLB(nginx, backends={"blue": blue.base_url, "green": app(servers).base_url})
    servers.append(balancer)
    balancer.stuck = "blue"
    result = through_lb(servers, nginx, capsys, balancer, on_inconclusive="pass")
    assert result["verdict"] == "inconclusive" and result["probes_sent"] > 0 and result["probe_failures"] == 0
    assert all(check["requests"] == 0 for check in result["checks"]) and blue.queries == result["probes_sent"]


def test_probe_method_headers_and_body(servers, nginx, capsys):
    backend = tcp_server()
    backend.script.route("/ping", Reply(200, {"ok": True}), method="PUT")
    servers.append(backend)
    balancer = lb_in_front_of(servers, nginx, backend)
    result = through_lb(servers, nginx, capsys, balancer, window=0.3, min_samples=1, probe_method="put",
                        probe_url=balancer.base_url + "/ping", probe_headers={"Authorization": "Bearer t"},
                        probe_body='{"ping": 1}', on_inconclusive="pass")
    assert result["verdict"] == "pass" and result["checks"][0]["requests"] == result["probes_sent"] > 0
    sent = backend.script.requests[0]
    assert sent["method"] == "PUT" and sent["body"] == b'{"ping": 1}' and sent["headers"]["Authorization"] == "Bearer t"
    assert sent["headers"]["Content-Type"] == "application/json"


def test_probe_without_a_body_method(servers, nginx, capsys):
    backend = tcp_server()
    backend.script.route("/health", Reply(200, {"status": "healthy"}))
    servers.append(backend)
    balancer = lb_in_front_of(servers, nginx, backend)
    through_lb(servers, nginx, capsys, balancer, window=0.3, probe_method="GET", probe_url=balancer.base_url + "/health",
               on_inconclusive="pass")
    sent = backend.script.requests[0]
    assert sent["method"] == "GET" and sent["body"] == b"" and "Content-Type" not in sent["headers"]


def test_app_metrics_names_are_options(servers, capsys):
    names = {"requests": "shop_http_requests_total", "duration": "shop_http_seconds", "build_info": "shop_build",
             "endpoint_label": "route"}
    fake = app(servers, per_scrape=[(50, 5, 0.02)], names=names)
    result = from_app(fake, capsys, app_requests_metric="shop_http_requests_total", app_duration_metric="shop_http_seconds",
                      app_build_info_metric="shop_build", app_endpoint_label="route", max_error_rate=0.2)
    assert not result.get("failed"), result
    assert [(check["requests"], check["errors"]) for check in result["checks"]] == [(50, 5)] * 6
    default_names = from_app(fake, capsys)
    assert default_names["msg"].endswith("has no rag_build_info: is it the app's metrics URL?")


# Per peer, through the module (run_metric_analysis covers the rules: test_metric_analysis_run)

FLEET = {"172.31.240.21:8002": "ragops-fleet-app1", "172.31.240.22:8002": "ragops-fleet-app2"}


def test_a_bad_app_host_fails_the_analysis_and_gives_traffic_back(nginx, capsys):
    nginx.metrics.peers = {"green": list(FLEET)}
    nginx.metrics.per_scrape = [{("green", "172.31.240.21:8002"): (100, 0, 0.01),
                                 ("green", "172.31.240.22:8002"): (100, 0, 0.01)},
                                {("green", "172.31.240.21:8002"): (200, 0, 0.01),
                                 ("green", "172.31.240.22:8002"): (40, 12, 0.01)}]
    result = analyse(capsys, source="lb_metrics", admin_socket=nginx.socket_path, peers=FLEET, abort_to="blue")
    assert result["failed"] is True and result["verdict"] == "fail" and len(result["checks"]) == 2, result
    second = result["checks"][1]
    assert (second["requests"], second["errors"]) == (240, 12)
    assert second["peers"]["172.31.240.22:8002"]["ok"] is False
    assert result["msg"].startswith("metric analysis of green via lb_metrics: fail: peer 172.31.240.22:8002 "
                                    "(ragops-fleet-app2): error rate 30.0% > 5.0% at check 2/6 (240 requests)")
    assert result["aborted"]["switched"] is True and nginx.color == "blue"
    assert nginx.metrics.scrapes == 3, "one scrape per check for the color and its peers"


def test_peers_are_ignored_with_app_metrics_with_a_warning(servers, capsys, monkeypatch):
    warnings = []
    monkeypatch.setattr(metric_analysis.AnsibleModule, "warn", lambda module, text: warnings.append(text))
    fake = app(servers, per_scrape=[(50, 0, 0.02)])
    result = from_app(fake, capsys, peers=FLEET)
    assert not result.get("failed"), result
    assert all(check["peers"] == {} for check in result["checks"])
    assert warnings == ["peers is ignored with source app_metrics: the app's own metrics are not per peer"]


@pytest.mark.parametrize("args, message", [
    ({"peers": {"172.31.240.22": "app2"}}, "peers: '172.31.240.22' is not a peer address host:port"),
    ({"app_requests_metric": "rag requests"}, "app_requests_metric is not a Prometheus metric name: 'rag requests'"),
    ({"app_endpoint_label": "9x"}, "app_endpoint_label is not a Prometheus label name: '9x'"),
    ({"color_header": "X Color"}, "color_header must be an HTTP header name, got 'X Color'"),
    ({"lb_job": ""}, "lb_job must not be empty"),
    ({"queries": [{"name": "q", "query": "up"}]}, "queries[0].max/min: at least one of max and min is required"),
])
def test_bad_new_settings_are_named(capsys, args, message):
    result = analyse(capsys, **args)
    assert result["failed"] is True and result["msg"] == "invalid parameters: " + message
    assert result["checks"] == [] and result["aborted"] is None


def test_probe_body_may_be_other_than_json_with_its_content_type(capsys, tmp_path):
    result = analyse(capsys, source="lb_metrics", admin_socket=str(tmp_path / "absent.sock"), window=0.1,
                     probe_body="a=1", probe_headers={"content-type": "application/x-www-form-urlencoded"})
    assert "invalid parameters" not in result["msg"]
