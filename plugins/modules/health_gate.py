#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: health_gate
short_description: Wait until HTTP health checks of one target pass several times in a row
version_added: 0.1.0
description:
  - Polls a list of HTTP checks against one target (for example one color of the app) until every check has
    passed O(consecutive_successes) times in a row at the same time, or the deadline O(timeout) passes.
  - A check passes when the request gets a response, its status is one of O(checks[].status), its JSON body
    meets every expectation in O(checks[].json), and its body, read as text, contains O(checks[].body_contains)
    and matches O(checks[].body_regex). A plain-text health endpoint needs only the last two.
  - All checks are polled in every round, in order. A failure of a check resets the streak of that check only.
  - "Pacing: after a round in which every check passed, the next round starts after O(interval) exactly, so
    O(consecutive_successes) passes span at least (O(consecutive_successes) - 1) x O(interval) seconds. After a
    round with a failure, the delay backs off exponentially with full jitter: the n-th delay in a row is uniform
    in [0, min(O(max_interval), O(interval) x O(backoff_factor)^n)]. A passing round resets the backoff."
  - "Grace period: O(grace_period) seconds from the start are a start-up grace. The gate polls from the start
    (a target that is already up passes without waiting for the grace to end), but during the grace a failed
    round is followed by O(interval), not by a backoff delay, so the target is seen as soon as it is ready.
    The backoff starts after the grace."
  - The gate starts no request after the deadline, so it returns at most one O(checks[].request_timeout) after it.
  - "Crash watch: with O(container), every round also inspects that container through the Docker Engine API. The
    gate fails at once, with the container's state and last log lines, when the container has exited, is dead, is
    restarting, or has restarted since the gate started. A release that crashes on start fails in about a second
    instead of at the deadline."
  - It only sends requests and never changes anything, so it never reports a change.
author: ragops.platform maintainers (@ragops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ragops.platform.http_probe
attributes:
  check_mode:
    support: full
    details: The probes run in check mode too, since they change nothing. Use only read-only checks.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  base_url:
    description:
      - URL of the target, for example V(http://172.30.57.11:8000). Relative check URLs are joined to it.
      - With O(unix_socket), its host part is only sent as the C(Host) header.
    type: str
    required: true
  checks:
    description: The checks. Every one must pass.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the check in results and messages. Defaults to O(checks[].url).
        type: str
      url:
        description:
          - Path joined to O(base_url) (V(/health)), or an absolute URL.
          - The alias O(checks[].path) is the name the workload definition (C(ragops_app.health.checks)) uses.
        type: str
        required: true
        aliases: [path]
      method:
        description: HTTP method.
        type: str
        default: GET
      status:
        description: Expected status code, or a list of accepted codes. Redirects are not followed.
        type: list
        elements: int
        default: [200]
      json:
        description:
          - Expectations on the JSON body. Each one names a dotted O(checks[].json[].path) (V(checks.db.status);
            an integer segment indexes a list, V(sources.0.id)), an O(checks[].json[].op) and a
            O(checks[].json[].value).
          - Comparisons tolerate templated values. A number equals the same number written as a string, and
            a boolean equals V(true)/V(false) or the strings C("true")/C("false"), but V(1) never equals V(true).
        type: list
        elements: dict
        default: []
        suboptions:
          path:
            description: Dotted path of the field.
            type: str
            required: true
          op:
            description:
              - V(eq), V(ne) compare with O(checks[].json[].value).
              - V(in), V(not_in) test membership in O(checks[].json[].value), a list.
              - V(gt), V(ge), V(lt), V(le) compare numbers (numeric strings included).
              - V(contains) is a substring of a string, an element of a list, or a key of an object.
              - V(regex) searches the field (a string or a number) with the regular expression O(checks[].json[].value).
              - V(exists) requires the field to exist, or to be absent when O(checks[].json[].value=false).
            type: str
            default: eq
            choices: [eq, ne, in, not_in, exists, gt, ge, lt, le, contains, regex]
          value:
            description: The expected value; its type depends on O(checks[].json[].op).
            type: raw
      body_contains:
        description:
          - A substring the body must contain, compared as it is (case included).
          - The body is read as text, so it works for plain-text answers (V(ok)) as well as JSON ones, with or
            without O(checks[].json).
        type: str
      body_regex:
        description:
          - A Python regular expression searched in the body read as text (C(re.search)); it may match anywhere.
          - Anchor it (V(^ok$)) or set flags inline (V((?i\)ready)) as needed.
        type: str
      headers:
        description: Request headers.
        type: dict
        default: {}
      body:
        description:
          - Request body. A dict or a list is sent as JSON, a string as it is.
          - C(Content-Type) defaults to C(application/json) when a body is given.
        type: raw
      request_timeout:
        description:
          - Seconds allowed for one request (connection, each read, and the whole body).
          - The alias O(checks[].timeout) is the name the workload definition uses. It is not O(timeout), the deadline of the gate.
        type: float
        default: 2
        aliases: [timeout]
  consecutive_successes:
    description: How many times in a row each check must pass.
    type: int
    default: 3
  timeout:
    description: Deadline in seconds from the start of the module, grace period included.
    type: float
    default: 60
  grace_period:
    description: Start-up grace in seconds during which failures do not grow the delay between rounds.
    type: float
    default: 0
  interval:
    description: Delay in seconds after a passing round, during the grace period, and first bound of the backoff.
    type: float
    default: 0.5
  max_interval:
    description: Cap in seconds of the backoff delay.
    type: float
    default: 5
  backoff_factor:
    description: Growth factor of the backoff bound after each failing round.
    type: float
    default: 2
  container:
    description: The Docker container that serves O(base_url), watched for a crash (see the description).
    type: dict
    suboptions:
      name:
        description: Container name or id.
        type: str
        required: true
      docker_socket:
        description: Unix socket of the Docker Engine API.
        type: path
        default: /var/run/docker.sock
      log_lines:
        description: How many of the container's last log lines a crash report carries.
        type: int
        default: 8
notes:
  - Latencies are measured from the start of the request until the body is read.
seealso:
  - module: ragops.platform.smoke_test
"""

EXAMPLES = r"""
- name: Gate the green color before it gets traffic
  ragops.platform.health_gate:
    base_url: http://172.30.57.11:8000
    consecutive_successes: 3
    timeout: 60
    grace_period: 10
    checks:
      - url: /health
        json:
          - {path: status, value: healthy}
          - {path: version, value: "{{ version }}"}
          - {path: color, value: green}
      - url: /health/db
        json: [{path: status, value: ok}]
      - url: /health/vector
        json:
          - {path: status, value: ok}
          - {path: chunk_count, op: gt, value: 0}
      - url: /health/ai
        request_timeout: 5
        json: [{path: status, value: ok}]
  register: gate

- name: Gate a freshly started color, failing at once if its container crashes
  ragops.platform.health_gate:
    base_url: http://172.30.57.11:8000
    timeout: 30
    checks:
      - url: /health
        json: [{path: status, value: healthy}]
    container:
      name: ragops-app-green

- name: Gate a service whose health endpoint answers plain text, with the workload's names (path, timeout)
  ragops.platform.health_gate:
    base_url: http://172.30.57.12:9000
    checks:
      - path: /healthz
        status: [200]
        body_contains: ok
        timeout: 1
      - path: /version
        body_regex: '^v?1\.4\.'

- name: Check the nginx admin API over its unix socket
  ragops.platform.health_gate:
    base_url: http://localhost
    unix_socket: /opt/ragops/nginx/run/admin.sock
    consecutive_successes: 1
    timeout: 10
    checks:
      - name: admin-live
        url: /live
        json: [{path: color, op: in, value: [blue, green]}]
"""

RETURN = r"""
passed:
  description: Whether every check reached O(consecutive_successes) passes in a row.
  returned: always
  type: bool
  sample: true
elapsed:
  description: Seconds from the start of the module until the gate decided.
  returned: always
  type: float
  sample: 2.31
rounds:
  description: Number of polling rounds.
  returned: always
  type: int
  sample: 6
checks:
  description: One entry per check, in the order of O(checks).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the check.
      type: str
      sample: /health
    url:
      description: Full URL requested.
      type: str
      sample: http://172.30.57.11:8000/health
    method:
      description: HTTP method.
      type: str
      sample: GET
    passed:
      description: Whether this check reached its streak.
      type: bool
      sample: true
    attempts:
      description: Requests sent.
      type: int
      sample: 6
    successes:
      description: Requests that passed.
      type: int
      sample: 3
    consecutive:
      description: Current streak of passes.
      type: int
      sample: 3
    latencies_ms:
      description: Latency of each request in milliseconds, the last 50 only.
      type: list
      elements: float
      sample: [12.5, 1.9, 1.7]
    last_status:
      description: Status code of the last response; null when the last request got none.
      type: int
      sample: 200
    last_response:
      description: The last response body, parsed JSON when it fits in 2 KB, else text cut to 2 KB.
      type: raw
      sample: {"status": "healthy", "version": "1.1.0"}
    last_error:
      description: Why the last request got no response (timeout, connection refused), else null.
      type: str
      sample: "connection failed: [Errno 111] Connection refused"
    failures:
      description: Why the last request failed, one text per missed expectation; empty when it passed.
      type: list
      elements: str
      sample: ["expected status 200, got 503", "body: expected to contain 'ok', got 'starting'"]
    last_failure:
      description: The failure texts of the most recent failed request, even if later ones passed.
      type: list
      elements: str
      sample: ["request failed: timed out after 2.0 s"]
container:
  description: What the crash watch saw last.
  returned: when O(container) is given
  type: dict
  contains:
    name:
      description: The container watched.
      type: str
      sample: ragops-app-green
    status:
      description: Docker's state of the container (C(running), C(restarting), C(exited), ...), null when it is gone.
      type: str
      sample: restarting
    exit_code:
      description:
        - Exit code of the run that ended, while the container is down (exited, dead or restarting); V(0), as Docker
          reports it, while it runs and has not restarted since the gate started.
        - Null when it runs again after restarting since the gate started. Docker then reports the new run's code, and
          the one of the run that ended is not known.
      type: int
      sample: 3
    restart_count:
      description: Docker's restart count.
      type: int
      sample: 2
    crashed:
      description: Whether the gate stopped because the container crashed.
      type: bool
      sample: true
    reason:
      description: Why it counts as crashed, else null.
      type: str
      sample: "the container is crash-looping: restarting after exit code 3, 2 restart(s)"
    logs:
      description: The container's last O(container.log_lines) log lines, after a crash; else empty.
      type: list
      elements: str
      sample: ["CRITICAL drill crash_on_start: exiting on purpose before serving"]
"""

import json
import random
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ragops.platform.plugins.module_utils._backoff import Backoff
from ansible_collections.ragops.platform.plugins.module_utils._docker_engine import (
    DEFAULT_SOCKET,
    DockerEngine,
    DockerEngineError,
    crash_reason,
)
from ansible_collections.ragops.platform.plugins.module_utils._http_probe import (
    build_url,
    connection_argument_spec,
    excerpt,
    probe,
    response_failures,
)
from ansible_collections.ragops.platform.plugins.module_utils._json_expect import expectation_argument_spec, show, validate

LATENCY_HISTORY = 50
MESSAGE_EXCERPT = 300


def argument_spec():
    spec = connection_argument_spec()
    spec.update(
        checks=dict(type="list", elements="dict", required=True, options=dict(
            name=dict(type="str"),
            url=dict(type="str", required=True, aliases=["path"]),
            method=dict(type="str", default="GET"),
            status=dict(type="list", elements="int", default=[200]),
            json=dict(type="list", elements="dict", default=[], options=expectation_argument_spec()),
            body_contains=dict(type="str"),
            body_regex=dict(type="str"),
            headers=dict(type="dict", default={}),
            body=dict(type="raw"),
            request_timeout=dict(type="float", default=2.0, aliases=["timeout"]),
        )),
        consecutive_successes=dict(type="int", default=3),
        timeout=dict(type="float", default=60.0),
        grace_period=dict(type="float", default=0.0),
        interval=dict(type="float", default=0.5),
        max_interval=dict(type="float", default=5.0),
        backoff_factor=dict(type="float", default=2.0),
        container=dict(type="dict", options=dict(
            name=dict(type="str", required=True),
            docker_socket=dict(type="path", default=DEFAULT_SOCKET),
            log_lines=dict(type="int", default=8),
        )),
    )
    return spec


def invalid_parameters(params):
    """Texts naming each bad parameter; empty when all are usable."""
    problems = []
    if params["consecutive_successes"] < 1:
        problems.append("consecutive_successes must be at least 1")
    for name in ("timeout", "interval"):
        if params[name] <= 0:
            problems.append("%s must be greater than 0" % name)
    if params["grace_period"] < 0:
        problems.append("grace_period must not be negative")
    if params["max_interval"] < params["interval"]:
        problems.append("max_interval (%s) must be at least interval (%s)" % (params["max_interval"], params["interval"]))
    if params["backoff_factor"] < 1:
        problems.append("backoff_factor must be at least 1")
    if not params["checks"]:
        problems.append("checks must not be empty")
    if params["container"] and params["container"]["log_lines"] < 0:
        problems.append("container.log_lines must not be negative")
    for index, check in enumerate(params["checks"]):
        label = "checks[%d] (%s)" % (index, check["name"] or check["url"])
        if check["request_timeout"] <= 0:
            problems.append("%s: request_timeout must be greater than 0" % label)
        if not check["status"] or any(not 100 <= code <= 599 for code in check["status"]):
            problems.append("%s: status must be HTTP codes between 100 and 599" % label)
        for expectation in check["json"]:
            problem = validate(expectation)
            if problem:
                problems.append("%s: json %s" % (label, problem))
        if check["body_contains"] == "":
            problems.append("%s: body_contains must not be empty" % label)
        if check["body_regex"] is not None:
            try:
                re.compile(check["body_regex"])
            except re.error as exc:
                problems.append("%s: body_regex %s is not a valid regular expression: %s" % (label, show(check["body_regex"]), exc))
    return problems


class Check:
    def __init__(self, spec, base_url):
        self.spec = spec
        self.name = spec["name"] or spec["url"]
        self.url = build_url(base_url, spec["url"])
        self.method = spec["method"].upper()
        self.attempts = 0
        self.successes = 0
        self.consecutive = 0
        self.latencies_ms = []
        self.last = None
        self.failures = []
        self.last_failure = []

    def record(self, result):
        self.attempts += 1
        self.last = result
        self.latencies_ms = (self.latencies_ms + [result["latency_ms"]])[-LATENCY_HISTORY:]
        self.failures = response_failures(result, self.spec["status"], self.spec["json"],
                                          body_contains=self.spec["body_contains"], body_regex=self.spec["body_regex"])
        if self.failures:
            self.consecutive = 0
            self.last_failure = self.failures
        else:
            self.successes += 1
            self.consecutive += 1
        return not self.failures

    def report(self, needed):
        last = self.last or {}
        return dict(
            name=self.name,
            url=self.url,
            method=self.method,
            passed=self.consecutive >= needed,
            attempts=self.attempts,
            successes=self.successes,
            consecutive=self.consecutive,
            latencies_ms=list(self.latencies_ms),
            last_status=last.get("status"),
            last_response=excerpt(last) if self.last and not last.get("error") else None,
            last_error=last.get("error"),
            failures=list(self.failures),
            last_failure=list(self.last_failure),
        )

    def reason(self, needed):
        """Why this check has not passed, for the failure message."""
        if not self.attempts:
            return "%s: not probed before the deadline" % self.name
        if self.failures:
            text = "%s: %s" % (self.name, "; ".join(self.failures))
            if not self.last.get("error"):
                last = self.last["json"] if self.last["is_json"] else self.last["body"]
                shown = last if isinstance(last, str) else json.dumps(last, sort_keys=True)
                if len(shown) > MESSAGE_EXCERPT:
                    shown = shown[:MESSAGE_EXCERPT - 3] + "..."
                text += " (last: %s)" % shown
            return text
        text = "%s: only %d of %d passes in a row" % (self.name, self.consecutive, needed)
        if self.last_failure:
            return text + ", last failure: %s" % "; ".join(self.last_failure)
        return text + " before the deadline"


class CrashWatch:
    """Inspects the target's container each round; `crashed()` names why it stopped serving for good."""

    def __init__(self, spec):
        self.spec = spec
        self.engine = DockerEngine(spec["docker_socket"])
        self.baseline = None
        self.report = dict(name=spec["name"], status=None, exit_code=None, restart_count=None, crashed=False,
                           reason=None, logs=[])

    def crashed(self):
        inspected = self.engine.inspect(self.spec["name"])
        if inspected is not None:
            state = inspected.get("State") or {}
            restarts = int(inspected.get("RestartCount") or 0)
            if self.baseline is None:
                self.baseline = restarts
            exit_code = state.get("ExitCode")
            if state.get("Running") and not state.get("Restarting") and restarts > self.baseline:
                exit_code = None  # running again: Docker's ExitCode is the new run's (0), the ended run's is not known
            self.report.update(status=state.get("Status"), exit_code=exit_code, restart_count=restarts)
        reason = crash_reason(inspected, self.baseline or 0)
        if reason:
            logs = self.engine.log_tail(self.spec["name"], self.spec["log_lines"])
            self.report.update(crashed=True, reason=reason, logs=logs)
        return reason


def run_gate(params, sleep=time.sleep, clock=time.monotonic, rng=random.random, watch=None):
    needed = params["consecutive_successes"]
    checks = [Check(spec, params["base_url"]) for spec in params["checks"]]
    backoff = Backoff(params["interval"], params["backoff_factor"], params["max_interval"], rng=rng)
    started = clock()
    deadline = started + params["timeout"]
    grace_end = started + params["grace_period"]
    rounds = 0
    passed = False
    crash = None

    while clock() < deadline:
        crash = watch.crashed() if watch else None
        if crash:
            break
        rounds += 1
        round_passed = True
        for check in checks:
            if clock() >= deadline:
                round_passed = False
                break
            result = probe(check.method, check.url, headers=check.spec["headers"], body=check.spec["body"],
                           timeout=check.spec["request_timeout"], unix_socket=params["unix_socket"],
                           validate_certs=params["validate_certs"], use_proxy=params["use_proxy"])
            round_passed = check.record(result) and round_passed
        if all(check.consecutive >= needed for check in checks):
            passed = True
            break
        now = clock()
        if now >= deadline:
            break
        if round_passed:
            backoff.reset()
            delay = params["interval"]
        elif now < grace_end:
            delay = params["interval"]
        else:
            delay = backoff.next_delay()
        sleep(min(delay, deadline - now))

    elapsed = clock() - started
    result = dict(
        changed=False,
        passed=passed,
        elapsed=round(elapsed, 3),
        rounds=rounds,
        checks=[check.report(needed) for check in checks],
    )
    if watch:
        result["container"] = watch.report
    if crash:
        logs = " | ".join(watch.report["logs"][-3:])
        result["msg"] = "health gate failed after %.1f s: %s: %s%s" % (
            elapsed, watch.spec["name"], crash, ("; last log lines: " + logs) if logs else "")
    elif passed:
        result["msg"] = "health gate passed after %.1f s: %d check(s), %d pass(es) in a row each" % (
            elapsed, len(checks), needed)
    else:
        reasons = [check.reason(needed) for check in checks if check.consecutive < needed]
        result["msg"] = "health gate failed after %.1f s: %s" % (elapsed, " | ".join(reasons))
    return result


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    problems = invalid_parameters(module.params)
    if problems:
        module.fail_json(msg="invalid parameters: %s" % "; ".join(problems), changed=False, passed=False)
    watch = CrashWatch(module.params["container"]) if module.params["container"] else None
    try:
        result = run_gate(module.params, watch=watch)
    except DockerEngineError as exc:
        module.fail_json(msg="health gate: container watch: %s" % exc, changed=False, passed=False,
                         container=watch.report)
    if result["passed"]:
        module.exit_json(**result)
    module.fail_json(**result)


if __name__ == "__main__":
    main()
