# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

import pytest

from ansible_collections.ragops.platform.plugins.module_utils import _prom_text
from ansible_collections.ragops.platform.plugins.module_utils._metric_sources import (
    LB_TRAFFIC,
    BuildInfo,
    IdentityError,
    MeasureError,
    QuerySampler,
    ScrapeSampler,
    app_traffic,
    lb_peer_prometheus_sampler,
    lb_peer_scrape_sampler,
    lb_prometheus_sampler,
    lb_scrape_sampler,
)
from ansible_collections.ragops.platform.plugins.module_utils._prom_query import PrometheusClient
from ansible_collections.ragops.platform.plugins.module_utils._prom_text import parse
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import closed_port_url
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


# Per peer: nginx's ragops_lb_peer_* series

A, B, C = "172.31.240.21:8002", "172.31.240.22:8002", "172.31.240.23:8002"


def peer_samplers(metrics, peers=(A, B, C)):
    """The green fleet-wide ScrapeSampler over an LBMetrics and the per-peer sampler reading its scrapes, started."""
    fleet = scripted(metrics)
    per_peer = lb_peer_scrape_sampler(fleet, "green", peers)
    fleet.start()
    per_peer.start()
    return fleet, per_peer


def test_one_scrape_per_check_measures_the_color_and_every_peer():
    metrics = LBMetrics(peers={"green": [A, B, C], "blue": [A]}, per_scrape=[{
        ("green", A): (100, 1, 0.02), ("green", B): (40, 12, 0.3), ("blue", A): (70, 70, 9.0)}])
    fleet, per_peer = peer_samplers(metrics)
    assert fleet.measure()[:2] == (140, 13)
    numbers = per_peer.measure()
    assert metrics.scrapes == 2, "a baseline and the check's scrape, shared by the peers"
    assert sorted(numbers) == [A, B, C]
    assert numbers[A][:2] == (100, 1) and numbers[A][2] == pytest.approx(0.01 + 0.015 * 0.95)
    assert numbers[B][:2] == (40, 12) and numbers[B][2] == pytest.approx(0.25 + 0.25 * 0.95)
    assert numbers[C][:2] == (0, 0) and math.isnan(numbers[C][2]), "a configured peer without traffic is at 0"


def test_a_peer_counter_reset_counts_everything_since():
    metrics = LBMetrics(peers={"green": [A, B]})
    metrics.add("green", 500, 5, 0.02, peer=A)
    metrics.add("green", 300, 0, 0.02, peer=B)
    fleet, per_peer = peer_samplers(metrics, peers=(A, B))
    metrics.reset()  # nginx restarted: every counter starts again at 0
    metrics.add("green", 30, 3, 0.02, peer=A)
    fleet.measure()
    numbers = per_peer.measure()
    assert numbers[A][:2] == (30, 3) and numbers[A][2] == pytest.approx(0.01 + 0.015 * 0.95)
    assert numbers[B][:2] == (0, 0)
    metrics.add("green", 10, 0, 0.02, peer=A)
    fleet.measure()
    assert per_peer.measure()[A][:2] == (10, 0), "measured from the reset on"


def test_a_peer_not_routed_to_has_no_data_and_a_returning_one_is_measured_from_its_next_check():
    metrics = LBMetrics(peers={"green": [A, B]})
    metrics.add("green", 200, 0, 0.02, peer=B)
    fleet, per_peer = peer_samplers(metrics)
    fleet.measure()
    assert sorted(per_peer.measure()) == [A, B], "C is not routed to: no series, no data"
    metrics.peers["green"] = [A]  # B removed: nginx no longer exports its series
    fleet.measure()
    assert sorted(per_peer.measure()) == [A]
    metrics.peers["green"] = [A, B]  # B back, with its old counts: they are not this check's requests
    metrics.add("green", 7, 0, 0.02, peer=B)
    fleet.measure()
    assert sorted(per_peer.measure()) == [A]
    metrics.add("green", 9, 1, 0.02, peer=B)
    fleet.measure()
    assert per_peer.measure()[B][:2] == (9, 1)


def test_only_the_analysed_color_and_the_wanted_peers_count():
    metrics = LBMetrics(peers={"green": [A, B], "blue": [C]})
    fleet, per_peer = peer_samplers(metrics, peers=(A,))
    metrics.add("green", 50, 5, 0.02, peer=A)
    metrics.add("green", 60, 0, 0.02, peer=B)
    metrics.add("blue", 70, 70, 0.02, peer=C)
    fleet.measure()
    assert dict((peer, numbers[:2]) for peer, numbers in per_peer.measure().items()) == {A: (50, 5)}


def test_a_failed_scrape_leaves_the_peers_unmeasured_and_the_next_has_no_baseline():
    metrics = LBMetrics(peers={"green": [A]})
    fleet, per_peer = peer_samplers(metrics)

    def down():
        raise MeasureError("cannot scrape nginx: HTTP 404", failing=True)

    fleet.fetch = down
    with pytest.raises(MeasureError, match="cannot scrape nginx"):
        fleet.measure()
    with pytest.raises(MeasureError, match="^peers not measured: the scrape of nginx failed$") as caught:
        per_peer.measure()
    assert caught.value.failing is False
    fleet.fetch = metrics.scrape
    with pytest.raises(MeasureError):
        fleet.measure()  # its own baseline is missing too
    with pytest.raises(MeasureError, match="baseline scrape of nginx missing; measuring the peers from the next") as caught:
        per_peer.measure()
    assert caught.value.failing is False
    fleet.measure()
    assert per_peer.measure()[A][:2] == (0, 0)


def test_a_broken_peer_histogram_is_a_failing_measure_error_not_a_crash():
    metrics = LBMetrics(peers={"green": [A]})
    fleet, per_peer = peer_samplers(metrics)
    metrics.render = lambda: ('ragops_lb_requests_total{color="green",status_class="2xx"} 1\n'
                              'ragops_lb_peer_requests_total{color="green",peer="%s",status_class="2xx"} 1\n'
                              'ragops_lb_peer_request_duration_seconds_bucket{color="green",peer="%s",le="soon"} 1\n'
                              % (A, A))
    fleet.measure()
    with pytest.raises(MeasureError, match="^cannot parse the peers of nginx: invalid sample value 'soon'$") as caught:
        per_peer.measure()
    assert caught.value.failing is True


def test_peers_need_a_new_scrape_of_the_fleet_sampler():
    fleet, per_peer = peer_samplers(LBMetrics(peers={"green": [A]}))
    fleet.measure()
    per_peer.measure()
    with pytest.raises(MeasureError, match="^peers not measured: no new scrape of nginx$"):
        per_peer.measure()


def test_a_fleet_scrape_parses_the_same_by_the_common_line_path(monkeypatch):
    metrics = LBMetrics(peers={"green": [A, B], "blue": [C]})
    metrics.add("green", 50, 5, 0.02, peer=A)
    text = metrics.render() + 'x{a="quote \\" inside",b="2"} 1\nx{ a="1" } 2\n'
    fast = parse(text)
    monkeypatch.setattr(_prom_text, "_parse_simple_line", lambda line: None)
    assert parse(text) == fast and len(fast) > 100


def test_prometheus_peer_queries_are_one_per_number_for_all_peers(prometheus):
    prometheus.answer.peer_traffic["green"] = {A: (120.0, 6.0, 0.05), B: (30.0, 0.0, float("nan")),
                                               "10.9.9.9:8002": (5.0, 5.0, 1.0)}
    prometheus.answer.peer_traffic["blue"] = {C: (50.0, 50.0, 2.0)}
    sampler = lb_peer_prometheus_sampler(PrometheusClient(prometheus.url, 2), "ragops-lb", "green", 15, [A, B, C])
    sampler.start()
    numbers = sampler.measure()
    assert prometheus.queries == [
        'sum by (peer) (increase(ragops_lb_peer_requests_total{color="green",job="ragops-lb"}[15000ms]))',
        'sum by (peer) (increase(ragops_lb_peer_requests_total{color="green",job="ragops-lb",status_class=~"5xx"}'
        '[15000ms]))',
        'histogram_quantile(0.95, sum by (peer, le) (increase(ragops_lb_peer_request_duration_seconds_bucket'
        '{color="green",job="ragops-lb"}[15000ms])))',
    ]
    assert sorted(numbers) == [A, B], "peers not asked for are left out; one without data is absent"
    assert numbers[A] == (120.0, 6.0, 0.05)
    assert numbers[B][:2] == (30.0, 0.0) and math.isnan(numbers[B][2])


def test_prometheus_peer_query_errors_are_not_failing():
    url = closed_port_url("")
    sampler = lb_peer_prometheus_sampler(PrometheusClient(url, 2), "ragops-lb", "green", 15, [A])
    with pytest.raises(MeasureError, match="Prometheus at %s is unreachable" % url) as caught:
        sampler.measure()
    assert caught.value.failing is False
