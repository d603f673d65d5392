#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: smoke_test
short_description: Run HTTP request cases against one target and check each response
version_added: 0.1.0
description:
  - Sends each case of O(cases) to one target (for example one color of the app, before it gets traffic), in
    order, and checks the responses. Every case runs, even after a failure, so the result names every problem.
  - "A case checks, as asked: the status, fields that must exist, JSON field expectations (the grammar of
    M(ragops.platform.health_gate)), substrings of the answer, a minimum number of sources, and a maximum latency."
  - A case can be sent several times (O(cases[].repeat)) to measure its latency. Every request of the case must
    pass, and O(cases[].max_latency_ms) bounds the slowest one.
  - The module fails when any case fails, with a message that lists the failed cases and their reasons.
  - It never reports a change.
author: ragops.platform maintainers (@ragops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ragops.platform.http_probe
attributes:
  check_mode:
    support: full
    details: The cases run in check mode too. Use only cases that change nothing (C(POST /api/query) is read-only).
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  base_url:
    description:
      - URL of the target, for example V(http://172.30.57.11:8000). Relative case URLs are joined to it.
      - With O(unix_socket), its host part is only sent as the C(Host) header.
    type: str
    required: true
  cases:
    description: The request cases.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the case in results and messages. Defaults to the method and the URL.
        type: str
      method:
        description: HTTP method.
        type: str
        default: GET
      url:
        description:
          - Path joined to O(base_url) (V(/api/query)), or an absolute URL.
          - The alias O(cases[].path) is the name the workload definition (C(ragops_app.smoke.cases)) uses.
        type: str
        required: true
        aliases: [path]
      body:
        description:
          - Request body. A dict or a list is sent as JSON, a string as it is.
          - C(Content-Type) defaults to C(application/json) when a body is given.
        type: raw
      headers:
        description: Request headers.
        type: dict
        default: {}
      status:
        description: Expected status code, or a list of accepted codes. Redirects are not followed.
        type: list
        elements: int
        default: [200]
      required_fields:
        description: Dotted paths that must exist in the JSON body (V(sources), V(sources.0.id)).
        type: list
        elements: str
        default: []
      json:
        description: Expectations on the JSON body, as O(ragops.platform.health_gate#module:checks[].json).
        type: list
        elements: dict
        default: []
        suboptions:
          path:
            description: Dotted path of the field.
            type: str
            required: true
          op:
            description: Comparison, as O(ragops.platform.health_gate#module:checks[].json[].op).
            type: str
            default: eq
            choices: [eq, ne, in, not_in, exists, gt, ge, lt, le, contains, regex]
          value:
            description: The expected value; its type depends on O(cases[].json[].op).
            type: raw
      answer_contains:
        description: Substrings that must all occur in the field O(cases[].answer_field).
        type: list
        elements: str
        default: []
      answer_field:
        description: Dotted path of the answer text.
        type: str
        default: answer
      answer_ignore_case:
        description: Match O(cases[].answer_contains) regardless of case.
        type: bool
        default: true
      min_sources:
        description: Minimum number of items in the list O(cases[].sources_field).
        type: int
      sources_field:
        description: Dotted path of the list of sources.
        type: str
        default: sources
      max_latency_ms:
        description: Maximum latency in milliseconds of each request of the case.
        type: float
      request_timeout:
        description:
          - Seconds allowed for one request (connection, each read, and the whole body).
          - The alias O(cases[].timeout) is the name the workload definition uses.
        type: float
        default: 10
        aliases: [timeout]
      repeat:
        description: How many times the case is sent. Every request must pass.
        type: int
        default: 1
seealso:
  - module: ragops.platform.health_gate
"""

EXAMPLES = r"""
- name: Smoke-test the green color before it gets traffic
  ragops.platform.smoke_test:
    base_url: http://172.30.57.11:8000
    cases:
      - name: vat-question
        method: POST
        url: /api/query
        body: {query: "Quel est le taux de TVA ?", client_id: release-smoke}
        required_fields: [answer, sources, success, degraded]
        json:
          - {path: success, value: true}
          - {path: degraded, value: false}
          - {path: source, value: rag}
        answer_contains: ["20 %"]
        min_sources: 1
        max_latency_ms: 500
        repeat: 5
      - name: bad-input-is-400
        method: POST
        url: /api/query
        body: {query: "", client_id: release-smoke}
        status: 400
        json: [{path: error, op: contains, value: query}]
  register: smoke

- name: Smoke-test with the cases of the workload definition, which write path and timeout
  ragops.platform.smoke_test:
    base_url: http://172.30.57.11:8000
    cases:
      - name: query-tva
        method: POST
        path: /api/query
        body: {query: "Quel est le taux de TVA ?", client_id: release-smoke}
        min_sources: 1
        timeout: 10
"""

RETURN = r"""
passed:
  description: Whether every case passed.
  returned: always
  type: bool
  sample: false
results:
  description: One entry per case, in the order of O(cases).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the case.
      type: str
      sample: vat-question
    url:
      description: Full URL requested.
      type: str
      sample: http://172.30.57.11:8000/api/query
    passed:
      description: Whether every request of the case passed.
      type: bool
      sample: false
    status:
      description: Status code of the last response; null when the last request got none.
      type: int
      sample: 200
    requests:
      description: Requests sent, O(cases[].repeat).
      type: int
      sample: 5
    latency_ms:
      description: Latency of the slowest request in milliseconds, the value checked against O(cases[].max_latency_ms).
      type: float
      sample: 14.2
    latency_p50_ms:
      description: Median latency in milliseconds.
      type: float
      sample: 3.1
    failures:
      description:
        - Why the case failed, one text per reason; empty when it passed.
        - With O(cases[].repeat) above 1, a reason met by only some requests says how many.
      type: list
      elements: str
      sample: ["sources: missing (required)", "sources: missing, expected at least 1 item(s)"]
    response:
      description: The body of the first failed response (else the last one), parsed JSON when it fits in 2 KB, else text cut to 2 KB.
      type: raw
      sample: {"answer": "...", "success": true}
    error:
      description: Why a request got no response (timeout, connection refused), else null.
      type: str
      sample: null
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ragops.platform.plugins.module_utils._http_probe import (
    build_url,
    connection_argument_spec,
    excerpt,
    probe,
    response_failures,
)
from ansible_collections.ragops.platform.plugins.module_utils._json_expect import (
    expectation_argument_spec,
    lookup,
    show,
    validate,
)


def argument_spec():
    spec = connection_argument_spec()
    spec.update(
        cases=dict(type="list", elements="dict", required=True, options=dict(
            name=dict(type="str"),
            method=dict(type="str", default="GET"),
            url=dict(type="str", required=True, aliases=["path"]),
            body=dict(type="raw"),
            headers=dict(type="dict", default={}),
            status=dict(type="list", elements="int", default=[200]),
            required_fields=dict(type="list", elements="str", default=[]),
            json=dict(type="list", elements="dict", default=[], options=expectation_argument_spec()),
            answer_contains=dict(type="list", elements="str", default=[]),
            answer_field=dict(type="str", default="answer"),
            answer_ignore_case=dict(type="bool", default=True),
            min_sources=dict(type="int"),
            sources_field=dict(type="str", default="sources"),
            max_latency_ms=dict(type="float"),
            request_timeout=dict(type="float", default=10.0, aliases=["timeout"]),
            repeat=dict(type="int", default=1),
        )),
    )
    return spec


def case_name(case):
    return case["name"] or "%s %s" % (case["method"].upper(), case["url"])


def invalid_parameters(params):
    problems = []
    if not params["cases"]:
        problems.append("cases must not be empty")
    for index, case in enumerate(params["cases"]):
        label = "cases[%d] (%s)" % (index, case_name(case))
        if case["request_timeout"] <= 0:
            problems.append("%s: request_timeout must be greater than 0" % label)
        if case["repeat"] < 1:
            problems.append("%s: repeat must be at least 1" % label)
        if case["min_sources"] is not None and case["min_sources"] < 0:
            problems.append("%s: min_sources must not be negative" % label)
        if case["max_latency_ms"] is not None and case["max_latency_ms"] <= 0:
            problems.append("%s: max_latency_ms must be greater than 0" % label)
        if not case["status"] or any(not 100 <= code <= 599 for code in case["status"]):
            problems.append("%s: status must be HTTP codes between 100 and 599" % label)
        for expectation in case["json"]:
            problem = validate(expectation)
            if problem:
                problems.append("%s: json %s" % (label, problem))
        for path in case["required_fields"] + [case["answer_field"], case["sources_field"]]:
            problem = validate(dict(path=path, op="exists"))
            if problem:
                problems.append("%s: %s" % (label, problem))
    return problems


def content_failures(case, data):
    """Failures of the checks that read the JSON body beyond the expectations: fields, answer, sources."""
    failures = ["%s: missing (required)" % path for path in case["required_fields"] if not lookup(data, path)[0]]

    if case["answer_contains"]:
        field = case["answer_field"]
        found, answer = lookup(data, field)
        if not found:
            failures.append("%s: missing, expected it to contain %s" % (field, ", ".join(show(s) for s in case["answer_contains"])))
        elif not isinstance(answer, str):
            failures.append("%s: expected a string, got %s" % (field, show(answer)))
        else:
            haystack = answer.lower() if case["answer_ignore_case"] else answer
            for needle in case["answer_contains"]:
                if (needle.lower() if case["answer_ignore_case"] else needle) not in haystack:
                    failures.append("%s: does not contain %s (got %s)" % (field, show(needle), show(answer, limit=160)))

    if case["min_sources"] is not None:
        field, wanted = case["sources_field"], case["min_sources"]
        found, sources = lookup(data, field)
        if not found:
            failures.append("%s: missing, expected at least %d item(s)" % (field, wanted))
        elif not isinstance(sources, list):
            failures.append("%s: expected a list, got %s" % (field, show(sources)))
        elif len(sources) < wanted:
            failures.append("%s: %d item(s), expected at least %d" % (field, len(sources), wanted))
    return failures


def request_failures(case, result):
    failures = response_failures(result, case["status"], case["json"])
    if result["error"]:
        return failures
    needs_body = case["required_fields"] or case["answer_contains"] or case["min_sources"] is not None
    if needs_body:
        if result["is_json"]:
            failures.extend(content_failures(case, result["json"]))
        elif not case["json"]:
            failures.append("body is not JSON: %s" % show(result["body"], limit=80))
    return failures


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2.0


def run_case(case, params):
    url = build_url(params["base_url"], case["url"])
    repeat = case["repeat"]
    counts = {}
    latencies = []
    last = first_failed = None
    for dummy in range(repeat):
        result = probe(case["method"], url, headers=case["headers"], body=case["body"],
                       timeout=case["request_timeout"], unix_socket=params["unix_socket"],
                       validate_certs=params["validate_certs"], use_proxy=params["use_proxy"])
        last = result
        latencies.append(result["latency_ms"])
        reasons = request_failures(case, result)
        if reasons and first_failed is None:
            first_failed = result
        for reason in reasons:
            counts[reason] = counts.get(reason, 0) + 1

    failures = []
    for reason, count in counts.items():
        if count < repeat:
            reason += " (%d of %d requests)" % (count, repeat)
        failures.append(reason)
    slowest = max(latencies)
    if case["max_latency_ms"] is not None and slowest > case["max_latency_ms"]:
        over = sum(1 for latency in latencies if latency > case["max_latency_ms"])
        text = "latency %.1f ms over max_latency_ms %s" % (slowest, show(case["max_latency_ms"]))
        if repeat > 1:
            text += " (%d of %d requests over)" % (over, repeat)
        failures.append(text)

    shown = first_failed or last
    return dict(
        name=case_name(case),
        url=url,
        passed=not failures,
        status=last["status"],
        requests=repeat,
        latency_ms=slowest,
        latency_p50_ms=round(median(latencies), 1),
        failures=failures,
        response=None if shown["error"] else excerpt(shown),
        error=shown["error"],
    )


def run_smoke(params):
    results = [run_case(case, params) for case in params["cases"]]
    failed = [result for result in results if not result["passed"]]
    outcome = dict(changed=False, passed=not failed, results=results)
    if failed:
        outcome["msg"] = "smoke test failed: %d of %d case(s): %s" % (
            len(failed), len(results),
            " | ".join("%s: %s" % (result["name"], "; ".join(result["failures"])) for result in failed))
    else:
        outcome["msg"] = "smoke test passed: %d case(s)" % len(results)
    return outcome


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    problems = invalid_parameters(module.params)
    if problems:
        module.fail_json(msg="invalid parameters: %s" % "; ".join(problems), changed=False, passed=False)
    outcome = run_smoke(module.params)
    if outcome["passed"]:
        module.exit_json(**outcome)
    module.fail_json(**outcome)


if __name__ == "__main__":
    main()
