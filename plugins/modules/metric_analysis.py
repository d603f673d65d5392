#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: metric_analysis
short_description: Judge an app color by what its clients see after a switch
version_added: 0.1.0
author: ragops.platform maintainers (@ragops)
description:
  - Analyses ONE app color for O(window) seconds, with one check every O(interval) seconds. Each check measures the
    requests the color served in its interval, their error rate (the share of 5xx answers among all of them) and
    their p95 latency.
  - By default the numbers are the load balancer's. nginx measures the traffic it routes to each color itself, as
    C(ragops_lb_requests_total{color, status_class}) and the histogram C(ragops_lb_request_duration_seconds), so any
    app is judged by what its clients see, whatever metrics the app exports.
  - A check counts only if it saw at least O(min_samples) requests. It fails when the error rate is above
    O(max_error_rate), the p95 latency above O(max_p95_latency_ms), or one of O(queries) is out of its bounds, and
    passes otherwise. Below O(min_samples) it is inconclusive, unless a query fails it.
  - Fail fast. The analysis stops at the check that brings the failing checks to O(failure_limit) (1 by default), so a
    bad release loses its traffic within one interval. Otherwise the verdict, after all the checks, is V(pass) if at
    least one check passed, V(fail) if none passed but some failed, and V(inconclusive) if no check counted.
  - The module fails on V(fail), and on V(inconclusive) when O(on_inconclusive=fail), with the numbers in the message.
    The result always carries the checks and RV(decision_at), the time of the verdict, so the playbook can switch back
    at once and measure how long that took.
  - B(Source prometheus). Instant queries of C(increase) over O(prometheus_range) of nginx's metrics, filtered by
    C(color) and by C(job), the Prometheus job O(lb_job) that scrapes nginx. The range must hold two scrapes.
  - B(Source lb_metrics). nginx's C(/metrics) on the admin unix socket O(admin_socket) is scraped at the start and at
    the end of every check; the module computes the increases of the color's series itself (a counter reset, after a
    restart of nginx, counts as C(increase) does), and the p95 by linear interpolation within buckets, like
    C(histogram_quantile).
  - B(Source auto), the default. V(prometheus) when Prometheus answers C(up{job="ragops-lb"} == 1), with the job
    O(lb_job) (nginx creates every color's series at 0 when it starts, so a scraped nginx is enough), else
    V(lb_metrics). The module fails before any check when neither can be used.
  - B(Source app_metrics). The reference app's own metrics at O(app_metrics_url), scraped like V(lb_metrics). They
    are the counter O(app_requests_metric) and the histogram O(app_duration_metric), filtered by O(app_endpoint_label) =
    O(app_endpoint), with the HTTP code in a C(status) label. The gauge O(app_build_info_metric) must name the color,
    and the version when O(version) is set, or the module fails at once.
  - B(Probes). When O(probe_url) is set, the module sends O(probe_method) requests to it at O(probe_rate) per second
    during the first interval, and during every interval that follows one with fewer than O(min_samples) real
    requests. Send them through the load balancer. A probe whose answer carries the header O(color_header) naming
    the color is in the source's numbers already, so it is not counted twice. A probe that got no answer (a refused
    connection, a timeout) or a 5xx naming no color is added to the check as a failed request. A probe answered by
    the other color, or refused by nginx itself with a 4xx (a wrong path, the rate limit), is counted in
    RV(probes_sent) and RV(probe_failures) only.
  - When the source has fewer requests than the probes the color answered (Prometheus has not scraped the new
    color yet), the check is judged on the probes' own outcomes.
  - B(Peers). In a fleet a color has several peers, one per app host, and a bad host can hide in the fleet-wide
    numbers. With O(peers), every check also judges each peer on its own, from nginx's per-peer metrics
    C(ragops_lb_peer_requests_total{color, peer, status_class}) and the histogram
    C(ragops_lb_peer_request_duration_seconds{color, peer}), where C(peer) is the address of the peer that answered
    (the last try). Each peer is held to the same O(max_error_rate) and O(max_p95_latency_ms); a peer with fewer
    than O(min_samples) requests in the check, or without data, is not judged and does not fail it. The check fails
    when the fleet-wide numbers fail it or any judged peer does, and its reason names the peer's address and name.
    With O(source=lb_metrics) the same scrape serves the color and all its peers; with O(source=prometheus) each
    number is one query for all the peers, summed by C(peer).
  - B(Queries). Every check also evaluates each of O(queries) against Prometheus, like the metrics of an Argo
    Rollouts analysis template. A value above O(queries[].max) or below O(queries[].min) fails the check.
  - Nothing is changed, except the abort switch of O(abort_to).
  - HTTP proxy environment variables are ignored; every URL is reached directly.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is measured (before a switch there is nothing to analyse) and RV(verdict) is
      V(skipped).
  diff_mode:
    support: none
    details: The only change is the abort switch (O(abort_to)), reported in RV(aborted).
  platform:
    platforms: posix
options:
  color:
    description: The color to analyse.
    type: str
    required: true
    choices: [blue, green]
  version:
    description:
      - The version the color must run. It replaces C(${version}) in O(queries), and with O(source=app_metrics) it is
        checked against O(app_build_info_metric).
      - nginx's metrics have no version label; they are the color's, whatever it runs.
    type: str
  source:
    description: Where the numbers come from (see the description).
    type: str
    choices: [auto, prometheus, lb_metrics, app_metrics]
    default: auto
  prometheus_url:
    description: Base URL of Prometheus, for O(source=prometheus) and O(queries).
    type: str
    default: http://127.0.0.1:9090
  prometheus_range:
    description:
      - Range in seconds of C(increase) in the Prometheus queries of each check. It must hold two scrapes.
      - Defaults to the larger of O(interval) and 15 (three scrapes at the stack's 5 s scrape interval). With a range
        longer than O(interval), consecutive checks overlap.
    type: float
  lb_job:
    description: The Prometheus job that scrapes nginx's metrics.
    type: str
    default: ragops-lb
  admin_socket:
    description: Path of the nginx admin API's unix socket on the host. It serves nginx's C(/metrics) for
      O(source=lb_metrics) and the switch of O(abort_to).
    type: path
    default: /opt/ragops/nginx/run/admin.sock
  app_metrics_url:
    description: The color's own metrics URL, for example V(http://172.30.57.11:8000/metrics). Required with
      O(source=app_metrics).
    type: str
  app_requests_metric:
    description: With O(source=app_metrics), the app's request counter, with a C(status) label holding the HTTP code.
    type: str
    default: rag_requests_total
  app_duration_metric:
    description: With O(source=app_metrics), the app's request latency histogram, in seconds (without C(_bucket)).
    type: str
    default: rag_request_duration_seconds
  app_build_info_metric:
    description: With O(source=app_metrics), the app's build-info gauge, with C(color) and C(version) labels.
    type: str
    default: rag_build_info
  app_endpoint_label:
    description: With O(source=app_metrics), the label of O(app_requests_metric) that names the endpoint.
    type: str
    default: endpoint
  app_endpoint:
    description: With O(source=app_metrics), the value of O(app_endpoint_label) to analyse.
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
  queries:
    description:
      - Extra checks, evaluated against Prometheus at every check as instant queries.
      - They need Prometheus, whatever the O(source). When it cannot be reached, a query has no data.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the query in results and messages.
        type: str
        required: true
      query:
        description:
          - PromQL that answers a scalar or a single series. C(${color}) is replaced by O(color) and C(${version}) by
            O(version) (which must then be set).
          - A query that answers several series fails the check; aggregate it.
          - Prometheus evaluates it at the time of the check; ranges in it are yours to choose.
        type: str
        required: true
      max:
        description: Highest acceptable value. At least one of O(queries[].max) and O(queries[].min) is required.
        type: float
      min:
        description: Lowest acceptable value.
        type: float
      must_have_data:
        description:
          - Whether no data fails the check -- an empty answer, NaN, or no answer from Prometheus (unreachable, or a
            5xx). When false it is only noted in the check's results.
          - A query that Prometheus refuses (a 4xx, such as a syntax error) or that answers several series fails the
            check either way.
        type: bool
        default: true
  probe_url:
    description:
      - URL that receives synthetic requests when real traffic is low, through the load balancer, for example
        V(http://127.0.0.1:8080/api/query).
      - Without it, no probe is sent.
      - Keep O(probe_rate) below nginx's per-client rate limit (20 per second by default).
    type: str
  probe_method:
    description: HTTP method of the probes.
    type: str
    default: POST
  probe_body:
    description:
      - Body of each probe; a dictionary or a list is sent as JSON, a string as it is (and must be JSON unless
        O(probe_headers) sets another C(Content-Type)). It must be a valid request, so that a healthy color answers
        2xx.
      - 'Defaults to C({"query": "ragops release probe", "client_id": "ragops-probe"}) with the methods POST, PUT and
        PATCH, and to no body with the others.'
    type: raw
  probe_headers:
    description: Headers of each probe. C(Content-Type) defaults to C(application/json) when there is a body.
    type: dict
    default: {}
  probe_rate:
    description: Probes per second while probing.
    type: float
    default: 10
  color_header:
    description: The response header in which the load balancer names the color that served a request.
    type: str
    default: X-Ragops-Color
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
  peers:
    description:
      - The peers of O(color) to judge one by one, each address C(host:port), as nginx routes to it, mapped to a name
        for the results and messages (for example the app host's inventory name).
      - Empty, the default, judges the color fleet-wide only.
      - A peer nginx routes to that is not listed is counted fleet-wide only.
      - Ignored with O(source=app_metrics), since an app's own metrics are not per peer.
    type: dict
    default: {}
  abort_to:
    description:
      - The color to give traffic back to the moment the analysis fails (a V(fail) verdict, or V(inconclusive) with
        O(on_inconclusive=fail)), before the module returns. The switch is a compare-and-set from O(color) through
        the nginx admin API on O(admin_socket), so it never overrides a switch made by someone else meanwhile.
      - Without it nothing is switched and the caller must switch back itself, one task later.
    type: str
    choices: [blue, green]
notes:
  - Run it on the Docker host, which reaches Prometheus on 127.0.0.1, the load balancer and nginx's admin socket.
  - To take traffic away fast on failure, set O(abort_to) to the old color, and put this task in a C(block) whose
    C(rescue) runs M(ragops.platform.traffic_switch) back to the old color (a no-op that verifies, once the abort
    switched), before recording anything.
seealso:
  - module: ragops.platform.traffic_switch
"""

EXAMPLES = r"""
- name: Analyse green for 30 s after the switch from the load balancer's numbers, probing through it when traffic is low
  ragops.platform.metric_analysis:
    color: green
    version: "1.1.0"
    window: 30
    interval: 5
    max_error_rate: 0.05
    max_p95_latency_ms: 1000
    min_samples: 20
    failure_limit: 1
    probe_url: http://127.0.0.1:8080/api/query
    probe_rate: 10
    on_inconclusive: fail
    abort_to: blue
    admin_socket: /opt/ragops/nginx/run/admin.sock
  register: analysis

- name: The same from nginx's /metrics only, with an extra bound on the color's 99th percentile
  ragops.platform.metric_analysis:
    color: green
    source: lb_metrics
    probe_url: http://127.0.0.1:8080/health
    probe_method: GET
    queries:
      - name: p99
        query: >-
          histogram_quantile(0.99, sum by (le)
          (rate(ragops_lb_request_duration_seconds_bucket{job="ragops-lb",color="${color}"}[1m])))
        max: 2.5
        must_have_data: false
  register: analysis

- name: Analyse green fleet-wide and on each app host, so that one bad host fails the release
  ragops.platform.metric_analysis:
    color: green
    source: lb_metrics
    peers:
      "172.31.240.21:8002": ragops-fleet-app1
      "172.31.240.22:8002": ragops-fleet-app2
    min_samples: 20
    abort_to: blue
  register: analysis

- name: The reference app's own metrics, tolerating an inconclusive result
  ragops.platform.metric_analysis:
    color: green
    version: "1.1.0"
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
  description: V(prometheus), V(lb_metrics) or V(app_metrics); null in check mode and when no source could be used.
  returned: always
  type: str
  sample: lb_metrics
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
    requests:
      description: Requests counted in the check (probes included).
      type: int
      sample: 96
    errors:
      description: Failed requests among them (5xx, plus probes that got no answer or a 5xx naming no color).
      type: int
      sample: 46
    error_rate:
      description: errors / requests, from 0 to 1; null without requests.
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
        fewer requests than the probes the color answered (Prometheus not yet scraped the new color) and the
        probes' own outcomes were judged instead.
      type: str
      sample: metrics
    queries:
      description: The result of each of O(queries), in order.
      type: list
      elements: dict
      contains:
        name:
          description: The query's name.
          type: str
          sample: p99
        query:
          description: The PromQL sent, placeholders replaced.
          type: str
          sample: max(ragops_lb_p99{color="green"})
        value:
          description: The answer; null when there was none.
          type: float
          sample: 0.42
        ok:
          description: true within bounds, false out of bounds or without data when it must have data, null when an
            absence of data was ignored.
          type: bool
          sample: true
        reason:
          description: The value against its bounds, or why there is none.
          type: str
          sample: query p99 = 0.42 <= max 2.5
    peers:
      description:
        - Each peer of O(peers) in the check, by address. Empty without O(peers) and with O(source=app_metrics).
        - Each entry has C(name) (its name in O(peers)), C(requests), C(errors), C(error_rate) (null without
          requests), C(p95_ms) (null without observations), C(ok) (true passed, false failed, null not judged --
          fewer than O(min_samples) requests, no data, or not measured) and C(reason) (the numbers behind C(ok)).
      type: dict
      sample:
        "172.31.240.22:8002":
          name: ragops-fleet-app2
          requests: 50
          errors: 15
          error_rate: 0.3
          p95_ms: 24.25
          ok: false
          reason: error rate 30.0% > 5.0%
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
  description: UTC time of the verdict (ISO 8601); null in check mode and for invalid parameters.
  returned: always
  type: str
  sample: "2026-11-25T12:42:40.411Z"
decision_epoch:
  description: The same time in epoch seconds; null in check mode and for invalid parameters.
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
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.ragops.platform.plugins.module_utils._metric_sources import (
    BuildInfo,
    IdentityError,
    MeasureError,
    QuerySampler,
    app_scrape_sampler,
    app_traffic,
    lb_peer_prometheus_sampler,
    lb_peer_scrape_sampler,
    lb_prometheus_sampler,
    lb_scrape_sampler,
)
from ansible_collections.ragops.platform.plugins.module_utils._nginx_admin import AdminError, NginxAdmin, switch_live
from ansible_collections.ragops.platform.plugins.module_utils._platform import ADMIN_SOCKET, COLOR_HEADER, COLORS
from ansible_collections.ragops.platform.plugins.module_utils._prom_query import (
    PrometheusClient,
    PrometheusError,
    placeholders,
    selector,
)
from ansible_collections.ragops.platform.plugins.module_utils._traffic_prober import Prober, no_probes
from ansible_collections.ragops.platform.plugins.module_utils._utc_time import format_time, utc_now

DEFAULT_PROBE_BODY = {"query": "ragops release probe", "client_id": "ragops-probe"}
BODY_METHODS = ("POST", "PUT", "PATCH")
QUERY_PLACEHOLDERS = ("color", "version")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*$")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
# A peer as nginx's peers file and $upstream_addr write it: host (an IPv4 address or a name) and port.
_PEER = re.compile(r"([A-Za-z0-9.-]+):([0-9]{1,5})$")
# Failing peers named in a check's reason; the rest are counted (every peer is in the check's peers).
PEERS_NAMED = 5


def argument_spec():
    return dict(
        color=dict(type="str", required=True, choices=list(COLORS)),
        version=dict(type="str"),
        source=dict(type="str", default="auto", choices=["auto", "prometheus", "lb_metrics", "app_metrics"]),
        prometheus_url=dict(type="str", default="http://127.0.0.1:9090"),
        prometheus_range=dict(type="float"),
        lb_job=dict(type="str", default="ragops-lb"),
        admin_socket=dict(type="path", default=ADMIN_SOCKET),
        app_metrics_url=dict(type="str"),
        app_requests_metric=dict(type="str", default="rag_requests_total"),
        app_duration_metric=dict(type="str", default="rag_request_duration_seconds"),
        app_build_info_metric=dict(type="str", default="rag_build_info"),
        app_endpoint_label=dict(type="str", default="endpoint"),
        app_endpoint=dict(type="str", default="/api/query"),
        window=dict(type="float", default=30.0),
        interval=dict(type="float", default=5.0),
        max_error_rate=dict(type="float", default=0.05),
        max_p95_latency_ms=dict(type="float", default=1000.0),
        min_samples=dict(type="int", default=20),
        failure_limit=dict(type="int", default=1),
        queries=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str", required=True),
            query=dict(type="str", required=True),
            max=dict(type="float"),
            min=dict(type="float"),
            must_have_data=dict(type="bool", default=True),
        )),
        probe_url=dict(type="str"),
        probe_method=dict(type="str", default="POST"),
        probe_body=dict(type="raw"),
        probe_headers=dict(type="dict", default={}),
        probe_rate=dict(type="float", default=10.0),
        color_header=dict(type="str", default=COLOR_HEADER),
        on_inconclusive=dict(type="str", default="fail", choices=["pass", "fail"]),
        request_timeout=dict(type="float", default=5.0),
        abort_to=dict(type="str", choices=list(COLORS)),
        peers=dict(type="dict", default={}),
    )


def _json_content(headers):
    types = [value for name, value in (headers or {}).items() if name.lower() == "content-type"]
    return not types or "json" in to_native(types[0]).lower()


def _query_problems(params):
    problems, names = [], set()
    for index, spec in enumerate(params["queries"]):
        field = "queries[%d]" % index
        if not spec["name"]:
            problems.append("%s.name must not be empty" % field)
        elif spec["name"] in names:
            problems.append("%s.name %r is used by an earlier query" % (field, spec["name"]))
        names.add(spec["name"])
        if not (spec["query"] or "").strip():
            problems.append("%s.query must not be empty" % field)
        if spec["max"] is None and spec["min"] is None:
            problems.append("%s.max/min: at least one of max and min is required" % field)
        elif spec["max"] is not None and spec["min"] is not None and spec["min"] > spec["max"]:
            problems.append("%s.min (%s) must not exceed %s.max (%s)" % (field, spec["min"], field, spec["max"]))
        for name in placeholders(spec["query"] or ""):
            if name not in QUERY_PLACEHOLDERS:
                problems.append("%s.query: unknown placeholder ${%s} (known: %s)" % (
                    field, name, ", ".join("${%s}" % known for known in QUERY_PLACEHOLDERS)))
            elif name == "version" and params["version"] is None:
                problems.append("%s.query uses ${version}, but version is not set" % field)
    return problems


def _peer_problems(peers):
    problems = []
    for address, name in (peers or {}).items():
        match = _PEER.match(to_native(address))
        if not match or not 1 <= int(match.group(2)) <= 65535:
            problems.append("peers: %r is not a peer address host:port" % (address,))
        if not isinstance(name, str) or not name.strip():
            problems.append("peers[%r] must be a name (a non-empty string), got %r" % (address, name))
    return problems


def invalid_parameters(params):
    """Texts naming each bad parameter; empty when all are usable."""
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
    if params["abort_to"] is not None and params["abort_to"] == params["color"]:
        problems.append("abort_to must be the other color than color (%s)" % params["color"])
    if params["source"] == "app_metrics" and not params["app_metrics_url"]:
        problems.append("app_metrics_url is required with source app_metrics")
    if not params["lb_job"]:
        problems.append("lb_job must not be empty")
    for name in ("app_requests_metric", "app_duration_metric", "app_build_info_metric"):
        if not _METRIC_NAME.match(params[name] or ""):
            problems.append("%s is not a Prometheus metric name: %r" % (name, params[name]))
    if not _LABEL_NAME.match(params["app_endpoint_label"] or ""):
        problems.append("app_endpoint_label is not a Prometheus label name: %r" % params["app_endpoint_label"])
    if not _TOKEN.match(params["color_header"] or ""):
        problems.append("color_header must be an HTTP header name, got %r" % params["color_header"])
    if not _TOKEN.match(params["probe_method"] or ""):
        problems.append("probe_method must be an HTTP method, got %r" % params["probe_method"])
    body = params["probe_body"]
    if body is not None and not isinstance(body, (dict, list)) and _json_content(params["probe_headers"]):
        try:
            json.loads(to_native(body))
        except ValueError as exc:
            problems.append("probe_body is not JSON (%s); to send it as it is, set its Content-Type in probe_headers" % exc)
    return problems + _query_problems(params) + _peer_problems(params["peers"])


def planned_checks(params):
    return max(1, int(params["window"] / params["interval"] + 1e-9))


def decision_time():
    """(UTC ISO 8601 text, epoch seconds) of now."""
    return format_time(utc_now()), time.time()


def no_analysis(**values):
    """A result with every key RETURN documents as always returned, for an analysis that measured nothing."""
    result = dict(verdict="fail", source_used=None, checks=[], checks_planned=0, failing_checks=0, probes_sent=0,
                  probe_failures=0, decision_at=None, decision_epoch=None, elapsed_ms=0.0, aborted=None)
    result.update(values)
    return result


def is_failure(params, verdict):
    return verdict == "fail" or (verdict == "inconclusive" and params["on_inconclusive"] == "fail")


def percent(rate):
    return "%.1f%%" % (rate * 100)


def millis(value):
    return "%d ms" % round(value) if value >= 100 else "%.1f ms" % value


def judge(params, total, errors, p95_seconds):
    """(ok, reason, error_rate, p95_ms) of one check's traffic."""
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


def judge_query(spec, value, error, broken):
    """The result entry of one query: ok true (within bounds), false (out of bounds, refused by Prometheus, or
    without the data it must have) or None (no data, ignored)."""
    entry = {"name": spec["name"], "query": spec["query"], "value": value, "ok": True, "reason": None}
    label = "query %s" % spec["name"]
    if broken:
        entry.update(ok=False, reason="%s: %s" % (label, error))
    elif value is None:
        why = error or "no data"
        if spec["must_have_data"]:
            entry.update(ok=False, reason="%s: %s" % (label, why))
        else:
            entry.update(ok=None, reason="%s: %s (ignored, must_have_data is false)" % (label, why))
    elif spec["max"] is not None and value > spec["max"]:
        entry.update(ok=False, reason="%s = %.6g > max %.6g" % (label, value, spec["max"]))
    elif spec["min"] is not None and value < spec["min"]:
        entry.update(ok=False, reason="%s = %.6g < min %.6g" % (label, value, spec["min"]))
    else:
        bounds = [text % spec[key] for key, text in (("min", ">= min %.6g"), ("max", "<= max %.6g"))
                  if spec[key] is not None]
        entry["reason"] = "%s = %.6g %s" % (label, value, " and ".join(bounds))
    return entry


def combine(ok, reason, queries):
    """The check's (ok, reason) once its queries are judged: any failing query fails it."""
    failing = [entry["reason"] for entry in queries if entry["ok"] is False]
    others = [entry["reason"] for entry in queries if entry["ok"] is not False]
    if not failing:
        return ok, "; ".join([reason] + others)
    if ok is False:
        return False, "; ".join([reason] + failing)
    if ok is None:
        return False, "; ".join(failing + [reason])
    return False, "; ".join(failing)


def traffic_entry(total, errors, error_rate, p95_ms, ok, reason):
    """What a check records of the traffic it judged (the whole color's, or one peer's)."""
    return {"requests": int(round(total)), "errors": int(round(errors)),
            "error_rate": None if error_rate is None else round(error_rate, 4), "p95_ms": p95_ms, "ok": ok,
            "reason": reason}


def judge_peers(params, peer_sampler):
    """(entries by address, failing reasons, MeasureError or None) of the peers of one check."""
    if not params["peers"] or peer_sampler is None:
        return {}, [], None
    try:
        numbers, error = peer_sampler.measure(), None
    except MeasureError as exc:
        numbers, error = {}, exc
    entries, failing = {}, []
    for address, name in params["peers"].items():
        if address in numbers:
            total, errors, p95 = numbers[address]
            errors = min(errors, total)
            ok, reason, error_rate, p95_ms = judge(params, total, errors, p95)
        else:
            total, errors, error_rate, p95_ms, ok = 0.0, 0.0, None, None, None
            reason = "not measured: %s" % to_native(error) if error is not None else "no data for this peer"
        entries[address] = dict(traffic_entry(total, errors, error_rate, p95_ms, ok, reason), name=name)
        if ok is False:
            failing.append("peer %s (%s): %s" % (address, name, reason))
    return entries, failing, error


def combine_peers(ok, reason, entries, failing, error, measured):
    """The check's (ok, reason) once its peers are judged: any failing peer fails it. A peers' MeasureError counts
    as the fleet-wide one does (inconclusive, or failing when the source is broken); it is only named when the
    fleet-wide numbers were measured (``measured``), since otherwise their own error says it already."""
    if not entries:
        return ok, reason
    if error is not None:
        if ok is not False:
            ok = False if error.failing else None
        if measured:
            reason += "; peers not measured: %s" % to_native(error)
    if failing:
        named = failing[:PEERS_NAMED]
        if len(failing) > len(named):
            named.append("and %d more failing peers" % (len(failing) - len(named)))
        if ok is True:
            return False, "; ".join(named)
        if ok is None:
            return False, "; ".join(named + [reason])
        return False, "; ".join([reason] + named)
    if error is None:
        passed = sum(1 for entry in entries.values() if entry["ok"] is True)
        reason += "; %d of %d peers passed, %d not judged" % (passed, len(entries), len(entries) - passed)
    return ok, reason


def make_check(params, sampler, probes, queries, peers=None):
    """(check entry, real requests) of one check: the source's numbers, the probes no source counted, each peer's
    numbers (``peers``, a per-peer sampler, with params["peers"]), the queries."""
    measure_error = None
    try:
        total, errors, p95 = sampler.measure()
    except MeasureError as exc:
        measure_error, total, errors, p95 = exc, 0.0, 0.0, float("nan")
    # Two increase() queries extrapolate apart: the 5xx part may come out a little above the whole.
    errors = min(errors, total)
    total += probes["unanswered_errors"]
    errors += probes["unanswered_errors"]
    own = probes["answered"] + probes["unanswered_errors"]
    judged_on = "metrics"
    if own > total:
        # The source lags (Prometheus has not scraped the new series yet): the probes' own outcomes are the
        # freshest evidence, so a release that fails its probes is judged now, not a scrape later.
        total = float(own)
        errors = float(probes["answered_errors"] + probes["unanswered_errors"])
        judged_on = "probes"
    ok, reason, error_rate, p95_ms = judge(params, total, errors, p95)
    if measure_error is not None and ok is not False:
        ok, reason = (False if measure_error.failing else None), to_native(measure_error)
    entries, failing, peer_error = judge_peers(params, peers)
    ok, reason = combine_peers(ok, reason, entries, failing, peer_error, measure_error is None)
    results = [judge_query(*answer) for answer in (queries.evaluate() if queries else [])]
    ok, reason = combine(ok, reason, results)
    if ok is False and probes["failures"]:
        reason += "; last probe failure: %s" % probes["last_error"]
    check = dict(traffic_entry(total, errors, error_rate, p95_ms, ok, reason), **{
        "at": format_time(utc_now()),
        "probes_sent": probes["sent"],
        "probe_failures": probes["failures"],
        "judged_on": judged_on,
        "queries": results,
        "peers": entries,
    })
    real = 0 if judged_on == "probes" else total - own
    return check, real


def conclude(params, result, failed_check, probing):
    """Sets the verdict and the message of a finished analysis."""
    planned = result["checks_planned"]
    passing = sum(1 for check in result["checks"] if check["ok"] is True)
    if result["failing_checks"] >= params["failure_limit"] or (result["failing_checks"] and not passing):
        result["verdict"] = "fail"
        number, check = failed_check
        result["msg"] = "%s at check %d/%d (%d requests)" % (check["reason"], number, planned, check["requests"])
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
        most = max(check["requests"] for check in result["checks"])
        result["verdict"] = "inconclusive"
        result["msg"] = "no check reached min_samples %d in %d checks (most: %d requests; %s)" % (
            params["min_samples"], len(result["checks"]), most,
            "%d probes sent, %d failed" % (result["probes_sent"], result["probe_failures"]) if probing
            else "probes disabled")


def run_metric_analysis(params, sampler, prober=None, queries=None, clock=time.monotonic, sleep=time.sleep,
                        abort=None, peers=None):
    """The analysis of params["color"] with a sampler (start(), measure()), an optional prober (run(until)),
    optional query checks (evaluate()) and an optional per-peer sampler ``peers`` (start() and measure() after the
    sampler's) that judges each of params["peers"]. ``abort`` is called, the moment a failing verdict is reached, to
    give traffic back; it returns the RV(aborted) entry."""
    planned = planned_checks(params)
    result = no_analysis(checks_planned=planned, source_used=sampler.name)
    label = params["color"] + ("" if params["version"] is None else " " + params["version"])
    started = clock()
    failed_check = None
    try:
        sampler.start()
        if peers is not None:
            peers.start()
        probe_next = prober is not None
        for number in range(1, planned + 1):
            # Checks sit on a fixed grid from the start, so the time each check takes does not stretch the window.
            until = max(clock(), started + number * params["interval"])
            if probe_next:
                probes = prober.run(until)
            else:
                sleep(max(0.0, until - clock()))
                probes = no_probes()
            check, real = make_check(params, sampler, probes, queries, peers)
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
    except IdentityError as exc:
        result["decision_at"], result["decision_epoch"] = decision_time()
        result.update(verdict="fail", msg="metric analysis of %s: %s" % (params["color"], exc))
    else:
        result["decision_at"], result["decision_epoch"] = decision_time()
        conclude(params, result, failed_check, prober is not None)
        result["msg"] = "metric analysis of %s via %s: %s: %s" % (label, sampler.name, result["verdict"], result["msg"])
    result["elapsed_ms"] = round((clock() - started) * 1000, 1)
    if abort is not None and is_failure(params, result["verdict"]):
        result["aborted"] = abort()
        result["msg"] += "; traffic %s to %s" % (
            "given back" if result["aborted"]["switched"] else "NOT given back (%s)" % result["aborted"]["error"],
            result["aborted"]["color"])
    return result


class NoSource(Exception):
    pass


def prometheus_range(params):
    return params["prometheus_range"] or max(params["interval"], 15.0)


def make_peer_sampler(params, sampler, client):
    """The per-peer sampler that goes with the chosen ``sampler``; None without params["peers"], and with the app's
    own metrics (which are not per peer)."""
    if not params["peers"] or sampler.name == "app_metrics":
        return None
    if sampler.name == "lb_metrics":
        return lb_peer_scrape_sampler(sampler, params["color"], params["peers"])
    return lb_peer_prometheus_sampler(client, params["lb_job"], params["color"], prometheus_range(params),
                                      params["peers"])


def choose_sampler(params, client):
    """(sampler, warning or None) for params["source"]; raises NoSource when none can be used."""
    source, color, timeout = params["source"], params["color"], params["request_timeout"]
    if source == "app_metrics":
        labels = {params["app_endpoint_label"]: params["app_endpoint"]}
        identity = BuildInfo(params["app_build_info_metric"], color, params["version"])
        traffic = app_traffic(params["app_requests_metric"], params["app_duration_metric"])
        return app_scrape_sampler(params["app_metrics_url"], traffic, labels, identity, timeout), None
    scrape = lb_scrape_sampler(params["admin_socket"], color, timeout)
    if source == "lb_metrics":
        return scrape, None
    prometheus = lb_prometheus_sampler(client, params["lb_job"], color, prometheus_range(params))
    up = "up%s == 1" % selector({"job": params["lb_job"]})
    try:
        present = bool(client.query(up))
        why = "Prometheus at %s does not scrape nginx: %s is empty" % (params["prometheus_url"], up)
    except PrometheusError as exc:
        present, why = None, to_native(exc)
    if source == "prometheus":
        if present is None:
            raise NoSource(why)
        return prometheus, None if present else "%s; the first checks may be inconclusive" % why
    if present:
        return prometheus, None
    try:
        scrape.check()
    except MeasureError as exc:
        raise NoSource("no metrics source for %s: %s, and %s" % (color, why, exc))
    return scrape, "%s; analysing %s from %s instead" % (why, color, scrape.where)


def probe_body(params):
    """The body text of each probe, or None."""
    body = params["probe_body"]
    if body is None:
        return json.dumps(DEFAULT_PROBE_BODY) if params["probe_method"].upper() in BODY_METHODS else None
    if isinstance(body, (dict, list)):
        return json.dumps(body)
    return to_native(body)


def make_prober(params):
    if not params["probe_url"]:
        return None
    headers = dict((to_native(name), to_native(value)) for name, value in params["probe_headers"].items())
    return Prober(params["probe_url"], params["color"], params["color_header"], method=params["probe_method"],
                  body=probe_body(params), headers=headers, rate=params["probe_rate"],
                  timeout=params["request_timeout"])


def make_queries(params, client):
    if not params["queries"]:
        return None
    return QuerySampler(client, params["queries"], {"color": params["color"], "version": params["version"] or ""})


def abort_switch(params):
    """Gives traffic back to abort_to at once, compare-and-set from the analysed color."""
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
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    problems = invalid_parameters(params)
    if problems:
        module.fail_json(msg="invalid parameters: %s" % "; ".join(problems), changed=False, **no_analysis())
    if module.check_mode:
        module.exit_json(changed=False, msg="check mode: nothing to analyse before a switch",
                         **no_analysis(verdict="skipped"))
    client = PrometheusClient(params["prometheus_url"], params["request_timeout"])
    try:
        sampler, warning = choose_sampler(params, client)
    except NoSource as exc:
        decision_at, decision_epoch = decision_time()
        module.fail_json(msg=to_native(exc), changed=False, **no_analysis(
            checks_planned=planned_checks(params), decision_at=decision_at, decision_epoch=decision_epoch))
    if warning:
        module.warn(warning)
    if params["peers"] and sampler.name == "app_metrics":
        module.warn("peers is ignored with source app_metrics: the app's own metrics are not per peer")
    abort = (lambda: abort_switch(params)) if params["abort_to"] else None
    result = run_metric_analysis(params, sampler, make_prober(params), make_queries(params, client), abort=abort,
                                 peers=make_peer_sampler(params, sampler, client))
    if is_failure(params, result["verdict"]):
        module.fail_json(changed=bool(result["aborted"] and result["aborted"]["switched"]), **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
