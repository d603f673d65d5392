# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re

import pytest

from ansible_collections.ragops.platform.plugins.module_utils._prom_text import (
    PromTextError,
    Sample,
    bucket_increase,
    histogram_buckets,
    histogram_quantile,
    parse,
    parse_line,
    sum_values,
)

INF = float("inf")

SCRAPE = r'''# HELP rag_requests_total HTTP requests served
# TYPE rag_requests_total counter
rag_requests_total{endpoint="/api/query",method="POST",status="200"} 90.0
rag_requests_total{endpoint="/api/query",method="POST",status="500"} 10.0
rag_requests_total{endpoint="/api/query",method="POST",status="503"} 2
rag_requests_total{endpoint="/health",method="GET",status="200"} 1e3
rag_requests_created{endpoint="/api/query",method="POST",status="200"} 1.7958e+09
# TYPE rag_request_duration_seconds histogram
rag_request_duration_seconds_bucket{endpoint="/api/query",le="0.005"} 50.0
rag_request_duration_seconds_bucket{endpoint="/api/query",le="0.01"} 90.0
rag_request_duration_seconds_bucket{endpoint="/api/query",le="+Inf"} 102.0
rag_request_duration_seconds_count{endpoint="/api/query"} 102.0
rag_request_duration_seconds_sum{endpoint="/api/query"} 0.9
rag_request_duration_seconds_bucket{endpoint="/health",le="0.005"} 1000.0
rag_request_duration_seconds_bucket{endpoint="/health",le="+Inf"} 1000.0
rag_build_info{color="green",version="1.1.0"} 1.0
rag_corpus_chunks 42
'''


def test_parse_counters_and_filters():
    samples = parse(SCRAPE)
    assert len(samples) == 14
    assert sum_values(samples, "rag_requests_total", {"endpoint": "/api/query"}) == 102.0
    errors = {"endpoint": "/api/query", "status": re.compile("5..")}
    assert sum_values(samples, "rag_requests_total", errors) == 12.0
    assert sum_values(samples, "rag_requests_total") == 1102.0
    assert sum_values(samples, "rag_requests_total", {"endpoint": "/nope"}) == 0.0
    assert sum_values(samples, "rag_corpus_chunks") == 42.0


def test_regex_matches_the_whole_value_like_promql():
    samples = [Sample("m", {"status": "5000"}, 1.0), Sample("m", {"status": "500"}, 2.0)]
    assert sum_values(samples, "m", {"status": re.compile("5..")}) == 2.0


def test_missing_label_matches_the_empty_string():
    samples = [Sample("m", {}, 1.0), Sample("m", {"a": "x"}, 2.0)]
    assert sum_values(samples, "m", {"a": ""}) == 1.0


def test_histogram_buckets_summed_by_le_and_sorted():
    samples = parse(SCRAPE)
    assert histogram_buckets(samples, "rag_request_duration_seconds", {"endpoint": "/api/query"}) == [
        (0.005, 50.0), (0.01, 90.0), (INF, 102.0)]
    assert histogram_buckets(samples, "rag_request_duration_seconds") == [
        (0.005, 1050.0), (0.01, 90.0), (INF, 1102.0)]


@pytest.mark.parametrize("line, labels", [
    (r'm{a="x\"y"} 1', {"a": 'x"y'}),
    (r'm{a="back\\slash"} 1', {"a": "back\\slash"}),
    (r'm{a="line\nbreak"} 1', {"a": "line\nbreak"}),
    (r'm{a="brace } and , comma"} 1', {"a": "brace } and , comma"}),
    (r'm{a="\\\"",b="2"} 1', {"a": '\\"', "b": "2"}),
    ('m{a="x",} 1', {"a": "x"}),
    ('m{ a = "x" , b="y" } 1', {"a": "x", "b": "y"}),
    ('m{} 1', {}),
    ('m{a="ünïcode"} 1', {"a": "ünïcode"}),
    (r'm{a="unknown \q escape"} 1', {"a": "unknown \\q escape"}),
])
def test_label_values_with_escapes(line, labels):
    assert parse_line(line).labels == labels


@pytest.mark.parametrize("text, value", [
    ("1", 1.0), ("-2.5", -2.5), ("1e3", 1000.0), ("1.5E-3", 0.0015), ("+Inf", INF), ("-Inf", -INF), (".5", 0.5),
])
def test_values(text, value):
    assert parse_line("m " + text).value == value


def test_nan_value_and_timestamp():
    assert math.isnan(parse_line("m NaN").value)
    sample = parse_line('m{a="b"} 7 1700000000000')
    assert sample == Sample("m", {"a": "b"}, 7.0)


def test_tabs_crlf_and_comments_are_tolerated():
    samples = parse("# a comment\r\n\r\nm\t{a=\"b\"}\t3\r\n  # another\n")
    assert samples == [Sample("m", {"a": "b"}, 3.0)]


@pytest.mark.parametrize("line", [
    "9m 1", 'm{a="b" 1', 'm{a="b} 1', 'm{a=b} 1', 'm{1a="b"} 1', 'm{a="b"a="c"} 1', 'm{a="1",a="2"} 1',
    "m", "m abc", "m 1 2 3", "m 0x10", "m 1_000",
])
def test_malformed_lines_are_rejected(line):
    with pytest.raises(PromTextError):
        parse_line(line)


def test_error_names_the_line():
    with pytest.raises(PromTextError, match="line 2"):
        parse("ok 1\nbad{ 1\n")


def test_prometheus_client_output_round_trips():
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter("rq", "help", ["endpoint", "status"], registry=registry)
    histogram = prometheus_client.Histogram("dur_seconds", "help", ["endpoint"], registry=registry,
                                            buckets=(0.005, 0.01, 0.025))
    counter.labels(endpoint='/a "quoted"\\path\n', status="500").inc(3)
    for value in (0.001, 0.007, 0.02, 0.02, 5):
        histogram.labels(endpoint="/api/query").observe(value)
    samples = parse(prometheus_client.generate_latest(registry).decode("utf-8"))
    assert sum_values(samples, "rq_total", {"endpoint": '/a "quoted"\\path\n'}) == 3.0
    assert histogram_buckets(samples, "dur_seconds", {"endpoint": "/api/query"}) == [
        (0.005, 1.0), (0.01, 2.0), (0.025, 4.0), (INF, 5.0)]


# Expected values were produced by Prometheus 2.42's own histogram_quantile (promtool test rules on the same series).
A = [(0.005, 2), (0.01, 5), (0.025, 9), (0.05, 10), (INF, 10)]


@pytest.mark.parametrize("q, buckets, expected", [
    (0.95, A, 0.037500000000000006),
    (0.5, A, 0.01),
    (0.1, A, 0.0025),
    (1, A, 0.05),
    (0, A, 0.0),
    (0.95, [(0.1, 1), (INF, 10)], 0.1),  # the rank is in +Inf: the highest finite bound
    # Not monotonic (0.025 below 0.01): Prometheus takes the envelope.
    (0.95, [(0.005, 4), (0.01, 8), (0.025, 7), (0.05, 41), (INF, 50)], 0.05),
    (0.5, [(0.005, 4), (0.01, 8), (0.025, 7), (0.05, 41), (INF, 50)], 0.03787878787878788),
    (0.95, [(0.005, 3), (0.01, 7), (0.025, 6), (0.05, 40), (INF, 41)], 0.04920454545454545),
    (0.3, [(-1, 4), (1, 8), (INF, 8)], -1),  # a first bucket with a bound <= 0 is returned as is
    (0.75, [(-1, 4), (1, 8), (INF, 8)], 0.0),
])
def test_histogram_quantile_matches_prometheus(q, buckets, expected):
    assert histogram_quantile(q, buckets) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_histogram_quantile_special_cases():
    assert math.isnan(histogram_quantile(0.5, [(1, 4), (2, 8)]))  # no +Inf bucket
    assert math.isnan(histogram_quantile(0.5, [(INF, 8)]))  # fewer than two buckets
    assert math.isnan(histogram_quantile(0.5, [(1, 0), (INF, 0)]))  # no observations
    assert math.isnan(histogram_quantile(0.5, []))
    assert math.isnan(histogram_quantile(float("nan"), A))
    assert histogram_quantile(-0.1, A) == -INF
    assert histogram_quantile(1.1, A) == INF


def test_histogram_quantile_is_order_independent_and_merges_equal_bounds():
    shuffled = [A[3], A[0], A[4], A[2], A[1]]
    assert histogram_quantile(0.95, shuffled) == histogram_quantile(0.95, A)
    split = [(0.005, 1), (0.005, 1), (0.01, 5), (0.025, 9), (0.05, 10), (INF, 10)]
    assert histogram_quantile(0.95, split) == histogram_quantile(0.95, A)


def test_bucket_increase_and_reset():
    before = [(0.005, 10.0), (0.01, 20.0), (INF, 30.0)]
    after = [(0.005, 15.0), (0.01, 30.0), (INF, 50.0)]
    assert bucket_increase(before, after) == [(0.005, 5.0), (0.01, 10.0), (INF, 20.0)]
    restarted = [(0.005, 1.0), (0.01, 2.0), (INF, 3.0)]
    assert bucket_increase(before, restarted) == restarted
    assert bucket_increase([], after) == after  # a bucket that did not exist before counts from 0
