# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.ragops.platform.plugins.modules import smoke_test
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import (
    Reply,
    closed_port_url,
    tcp_server,
    unix_server,
)
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.module_runner import run_module

ANSWER = {
    "query": "Quel est le taux de TVA ?",
    "answer": "Pour les clients établis en France, la TVA est appliquée au taux normal de 20 %.",
    "sources": [{"id": "billing-tva", "title": "Facturation et TVA", "score": 0.29}],
    "success": True,
    "degraded": False,
    "source": "rag",
    "confidence": 0.26,
}
QUERY = {"query": "Quel est le taux de TVA ?", "client_id": "release-smoke"}


@pytest.fixture
def server():
    srv = tcp_server()
    yield srv
    srv.close()


def query_case(**overrides):
    case = dict(name="vat", method="POST", url="/api/query", body=QUERY, required_fields=["answer", "sources", "success"],
                json=[{"path": "success", "value": True}, {"path": "source", "value": "rag"}],
                answer_contains=["tva", "20 %"], min_sources=1, max_latency_ms=2000)
    case.update(overrides)
    return case


def smoke(server, cases, **options):
    args = dict(base_url=server.base_url, cases=cases)
    args.update(options)
    return args


def test_all_cases_pass(server, capsys):
    server.script.route("/api/query", Reply(200, ANSWER), method="POST")
    server.script.route("/api/query", Reply(405, {"error": "method not allowed"}))
    cases = [query_case(), {"name": "get-is-405", "url": "/api/query", "status": 405,
                            "json": [{"path": "error", "op": "contains", "value": "not allowed"}]}]
    result = run_module(smoke_test, smoke(server, cases), capsys)
    assert result["passed"] is True and result["changed"] is False
    assert result.get("failed", False) is False
    vat, wrong_method = result["results"]
    assert vat["passed"] is True and vat["failures"] == [] and vat["status"] == 200
    assert vat["response"] == ANSWER
    assert vat["requests"] == 1 and vat["latency_ms"] > 0
    assert wrong_method["passed"] is True and wrong_method["status"] == 405
    assert json.loads(server.script.requests[0]["body"]) == QUERY
    assert result["msg"] == "smoke test passed: 2 case(s)"


def test_status_failure(server, capsys):
    server.script.route("/api/query", Reply(500, {"error": "drill: injected error (error_rate=1)"}), method="POST")
    result = run_module(smoke_test, smoke(server, [query_case()]), capsys)
    assert result["failed"] is True and result["passed"] is False and result["changed"] is False
    failures = result["results"][0]["failures"]
    assert failures[0] == "expected status 200, got 500"
    assert result["msg"].startswith("smoke test failed: 1 of 1 case(s): vat: expected status 200, got 500")


def test_missing_required_field_and_sources(server, capsys):
    bad_contract = dict((key, value) for key, value in ANSWER.items() if key != "sources")
    server.script.route("/api/query", Reply(200, bad_contract), method="POST")
    result = run_module(smoke_test, smoke(server, [query_case()]), capsys)
    assert result["failed"] is True
    assert result["results"][0]["failures"] == [
        "sources: missing (required)",
        "sources: missing, expected at least 1 item(s)",
    ]
    assert "vat: sources: missing (required)" in result["msg"]


def test_answer_contains_failure(server, capsys):
    server.script.route("/api/query", Reply(200, dict(ANSWER, answer="Je n'ai pas d'information sur ce sujet.")), method="POST")
    result = run_module(smoke_test, smoke(server, [query_case(answer_contains=["TVA"])]), capsys)
    assert result["failed"] is True
    assert result["results"][0]["failures"] == [
        "answer: does not contain 'TVA' (got 'Je n'ai pas d'information sur ce sujet.')"]


def test_answer_contains_respects_case_option_and_field(server, capsys):
    server.script.route("/api/query", Reply(200, {"data": {"text": "Le taux de TVA est de 20 %"}, "sources": []}), method="POST")
    case = query_case(required_fields=[], json=[], min_sources=None, answer_field="data.text", answer_contains=["tva"])
    assert run_module(smoke_test, smoke(server, [case]), capsys)["passed"] is True
    case["answer_ignore_case"] = False
    result = run_module(smoke_test, smoke(server, [case]), capsys)
    assert result["results"][0]["failures"] == ["data.text: does not contain 'tva' (got 'Le taux de TVA est de 20 %')"]


def test_min_sources_failure(server, capsys):
    server.script.route("/api/query", Reply(200, dict(ANSWER, sources=[{"id": "a"}])), method="POST")
    result = run_module(smoke_test, smoke(server, [query_case(min_sources=2)]), capsys)
    assert result["results"][0]["failures"] == ["sources: 1 item(s), expected at least 2"]


def test_sources_not_a_list(server, capsys):
    server.script.route("/api/query", Reply(200, dict(ANSWER, refs="none")), method="POST")
    result = run_module(smoke_test, smoke(server, [query_case(sources_field="refs", min_sources=1)]), capsys)
    assert result["results"][0]["failures"] == ["refs: expected a list, got 'none'"]


def test_latency_failure(server, capsys):
    server.script.route("/api/query", Reply(200, ANSWER, delay=0.3), method="POST")
    result = run_module(smoke_test, smoke(server, [query_case(max_latency_ms=100)]), capsys)
    case = result["results"][0]
    assert case["passed"] is False and case["latency_ms"] >= 300
    assert len(case["failures"]) == 1 and case["failures"][0].startswith("latency ")
    assert case["failures"][0].endswith(" ms over max_latency_ms 100.0")


def test_json_expectation_failure_uses_the_shared_grammar(server, capsys):
    server.script.route("/api/query", Reply(200, dict(ANSWER, degraded=True, source="keyword_fallback")), method="POST")
    case = query_case(json=[{"path": "degraded", "value": False}, {"path": "confidence", "op": "ge", "value": 0.1}])
    result = run_module(smoke_test, smoke(server, [case]), capsys)
    assert result["results"][0]["failures"] == ["degraded: expected eq false, got true"]


def test_repeat_counts_failures_and_reports_p50_and_max(server, capsys):
    ok, err = Reply(200, ANSWER), Reply(500, {"error": "drill: injected error (error_rate=0.5)"})
    server.script.route("/api/query", ok, err, ok, err, method="POST")
    case = query_case(repeat=4, required_fields=[], json=[], answer_contains=[], min_sources=None)
    result = run_module(smoke_test, smoke(server, [case]), capsys)
    vat = result["results"][0]
    assert server.script.hits("/api/query", method="POST") == 4
    assert vat["requests"] == 4
    assert vat["failures"] == ["expected status 200, got 500 (2 of 4 requests)"]
    assert 0 < vat["latency_p50_ms"] <= vat["latency_ms"]
    assert vat["response"] == {"error": "drill: injected error (error_rate=0.5)"}


def test_repeat_latency_counts_slow_requests(server, capsys):
    server.script.route("/api/query", Reply(200, ANSWER), Reply(200, ANSWER, delay=0.3), Reply(200, ANSWER), method="POST")
    result = run_module(smoke_test, smoke(server, [query_case(repeat=3, max_latency_ms=200)]), capsys)
    vat = result["results"][0]
    assert vat["failures"][0].endswith("(1 of 3 requests over)")
    assert vat["latency_p50_ms"] < 200 <= vat["latency_ms"]


def test_timeout_and_refused_connection(server, capsys):
    server.script.route("/api/query", Reply(200, ANSWER, delay=2.0), method="POST")
    result = run_module(smoke_test, smoke(server, [query_case(request_timeout=0.2)]), capsys)
    assert result["results"][0]["failures"] == ["request failed: timed out after 0.2 s"]
    assert result["results"][0]["error"] == "timed out after 0.2 s"
    assert result["results"][0]["status"] is None
    result = run_module(smoke_test, dict(base_url=closed_port_url(), cases=[query_case()]), capsys)
    assert result["results"][0]["failures"][0].startswith("request failed: connection failed:")


def test_every_case_runs_and_the_message_lists_only_failed_ones(server, capsys):
    server.script.route("/api/query", Reply(200, ANSWER), method="POST")
    server.script.route("/health", Reply(503, {"status": "unhealthy"}))
    server.script.route("/metrics", Reply(200, body="rag_requests_total 1\n"))
    cases = [
        {"name": "health", "url": "/health"},
        query_case(name="good"),
        {"name": "metrics-json", "url": "/metrics", "required_fields": ["x"]},
    ]
    result = run_module(smoke_test, smoke(server, cases), capsys)
    assert [case["passed"] for case in result["results"]] == [False, True, False]
    assert result["msg"] == ("smoke test failed: 2 of 3 case(s): health: expected status 200, got 503"
                             " | metrics-json: body is not JSON: 'rag_requests_total 1\\n'")
    assert result["results"][2]["response"] == "rag_requests_total 1\n"


def test_default_case_name(server, capsys):
    server.script.route("/health", Reply(503, {}))
    result = run_module(smoke_test, smoke(server, [{"url": "/health"}]), capsys)
    assert result["results"][0]["name"] == "GET /health"


def test_check_mode_runs_the_cases(server, capsys):
    server.script.route("/api/query", Reply(200, ANSWER), method="POST")
    result = run_module(smoke_test, smoke(server, [query_case()]), capsys, check_mode=True)
    assert result["passed"] is True and result["changed"] is False
    assert server.script.hits("/api/query", method="POST") == 1


def test_unix_socket_target(tmp_path, capsys):
    srv = unix_server(tmp_path / "app.sock")
    try:
        srv.script.route("/api/query", Reply(200, ANSWER), method="POST")
        args = dict(base_url="http://localhost", unix_socket=str(tmp_path / "app.sock"), cases=[query_case()])
        assert run_module(smoke_test, args, capsys)["passed"] is True
    finally:
        srv.close()


@pytest.mark.parametrize("case, problem", [
    (dict(url="/x", repeat=0), "cases[0] (GET /x): repeat must be at least 1"),
    (dict(url="/x", min_sources=-1), "min_sources must not be negative"),
    (dict(url="/x", max_latency_ms=0), "max_latency_ms must be greater than 0"),
    (dict(url="/x", required_fields=["a..b"]), "path 'a..b': must be a dotted path"),
    (dict(url="/x", json=[{"path": "n", "op": "gt", "value": "many"}]), "json n: op gt needs a number value"),
])
def test_invalid_parameters_fail_before_any_request(server, capsys, case, problem):
    result = run_module(smoke_test, smoke(server, [case]), capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("invalid parameters: ") and problem in result["msg"]
    assert server.script.requests == []


def test_the_workload_names_path_and_timeout(server, capsys):
    server.script.route("/api/query", Reply(200, ANSWER, delay=0.5), method="POST")
    case = query_case()
    case["path"] = case.pop("url")
    result = run_module(smoke_test, smoke(server, [dict(case, timeout=5)]), capsys)
    assert result["passed"] is True and result["results"][0]["url"] == server.base_url + "/api/query"
    result = run_module(smoke_test, smoke(server, [dict(case, timeout=0.1)]), capsys)
    assert result["results"][0]["failures"] == ["request failed: timed out after 0.1 s"]
