# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.ragops.platform.plugins.module_utils._prom_query import (
    PrometheusClient,
    PrometheusError,
    PrometheusUnavailable,
    placeholders,
    selector,
    substitute,
)
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_prometheus import FakePrometheus
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import closed_port_url


@pytest.fixture
def prometheus():
    answers = {}
    fake = FakePrometheus(lambda query: answers[query])
    fake.answers = answers
    yield fake
    fake.close()


def test_selector_orders_and_escapes():
    assert selector({"color": "green", "endpoint": "/api/query"}, {"status": "5.."}) == \
        '{color="green",endpoint="/api/query",status=~"5.."}'
    assert selector({"a": 'x"y\\z\nw'}) == '{a="x\\"y\\\\z\\nw"}'
    assert selector() == "{}"


def test_vector_answer_and_sum(prometheus):
    prometheus.answers["up"] = [({"color": "blue"}, 1), ({"color": "green"}, 2.5)]
    client = PrometheusClient(prometheus.url + "/", timeout=2)
    assert client.query("up") == [({"color": "blue"}, 1.0), ({"color": "green"}, 2.5)]
    assert client.value("up") == 3.5


def test_query_is_url_encoded_intact(prometheus):
    query = 'sum(increase(x{a="b c&d",status=~"5.."}[15000ms])) + 1'
    prometheus.answers[query] = [({}, 1)]
    PrometheusClient(prometheus.url, timeout=2).query(query)
    assert prometheus.queries == [query]


def test_empty_and_nan_answers_have_no_value(prometheus):
    prometheus.answers["empty"] = []
    prometheus.answers["nan"] = [({}, float("nan"))]
    client = PrometheusClient(prometheus.url, timeout=2)
    assert client.value("empty") is None and client.value("nan") is None


def test_scalar_answer(prometheus):
    prometheus.answers["1"] = (200, {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "1"]}})
    assert PrometheusClient(prometheus.url, timeout=2).query("1") == [({}, 1.0)]


def test_matrix_answer_is_refused(prometheus):
    prometheus.answers["m[1m]"] = (200, {"status": "success", "data": {"resultType": "matrix", "result": []}})
    with pytest.raises(PrometheusError, match="matrix"):
        PrometheusClient(prometheus.url, timeout=2).query("m[1m]")


def test_bad_query_carries_prometheus_error(prometheus):
    prometheus.answers["sum("] = (400, {"status": "error", "errorType": "bad_data", "error": "unexpected end of input"})
    with pytest.raises(PrometheusError, match="rejected 'sum\\(': unexpected end of input"):
        PrometheusClient(prometheus.url, timeout=2).query("sum(")


def test_not_json(prometheus):
    prometheus.answers["x"] = (200, "<html>")
    with pytest.raises(PrometheusError, match="other than JSON"):
        PrometheusClient(prometheus.url, timeout=2).query("x")


def test_unreachable():
    url = closed_port_url("")
    with pytest.raises(PrometheusError, match="Prometheus at %s is unreachable: .*refused" % url):
        PrometheusClient(url, timeout=2).query("up")


def test_single_value(prometheus):
    prometheus.answers["one"] = [({"job": "a"}, 2.5)]
    prometheus.answers["none"] = []
    prometheus.answers["nan"] = [({}, float("nan"))]
    prometheus.answers["two"] = [({"job": "a"}, 1), ({"job": "b"}, 1)]
    client = PrometheusClient(prometheus.url, timeout=2)
    assert client.single("one") == 2.5 and client.single("none") is None and client.single("nan") is None
    with pytest.raises(PrometheusError, match="'two' answered 2 series, not one"):
        client.single("two")


def test_placeholders_and_substitute():
    template = 'x{color="${color}",v="${version}"} > ${color_count} or ${color}'
    assert placeholders(template) == ["color", "version", "color_count"]
    assert substitute(template, {"color": "green", "version": "1"}) == \
        'x{color="green",v="1"} > ${color_count} or green'


def test_unavailable_is_told_apart_from_a_refused_query(prometheus):
    prometheus.answers["busy"] = (503, {"status": "error", "errorType": "timeout", "error": "query timed out"})
    prometheus.answers["bad"] = (400, {"status": "error", "errorType": "bad_data", "error": "parse error"})
    client = PrometheusClient(prometheus.url, timeout=2)
    with pytest.raises(PrometheusUnavailable, match="query timed out"):
        client.query("busy")
    with pytest.raises(PrometheusError, match="parse error") as caught:
        client.query("bad")
    assert not isinstance(caught.value, PrometheusUnavailable)
    with pytest.raises(PrometheusUnavailable, match="is unreachable"):
        PrometheusClient(closed_port_url(""), timeout=2).query("up")
