# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""run_metric_analysis driven deterministically: a clock that moves only when the analysis sleeps, fake nginx metrics
and a fake Prometheus whose numbers the test moves between checks, and a prober whose outcomes the test scripts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.ragops.platform.plugins.module_utils._prom_query import PrometheusClient
from ansible_collections.ragops.platform.plugins.module_utils._traffic_prober import no_probes
from ansible_collections.ragops.platform.plugins.modules import metric_analysis
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_nginx import FakeAdmin
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_prometheus import FakePrometheus, LBAnswers
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_time import FakeTime
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import closed_port_url


class TrafficTime(FakeTime):
    """The shared fake clock, plus ``on_sleep``: the traffic of the interval that just passed."""

    def __init__(self, on_sleep=None):
        super(TrafficTime, self).__init__(now=1000.0)
        self.on_sleep = on_sleep

    def sleep(self, seconds):
        super(TrafficTime, self).sleep(seconds)
        if self.on_sleep:
            self.on_sleep()


class FakeProber:
    """Scripted probe outcomes, one dict per probing interval (the last repeats); ``on_run`` sees each outcome, to
    count in nginx's metrics the probes nginx routed."""

    def __init__(self, fake_time, outcomes, on_run=None):
        self.time, self.outcomes, self.on_run = fake_time, list(outcomes), on_run
        self.runs = 0

    def run(self, until):
        self.time.now = until
        stats = dict(no_probes(), **self.outcomes[min(self.runs, len(self.outcomes) - 1)])
        self.runs += 1
        if self.on_run:
            self.on_run(stats)
        return stats


def params(**overrides):
    values = dict((name, spec.get("default")) for name, spec in metric_analysis.argument_spec().items())
    values.update(color="green", window=3.0, interval=1.0, request_timeout=2.0)
    values.update(overrides)
    values["queries"] = [dict({"max": None, "min": None, "must_have_data": True}, **spec) for spec in values["queries"]]
    assert metric_analysis.invalid_parameters(values) == []
    return values


@pytest.fixture
def nginx(tmp_path):
    fake = FakeAdmin(tmp_path, color="green")
    yield fake
    fake.close()


@pytest.fixture
def prometheus():
    fake = FakePrometheus(LBAnswers())
    yield fake
    fake.close()


def lb_source(values):
    sampler, warning = metric_analysis.choose_sampler(values, PrometheusClient(values["prometheus_url"], 2))
    assert sampler.name == "lb_metrics" and warning is None
    return sampler


def moving(items, move):
    """An on_sleep hook that applies ``move`` to the next item at each sleep."""
    pending = list(items)
    return lambda: move(pending.pop(0)) if pending else None


def run(values, sampler, fake_time, **kwargs):
    return metric_analysis.run_metric_analysis(values, sampler, clock=fake_time.clock, sleep=fake_time.sleep, **kwargs)


# nginx's /metrics over the admin socket (source lb_metrics)

def test_lb_metrics_judges_the_increase_of_the_color_only(nginx):
    values = params(source="lb_metrics", admin_socket=nginx.socket_path)
    nginx.metrics.add("green", 10000, 300, 0.5)  # before the analysis: not counted
    traffic = [(50, 0, 0.02), (80, 2, 0.02), (40, 1, 0.2)]

    def interval(numbers):
        nginx.metrics.add("green", *numbers)
        nginx.metrics.add("blue", 500, 500, 9.0)  # the other color's traffic never counts
        nginx.metrics.observe("none", 502, 0.0, 7)

    fake_time = TrafficTime(moving(traffic, interval))
    result = run(values, lb_source(values), fake_time)
    assert result["verdict"] == "pass" and result["source_used"] == "lb_metrics", result["msg"]
    assert [(c["requests"], c["errors"], c["p95_ms"]) for c in result["checks"]] == [
        (50, 0, 24.25), (80, 2, 24.25), (40, 1, 242.5)]
    assert [c["error_rate"] for c in result["checks"]] == [0.0, 0.025, 0.025]
    assert fake_time.sleeps == [1.0, 1.0, 1.0] and result["elapsed_ms"] == 3000.0
    assert nginx.metrics.scrapes == 4  # a baseline, then one scrape per check
    assert result["msg"] == "metric analysis of green via lb_metrics: pass: 3 of 3 checks passed, 0 failing (limit 1)"


def test_lb_metrics_5xx_share_fails_fast_with_the_numbers(nginx):
    values = params(source="lb_metrics", admin_socket=nginx.socket_path)
    fake_time = TrafficTime(moving([(50, 0, 0.01), (96, 46, 0.01)], lambda n: nginx.metrics.add("green", *n)))
    result = run(values, lb_source(values), fake_time)
    assert result["verdict"] == "fail" and len(result["checks"]) == 2 and result["failing_checks"] == 1
    assert result["msg"] == "metric analysis of green via lb_metrics: fail: error rate 47.9% > 5.0% at check 2/3 " \
                            "(96 requests)"


def test_lb_metrics_counts_4xx_as_requests_not_errors(nginx):
    values = params(source="lb_metrics", admin_socket=nginx.socket_path, window=1.0)

    def interval(dummy):
        nginx.metrics.observe("green", 404, 0.01, 30)
        nginx.metrics.observe("green", 503, 0.01, 1)
        nginx.metrics.observe("green", 200, 0.01, 9)

    result = run(values, lb_source(values), TrafficTime(moving([1], interval)))
    check = result["checks"][0]
    assert (check["requests"], check["errors"], check["ok"]) == (40, 1, True)


def test_lb_metrics_counter_reset_counts_as_a_restart(nginx):
    values = params(source="lb_metrics", admin_socket=nginx.socket_path, window=2.0)
    nginx.metrics.add("green", 5000, 0)

    def interval(numbers):
        if numbers == "reload":
            nginx.metrics.reset()  # nginx restarted: its counters start again at 0
            nginx.metrics.add("green", 30, 0, 0.01)
        else:
            nginx.metrics.add("green", *numbers)

    result = run(values, lb_source(values), TrafficTime(moving([(40, 0, 0.01), "reload"], interval)))
    assert [check["requests"] for check in result["checks"]] == [40, 30]


def test_lb_metrics_without_nginx_metrics_fails_the_check(nginx):
    nginx.metrics.available = False
    values = params(source="lb_metrics", admin_socket=nginx.socket_path)
    result = run(values, lb_source(values), TrafficTime())
    assert result["verdict"] == "fail" and len(result["checks"]) == 1
    assert result["checks"][0]["reason"] == "cannot scrape nginx /metrics on %s: HTTP 404" % nginx.socket_path


def test_lb_metrics_without_series_of_the_color_fails_the_check(nginx):
    values = params(source="lb_metrics", admin_socket=nginx.socket_path)
    nginx.metrics.render = lambda: 'ragops_lb_requests_total{color="blue",status_class="2xx"} 3\n'
    result = run(values, lb_source(values), TrafficTime())
    assert result["verdict"] == "fail"
    assert result["checks"][0]["reason"] == \
        'nginx /metrics on %s has no ragops_lb_requests_total{color="green"} series' % nginx.socket_path


def test_lb_metrics_missing_baseline_is_inconclusive_then_measures(nginx):
    values = params(source="lb_metrics", admin_socket=nginx.socket_path, window=2.0, on_inconclusive="pass")
    sampler = lb_source(values)
    nginx.metrics.available = False

    def interval(numbers):
        nginx.metrics.available = True
        nginx.metrics.add("green", *numbers)

    result = run(values, sampler, TrafficTime(moving([(50, 0, 0.01), (60, 0, 0.01)], interval)))
    first, second = result["checks"]
    assert first["ok"] is None and first["reason"].startswith("baseline scrape of nginx /metrics on ")
    assert (second["requests"], second["ok"]) == (60, True) and result["verdict"] == "pass"


# Prometheus (source prometheus)

def test_prometheus_numbers_of_each_check(prometheus):
    values = params(source="prometheus", prometheus_url=prometheus.url)
    sampler, warning = metric_analysis.choose_sampler(values, PrometheusClient(prometheus.url, 2))
    assert sampler.name == "prometheus" and warning is None
    per_check = [(50, 0, 0.02), (60, 10, 0.02)]
    fake_time = TrafficTime(moving(per_check, lambda numbers: prometheus.answer.traffic.update(green=numbers)))
    result = run(values, sampler, fake_time)
    assert result["verdict"] == "fail" and result["source_used"] == "prometheus"
    assert [(c["requests"], c["errors"], c["p95_ms"]) for c in result["checks"]] == [(50, 0, 20.0), (60, 10, 20.0)]
    assert result["msg"].endswith("error rate 16.7% > 5.0% at check 2/3 (60 requests)")


def test_prometheus_extrapolation_never_gives_an_error_rate_above_one(prometheus):
    # increase() of the 5xx series and of all series extrapolate apart: 103 errors of 100 requests happens.
    values = params(source="prometheus", prometheus_url=prometheus.url, window=1.0)
    sampler, _warning = metric_analysis.choose_sampler(values, PrometheusClient(prometheus.url, 2))
    fake_time = TrafficTime(moving([(100, 103, 0.02)], lambda numbers: prometheus.answer.traffic.update(green=numbers)))
    result = run(values, sampler, fake_time)
    assert result["verdict"] == "fail"
    assert [(c["requests"], c["errors"], c["error_rate"]) for c in result["checks"]] == [(100, 100, 1.0)]


# Which source (source auto)

def test_auto_prefers_prometheus_when_it_scrapes_nginx(prometheus, nginx):
    values = params(prometheus_url=prometheus.url, admin_socket=nginx.socket_path)
    sampler, warning = metric_analysis.choose_sampler(values, PrometheusClient(prometheus.url, 2))
    assert sampler.name == "prometheus" and warning is None and nginx.metrics.scrapes == 0
    assert prometheus.queries == ['up{job="ragops-lb"} == 1']


@pytest.mark.parametrize("up, why", [
    (None, 'does not scrape nginx: up{job="ragops-lb"} == 1 is empty'),
    (0, 'does not scrape nginx: up{job="ragops-lb"} == 1 is empty'),
])
def test_auto_uses_nginx_metrics_when_prometheus_does_not_scrape_nginx(prometheus, nginx, up, why):
    prometheus.answer.up = up
    values = params(prometheus_url=prometheus.url, admin_socket=nginx.socket_path)
    sampler, warning = metric_analysis.choose_sampler(values, PrometheusClient(prometheus.url, 2))
    assert sampler.name == "lb_metrics" and nginx.metrics.scrapes == 1
    assert warning == "Prometheus at %s %s; analysing green from nginx /metrics on %s instead" % (
        prometheus.url, why, nginx.socket_path)


def test_auto_checks_the_job_option(prometheus, nginx):
    prometheus.answer.job = "other"
    values = params(prometheus_url=prometheus.url, admin_socket=nginx.socket_path)
    sampler, dummy = metric_analysis.choose_sampler(values, PrometheusClient(prometheus.url, 2))
    assert sampler.name == "lb_metrics"
    values = params(prometheus_url=prometheus.url, admin_socket=nginx.socket_path, lb_job="other")
    sampler, dummy = metric_analysis.choose_sampler(values, PrometheusClient(prometheus.url, 2))
    assert sampler.name == "prometheus"


def test_auto_without_prometheus_nor_nginx_metrics_has_no_source(nginx):
    nginx.metrics.available = False
    url = closed_port_url("")
    values = params(prometheus_url=url, admin_socket=nginx.socket_path)
    with pytest.raises(metric_analysis.NoSource) as caught:
        metric_analysis.choose_sampler(values, PrometheusClient(url, 2))
    assert str(caught.value).startswith("no metrics source for green: Prometheus at %s is unreachable" % url)
    assert str(caught.value).endswith(", and cannot scrape nginx /metrics on %s: HTTP 404" % nginx.socket_path)


def test_prometheus_that_does_not_scrape_nginx_yet_is_used_with_a_warning(prometheus):
    prometheus.answer.up = None
    values = params(source="prometheus", prometheus_url=prometheus.url)
    sampler, warning = metric_analysis.choose_sampler(values, PrometheusClient(prometheus.url, 2))
    assert sampler.name == "prometheus" and warning.endswith("; the first checks may be inconclusive")


# Extra queries

def query_params(prometheus, nginx, queries, **overrides):
    values = params(source="lb_metrics", admin_socket=nginx.socket_path, prometheus_url=prometheus.url,
                    queries=queries, **overrides)
    client = PrometheusClient(values["prometheus_url"], 2)
    return values, lb_source(values), metric_analysis.make_queries(values, client)


def busy(nginx):
    return lambda: nginx.metrics.add("green", 50, 0, 0.01)


def test_query_above_max_fails_the_check_with_its_value(prometheus, nginx):
    template = 'max(app_queue_depth{color="${color}",version="${version}"})'
    sent = 'max(app_queue_depth{color="green",version="1.1.0"})'
    answers = [[({}, 3)], [({"color": "green"}, 12.5)]]
    prometheus.answer.extra[sent] = lambda: answers.pop(0) if len(answers) > 1 else answers[0]
    values, sampler, queries = query_params(prometheus, nginx, [{"name": "queue", "query": template, "max": 10}],
                                            version="1.1.0")
    result = run(values, sampler, TrafficTime(busy(nginx)), queries=queries)
    assert result["verdict"] == "fail" and len(result["checks"]) == 2
    first, second = result["checks"]
    assert first["ok"] is True and first["queries"] == [
        {"name": "queue", "query": sent, "value": 3.0, "ok": True, "reason": "query queue = 3 <= max 10"}]
    assert first["reason"] == "error rate 0.0% <= 5.0%, p95 latency 9.8 ms <= 1000 ms; query queue = 3 <= max 10"
    assert second["ok"] is False and second["queries"][0]["value"] == 12.5
    assert second["reason"] == "query queue = 12.5 > max 10"
    assert result["msg"].endswith("fail: query queue = 12.5 > max 10 at check 2/3 (50 requests)")
    assert prometheus.queries.count(sent) == 2


def test_query_below_min_fails_even_an_inconclusive_check(prometheus, nginx):
    prometheus.answer.extra["sum(up)"] = [({}, 1)]
    values, sampler, queries = query_params(prometheus, nginx, [{"name": "replicas", "query": "sum(up)", "min": 2,
                                                                 "max": 5}])
    result = run(values, sampler, TrafficTime(), queries=queries)
    check = result["checks"][0]
    assert check["ok"] is False and check["reason"] == "query replicas = 1 < min 2; 0 requests < min_samples 20"


def test_query_within_both_bounds(prometheus, nginx):
    prometheus.answer.extra["scalar(1.5)"] = [({}, 1.5)]
    values, sampler, queries = query_params(prometheus, nginx, [{"name": "q", "query": "scalar(1.5)", "min": 1,
                                                                 "max": 2}], window=1.0)
    result = run(values, sampler, TrafficTime(busy(nginx)), queries=queries)
    assert result["verdict"] == "pass"
    assert result["checks"][0]["queries"][0]["reason"] == "query q = 1.5 >= min 1 and <= max 2"


def test_query_without_data_fails_when_it_must_have_data(prometheus, nginx):
    values, sampler, queries = query_params(prometheus, nginx, [{"name": "absent", "query": "absent_metric",
                                                                 "max": 1}])
    result = run(values, sampler, TrafficTime(busy(nginx)), queries=queries)
    assert result["verdict"] == "fail" and result["checks"][0]["reason"] == "query absent: no data"
    assert result["checks"][0]["queries"][0]["value"] is None


def test_query_without_data_is_noted_when_it_need_not_have_data(prometheus, nginx):
    prometheus.answer.extra["nan_metric"] = [({}, float("nan"))]
    specs = [{"name": "absent", "query": "absent_metric", "max": 1, "must_have_data": False},
             {"name": "nan", "query": "nan_metric", "min": 0, "must_have_data": False}]
    values, sampler, queries = query_params(prometheus, nginx, specs)
    result = run(values, sampler, TrafficTime(busy(nginx)), queries=queries)
    assert result["verdict"] == "pass" and len(result["checks"]) == 3
    check = result["checks"][0]
    assert [entry["ok"] for entry in check["queries"]] == [None, None]
    assert check["reason"].endswith("; query absent: no data (ignored, must_have_data is false)"
                                    "; query nan: no data (ignored, must_have_data is false)")


@pytest.mark.parametrize("must_have_data", [True, False])
def test_query_of_several_series_fails_even_without_data_required(prometheus, nginx, must_have_data):
    prometheus.answer.extra["up"] = [({"job": "a"}, 1), ({"job": "b"}, 1)]
    values, sampler, queries = query_params(prometheus, nginx, [{"name": "ups", "query": "up", "min": 1,
                                                                 "must_have_data": must_have_data}])
    result = run(values, sampler, TrafficTime(busy(nginx)), queries=queries)
    assert result["verdict"] == "fail"
    assert result["checks"][0]["reason"] == "query ups: 'up' answered 2 series, not one: aggregate it (sum, max, ...)"


def test_query_refused_by_prometheus_fails_even_without_data_required(prometheus, nginx):
    prometheus.answer.extra["sum(up"] = (400, {"status": "error", "errorType": "bad_data", "error": "unclosed"})
    values, sampler, queries = query_params(prometheus, nginx, [{"name": "typo", "query": "sum(up", "max": 1,
                                                                 "must_have_data": False}])
    result = run(values, sampler, TrafficTime(busy(nginx)), queries=queries)
    assert result["verdict"] == "fail"
    assert result["checks"][0]["reason"] == "query typo: Prometheus at %s rejected 'sum(up': unclosed" % prometheus.url


@pytest.mark.parametrize("must_have_data, verdict", [(True, "fail"), (False, "pass")])
def test_queries_without_prometheus_with_nginx_metrics(nginx, must_have_data, verdict):
    url = closed_port_url("")
    values = params(source="lb_metrics", admin_socket=nginx.socket_path, prometheus_url=url, window=1.0,
                    queries=[{"name": "q", "query": "vector(1)", "max": 2, "must_have_data": must_have_data}])
    queries = metric_analysis.make_queries(values, PrometheusClient(url, 2))
    result = run(values, lb_source(values), TrafficTime(busy(nginx)), queries=queries)
    assert result["verdict"] == verdict
    entry = result["checks"][0]["queries"][0]
    assert entry["value"] is None and entry["reason"].startswith("query q: Prometheus at %s is unreachable" % url)


@pytest.mark.parametrize("query, problem", [
    ({"name": "q", "query": "up"}, "queries[1].max/min: at least one of max and min is required"),
    ({"name": "q", "query": "up", "min": 3, "max": 1}, "queries[1].min (3) must not exceed queries[1].max (1)"),
    ({"name": "first", "query": "up", "max": 1}, "queries[1].name 'first' is used by an earlier query"),
    ({"name": "q", "query": "x{a=\"${colour}\"}", "max": 1},
     "queries[1].query: unknown placeholder ${colour} (known: ${color}, ${version})"),
    ({"name": "q", "query": "x{v=\"${version}\"}", "max": 1}, "queries[1].query uses ${version}, but version is not set"),
    ({"name": "q", "query": " ", "max": 1}, "queries[1].query must not be empty"),
])
def test_bad_queries_are_named(query, problem):
    values = params()
    values["queries"] = [dict(name="first", query="up", max=1.0, min=None, must_have_data=True),
                         dict({"max": None, "min": None, "must_have_data": True}, **query)]
    assert metric_analysis.invalid_parameters(values) == [problem]


# Probes and what the source already counted

def test_probes_nginx_routed_are_not_counted_twice(nginx):
    values = params(source="lb_metrics", admin_socket=nginx.socket_path, window=2.0)
    fake_time = TrafficTime()

    def nginx_counts(stats):
        nginx.metrics.add("green", stats["answered"], stats["answered_errors"], 0.01)
        nginx.metrics.observe("none", 502, 0.0, stats["unanswered_errors"])
        nginx.metrics.add("blue", stats["others"], 0, 0.01)

    prober = FakeProber(fake_time, [{"sent": 45, "failures": 1, "answered": 30, "unanswered_errors": 1,
                                     "others": 14, "last_error": "connection failed: refused"}], on_run=nginx_counts)
    result = run(values, lb_source(values), fake_time, prober=prober)
    check = result["checks"][0]
    assert (check["requests"], check["errors"], check["judged_on"]) == (31, 1, "metrics")
    assert check["probes_sent"] == 45 and check["probe_failures"] == 1 and check["ok"] is True
    assert prober.runs == 2, "31 requests were all probes: fewer than min_samples real ones, so it probes on"
    assert result["probes_sent"] == 90 and result["verdict"] == "pass"


def test_probes_nginx_refused_itself_are_not_errors_of_the_color(nginx):
    # 429s of the rate limit name no color: a probe set too fast must not fail a good release.
    values = params(source="lb_metrics", admin_socket=nginx.socket_path, window=1.0)
    fake_time = TrafficTime()
    prober = FakeProber(fake_time, [{"sent": 40, "failures": 10, "answered": 30, "others": 10,
                                     "last_error": "HTTP 429"}],
                        on_run=lambda stats: nginx.metrics.add("green", stats["answered"], 0, 0.01))
    result = run(values, lb_source(values), fake_time, prober=prober)
    check = result["checks"][0]
    assert (check["requests"], check["errors"], check["ok"], check["probe_failures"]) == (30, 0, True, 10)


def test_probing_stops_once_real_traffic_is_enough(nginx):
    values = params(source="lb_metrics", admin_socket=nginx.socket_path)
    fake_time = TrafficTime(busy(nginx))
    prober = FakeProber(fake_time, [{"sent": 10, "answered": 10}],
                        on_run=lambda stats: nginx.metrics.add("green", 60, 0, 0.01))
    result = run(values, lb_source(values), fake_time, prober=prober)
    assert [check["probes_sent"] for check in result["checks"]] == [10, 0, 0] and prober.runs == 1


def test_failing_probes_are_judged_while_the_source_lags(prometheus):
    values = params(source="prometheus", prometheus_url=prometheus.url)
    prometheus.answer.traffic["green"] = (0, 0, float("nan"))
    sampler, dummy = metric_analysis.choose_sampler(values, PrometheusClient(prometheus.url, 2))
    fake_time = TrafficTime()
    prober = FakeProber(fake_time, [{"sent": 40, "failures": 36, "answered": 30, "answered_errors": 26,
                                     "unanswered_errors": 10, "last_error": "HTTP 500"}])
    result = run(values, sampler, fake_time, prober=prober)
    check = result["checks"][0]
    assert (check["requests"], check["errors"], check["judged_on"], check["ok"]) == (40, 36, "probes", False)
    assert check["reason"] == "error rate 90.0% > 5.0%; last probe failure: HTTP 500"


# Giving traffic back

def test_a_failing_verdict_calls_abort_at_once(nginx):
    values = params(source="lb_metrics", admin_socket=nginx.socket_path, abort_to="blue")
    scrapes_at_abort = []

    def abort():
        scrapes_at_abort.append(nginx.metrics.scrapes)
        return metric_analysis.abort_switch(values)

    fake_time = TrafficTime(lambda: nginx.metrics.add("green", 100, 50, 0.01))
    result = run(values, lb_source(values), fake_time, abort=abort)
    assert scrapes_at_abort == [2], "the baseline and the failing check, nothing after"
    assert result["verdict"] == "fail" and len(result["checks"]) == 1
    assert result["aborted"]["switched"] is True and nginx.color == "blue"
    assert nginx.puts == [{"body": "blue", "expect": "green"}]
    assert result["msg"].endswith("error rate 50.0% > 5.0% at check 1/3 (100 requests); traffic given back to blue")


@pytest.mark.parametrize("on_inconclusive, aborted", [("fail", True), ("pass", False)])
def test_an_inconclusive_verdict_aborts_only_when_it_fails(nginx, on_inconclusive, aborted):
    values = params(source="lb_metrics", admin_socket=nginx.socket_path, on_inconclusive=on_inconclusive)
    calls = []
    result = run(values, lb_source(values), TrafficTime(), abort=lambda: calls.append(1) or {
        "color": "blue", "switched": True, "switched_at": 1.0, "switch_ms": 1.0, "error": None})
    assert result["verdict"] == "inconclusive" and bool(calls) is aborted
    assert (result["aborted"] is not None) is aborted


def test_a_passing_verdict_never_aborts(nginx):
    values = params(source="lb_metrics", admin_socket=nginx.socket_path, abort_to="blue")
    result = run(values, lb_source(values), TrafficTime(busy(nginx)), abort=lambda: pytest.fail("aborted"))
    assert result["verdict"] == "pass" and result["aborted"] is None and nginx.puts == []


# Per peer (peers): each app host of the color judged on its own

APP1, APP2, APP3 = "172.31.240.21:8002", "172.31.240.22:8002", "172.31.240.23:8002"
FLEET = {APP1: "ragops-fleet-app1", APP2: "ragops-fleet-app2", APP3: "ragops-fleet-app3"}


def fleet_params(nginx, peers=None, **overrides):
    nginx.metrics.peers = {"green": list(FLEET), "blue": ["172.31.240.21:8001"]}
    return params(source="lb_metrics", admin_socket=nginx.socket_path, peers=dict(peers or FLEET), **overrides)


def fleet_run(values, fake_time, **kwargs):
    """run_metric_analysis with the sampler and the per-peer sampler the module would choose."""
    client = PrometheusClient(values["prometheus_url"], 2)
    sampler, dummy = metric_analysis.choose_sampler(values, client)
    peers = metric_analysis.make_peer_sampler(values, sampler, client)
    return run(values, sampler, fake_time, peers=peers, **kwargs)


def per_peer(nginx, traffic):
    """An on_sleep move: {peer: (requests, errors, latency)} of green in the interval, plus blue's own traffic."""
    def move(numbers):
        for peer, (requests, errors, latency) in sorted(numbers.items()):
            nginx.metrics.add("green", requests, errors, latency, peer=peer)
        nginx.metrics.add("blue", 300, 300, 9.0, peer="172.31.240.21:8001")  # the other color never counts
    return moving(traffic, move)


def test_one_bad_peer_fails_the_check_while_the_fleet_passes(nginx):
    values = fleet_params(nginx)
    good = {APP1: (100, 0, 0.02), APP2: (100, 0, 0.02), APP3: (100, 1, 0.02)}
    bad = {APP1: (100, 0, 0.02), APP2: (40, 12, 0.02), APP3: (100, 0, 0.02)}  # 12 of 240: 5.0% fleet-wide
    result = fleet_run(values, TrafficTime(per_peer(nginx, [good, bad])))
    assert result["verdict"] == "fail" and len(result["checks"]) == 2 and result["failing_checks"] == 1
    first, second = result["checks"]
    assert first["ok"] is True
    assert first["reason"] == "error rate 0.3% <= 5.0%, p95 latency 24.2 ms <= 1000 ms; 3 of 3 peers passed, 0 not judged"
    assert (second["requests"], second["errors"], second["error_rate"]) == (240, 12, 0.05), "fleet-wide within bounds"
    assert second["ok"] is False
    assert second["reason"] == "peer 172.31.240.22:8002 (ragops-fleet-app2): error rate 30.0% > 5.0%"
    assert second["peers"][APP2] == {"name": "ragops-fleet-app2", "requests": 40, "errors": 12, "error_rate": 0.3,
                                     "p95_ms": 24.25, "ok": False, "reason": "error rate 30.0% > 5.0%"}
    assert second["peers"][APP1]["ok"] is True and second["peers"][APP1]["requests"] == 100
    assert sorted(second["peers"]) == sorted(FLEET)
    assert result["msg"] == "metric analysis of green via lb_metrics: fail: peer 172.31.240.22:8002 " \
                            "(ragops-fleet-app2): error rate 30.0% > 5.0% at check 2/3 (240 requests)"
    assert nginx.metrics.scrapes == 3, "one scrape per check for the color and all its peers"


def test_a_peer_below_min_samples_is_not_judged(nginx):
    values = fleet_params(nginx, window=1.0)
    traffic = {APP1: (100, 0, 0.02), APP2: (100, 0, 0.02), APP3: (10, 5, 3.0)}  # APP3: half errors, slow, but 10
    result = fleet_run(values, TrafficTime(per_peer(nginx, [traffic])))
    assert result["verdict"] == "pass", result["msg"]
    check = result["checks"][0]
    assert check["ok"] is True and check["reason"].endswith("; 2 of 3 peers passed, 1 not judged")
    assert check["peers"][APP3] == {"name": "ragops-fleet-app3", "requests": 10, "errors": 5, "error_rate": 0.5,
                                    "p95_ms": 4875.0, "ok": None, "reason": "10 requests < min_samples 20"}


def test_a_slow_peer_fails_on_its_p95_and_a_failing_fleet_names_both(nginx):
    values = fleet_params(nginx)
    traffic = {APP1: (100, 20, 0.02), APP2: (100, 0, 0.02), APP3: (50, 0, 3.0)}
    result = fleet_run(values, TrafficTime(per_peer(nginx, [traffic])))
    check = result["checks"][0]
    assert check["ok"] is False and check["reason"] == (
        "error rate 8.0% > 5.0%; p95 latency 4375 ms > 1000 ms; "
        "peer 172.31.240.21:8002 (ragops-fleet-app1): error rate 20.0% > 5.0%; "
        "peer 172.31.240.23:8002 (ragops-fleet-app3): p95 latency 4875 ms > 1000 ms")


def test_a_peer_without_data_is_not_judged(nginx):
    values = fleet_params(nginx, peers=dict(FLEET, **{"172.31.240.99:8002": "ragops-fleet-app9"}), window=1.0)
    result = fleet_run(values, TrafficTime(per_peer(nginx, [{APP1: (100, 0, 0.02)}])))
    check = result["checks"][0]
    assert check["ok"] is True and check["peers"]["172.31.240.99:8002"] == {
        "name": "ragops-fleet-app9", "requests": 0, "errors": 0, "error_rate": None, "p95_ms": None, "ok": None,
        "reason": "no data for this peer"}
    assert check["reason"].endswith("; 1 of 4 peers passed, 3 not judged")


def test_many_failing_peers_are_counted_after_the_first_five(nginx):
    fleet = dict(("172.31.240.%d:8002" % n, "app%d" % n) for n in range(1, 9))
    nginx.metrics.peers = {"green": list(fleet)}
    values = params(source="lb_metrics", admin_socket=nginx.socket_path, peers=fleet, window=1.0)
    result = fleet_run(values, TrafficTime(per_peer(nginx, [dict((peer, (30, 30, 0.01)) for peer in fleet)])))
    reason = result["checks"][0]["reason"]
    assert reason.startswith("error rate 100.0% > 5.0%; peer 172.31.240.1:8002 (app1): error rate 100.0% > 5.0%; ")
    assert reason.count("peer 172.") == 5 and reason.endswith("; and 3 more failing peers")
    assert [entry["ok"] for entry in result["checks"][0]["peers"].values()] == [False] * 8


def test_peers_not_measured_make_a_passing_check_inconclusive(nginx):
    values = fleet_params(nginx, window=1.0, on_inconclusive="pass")

    class Broken(object):
        def __init__(self, failing):
            self.failing = failing

        def start(self):
            return None

        def measure(self):
            raise metric_analysis.MeasureError("peers: boom", failing=self.failing)

    for failing, ok in ((False, None), (True, False)):
        nginx.metrics.add("green", 100, 0, 0.02)
        result = run(values, lb_source(values), TrafficTime(busy(nginx)), peers=Broken(failing))
        check = result["checks"][0]
        assert check["ok"] is ok and check["reason"].endswith("; peers not measured: peers: boom")
        assert set(entry["reason"] for entry in check["peers"].values()) == {"not measured: peers: boom"}
        assert all(entry["ok"] is None for entry in check["peers"].values())


def test_a_missing_baseline_is_named_once_for_the_color_and_its_peers(nginx):
    values = fleet_params(nginx, window=2.0, on_inconclusive="pass")
    client = PrometheusClient(values["prometheus_url"], 2)
    sampler = lb_source(values)
    peers = metric_analysis.make_peer_sampler(values, sampler, client)
    nginx.metrics.available = False

    def interval(numbers):
        nginx.metrics.available = True
        for peer, (requests, errors, latency) in numbers.items():
            nginx.metrics.add("green", requests, errors, latency, peer=peer)

    traffic = [{APP1: (50, 0, 0.01)}, {APP1: (60, 30, 0.01)}]
    result = run(values, sampler, TrafficTime(moving(traffic, interval)), peers=peers)
    first, second = result["checks"]
    assert first["ok"] is None and first["reason"] == \
        "baseline scrape of nginx /metrics on %s missing; measuring from the next check" % nginx.socket_path
    assert first["peers"][APP1]["reason"].startswith("not measured: baseline scrape of nginx /metrics on ")
    assert second["ok"] is False and second["reason"].startswith("error rate 50.0% > 5.0%; peer 172.31.240.21:8002")


def test_prometheus_judges_each_peer_with_one_query_per_number(prometheus):
    values = params(source="prometheus", prometheus_url=prometheus.url, peers=dict(FLEET))
    client = PrometheusClient(prometheus.url, 2)
    sampler, dummy = metric_analysis.choose_sampler(values, client)
    peers = metric_analysis.make_peer_sampler(values, sampler, client)
    prometheus.answer.traffic["green"] = (300.0, 9.0, 0.05)
    per_check = [{APP1: (100.0, 0.0, 0.05), APP2: (100.0, 0.0, 0.05), APP3: (100.0, 0.0, 0.05)},
                 {APP1: (100.0, 0.0, 0.05), APP2: (100.0, 0.0, 0.05), APP3: (100.0, 9.0, 0.05)}]
    fake_time = TrafficTime(moving(per_check, lambda numbers: prometheus.answer.peer_traffic.update(green=numbers)))
    result = run(values, sampler, fake_time, peers=peers)
    assert result["verdict"] == "fail" and len(result["checks"]) == 2
    first, second = result["checks"]
    assert first["ok"] is True and first["reason"].endswith("; 3 of 3 peers passed, 0 not judged")
    assert second["peers"][APP3]["ok"] is False and second["peers"][APP3]["error_rate"] == 0.09
    assert second["reason"] == "peer 172.31.240.23:8002 (ragops-fleet-app3): error rate 9.0% > 5.0%"
    peer_queries = [query for query in prometheus.queries if "ragops_lb_peer_" in query]
    assert len(peer_queries) == 6, "one query per number for the three peers, at each of the two checks"
    assert all("sum by (peer" in query and 'color="green"' in query for query in peer_queries)


def test_peers_are_ignored_with_the_app_metrics_source(nginx):
    values = params(source="app_metrics", app_metrics_url="http://127.0.0.1:9/metrics", peers=dict(FLEET))
    sampler, dummy = metric_analysis.choose_sampler(values, PrometheusClient(values["prometheus_url"], 2))
    assert metric_analysis.make_peer_sampler(values, sampler, None) is None


def test_without_peers_checks_have_no_peer_entries(nginx):
    values = params(source="lb_metrics", admin_socket=nginx.socket_path, window=1.0)
    sampler = lb_source(values)
    assert metric_analysis.make_peer_sampler(values, sampler, None) is None
    result = run(values, sampler, TrafficTime(busy(nginx)))
    assert result["checks"][0]["peers"] == {} and "peers" not in result["checks"][0]["reason"]


@pytest.mark.parametrize("peers, problems", [
    ({"172.31.240.22": "app2"}, ["peers: '172.31.240.22' is not a peer address host:port"]),
    ({"172.31.240.22:99999": "app2"}, ["peers: '172.31.240.22:99999' is not a peer address host:port"]),
    ({"app 2:8002": "app2"}, ["peers: 'app 2:8002' is not a peer address host:port"]),
    ({"172.31.240.22:8002": 2}, ["peers['172.31.240.22:8002'] must be a name (a non-empty string), got 2"]),
    ({"172.31.240.22:8002": " "}, ["peers['172.31.240.22:8002'] must be a name (a non-empty string), got ' '"]),
    ({"[::1]:8002": None}, ["peers: '[::1]:8002' is not a peer address host:port",
                            "peers['[::1]:8002'] must be a name (a non-empty string), got None"]),
])
def test_bad_peers_are_named(peers, problems):
    values = params()
    values["peers"] = peers
    assert metric_analysis.invalid_parameters(values) == problems


def test_good_peers_are_accepted():
    params(peers={"172.31.240.22:8002": "ragops-fleet-app2", "app-3.internal:1": "app3"})
