#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: metric_analysis
short_description: Judge an app color from its error rate and p95 latency after a switch
version_added: 0.1.0
author: ragops.platform maintainers (@ragops)
description:
  - Analyses ONE app color for O(window) seconds, with one check every O(interval) seconds. Each check measures the
    color's error rate (the 5xx share of C(rag_requests_total) for O(endpoint)) and its p95 latency (the 0.95
    C(histogram_quantile) of C(rag_request_duration_seconds_bucket) for O(endpoint)).
  - A check counts only if it saw at least O(min_samples) requests. It fails when the error rate is above
    O(max_error_rate) or the p95 latency above O(max_p95_latency_ms), and passes otherwise. Below O(min_samples) it is
    inconclusive.
  - Fail fast. The analysis stops at the check that brings the failing checks to O(failure_limit) (1 by default), so a
    bad release loses its traffic within one interval. Otherwise the verdict, after all the checks, is V(pass) if at
    least one check passed, V(fail) if none passed but some failed, and V(inconclusive) if no check counted.
  - The module fails on V(fail), and on V(inconclusive) when O(on_inconclusive=fail), with the numbers in the message.
    The result always carries the checks and RV(decision_at), the time of the verdict, so the playbook can switch back
    at once and measure how long that took.
  - B(Prometheus) source. Instant queries of C(increase) over a range, filtered by the target labels C(color) (and
    C(version) when O(version) is set) that the app role's file_sd gives to the C(rag-app) job. The range is
    O(prometheus_range), because C(increase) needs two scrapes in it.
  - B(App metrics) source. The color's C(/metrics) is scraped at the start and at the end of every check; the module
    computes the counter and bucket increases itself (a counter reset counts as a restart, as C(increase) does), and
    the p95 by linear interpolation within buckets, like C(histogram_quantile). It also checks C(rag_build_info) -- the
    color, and the version when O(version) is set, must be the expected ones, or the module fails at once.
  - B(Probes). When O(probe_url) is set, the module POSTs O(probe_body) to it at O(probe_rate) per second during the
    first interval, and during every interval that follows one with fewer than O(min_samples) real requests. Probes
    answered by the color are in its metrics already. Probes that got no answer from any app color (a refused
    connection, a timeout, an nginx error page) are added to the check as failed requests. Probes answered by the other
    color are counted in RV(probes_sent) only.
  - Nothing is changed, so C(changed) is always false.
  - HTTP proxy environment variables are ignored; every URL is reached directly.
options:
  color:
    description: The color to analyse.
    type: str
    required: true
    choices: [blue, green]
  version:
    description: The version the color must run. Adds C(version="...") to the Prometheus selectors and is checked
      against C(rag_build_info) with the app metrics source.
    type: str
  source:
    description:
      - Where the numbers come from. V(auto) uses Prometheus if it answers and already has a C(rag_build_info) series of
        the color (and version), and the app's O(app_metrics_url) otherwise.
    type: str
    choices: [auto, prometheus, app_metrics]
    default: auto
  prometheus_url:
    description: Base URL of Prometheus.
    type: str
    default: http://127.0.0.1:9090
  prometheus_range:
    description:
      - Range in seconds of C(increase) in the Prometheus queries of each check. It must hold two scrapes.
      - Defaults to the larger of O(interval) and 15 (three scrapes at the stack's 5 s scrape interval). With a range
        longer than O(interval), consecutive checks overlap.
    type: float
  app_metrics_url:
    description: The color's own metrics URL, for example V(http://172.30.57.11:8000/metrics). Required with
      O(source=app_metrics).
    type: str
  endpoint:
    description: Value of the C(endpoint) label to analyse.
    type: str
    default: /api/query
  window:
    description: Total duration of the analysis in seconds. The number of checks is O(window) divided by O(interval).
    type: float
    default: 30
  interval:
    description: Seconds between checks; each check measures the requests of its interval.
    type: float
    default: 5
  max_error_rate:
    description: Highest acceptable share of 5xx answers in a check, from 0 to 1.
    type: float
    default: 0.05
  max_p95_latency_ms:
    description: Highest acceptable p95 latency in a check, in milliseconds.
    type: float
    default: 1000
  min_samples:
    description: Requests a check needs before its verdict counts.
    type: int
    default: 20
  failure_limit:
    description: Failing checks that end the analysis with V(fail).
    type: int
    default: 1
  probe_url:
    description:
      - URL that receives synthetic POSTs when real traffic is low, through the load balancer
        (V(http://127.0.0.1:8080/api/query)) or at the color directly (V(http://172.30.57.11:8000/api/query)).
      - Without it, no probe is sent.
      - Through the load balancer, keep O(probe_rate) below nginx's per-client rate limit (20 per second by default).
    type: str
  probe_body:
    description:
      - JSON body of each probe, as a dictionary or a JSON string. It must be a valid request, so that a healthy color
        answers 2xx.
      - 'Defaults to C({"query": "ragops release probe", "client_id": "ragops-probe"}).'
    type: raw
  probe_rate:
    description: Probes per second while probing.
    type: float
    default: 10
  on_inconclusive:
    description: What an inconclusive analysis does. V(fail) fails the task; V(pass) returns RV(verdict=inconclusive)
      without failing.
    type: str
    choices: [pass, fail]
    default: fail
  request_timeout:
    description: Timeout in seconds of each Prometheus query, scrape and probe.
    type: float
    default: 5
  abort_to:
    description:
      - The color to give traffic back to the moment the analysis fails (a V(fail) verdict, or V(inconclusive) with
        O(on_inconclusive=fail)), before the module returns. The switch is a compare-and-set from O(color) through
        the nginx admin API on O(admin_socket), so it never overrides a switch made by someone else meanwhile.
      - Without it nothing is switched and the caller must switch back itself, one task later.
    type: str
    choices: [blue, green]
  admin_socket:
    description: Path of the nginx admin API's unix socket on the host. Used with O(abort_to).
    type: path
    default: /opt/ragops/nginx/run/admin.sock
attributes:
  check_mode:
    description: In check mode nothing is measured (before a switch there is nothing to analyse) and RV(verdict) is
      V(skipped).
    support: full
  diff_mode:
    description: The only change is the abort switch (O(abort_to)), reported in RV(aborted); there is no diff.
    support: none
notes:
  - Run it on the Docker host, which reaches Prometheus on 127.0.0.1 and the colors at their fixed addresses.
  - To take traffic away fast on failure, set O(abort_to) to the old color, and put this task in a C(block) whose
    C(rescue) runs M(ragops.platform.traffic_switch) back to the old color (a no-op that verifies, once the abort
    switched), before recording anything.
seealso:
  - module: ragops.platform.traffic_switch
"""

EXAMPLES = r"""
- name: Analyse green for 30 s after the switch, probing at the color when traffic is low
  ragops.platform.metric_analysis:
    color: green
    version: "1.1.0"
    source: auto
    app_metrics_url: http://172.30.57.11:8000/metrics
    window: 30
    interval: 5
    max_error_rate: 0.05
    max_p95_latency_ms: 1000
    min_samples: 20
    failure_limit: 1
    probe_url: http://172.30.57.11:8000/api/query
    probe_rate: 10
    on_inconclusive: fail
    abort_to: blue
    admin_socket: /opt/ragops/nginx/run/admin.sock
  register: analysis

- name: The same from the app's /metrics only, tolerating an inconclusive result
  ragops.platform.metric_analysis:
    color: green
    source: app_metrics
    app_metrics_url: http://172.30.57.11:8000/metrics
    on_inconclusive: pass
  register: analysis
"""

RETURN = r"""
verdict:
  description: V(pass), V(fail), V(inconclusive), or V(skipped) in check mode.
  returned: always
  type: str
  sample: fail
source_used:
  description: V(prometheus) or V(app_metrics); null in check mode.
  returned: always
  type: str
  sample: app_metrics
checks:
  description: One entry per check made, in order.
  returned: always
  type: list
  elements: dict
  contains:
    at:
      description: UTC time at the end of the check (ISO 8601).
      type: str
      sample: "2026-11-25T12:42:35.402Z"
    samples:
      description: Requests counted in the check (probes included).
      type: int
      sample: 96
    errors:
      description: Failed requests among them (5xx, plus probes that no color answered).
      type: int
      sample: 46
    error_rate:
      description: errors / samples, from 0 to 1; null without requests.
      type: float
      sample: 0.4792
    p95_ms:
      description: p95 latency in milliseconds; null without observations.
      type: float
      sample: 9.4
    ok:
      description: true passed, false failed, null inconclusive.
      type: bool
      sample: false
    reason:
      description: The numbers behind the verdict of the check.
      type: str
      sample: error rate 47.9% > 5.0%
    probes_sent:
      description: Probes sent during the check.
      type: int
      sample: 0
    probe_failures:
      description: Probes that failed during the check.
      type: int
      sample: 0
    judged_on:
      description: V(metrics) when the check was judged on the source's numbers; V(probes) when the source had
        fewer requests than the probes sent (Prometheus not yet scraped the new color) and the probes' own
        outcomes were judged instead.
      type: str
      sample: metrics
checks_planned:
  description: O(window) divided by O(interval).
  returned: always
  type: int
  sample: 6
failing_checks:
  description: Checks that failed.
  returned: always
  type: int
  sample: 1
probes_sent:
  description: Probes sent in total.
  returned: always
  type: int
  sample: 0
probe_failures:
  description: Probes that failed in total (no answer, or a non-2xx answer).
  returned: always
  type: int
  sample: 0
decision_at:
  description: UTC time of the verdict (ISO 8601); null in check mode.
  returned: always
  type: str
  sample: "2026-11-25T12:42:40.411Z"
decision_epoch:
  description: The same time in epoch seconds; null in check mode.
  returned: always
  type: float
  sample: 1795609360.411
elapsed_ms:
  description: Duration of the analysis in milliseconds.
  returned: always
  type: float
  sample: 10012.5
aborted:
  description: The abort switch to O(abort_to) after a failing analysis; null when none was attempted.
  returned: always
  type: dict
  contains:
    color:
      description: The color traffic was given back to.
      type: str
      sample: blue
    switched:
      description: Whether nginx switched (false when it refused, for example because the live color had changed).
      type: bool
      sample: true
    switched_at:
      description: Epoch seconds when nginx confirmed the switch; null if it did not switch.
      type: float
      sample: 1795609360.418
    switch_ms:
      description: Duration of the admin call in milliseconds.
      type: float
      sample: 3.2
    error:
      description: Why it did not switch; null if it did.
      type: str
      sample: null
"""

import json
import math
import re
import threading
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible_collections.ragops.platform.plugins.module_utils import _prom_text as prom_text
from ansible_collections.ragops.platform.plugins.module_utils._http_probe import probe
from ansible_collections.ragops.platform.plugins.module_utils._nginx_admin import AdminError, NginxAdmin, switch_live
from ansible_collections.ragops.platform.plugins.module_utils._platform import ADMIN_SOCKET, COLORS
from ansible_collections.ragops.platform.plugins.module_utils._prom_query import (
    PrometheusClient,
    PrometheusError,
    selector,
)
from ansible_collections.ragops.platform.plugins.module_utils._utc_time import format_time, utc_now

QUANTILE = 0.95
ERROR_STATUS = "5.."
DEFAULT_PROBE_BODY = {"query": "ragops release probe", "client_id": "ragops-probe"}
PROBES_IN_FLIGHT = 32
MAX_SCRAPE_BYTES = 16 * 1024 * 1024


class MeasureError(Exception):
    def __init__(self, message, failing):
        super(MeasureError, self).__init__(message)
        self.failing = failing


class IdentityError(Exception):
    pass


def decision_time():
    """(UTC ISO 8601 text, epoch seconds) of now."""
    return format_time(utc_now()), time.time()


def planned_checks(params):
    return max(1, int(params["window"] / params["interval"] + 1e-9))


def no_analysis(**values):
    """A result with every key RETURN documents as always returned, for an analysis that measured nothing."""
    result = dict(verdict="fail", source_used=None, checks=[], checks_planned=0, failing_checks=0, probes_sent=0,
                  probe_failures=0, decision_at=None, decision_epoch=None, elapsed_ms=0.0, aborted=None)
    result.update(values)
    return result


def fail_without_source(module, msg):
    """Fails the module before any check: no metrics source can be used."""
    decision_at, decision_epoch = decision_time()
    module.fail_json(msg=msg, **no_analysis(checks_planned=planned_checks(module.params), decision_at=decision_at,
                                            decision_epoch=decision_epoch))


class AppMetricsSampler(object):
    name = "app_metrics"

    def __init__(self, url, endpoint, color, version, timeout):
        self.url, self.color, self.version, self.timeout = url, color, version, timeout
        self.selector = {"endpoint": endpoint}
        self.error_selector = {"endpoint": endpoint, "status": re.compile(ERROR_STATUS)}
        self.baseline = None

    def _snapshot(self):
        answer = probe("GET", self.url, timeout=self.timeout, max_body=MAX_SCRAPE_BYTES)
        if answer["error"] or answer["status"] != 200:
            raise MeasureError("cannot scrape %s: %s" % (self.url, answer["error"] or "HTTP %s" % answer["status"]),
                               failing=True)
        try:
            samples = prom_text.parse(answer["body"])
        except prom_text.PromTextError as exc:
            raise MeasureError("cannot parse %s: %s" % (self.url, exc), failing=True)
        self._check_identity(samples)
        return (
            prom_text.sum_values(samples, "rag_requests_total", self.selector),
            prom_text.sum_values(samples, "rag_requests_total", self.error_selector),
            prom_text.histogram_buckets(samples, "rag_request_duration_seconds", self.selector),
        )

    def _check_identity(self, samples):
        info = [sample.labels for sample in prom_text.select(samples, "rag_build_info") if sample.value == 1]
        if not info:
            raise IdentityError("%s has no rag_build_info: is it the app's metrics URL?" % self.url)
        if not any(labels.get("color") == self.color and (self.version is None or labels.get("version") == self.version)
                   for labels in info):
            raise IdentityError("%s is served by color %s version %s, not %s%s" % (
                self.url, info[0].get("color"), info[0].get("version"), self.color,
                "" if self.version is None else " version " + self.version))

    def start(self):
        try:
            self.baseline = self._snapshot()
        except MeasureError:
            self.baseline = None

    def measure(self):
        before, current = self.baseline, None
        try:
            current = self._snapshot()
        finally:
            self.baseline = current
        if before is None:
            raise MeasureError("baseline scrape of %s missing; measuring from the next check" % self.url,
                               failing=False)
        # A lower counter means the process restarted: count everything since, as increase() does.
        reset = current[0] < before[0] or current[1] < before[1]
        total = current[0] if reset else current[0] - before[0]
        errors = current[1] if reset else current[1] - before[1]
        buckets = current[2] if reset else prom_text.bucket_increase(before[2], current[2])
        p95 = prom_text.histogram_quantile(QUANTILE, buckets) if buckets else float("nan")
        return total, errors, p95


class PrometheusSampler(object):
    name = "prometheus"

    def __init__(self, client, endpoint, color, version, range_seconds):
        labels = {"endpoint": endpoint, "color": color}
        if version is not None:
            labels["version"] = version
        window = "[%dms]" % int(round(range_seconds * 1000))
        self.client = client
        self.queries = {
            "total": "sum(increase(rag_requests_total%s%s))" % (selector(labels), window),
            "errors": "sum(increase(rag_requests_total%s%s))" % (
                selector(labels, {"status": ERROR_STATUS}), window),
            "p95": "histogram_quantile(%s, sum by (le) (increase(rag_request_duration_seconds_bucket%s%s)))" % (
                QUANTILE, selector(labels), window),
        }

    def start(self):
        return None

    def measure(self):
        try:
            total = self.client.value(self.queries["total"]) or 0.0
            errors = self.client.value(self.queries["errors"]) or 0.0
            p95 = self.client.value(self.queries["p95"])
        except PrometheusError as exc:
            raise MeasureError(to_native(exc), failing=False)
        return total, errors, float("nan") if p95 is None else p95


class Prober(object):
    def __init__(self, url, body, rate, timeout, color):
        self.url, self.rate, self.timeout, self.color = url, rate, timeout, color
        self.body = to_bytes(body)
        self.slots = threading.BoundedSemaphore(PROBES_IN_FLIGHT)
        self.lock = threading.Lock()
        self.count = 0

    def _probe(self, stats, number):
        try:
            headers = {"Content-Type": "application/json", "X-Request-ID": "ragops-probe-%d" % number}
            answer = probe("POST", self.url, headers=headers, body=self.body, timeout=self.timeout)
            served_by = answer["headers"].get("x-app-color")
            with self.lock:
                if answer["error"] or not 200 <= answer["status"] < 300:
                    stats["failures"] += 1
                    stats["last_error"] = answer["error"] or "HTTP %s" % answer["status"]
                    if served_by is None:
                        stats["unanswered_failures"] += 1
                if served_by == self.color:
                    stats["answered"] += 1
        finally:
            self.slots.release()

    def run(self, until):
        """Paced POSTs until the monotonic time `until`, then waits for the probes in flight."""
        stats = {"sent": 0, "failures": 0, "unanswered_failures": 0, "answered": 0, "last_error": None}
        threads, started, tick = [], time.monotonic(), 0
        while True:
            due = started + tick / self.rate
            if due >= until:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            tick += 1
            if not self.slots.acquire(False):
                continue
            self.count += 1
            stats["sent"] += 1
            thread = threading.Thread(target=self._probe, args=(stats, self.count))
            thread.daemon = True
            thread.start()
            threads.append(thread)
        time.sleep(max(0.0, until - time.monotonic()))
        deadline = time.monotonic() + self.timeout + 1
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self.lock:
            return dict(stats)


def percent(rate):
    return "%.1f%%" % (rate * 100)


def millis(value):
    return "%d ms" % round(value) if value >= 100 else "%.1f ms" % value


def judge(params, total, errors, p95_seconds):
    """(ok, reason, error_rate, p95_ms) of one check."""
    error_rate = errors / total if total > 0 else None
    p95_ms = None if math.isnan(p95_seconds) else round(p95_seconds * 1000, 2)
    if total < params["min_samples"] or total <= 0:
        return None, "%d requests < min_samples %d" % (round(total), params["min_samples"]), error_rate, p95_ms
    failures = []
    if error_rate > params["max_error_rate"]:
        failures.append("error rate %s > %s" % (percent(error_rate), percent(params["max_error_rate"])))
    if p95_ms is not None and p95_ms > params["max_p95_latency_ms"]:
        failures.append("p95 latency %s > %s" % (millis(p95_ms), millis(params["max_p95_latency_ms"])))
    if failures:
        return False, "; ".join(failures), error_rate, p95_ms
    return True, "error rate %s <= %s, p95 latency %s <= %s" % (
        percent(error_rate), percent(params["max_error_rate"]),
        "n/a" if p95_ms is None else millis(p95_ms), millis(params["max_p95_latency_ms"])), error_rate, p95_ms


def make_check(params, sampler, probes):
    measure_error = None
    try:
        total, errors, p95 = sampler.measure()
    except MeasureError as exc:
        measure_error, total, errors, p95 = exc, 0.0, 0.0, float("nan")
    total += probes["unanswered_failures"]
    errors += probes["unanswered_failures"]
    source = "metrics"
    if probes["sent"] > total:
        # The source lags (Prometheus has not scraped the new series yet): the probes' own outcomes are the
        # freshest evidence, so a release that fails its probes is judged now, not a scrape later.
        total, errors, source = float(probes["sent"]), float(probes["failures"]), "probes"
    ok, reason, error_rate, p95_ms = judge(params, total, errors, p95)
    if measure_error is not None and ok is not False:
        ok, reason = (False if measure_error.failing else None), to_native(measure_error)
    if ok is False and probes["failures"]:
        reason += "; last probe failure: %s" % probes["last_error"]
    at = format_time(utc_now())
    check = {
        "at": at,
        "samples": int(round(total)),
        "errors": int(round(errors)),
        "error_rate": None if error_rate is None else round(error_rate, 4),
        "p95_ms": p95_ms,
        "ok": ok,
        "reason": reason,
        "probes_sent": probes["sent"],
        "probe_failures": probes["failures"],
        "judged_on": source,
    }
    real = 0 if source == "probes" else total - probes["answered"] - probes["unanswered_failures"]
    return check, real


def analyse(params, sampler, prober):
    planned = planned_checks(params)
    result = {"checks": [], "checks_planned": planned, "failing_checks": 0, "probes_sent": 0,
              "probe_failures": 0, "source_used": sampler.name}
    no_probes = {"sent": 0, "failures": 0, "unanswered_failures": 0, "answered": 0, "last_error": None}
    started = time.monotonic()
    sampler.start()
    probe_next = prober is not None
    failed_check = None
    for number in range(1, planned + 1):
        # Checks sit on a fixed grid from the start, so the time each check takes does not stretch the window.
        until = max(time.monotonic(), started + number * params["interval"])
        if probe_next:
            probes = prober.run(until)
        else:
            time.sleep(max(0.0, until - time.monotonic()))
            probes = no_probes
        check, real = make_check(params, sampler, probes)
        result["checks"].append(check)
        result["probes_sent"] += probes["sent"]
        result["probe_failures"] += probes["failures"]
        if check["ok"] is False:
            result["failing_checks"] += 1
            failed_check = failed_check or (number, check)
            if result["failing_checks"] >= params["failure_limit"]:
                failed_check = (number, check)
                break
        probe_next = prober is not None and real < params["min_samples"]
    result["decision_at"], result["decision_epoch"] = decision_time()
    result["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
    passing = sum(1 for check in result["checks"] if check["ok"] is True)
    if result["failing_checks"] >= params["failure_limit"] or (result["failing_checks"] and not passing):
        result["verdict"] = "fail"
        number, check = failed_check
        result["msg"] = "%s at check %d/%d (%d requests)" % (check["reason"], number, planned, check["samples"])
        if result["failing_checks"] < params["failure_limit"]:
            result["msg"] += "; no check passed (%d failing, failure_limit %d)" % (
                result["failing_checks"], params["failure_limit"])
        elif params["failure_limit"] > 1:
            result["msg"] += "; %d failing checks reached failure_limit %d" % (
                result["failing_checks"], params["failure_limit"])
    elif passing:
        result["verdict"] = "pass"
        result["msg"] = "%d of %d checks passed, %d failing (limit %d)" % (
            passing, len(result["checks"]), result["failing_checks"], params["failure_limit"])
    else:
        most = max(check["samples"] for check in result["checks"])
        result["verdict"] = "inconclusive"
        result["msg"] = "no check reached min_samples %d in %d checks (most: %d requests; %s)" % (
            params["min_samples"], len(result["checks"]), most,
            "%d probes sent, %d failed" % (result["probes_sent"], result["probe_failures"]) if prober
            else "probes disabled")
    return result


def probe_body(value):
    if value is None:
        return json.dumps(DEFAULT_PROBE_BODY)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return to_native(value)


def validate(module):
    params = module.params
    problems = []
    for name in ("window", "interval", "probe_rate", "request_timeout", "max_p95_latency_ms"):
        if params[name] <= 0:
            problems.append("%s must be positive, got %s" % (name, params[name]))
    if params["prometheus_range"] is not None and params["prometheus_range"] <= 0:
        problems.append("prometheus_range must be positive, got %s" % params["prometheus_range"])
    if params["interval"] > params["window"]:
        problems.append("interval (%s) must not exceed window (%s)" % (params["interval"], params["window"]))
    if not 0 <= params["max_error_rate"] <= 1:
        problems.append("max_error_rate must be between 0 and 1, got %s" % params["max_error_rate"])
    for name in ("min_samples", "failure_limit"):
        if params[name] < 1:
            problems.append("%s must be at least 1, got %s" % (name, params[name]))
    if params["probe_body"] is not None and not isinstance(params["probe_body"], (dict, list)):
        try:
            json.loads(to_native(params["probe_body"]))
        except ValueError as exc:
            problems.append("probe_body is not JSON: %s" % exc)
    if problems:
        module.fail_json(msg="; ".join(problems))


def choose_sampler(module):
    params = module.params
    source = params["source"]
    if source in ("auto", "prometheus"):
        client = PrometheusClient(params["prometheus_url"], params["request_timeout"])
        sampler = PrometheusSampler(client, params["endpoint"], params["color"], params["version"],
                                    params["prometheus_range"] or max(params["interval"], 15.0))
        labels = {"color": params["color"]}
        if params["version"] is not None:
            labels["version"] = params["version"]
        try:
            present = bool(client.query("rag_build_info" + selector(labels)))
            why = "Prometheus at %s has no rag_build_info%s series yet" % (params["prometheus_url"], selector(labels))
        except PrometheusError as exc:
            present, why = None, to_native(exc)
        if source == "prometheus":
            if present is None:
                fail_without_source(module, why)
            if not present:
                module.warn("%s; the first checks may be inconclusive" % why)
            return sampler
        if present:
            return sampler
        if not params["app_metrics_url"]:
            fail_without_source(module, "no metrics source for %s: %s, and app_metrics_url is not set" % (
                params["color"], why))
        module.warn("%s; analysing %s from %s instead" % (why, params["color"], params["app_metrics_url"]))
    return AppMetricsSampler(params["app_metrics_url"], params["endpoint"], params["color"], params["version"],
                             params["request_timeout"])


def abort_switch(params):
    """Give traffic back to abort_to at once, compare-and-set from the analysed color."""
    aborted = {"color": params["abort_to"], "switched": False, "switched_at": None, "switch_ms": None, "error": None}
    admin = NginxAdmin(params["admin_socket"], params["request_timeout"])
    started = time.monotonic()
    try:
        status, body = switch_live(admin, params["abort_to"], params["color"], params["request_timeout"])
    except AdminError as exc:
        aborted["error"] = to_native(exc)
        return aborted
    aborted["switch_ms"] = round((time.monotonic() - started) * 1000, 1)
    if status == 200:
        aborted.update(switched=True, switched_at=time.time())
    else:
        aborted["error"] = "nginx answered HTTP %s: %s" % (status, body.get("error") or body)
    return aborted


def main():
    module = AnsibleModule(
        argument_spec=dict(
            color=dict(type="str", required=True, choices=list(COLORS)),
            version=dict(type="str"),
            source=dict(type="str", default="auto", choices=["auto", "prometheus", "app_metrics"]),
            prometheus_url=dict(type="str", default="http://127.0.0.1:9090"),
            prometheus_range=dict(type="float"),
            app_metrics_url=dict(type="str"),
            endpoint=dict(type="str", default="/api/query"),
            window=dict(type="float", default=30),
            interval=dict(type="float", default=5),
            max_error_rate=dict(type="float", default=0.05),
            max_p95_latency_ms=dict(type="float", default=1000),
            min_samples=dict(type="int", default=20),
            failure_limit=dict(type="int", default=1),
            probe_url=dict(type="str"),
            probe_body=dict(type="raw"),
            probe_rate=dict(type="float", default=10),
            on_inconclusive=dict(type="str", default="fail", choices=["pass", "fail"]),
            request_timeout=dict(type="float", default=5),
            abort_to=dict(type="str", choices=list(COLORS)),
            admin_socket=dict(type="path", default=ADMIN_SOCKET),
        ),
        required_if=[("source", "app_metrics", ["app_metrics_url"])],
        supports_check_mode=True,
    )
    validate(module)
    params = module.params
    if params["abort_to"] == params["color"]:
        module.fail_json(msg="abort_to must be the other color than color (%s)" % params["color"])
    if module.check_mode:
        module.exit_json(changed=False, msg="check mode: nothing to analyse before a switch",
                         **no_analysis(verdict="skipped"))
    sampler = choose_sampler(module)
    prober = None
    if params["probe_url"]:
        prober = Prober(params["probe_url"], probe_body(params["probe_body"]), params["probe_rate"],
                        params["request_timeout"], params["color"])
    label = params["color"] + ("" if params["version"] is None else " " + params["version"])
    started = time.monotonic()
    try:
        result = analyse(params, sampler, prober)
        result["msg"] = "metric analysis of %s via %s: %s: %s" % (label, sampler.name, result["verdict"], result["msg"])
    except IdentityError as exc:
        decision_at, decision_epoch = decision_time()
        result = no_analysis(source_used=sampler.name, checks_planned=planned_checks(params), decision_at=decision_at,
                             decision_epoch=decision_epoch, elapsed_ms=round((time.monotonic() - started) * 1000, 1))
        result["msg"] = "metric analysis of %s: %s" % (params["color"], exc)
    result["aborted"] = None
    if result["verdict"] == "fail" or (result["verdict"] == "inconclusive" and params["on_inconclusive"] == "fail"):
        if params["abort_to"]:
            result["aborted"] = abort_switch(params)
            result["msg"] += "; traffic %s to %s" % (
                "given back" if result["aborted"]["switched"] else "NOT given back (%s)" % result["aborted"]["error"],
                params["abort_to"])
        module.fail_json(changed=bool(result["aborted"] and result["aborted"]["switched"]), **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
