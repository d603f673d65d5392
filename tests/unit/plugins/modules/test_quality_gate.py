# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""run_quality_gate driven deterministically (a fake send whose latency moves a fake clock), and main() once against
two real HTTP servers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.ragops.platform.plugins.modules import quality_gate
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_time import FakeTime
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import Reply, tcp_server
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.module_runner import run_module

LIVE = "http://live:8000"
CANDIDATE = "http://candidate:8000"
VAT = "Quel est le taux de TVA ?"
REFUND = "Sous combien de jours suis-je remboursé ?"
GOLDEN = [
    dict(question=VAT, expected_sources=["billing-tva"], answer_contains=["20 %"]),
    dict(name="refund", question=REFUND, expected_sources=["refunds", "billing-tva"], answer_contains=["14 jours"]),
]
GOOD = {
    VAT: {"answer": "La TVA est au taux normal de 20 %.", "sources": [{"id": "billing-tva"}, {"id": "faq"}]},
    REFUND: {"answer": "Vous êtes remboursé sous 14 jours.", "sources": [{"id": "refunds"}, {"id": "billing-tva"}]},
}


def params_for(args):
    """Module params with defaults applied, for calling run_quality_gate directly."""
    with patch_module_args(args):
        return AnsibleModule(argument_spec=quality_gate.argument_spec(), supports_check_mode=True).params


def gate_args(cases=None, live_url=LIVE, **options):
    args = dict(candidate_url=CANDIDATE, cases=GOLDEN if cases is None else cases)
    if live_url:
        args["live_url"] = live_url
    args.update(options)
    return args


def response(payload, status=200, error=None):
    """A result as probe() returns it."""
    if error:
        return dict(status=None, body="", json=None, is_json=False, error=error)
    if isinstance(payload, (dict, list)):
        return dict(status=status, body=json.dumps(payload), json=payload, is_json=True, error=None)
    return dict(status=status, body=payload, json=None, is_json=False, error=None)


class FakeColors:
    """A fake ``send``: ``answer(color, question, n)`` gives the n-th (from 0) response of a color to a question,
    ``latency(color)`` its milliseconds, spent on the fake clock. Records every request."""

    def __init__(self, answer=None, latency=None, question=lambda body: body["query"]):
        self.time = FakeTime(now=100.0)
        self.answer = answer or (lambda color, question, n: response(GOOD[question]))
        self.latency = latency or (lambda color: 10.0)
        self.question = question
        self.requests = []

    def send(self, method, url, headers=None, body=None, timeout=None, validate_certs=True, use_proxy=False):
        color = "live" if url.startswith(LIVE) else "candidate"
        question = self.question(body)
        n = sum(1 for seen in self.requests if seen["color"] == color and seen["question"] == question)
        self.requests.append(dict(method=method, url=url, color=color, question=question, body=body, timeout=timeout))
        self.time.sleep(self.latency(color) / 1000.0)
        return self.answer(color, question, n)

    def urls(self):
        return [request["url"] for request in self.requests]


def run(args, colors=None):
    colors = colors or FakeColors()
    return quality_gate.run_quality_gate(params_for(args), send=colors.send, clock=colors.time.clock), colors


def test_equal_colors_pass_with_both_scores():
    result, colors = run(gate_args())
    assert result["passed"] is True and result["changed"] is False and result["compared"] is True
    assert result["regressions"] == [] and result["regressed_cases"] == []
    assert result["candidate"] == result["live"] == dict(recall_at_k=1.0, answer_contains_rate=1.0, p50_ms=10.0,
                                                         p95_ms=10.0, requests=2, errors=0, error_rate=0.0)
    assert result["k"] == 4
    assert result["duration"] == 0.04  # four requests of 10 ms on the fake clock
    assert result["cases"][0]["name"] == VAT and result["cases"][1]["name"] == "refund"
    assert result["cases"][1]["candidate"] == dict(recall=1.0, contains=True, source_ids=["refunds", "billing-tva"],
                                                   latency_ms=[10.0], requests=1, errors=0, error=None)
    assert result["msg"] == ("quality gate passed: recall@4 1.00 (live 1.00), answer-contains 1.00 (live 1.00), "
                             "p95 10.0 ms (live 10.0 ms); 2 question(s), 2 request(s) per color")
    assert all(request["method"] == "POST" and request["timeout"] == 10.0 for request in colors.requests)


def test_requests_are_interleaved_and_the_first_color_alternates():
    dummy, colors = run(gate_args(repeat=2))
    L, C = LIVE + "/api/query", CANDIDATE + "/api/query"
    assert colors.urls() == [L, C, C, L, L, C, C, L]
    assert [request["question"] for request in colors.requests] == [VAT] * 4 + [REFUND] * 4


def test_without_a_live_color_only_the_candidate_is_asked():
    result, colors = run(gate_args(live_url="", repeat=2))
    assert colors.urls() == [CANDIDATE + "/api/query"] * 4
    assert result["compared"] is False and result["live"] is None and result["passed"] is True
    assert all(entry["live"] is None for entry in result["cases"])
    assert result["msg"].startswith("quality gate passed (no live color: the candidate was judged alone, against the floors): ")


def test_the_question_is_substituted_through_a_nested_body_and_the_default_is_left_alone():
    body = {"input": {"text": "${question}", "history": ["Q: ${question}", 3, {"q": "${question}"}]}, "n": 1, "tag": "x"}
    request = dict(method="put", path="/v2/ask", body=body, headers={"X-Client": "gate"}, timeout=2.5)
    colors = FakeColors(question=lambda sent: sent["input"]["text"])
    result, colors = run(gate_args(request=request), colors)
    sent = colors.requests[0]
    assert sent["body"] == {"input": {"text": VAT, "history": ["Q: " + VAT, 3, {"q": VAT}]}, "n": 1, "tag": "x"}
    assert sent["url"] == LIVE + "/v2/ask" and sent["method"] == "PUT" and sent["timeout"] == 2.5
    assert body["input"]["text"] == "${question}"
    dummy, colors = run(gate_args())
    assert colors.requests[0]["body"] == {"query": VAT}
    assert quality_gate.argument_spec()["request"]["options"]["body"]["default"] == {"query": "${question}"}
    assert result["passed"] is True


def test_a_string_body_is_substituted_too():
    request = dict(body="question=${question}")
    dummy, colors = run(gate_args(request=request), FakeColors(question=lambda sent: sent.split("=", 1)[1]))
    assert colors.requests[0]["body"] == "question=" + VAT


def test_source_ids_as_the_items_themselves_and_at_a_nested_path():
    def answer(color, question, n):
        if color == "live":
            return response({"result": {"text": "20 %", "docs": ["faq", "billing-tva", 42]}})
        return response({"result": {"text": "20 %", "docs": [{"meta": {"doc": "billing-tva"}}, {"other": 1}]}})

    cases = [dict(question=VAT, expected_sources=["billing-tva"])]
    base = dict(cases=cases, k=1)
    response_options = dict(sources="result.docs", source_id=".", answer="result.text")
    result = run(gate_args(response=response_options, **base), FakeColors(answer=answer))[0]
    assert result["cases"][0]["live"]["source_ids"] == ["faq", "billing-tva", "42"]
    assert result["cases"][0]["live"]["recall"] == 0.0  # k=1: billing-tva is second
    response_options["source_id"] = "meta.doc"
    result = run(gate_args(response=response_options, **base), FakeColors(answer=answer))[0]
    assert result["cases"][0]["candidate"]["source_ids"] == ["billing-tva", None]
    assert result["cases"][0]["candidate"]["recall"] == 1.0


@pytest.mark.parametrize("failed, error", [
    (response(None, error="connection failed: [Errno 111] Connection refused"),
     "request failed: connection failed: [Errno 111] Connection refused"),
    (response({"error": "drill"}, status=500), "status 500"),
    (response("<html>oops</html>"), "body is not JSON: '<html>oops</html>'"),
    (response({"answer": "20 %"}), "sources: missing"),
    (response({"answer": "20 %", "sources": "billing-tva"}), "sources: not a list"),
    (response({"sources": [{"id": "billing-tva"}]}), "answer: missing"),
    (response({"answer": None, "sources": []}), "answer: not a string"),
])
def test_a_failed_request_counts_as_an_error_recall_0_and_no_answer(failed, error):
    def answer(color, question, n):
        return failed if color == "candidate" and question == VAT else response(GOOD[question])

    result = run(gate_args(), FakeColors(answer=answer))[0]
    vat = result["cases"][0]["candidate"]
    assert (vat["recall"], vat["contains"], vat["errors"], vat["error"], vat["source_ids"]) == (0.0, False, 1, error, [])
    assert result["candidate"]["errors"] == 1 and result["candidate"]["error_rate"] == 0.5
    assert result["passed"] is False
    assert [regression["check"] for regression in result["regressions"]] == ["recall_at_k", "answer_contains_rate", "error_rate"]
    assert result["regressed_cases"][0]["candidate_error"] == error
    assert ('"%s" recall 1.00 -> 0.00, contains yes -> no (candidate: %s)' % (VAT, error)) in result["msg"]


def test_max_error_rate_and_the_quality_judged_on_the_first_response_only():
    def answer(color, question, n):
        if color == "candidate" and question == REFUND and n == 1:
            return response({"error": "drill"}, status=503)
        if color == "candidate" and question == REFUND and n == 3:
            return response("overloaded")
        return response(GOOD[question])

    args = gate_args(repeat=4, tolerances=dict(max_error_rate=0.25))  # 2 of 8 requests
    result = run(args, FakeColors(answer=answer))[0]
    assert result["passed"] is True
    refund = result["cases"][1]["candidate"]
    assert (refund["recall"], refund["contains"], refund["requests"], refund["errors"]) == (1.0, True, 4, 2)
    assert refund["error"] == "status 503" and len(refund["latency_ms"]) == 4
    args["tolerances"]["max_error_rate"] = 0.2
    result = run(args, FakeColors(answer=answer))[0]
    assert result["passed"] is False and [r["check"] for r in result["regressions"]] == ["error_rate"]
    assert "candidate: 2 of 8 request(s) failed (25 %, allowed 20 %)" in result["msg"]


def test_errors_of_the_live_color_fail_the_gate_too():
    def answer(color, question, n):
        return response(None, error="timed out after 10.0 s") if color == "live" and n == 0 else response(GOOD[question])

    result = run(gate_args(), FakeColors(answer=answer))[0]
    assert result["passed"] is False
    assert [r["check"] for r in result["regressions"]] == ["live_error_rate"]
    assert result["regressed_cases"] == []  # the candidate is better on every question
    assert result["msg"].startswith("quality gate: the gate failed: live: 2 of 2 request(s) failed")


def wrong_candidate(color, question, n):
    if color == "candidate" and question == VAT:
        return response({"answer": "Je ne sais pas.", "sources": [{"id": "shipping"}]})
    return response(GOOD[question])


def test_the_failure_message_gives_both_numbers_and_the_regressed_question():
    latency = {"live": 9.8, "candidate": 12.1}
    result = run(gate_args(), FakeColors(answer=wrong_candidate, latency=lambda color: latency[color]))[0]
    assert result["passed"] is False
    assert result["candidate"]["recall_at_k"] == 0.5 and result["live"]["recall_at_k"] == 1.0
    assert result["msg"] == (
        'quality gate: the candidate is worse than the live color: recall@4 0.50 (live 1.00, allowed drop 0.05); '
        'answer-contains 0.50 (live 1.00, allowed drop 0.05); p95 12.1 ms (live 9.8 ms). '
        'Regressed questions: "Quel est le taux de TVA ?" recall 1.00 -> 0.00, contains yes -> no')
    worse = result["regressed_cases"]
    assert len(worse) == 1 and worse[0]["live_source_ids"] == ["billing-tva", "faq"]
    assert worse[0]["candidate_source_ids"] == ["shipping"]


def test_the_message_lists_ten_regressed_questions_then_counts_the_others():
    cases = [dict(name="q%02d" % n, question="question %d" % n, answer_contains=["oui"]) for n in range(13)]

    def answer(color, question, n):
        return response({"answer": "oui" if color == "live" else "non", "sources": []})

    result = run(gate_args(cases=cases), FakeColors(answer=answer))[0]
    assert len(result["regressed_cases"]) == 13
    assert '"q09" contains yes -> no; and 3 more' in result["msg"] and '"q10"' not in result["msg"]


def test_a_slower_candidate_regresses_only_past_both_p95_bounds():
    def run_with(candidate_ms):
        latency = {"live": 20.0, "candidate": candidate_ms}
        return run(gate_args(), FakeColors(latency=lambda color: latency[color]))[0]

    assert run_with(120.0)["passed"] is True  # x6 but only +100 ms
    result = run_with(120.1)
    assert result["passed"] is False and [r["check"] for r in result["regressions"]] == ["p95_ms"]
    assert result["regressions"][0]["limit"] == 120.0
    assert result["msg"] == ("quality gate: the candidate is worse than the live color: "
                             "p95 120.1 ms (live 20.0 ms, allowed x2 and +100 ms).")


def test_alone_the_candidate_is_judged_against_the_floors():
    tolerances = dict(min_recall=0.8, min_answer_rate=0.4)
    result = run(gate_args(live_url=None, tolerances=tolerances), FakeColors(answer=wrong_candidate))[0]
    assert result["compared"] is False and result["passed"] is False
    assert [r["check"] for r in result["regressions"]] == ["min_recall"]
    assert result["msg"] == ("quality gate: the gate failed (no live color: the candidate was judged alone, against the "
                             "floors): recall@4 0.50 below the floor min_recall 0.80.")


def test_name_defaults_to_the_question_cut_to_60_characters():
    question = "Pourquoi " + "x" * 80 + " ?"
    result = run(gate_args(cases=[dict(question=question, answer_contains=["20 %"])]),
                 FakeColors(answer=lambda c, q, n: response(GOOD[VAT])))[0]
    name = result["cases"][0]["name"]
    assert len(name) == 60 and name == question[:57] + "..."
    assert result["cases"][0]["question"] == question


@pytest.mark.parametrize("overrides, problem", [
    (dict(cases=[GOLDEN[0], GOLDEN[1], dict(expected_sources=["a"])]), "cases[2].question: required"),
    (dict(cases=[dict(question="")]), "cases[0].question: required"),
    (dict(cases=[GOLDEN[0], dict(name="empty", question="Bonjour ?")]),
     "cases[1] (empty): needs expected_sources or answer_contains"),
    (dict(cases=[dict(question="Bonjour ?", answer_contains=[""])]), "cases[0].answer_contains: must not hold an empty string"),
    (dict(cases=[]), "cases: must not be empty"),
    (dict(k=0), "k: must be 1 to 100"),
    (dict(k=101), "k: must be 1 to 100"),
    (dict(repeat=51), "repeat: must be 1 to 50"),
    (dict(candidate_url="candidate:8000"), "candidate_url: must be an http:// or https:// URL, got 'candidate:8000'"),
    (dict(live_url="ftp://live"), "live_url: must be an http:// or https:// URL"),
    (dict(tolerances=dict(max_p95_ratio=0.9)), "tolerances.max_p95_ratio: must be >= 1"),
    (dict(tolerances=dict(max_p95_increase_ms=-1)), "tolerances.max_p95_increase_ms: must be >= 0"),
    (dict(tolerances=dict(max_recall_drop=1.5)), "tolerances.max_recall_drop: must be 0 to 1"),
    (dict(tolerances=dict(min_answer_rate=-0.1)), "tolerances.min_answer_rate: must be 0 to 1"),
    (dict(tolerances=dict(max_error_rate=2)), "tolerances.max_error_rate: must be 0 to 1"),
    (dict(request=dict(timeout=0)), "request.timeout: must be greater than 0"),
    (dict(request=dict(body={"query": "fixed"})), "request.body: must contain ${question}"),
    (dict(response=dict(sources="a..b")), "response.sources: path 'a..b': must be a dotted path"),
    (dict(response=dict(source_id="")), "response.source_id: path '': must be a dotted path"),
])
def test_invalid_parameters_name_the_field(overrides, problem):
    problems = quality_gate.invalid_parameters(params_for(gate_args(**overrides)))
    assert any(text.startswith(problem) for text in problems), problems


def test_valid_parameters_have_no_problem():
    assert quality_gate.invalid_parameters(params_for(gate_args(response=dict(source_id=".")))) == []


@pytest.fixture
def colors():
    right, wrong = tcp_server(), tcp_server()
    right.script.route("/api/query", Reply(200, {
        "answer": "La TVA est au taux normal de 20 %. Remboursement sous 14 jours.",
        "sources": [{"id": "billing-tva"}, {"id": "refunds"}]}), method="POST")
    wrong.script.route("/api/query", Reply(200, {
        "answer": "Je n'ai pas d'information sur ce sujet.", "sources": [{"id": "shipping"}]}), method="POST")
    yield right, wrong
    right.close()
    wrong.close()


def test_main_against_two_real_servers_fails_a_worse_candidate_and_passes_a_better_one(colors, capsys):
    right, wrong = colors
    result = run_module(quality_gate, dict(candidate_url=wrong.base_url, live_url=right.base_url, cases=GOLDEN), capsys)
    assert result["failed"] is True and result["passed"] is False and result["changed"] is False
    assert result["candidate"]["recall_at_k"] == 0.0 and result["live"]["recall_at_k"] == 1.0
    assert "recall@4 0.00 (live 1.00, allowed drop 0.05)" in result["msg"]
    assert '"Quel est le taux de TVA ?" recall 1.00 -> 0.00, contains yes -> no' in result["msg"]
    assert '"refund" recall 1.00 -> 0.00, contains yes -> no' in result["msg"]
    assert [json.loads(request["body"]) for request in wrong.script.requests] == [{"query": VAT}, {"query": REFUND}]

    result = run_module(quality_gate, dict(candidate_url=right.base_url, live_url=wrong.base_url, cases=GOLDEN),
                        capsys, check_mode=True)
    assert result.get("failed", False) is False and result["passed"] is True and result["changed"] is False
    assert result["regressions"] == [] and result["candidate"]["answer_contains_rate"] == 1.0
    assert right.script.hits("/api/query", method="POST") == 4


def test_main_refuses_bad_input_before_any_request(colors, capsys):
    right, wrong = colors
    args = dict(candidate_url=right.base_url, live_url=wrong.base_url, cases=[dict(question=VAT)], k=0)
    result = run_module(quality_gate, args, capsys)
    assert result["failed"] is True
    assert result["msg"] == ("invalid parameters: k: must be 1 to 100; "
                             "cases[0] (Quel est le taux de TVA ?): needs expected_sources or answer_contains")
    assert right.script.requests == [] and wrong.script.requests == []
