# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

import pytest

from ansible_collections.ragops.platform.plugins.module_utils._metric_sources import (
    LB_TRAFFIC,
    BuildInfo,
    IdentityError,
    MeasureError,
    QuerySampler,
    ScrapeSampler,
    app_traffic,
    lb_prometheus_sampler,
    lb_scrape_sampler,
)
from ansible_collections.ragops.platform.plugins.module_utils._prom_query import PrometheusClient
from ansible_collections.ragops.platform.plugins.module_utils._prom_text import parse
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_nginx import FakeAdmin, LBMetrics
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_prometheus import FakePrometheus, LBAnswers


def scripted(metrics):
    """A ScrapeSampler of the green color over an LBMetrics, without a server."""
    return ScrapeSampler("lb_metrics", metrics.scrape, "nginx", LB_TRAFFIC, {"color": "green"}, require_series=True)


def test_increase_error_share_and_p95_of_the_color():
    metrics = LBMetrics(per_scrape=[{"green": (100, 7, 0.3), "blue": (50, 50, 0.001)}])
    sampler = scripted(metrics)
    sampler.start()
    total, errors, p95 = sampler.measure()
    assert (total, errors) == (100, 7)
    assert p95 == pytest.approx(0.25 + 0.25 * 0.95)  # all in the (0.25, 0.5] bucket


def test_no_traffic_has_no_p95():
    sampler = scripted(LBMetrics())
    sampler.start()
    total, errors, p95 = sampler.measure()
    assert (total, errors) == (0, 0) and math.isnan(p95)


def test_missing_series_fail():
    sampler = ScrapeSampler("lb_metrics", lambda: "other_metric 1\n", "nginx", LB_TRAFFIC, {"color": "green"},
                            require_series=True)
    with pytest.raises(MeasureError, match=r'nginx has no ragops_lb_requests_total\{color="green"\} series') as caught:
        sampler.check()
    assert caught.value.failing is True


def test_unparsable_text_fails():
    sampler = ScrapeSampler("x", lambda: "not a { metric\n", "there", LB_TRAFFIC, {})
    with pytest.raises(MeasureError, match="cannot parse there: line 1") as caught:
        sampler.check()
    assert caught.value.failing is True


def test_scrape_over_the_admin_socket(tmp_path):
    admin = FakeAdmin(tmp_path)
    try:
        admin.metrics.per_scrape = [{"green": (3, 1, 0.01)}]
        sampler = lb_scrape_sampler(admin.socket_path, "green", 2)
        sampler.start()
        assert sampler.measure()[:2] == (3, 1)
        assert sampler.where == "nginx /metrics on %s" % admin.socket_path
    finally:
        admin.close()


APP_TEXT = '''
rag_requests_total{endpoint="/api/query",status="200"} 5
rag_build_info{color="green",version="1.1.0"} 1
'''


def test_build_info_names_the_color_and_version():
    samples = parse(APP_TEXT)
    BuildInfo("rag_build_info", "green", "1.1.0").check(samples, "url")
    BuildInfo("rag_build_info", "green", None).check(samples, "url")
    with pytest.raises(IdentityError, match="url is served by color green version 1.1.0, not blue"):
        BuildInfo("rag_build_info", "blue", None).check(samples, "url")
    with pytest.raises(IdentityError, match="url has no app_info"):
        BuildInfo("app_info", "green", None).check(samples, "url")


def test_app_traffic_errors_are_5xx_status_codes():
    later = APP_TEXT + "\n".join([
        'rag_requests_total{endpoint="/api/query",status="404"} 3',
        'rag_requests_total{endpoint="/api/query",status="502"} 2',
        'rag_requests_total{endpoint="/health",status="500"} 9',
    ])
    texts = [APP_TEXT, later]
    sampler = ScrapeSampler("app_metrics", lambda: texts.pop(0), "url", app_traffic("rag_requests_total", "d"),
                            {"endpoint": "/api/query"}, identity=BuildInfo("rag_build_info", "green", None))
    sampler.start()
    assert sampler.measure()[:2] == (5, 2)


@pytest.fixture
def prometheus():
    fake = FakePrometheus(LBAnswers())
    yield fake
    fake.close()


def test_prometheus_queries_of_nginx_metrics(prometheus):
    prometheus.answer.traffic["green"] = (120.0, 6.0, 0.05)
    sampler = lb_prometheus_sampler(PrometheusClient(prometheus.url, 2), "ragops-lb", "green", 10)
    assert sampler.measure() == (120.0, 6.0, 0.05)
    assert prometheus.queries == [
        'sum(increase(ragops_lb_requests_total{color="green",job="ragops-lb"}[10000ms]))',
        'sum(increase(ragops_lb_requests_total{color="green",job="ragops-lb",status_class=~"5xx"}[10000ms]))',
        'histogram_quantile(0.95, sum by (le) (increase(ragops_lb_request_duration_seconds_bucket'
        '{color="green",job="ragops-lb"}[10000ms])))',
    ]


def test_prometheus_without_data_is_zero_requests(prometheus):
    total, errors, p95 = lb_prometheus_sampler(PrometheusClient(prometheus.url, 2), "ragops-lb", "blue", 10).measure()
    assert (total, errors) == (0.0, 0.0) and math.isnan(p95)


def test_query_sampler_substitutes_and_reports_errors(prometheus):
    prometheus.answer.extra['max(x{color="green",version="2"})'] = [({}, 4)]
    prometheus.answer.extra["bad("] = (400, {"status": "error", "error": "parse error"})
    sampler = QuerySampler(PrometheusClient(prometheus.url, 2), [
        {"name": "x", "query": 'max(x{color="${color}",version="${version}"})'},
        {"name": "empty", "query": "nothing"},
        {"name": "bad", "query": "bad("},
    ], {"color": "green", "version": "2"})
    prometheus.answer.extra["busy"] = (503, {"status": "error", "error": "query timed out"})
    sampler.specs.append({"name": "busy", "query": "busy"})
    answers = sampler.evaluate()
    assert [(spec["name"], value, broken) for spec, value, dummy, broken in answers] == [
        ("x", 4.0, False), ("empty", None, False), ("bad", None, True), ("busy", None, False)]
    assert answers[0][0]["query"] == 'max(x{color="green",version="2"})'
    assert answers[1][2] is None and "parse error" in answers[2][2] and "query timed out" in answers[3][2]
