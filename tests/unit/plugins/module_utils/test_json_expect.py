# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.ragops.platform.plugins.module_utils._json_expect import (
    evaluate,
    evaluate_all,
    lookup,
    loosely_equal,
    show,
    validate,
)

HEALTH = {
    "status": "healthy",
    "version": "1.1.0",
    "uptime": 12.5,
    "draining": False,
    "checks": {"db": {"status": "error", "latency_ms": 0.3}, "vector": {"status": "ok", "chunk_count": 35}},
    "sources": [{"id": "billing-tva"}, {"id": "support"}],
    "empty": None,
}


def expect(path, op="eq", value=None):
    return dict(path=path, op=op, value=value)


@pytest.mark.parametrize("path, found, value", [
    ("status", True, "healthy"),
    ("checks.db.status", True, "error"),
    ("checks.vector.chunk_count", True, 35),
    ("sources.0.id", True, "billing-tva"),
    ("sources.-1.id", True, "support"),
    ("sources.2.id", False, None),
    ("sources.first", False, None),
    ("checks.ai.status", False, None),
    ("status.length", False, None),
    ("empty", True, None),
])
def test_lookup(path, found, value):
    assert lookup(HEALTH, path) == (found, value)


def test_failure_text_names_path_op_expected_and_actual():
    assert evaluate(HEALTH, expect("checks.db.status", "eq", "ok")) == "checks.db.status: expected eq 'ok', got 'error'"
    assert evaluate(HEALTH, expect("version", value="1.2.0")) == "version: expected eq '1.2.0', got '1.1.0'"


def test_missing_field_says_missing():
    assert evaluate(HEALTH, expect("checks.ai.status", value="ok")) == "checks.ai.status: expected eq 'ok', missing"


@pytest.mark.parametrize("expectation", [
    expect("status", "eq", "healthy"),
    expect("status", "ne", "unhealthy"),
    expect("status", "in", ["healthy", "degraded"]),
    expect("status", "not_in", ["unhealthy", "draining"]),
    expect("checks.db", "exists"),
    expect("checks.db", "exists", True),
    expect("checks.ai", "exists", False),
    expect("checks.vector.chunk_count", "gt", 0),
    expect("checks.vector.chunk_count", "ge", 35),
    expect("checks.vector.chunk_count", "lt", "36"),
    expect("uptime", "le", 12.5),
    expect("version", "contains", "1."),
    expect("checks", "contains", "db"),
    expect("version", "regex", r"^1\.1\.\d+$"),
    expect("checks.vector.chunk_count", "regex", r"^3\d$"),
    expect("draining", "eq", False),
    expect("draining", "eq", "false"),
    expect("checks.vector.chunk_count", "eq", "35"),
    expect("empty", "eq", None),
])
def test_met_expectations(expectation):
    assert evaluate(HEALTH, expectation) is None


@pytest.mark.parametrize("expectation, text", [
    (expect("status", "ne", "healthy"), "status: expected ne 'healthy', got 'healthy'"),
    (expect("status", "in", ["ok"]), "status: expected in [\"ok\"], got 'healthy'"),
    (expect("status", "not_in", ["healthy"]), "status: expected not_in [\"healthy\"], got 'healthy'"),
    (expect("checks.ai", "exists"), "checks.ai: expected to exist, missing"),
    (expect("checks.db.status", "exists", False), "checks.db.status: expected to be absent, got 'error'"),
    (expect("checks.vector.chunk_count", "gt", 35), "checks.vector.chunk_count: expected gt 35, got 35"),
    (expect("checks.vector.chunk_count", "lt", 10), "checks.vector.chunk_count: expected lt 10, got 35"),
    (expect("status", "gt", 1), "status: expected gt 1, got 'healthy' (not a number)"),
    (expect("version", "contains", "2."), "version: expected contains '2.', got '1.1.0'"),
    (expect("uptime", "contains", "1"), "uptime: expected contains '1', got 12.5 (not a string, list or object)"),
    (expect("version", "regex", r"^2\."), "version: expected regex '^2\\.', got '1.1.0'"),
    (expect("checks.db", "regex", "error"), "checks.db: expected regex 'error', got "
                                            "{\"latency_ms\": 0.3, \"status\": \"error\"} (not a scalar)"),
    (expect("draining", "eq", 0), "draining: expected eq 0, got false"),
])
def test_unmet_expectations(expectation, text):
    assert evaluate(HEALTH, expectation) == text


def test_list_contains_element():
    data = {"colors": ["blue", "green"], "ids": [1, 2]}
    assert evaluate(data, expect("colors", "contains", "green")) is None
    assert evaluate(data, expect("ids", "contains", "2")) is None
    assert evaluate(data, expect("colors", "contains", "red")) == "colors: expected contains 'red', got [\"blue\", \"green\"]"


def test_evaluate_all_keeps_order_of_failures():
    failures = evaluate_all(HEALTH, [
        expect("status", value="healthy"),
        expect("version", value="9"),
        expect("checks.db.status", value="ok"),
    ])
    assert failures == ["version: expected eq '9', got '1.1.0'", "checks.db.status: expected eq 'ok', got 'error'"]
    assert evaluate_all(HEALTH, []) == []


@pytest.mark.parametrize("actual, expected, equal", [
    (35, "35", True), ("35", 35, True), (35, 35.0, True), (True, "true", True), ("False", False, True),
    (1, True, False), (True, 1, False), (0, False, False), ("abc", 1, False), ("1.0", "1", False), (None, None, True),
])
def test_loosely_equal(actual, expected, equal):
    assert loosely_equal(actual, expected) is equal


@pytest.mark.parametrize("expectation, problem", [
    (expect("status"), None),
    (expect(""), "path '': must be a dotted path such as checks.db.status"),
    (expect("checks..status"), "path 'checks..status': must be a dotted path such as checks.db.status"),
    (expect("status", "like", "x"), "status: unknown op 'like'"),
    (expect("status", "in", "healthy"), "status: op in needs a list value, got 'healthy'"),
    (expect("uptime", "gt", "soon"), "uptime: op gt needs a number value, got 'soon'"),
    (expect("x", "exists", "yes"), "x: op exists takes true, false or no value, got 'yes'"),
    (expect("x", "regex", 5), "x: op regex needs a string value, got 5"),
    (expect("x", "regex", "("), "x: invalid regex '('"),
])
def test_validate(expectation, problem):
    found = validate(expectation)
    if problem is None:
        assert found is None
    else:
        assert found.startswith(problem)


def test_show_truncates():
    assert show("x" * 500, limit=20) == "'" + "x" * 16 + "..."
    assert len(show(list(range(1000)))) == 120
