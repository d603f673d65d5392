#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: quality_gate
short_description: Compare the answer quality of a candidate with the live version on a golden set, before the switch
version_added: 0.3.0
description:
  - Sends every question of a golden set (O(cases)) to the candidate color and to the live color, and compares their
    answers. A case names the source ids the retrieval should find (O(cases[].expected_sources)) and words the answer
    should contain (O(cases[].answer_contains)).
  - "Scores of a color: recall@k, the mean over the cases with expected sources of the share of them found among the
    first O(k) sources returned; the answer-contains rate, the share of the cases with words whose answer contains
    all of them (ignoring case and accents); and the p50 and p95 latency of all its requests."
  - "The gate fails when the candidate is worse than the live color beyond O(tolerances): a recall or an
    answer-contains rate lower by more than the allowed drop, or a p95 latency above both O(tolerances.max_p95_ratio)
    times the live one and the live one plus O(tolerances.max_p95_increase_ms). It also fails when the candidate is
    under a floor (O(tolerances.min_recall), O(tolerances.min_answer_rate)), or when either color has more failed
    requests than O(tolerances.max_error_rate)."
  - Without O(live_url) the candidate is judged alone, against the floors and the error rate only, and the result
    says so (RV(compared=false)).
  - The requests are interleaved, so that both colors see the same conditions. For each question and each repeat,
    one request goes to each color, and the color that goes first alternates.
  - "A failed request is a transport error, a status other than 2xx, a body that is not JSON, or a body without
    O(response.answer) (a string) or O(response.sources) (a list). It counts in the error rate, and, when it is the
    first one of a case, as a recall of 0 and a missing answer for that question."
  - It only sends read-only queries and never reports a change.
author: ragops.platform maintainers (@ragops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The queries run in check mode too, since they change nothing (C(POST /api/query) is read-only).
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  candidate_url:
    description: URL of the candidate color, for example V(http://172.30.57.12:8000). O(request.path) is joined to it.
    type: str
    required: true
  live_url:
    description:
      - URL of the live color, to compare with.
      - Absent or empty, the candidate is judged alone, against the floors and the error rate only.
    type: str
  cases:
    description: The golden set. Each case needs O(cases[].expected_sources), O(cases[].answer_contains), or both.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the case in results and messages. Defaults to the question, cut to 60 characters.
        type: str
      question:
        description: The question, put in O(request.body) in place of C(${question}). Required.
        type: str
      expected_sources:
        description: Ids of the sources the retrieval should return among the first O(k).
        type: list
        elements: str
        default: []
      answer_contains:
        description: Words or phrases the answer should all contain, compared regardless of case and accents.
        type: list
        elements: str
        default: []
  request:
    description: How a question is asked.
    type: dict
    suboptions:
      method:
        description: HTTP method.
        type: str
        default: POST
      path:
        description: Path joined to O(candidate_url) and O(live_url).
        type: str
        default: /api/query
      body:
        description:
          - Request body, in which every string containing C(${question}) gets the question in its place, through
            nested dicts and lists. A dict or a list is sent as JSON, a string as it is.
          - It must contain C(${question}) somewhere.
        type: raw
        default: {query: "${question}"}
      headers:
        description: Request headers.
        type: dict
        default: {}
      timeout:
        description: Seconds allowed for one request.
        type: float
        default: 10
  response:
    description: Where the answer and the sources are in the JSON body.
    type: dict
    suboptions:
      sources:
        description: Dotted path of the list of sources.
        type: str
        default: sources
      source_id:
        description: Dotted path of the id inside one source; V(.) when each source is the id itself.
        type: str
        default: id
      answer:
        description: Dotted path of the answer text.
        type: str
        default: answer
  k:
    description: How many of the first sources returned count for recall@k, 1 to 100.
    type: int
    default: 4
  repeat:
    description:
      - How many times each question is sent to each color, 1 to 50.
      - The quality is judged on the first response, the latency over all of them.
    type: int
    default: 1
  tolerances:
    description: How much worse than the live color the candidate may be, and its floors.
    type: dict
    suboptions:
      max_recall_drop:
        description: How much lower than the live one the candidate's recall@k may be.
        type: float
        default: 0.05
      max_answer_rate_drop:
        description: How much lower than the live one the candidate's answer-contains rate may be.
        type: float
        default: 0.05
      max_p95_ratio:
        description: The candidate's p95 may exceed this many times the live one, but not by more than O(tolerances.max_p95_increase_ms) too.
        type: float
        default: 2.0
      max_p95_increase_ms:
        description:
          - Milliseconds by which the candidate's p95 may exceed the live one, but not by more than O(tolerances.max_p95_ratio) too.
          - A p95 regresses only past both, so that noise on millisecond latencies is ignored.
        type: float
        default: 100
      min_recall:
        description: Lowest recall@k allowed for the candidate, with or without a live color. No floor when absent.
        type: float
      min_answer_rate:
        description: Lowest answer-contains rate allowed for the candidate, with or without a live color. No floor when absent.
        type: float
      max_error_rate:
        description: Highest share of failed requests allowed for each color.
        type: float
        default: 0.0
  validate_certs:
    description: Verify the TLS certificate of HTTPS targets.
    type: bool
    default: true
  use_proxy:
    description: Use the proxy from the environment (C(http_proxy), C(https_proxy)). Off, since targets are direct.
    type: bool
    default: false
notes:
  - Latencies are measured from the start of the request until the body is read.
seealso:
  - module: ragops.platform.smoke_test
  - module: ragops.platform.health_gate
"""

EXAMPLES = r"""
- name: Compare the new color with the live one on the golden set before the switch
  ragops.platform.quality_gate:
    candidate_url: http://172.30.57.12:8000
    live_url: http://172.30.57.11:8000
    request:
      body: {query: "${question}", client_id: release-quality}
    cases:
      - question: Quel est le taux de TVA ?
        expected_sources: [billing-tva]
        answer_contains: ["20 %"]
      - name: refund-delay
        question: Sous combien de jours suis-je remboursé ?
        expected_sources: [refunds, billing-tva]
        answer_contains: [14 jours]
    k: 4
    repeat: 3
    tolerances:
      max_recall_drop: 0.05
      min_recall: 0.8
  register: quality

- name: Judge a first release alone, against floors only, on an API that returns source ids as strings
  ragops.platform.quality_gate:
    candidate_url: http://172.30.57.11:8000
    request:
      path: /v2/ask
      body: {input: {text: "${question}"}}
    response:
      sources: result.documents
      source_id: .
      answer: result.text
    cases: "{{ golden_set }}"
    tolerances:
      min_recall: 0.9
      min_answer_rate: 0.8
"""

RETURN = r"""
passed:
  description: Whether the candidate passed the gate.
  returned: always
  type: bool
  sample: false
compared:
  description: Whether a live color was measured and compared with; false when the candidate was judged alone.
  returned: always
  type: bool
  sample: true
k:
  description: The O(k) of recall@k.
  returned: always
  type: int
  sample: 4
candidate:
  description: Scores of the candidate.
  returned: always
  type: dict
  contains:
    recall_at_k:
      description: Mean recall@k over the cases with expected sources; null when there are none.
      type: float
      sample: 0.4
    answer_contains_rate:
      description: Share of the cases with words whose answer contains them all; null when there are none.
      type: float
      sample: 0.5
    p50_ms:
      description: Median latency of all requests, in milliseconds.
      type: float
      sample: 8.2
    p95_ms:
      description: 95th percentile (nearest rank) of the latency of all requests, in milliseconds.
      type: float
      sample: 12.1
    requests:
      description: Requests sent.
      type: int
      sample: 20
    errors:
      description: Failed requests.
      type: int
      sample: 0
    error_rate:
      description: Share of failed requests.
      type: float
      sample: 0.0
live:
  description: Scores of the live color, as RV(candidate); null when it was not measured.
  returned: always
  type: dict
  sample: {"recall_at_k": 0.95, "answer_contains_rate": 0.9, "p50_ms": 7.9, "p95_ms": 9.8,
           "requests": 20, "errors": 0, "error_rate": 0.0}
regressions:
  description: Every limit the gate found passed; empty when it passed.
  returned: always
  type: list
  elements: dict
  contains:
    check:
      description: >-
        V(recall_at_k), V(answer_contains_rate), V(p95_ms) (worse than the live color), V(min_recall),
        V(min_answer_rate) (under a floor), V(error_rate) or V(live_error_rate) (too many failed requests).
      type: str
      sample: recall_at_k
    live:
      description: The live color's value; null without a live color.
      type: float
      sample: 0.95
    candidate:
      description: The candidate's value.
      type: float
      sample: 0.4
    limit:
      description: The value the candidate (or, for V(live_error_rate), the live color) had to stay within.
      type: float
      sample: 0.9
    msg:
      description: The regression in words.
      type: str
      sample: recall@4 0.40 (live 0.95, allowed drop 0.05)
regressed_cases:
  description: The cases where the candidate's recall or contains is worse than the live color's, in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the case.
      type: str
      sample: Quel est le taux de TVA ?
    question:
      description: The question.
      type: str
      sample: Quel est le taux de TVA ?
    live_recall:
      description: The live color's recall@k on this question.
      type: float
      sample: 1.0
    candidate_recall:
      description: The candidate's recall@k on this question.
      type: float
      sample: 0.0
    live_contains:
      description: Whether the live color's answer contains the words.
      type: bool
      sample: true
    candidate_contains:
      description: Whether the candidate's answer contains the words.
      type: bool
      sample: false
    live_source_ids:
      description: Source ids the live color returned.
      type: list
      elements: str
      sample: ["billing-tva", "vat-rates"]
    candidate_source_ids:
      description: Source ids the candidate returned.
      type: list
      elements: str
      sample: ["shipping"]
    candidate_error:
      description: Why the candidate's request failed, else null.
      type: str
      sample: null
cases:
  description: One entry per case, in the order of O(cases).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the case.
      type: str
      sample: refund-delay
    question:
      description: The question.
      type: str
      sample: Sous combien de jours suis-je remboursé ?
    candidate:
      description:
        - What the candidate answered. V(recall) (null without expected sources), V(contains) (null without words),
          V(source_ids) (the ids of the sources returned, null for a source without one), V(latency_ms) (one per
          request), V(requests), V(errors), and V(error) (why its first failed request failed, else null).
        - The quality is the one of the first response.
      type: dict
      sample: {"recall": 0.5, "contains": true, "source_ids": ["refunds", "faq"], "latency_ms": [8.1],
               "requests": 1, "errors": 0, "error": null}
    live:
      description: What the live color answered, as RV(cases[].candidate); null without a live color.
      type: dict
duration:
  description: Seconds the gate took.
  returned: always
  type: float
  sample: 1.92
msg:
  description: The verdict, with both colors' scores and the regressed questions.
  returned: always
  type: str
  sample: >-
    quality gate: the candidate is worse than the live color: recall@4 0.40 (live 0.95, allowed drop 0.05).
    Regressed questions: "Quel est le taux de TVA ?" recall 1.00 -> 0.00
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ragops.platform.plugins.module_utils._golden_set import (
    RELATIVE_CHECKS,
    compare,
    contains_all,
    recall_at_k,
    regressed_cases,
    summarise,
)
from ansible_collections.ragops.platform.plugins.module_utils._http_probe import build_url, connection_argument_spec, probe
from ansible_collections.ragops.platform.plugins.module_utils._json_expect import lookup, show, validate

PLACEHOLDER = "${question}"
NAME_LENGTH = 60
LISTED_CASES = 10


def argument_spec():
    spec = dict(
        candidate_url=dict(type="str", required=True),
        live_url=dict(type="str"),
        cases=dict(type="list", elements="dict", required=True, options=dict(
            name=dict(type="str"),
            question=dict(type="str"),
            expected_sources=dict(type="list", elements="str", default=[]),
            answer_contains=dict(type="list", elements="str", default=[]),
        )),
        request=dict(type="dict", apply_defaults=True, options=dict(
            method=dict(type="str", default="POST"),
            path=dict(type="str", default="/api/query"),
            body=dict(type="raw", default={"query": PLACEHOLDER}),
            headers=dict(type="dict", default={}),
            timeout=dict(type="float", default=10.0),
        )),
        response=dict(type="dict", apply_defaults=True, options=dict(
            sources=dict(type="str", default="sources"),
            source_id=dict(type="str", default="id"),
            answer=dict(type="str", default="answer"),
        )),
        k=dict(type="int", default=4),
        repeat=dict(type="int", default=1),
        tolerances=dict(type="dict", apply_defaults=True, options=dict(
            max_recall_drop=dict(type="float", default=0.05),
            max_answer_rate_drop=dict(type="float", default=0.05),
            max_p95_ratio=dict(type="float", default=2.0),
            max_p95_increase_ms=dict(type="float", default=100.0),
            min_recall=dict(type="float"),
            min_answer_rate=dict(type="float"),
            max_error_rate=dict(type="float", default=0.0),
        )),
    )
    # The connection options of the probing modules, but unix_socket: two colors are not reached through one socket.
    connection = connection_argument_spec()
    spec.update(validate_certs=connection["validate_certs"], use_proxy=connection["use_proxy"])
    return spec


def case_name(case):
    if case["name"]:
        return case["name"]
    question = case["question"] or ""
    return question if len(question) <= NAME_LENGTH else question[:NAME_LENGTH - 3] + "..."


def _mentions_placeholder(value):
    if isinstance(value, str):
        return PLACEHOLDER in value
    if isinstance(value, dict):
        return any(_mentions_placeholder(item) for item in value.values())
    if isinstance(value, list):
        return any(_mentions_placeholder(item) for item in value)
    return False


def substitute(value, question):
    """A copy of ``value`` with the question in place of every ${question} of its strings, recursively."""
    if isinstance(value, str):
        return value.replace(PLACEHOLDER, question)
    if isinstance(value, dict):
        return dict((key, substitute(item, question)) for key, item in value.items())
    if isinstance(value, list):
        return [substitute(item, question) for item in value]
    return value


def _is_url(value):
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def invalid_parameters(params):
    """Texts naming each bad parameter; empty when all are usable."""
    problems = []
    if not _is_url(params["candidate_url"]):
        problems.append("candidate_url: must be an http:// or https:// URL, got %s" % show(params["candidate_url"]))
    if params["live_url"] and not _is_url(params["live_url"]):
        problems.append("live_url: must be an http:// or https:// URL, got %s" % show(params["live_url"]))
    if not 1 <= params["k"] <= 100:
        problems.append("k: must be 1 to 100")
    if not 1 <= params["repeat"] <= 50:
        problems.append("repeat: must be 1 to 50")

    request = params["request"]
    if not request["method"]:
        problems.append("request.method: must not be empty")
    if request["timeout"] <= 0:
        problems.append("request.timeout: must be greater than 0")
    if not _mentions_placeholder(request["body"]):
        problems.append("request.body: must contain %s, or every question would send the same body" % PLACEHOLDER)
    for field in ("sources", "answer"):
        problem = validate(dict(path=params["response"][field], op="exists"))
        if problem:
            problems.append("response.%s: %s" % (field, problem))
    if params["response"]["source_id"] != ".":
        problem = validate(dict(path=params["response"]["source_id"], op="exists"))
        if problem:
            problems.append("response.source_id: %s" % problem)

    tolerances = params["tolerances"]
    for field in ("max_recall_drop", "max_answer_rate_drop", "max_error_rate", "min_recall", "min_answer_rate"):
        if tolerances[field] is not None and not 0 <= tolerances[field] <= 1:
            problems.append("tolerances.%s: must be 0 to 1" % field)
    if tolerances["max_p95_ratio"] < 1:
        problems.append("tolerances.max_p95_ratio: must be >= 1")
    if tolerances["max_p95_increase_ms"] < 0:
        problems.append("tolerances.max_p95_increase_ms: must be >= 0")

    if not params["cases"]:
        problems.append("cases: must not be empty")
    for index, case in enumerate(params["cases"]):
        if not case["question"]:
            problems.append("cases[%d].question: required" % index)
            continue
        if not case["expected_sources"] and not case["answer_contains"]:
            problems.append("cases[%d] (%s): needs expected_sources or answer_contains" % (index, case_name(case)))
        if any(not word for word in case["answer_contains"]):
            problems.append("cases[%d].answer_contains: must not hold an empty string" % index)
    return problems


def _source_id(source, path):
    if path == ".":
        value = source
    else:
        found, value = lookup(source, path)
        if not found:
            return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return str(value)


def read_answer(result, response):
    """(error, answer, source ids) of one probe result; error is None when the response is usable."""
    if result["error"]:
        return "request failed: %s" % result["error"], None, []
    if not 200 <= result["status"] <= 299:
        return "status %d" % result["status"], None, []
    if not result["is_json"]:
        return "body is not JSON: %s" % show(result["body"], limit=80), None, []
    found, sources = lookup(result["json"], response["sources"])
    if not found or not isinstance(sources, list):
        return "%s: %s" % (response["sources"], "not a list" if found else "missing"), None, []
    found, answer = lookup(result["json"], response["answer"])
    if not found or not isinstance(answer, str):
        return "%s: %s" % (response["answer"], "not a string" if found else "missing"), None, []
    return None, answer, [_source_id(source, response["source_id"]) for source in sources]


class CaseRun:
    """What one color answered to one case: the quality of its first response, the latency of every request."""

    def __init__(self, case):
        self.case = case
        self.report = dict(name=case_name(case), question=case["question"], recall=None, contains=None,
                           source_ids=[], latency_ms=[], requests=0, errors=0, error=None)

    def record(self, result, latency_ms, params):
        error, answer, source_ids = read_answer(result, params["response"])
        report = self.report
        report["requests"] += 1
        report["latency_ms"].append(round(latency_ms, 1))
        if error:
            report["errors"] += 1
            report["error"] = report["error"] or error
        if report["requests"] == 1:
            report["source_ids"] = source_ids
            report["recall"] = recall_at_k(self.case["expected_sources"], source_ids, params["k"])
            report["contains"] = contains_all(answer or "", self.case["answer_contains"])


def _score(value):
    return "-" if value is None else "%.2f" % value


def _yes_no(value):
    return "yes" if value else "no"


def _case_change(case):
    parts = []
    if case["candidate_recall"] is not None and case["candidate_recall"] < case["live_recall"]:
        parts.append("recall %.2f -> %.2f" % (case["live_recall"], case["candidate_recall"]))
    if case["live_contains"] and case["candidate_contains"] is False:
        parts.append("contains yes -> no")
    text = '"%s" %s' % (case["name"], ", ".join(parts))
    if case["candidate_error"]:
        text += " (candidate: %s)" % case["candidate_error"]
    return text


def verdict(outcome):
    """The message of the result."""
    candidate, live, k = outcome["candidate"], outcome["live"], outcome["k"]
    alone = "" if outcome["compared"] else " (no live color: the candidate was judged alone, against the floors)"
    if outcome["passed"]:
        scores = []
        for label, key in (("recall@%d" % k, "recall_at_k"), ("answer-contains", "answer_contains_rate")):
            if candidate[key] is not None:
                scores.append("%s %s%s" % (label, _score(candidate[key]), " (live %s)" % _score(live[key]) if live else ""))
        scores.append("p95 %.1f ms%s" % (candidate["p95_ms"], " (live %.1f ms)" % live["p95_ms"] if live else ""))
        return "quality gate passed%s: %s; %d question(s), %d request(s) per color" % (
            alone, ", ".join(scores), len(outcome["cases"]), candidate["requests"])

    regressions = outcome["regressions"]
    if any(regression["check"] in RELATIVE_CHECKS for regression in regressions):
        head = "the candidate is worse than the live color"
    else:
        head = "the gate failed%s" % alone
    text = "quality gate: %s: %s" % (head, "; ".join(regression["msg"] for regression in regressions))
    if live and not any(regression["check"] == "p95_ms" for regression in regressions):
        text += "; p95 %.1f ms (live %.1f ms)" % (candidate["p95_ms"], live["p95_ms"])
    text += "."
    worse = outcome["regressed_cases"]
    if worse:
        listed = "; ".join(_case_change(case) for case in worse[:LISTED_CASES])
        if len(worse) > LISTED_CASES:
            listed += "; and %d more" % (len(worse) - LISTED_CASES)
        text += " Regressed questions: " + listed
    return text


def run_quality_gate(params, send=probe, clock=time.monotonic):
    started = clock()
    request = params["request"]
    colors = [("live", params["live_url"])] if params["live_url"] else []
    colors.append(("candidate", params["candidate_url"]))
    runs = dict((color, [CaseRun(case) for case in params["cases"]]) for color, dummy in colors)

    turn = 0
    for index, case in enumerate(params["cases"]):
        body = substitute(request["body"], case["question"])
        for dummy in range(params["repeat"]):
            # Alternating which color goes first spreads warm caches and load drifts evenly over both.
            for color, base_url in (colors if turn % 2 == 0 else colors[::-1]):
                before = clock()
                result = send(request["method"].upper(), build_url(base_url, request["path"]), headers=request["headers"],
                              body=body, timeout=request["timeout"], validate_certs=params["validate_certs"],
                              use_proxy=params["use_proxy"])
                runs[color][index].record(result, (clock() - before) * 1000.0, params)
            turn += 1

    reports = dict((color, [run.report for run in color_runs]) for color, color_runs in runs.items())
    compared = "live" in reports
    candidate = summarise(reports["candidate"])
    live = summarise(reports["live"]) if compared else None
    regressions = compare(live, candidate, params["tolerances"], k=params["k"])
    cases = []
    for index, case in enumerate(params["cases"]):
        entry = dict(name=case_name(case), question=case["question"])
        for color in ("candidate", "live"):
            report = reports[color][index] if color in reports else None
            entry[color] = dict((key, value) for key, value in report.items() if key not in ("name", "question")) if report else None
        cases.append(entry)

    outcome = dict(
        changed=False,
        passed=not regressions,
        compared=compared,
        k=params["k"],
        candidate=candidate,
        live=live,
        regressions=regressions,
        regressed_cases=regressed_cases(reports["live"], reports["candidate"]) if compared else [],
        cases=cases,
        duration=round(clock() - started, 3),
    )
    outcome["msg"] = verdict(outcome)
    return outcome


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    problems = invalid_parameters(module.params)
    if problems:
        module.fail_json(msg="invalid parameters: %s" % "; ".join(problems), changed=False, passed=False)
    outcome = run_quality_gate(module.params)
    if outcome["passed"]:
        module.exit_json(**outcome)
    module.fail_json(**outcome)


if __name__ == "__main__":
    main()
