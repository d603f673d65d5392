# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The Prometheus instant query API as a real HTTP server, and the answers of a Prometheus that scrapes nginx."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from urllib.parse import parse_qs, urlparse

from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import Reply, serve_tcp


class FakePrometheus:
    """GET /api/v1/query answered by ``answer(query)`` -> list of (labels, value) or a (status, body) error."""

    def __init__(self, answer):
        self.answer = answer
        self.queries = []
        self.server = serve_tcp(self)
        self.url = self.server.base_url

    def handle(self, method, path, headers, body):
        url = urlparse(path)
        if url.path != "/api/v1/query":
            return Reply(404, body="404 page not found\n")
        query = parse_qs(url.query).get("query", [""])[0]
        self.queries.append(query)
        answer = self.answer(query)
        if isinstance(answer, tuple):
            return Reply.of(answer[0], answer[1])
        result = [{"metric": labels, "value": [1700000000.0, str(value)]} for labels, value in answer]
        return Reply(200, {"status": "success", "data": {"resultType": "vector", "result": result}})

    def close(self):
        self.server.close()


class LBAnswers:
    """An ``answer`` for FakePrometheus: a Prometheus that scrapes nginx's metrics with the job ``job``.

    ``up`` is the value of up{job=...} (None: no such target). ``traffic`` maps a color to (requests, errors,
    p95_seconds) answered to the ragops_lb increase() and histogram_quantile() queries of that color; a color not
    in it has no data. ``peer_traffic`` maps a color to {peer: (requests, errors, p95_seconds)} answered, one series
    per peer labelled ``peer``, to the ragops_lb_peer ``sum by (peer)`` queries of that color. Only selectors with
    job="<job>" match. ``extra`` maps other queries to their answer: a list of (labels, value), a (status, body)
    error, or a callable returning either."""

    def __init__(self, job="ragops-lb", up=1):
        self.job = job
        self.up = up
        self.traffic = {}
        self.peer_traffic = {}
        self.extra = {}

    def __call__(self, query):
        if query in self.extra:
            answer = self.extra[query]
            return answer() if callable(answer) else answer
        job = 'job="%s"' % self.job
        if query.startswith("up{"):
            if self.up is None or job not in query or (query.endswith("== 1") and self.up != 1):
                return []
            return [({"__name__": "up", "job": self.job, "instance": "ragops-nginx:8081"}, self.up)]
        color = re.search(r'color="([^"]*)"', query)
        if "ragops_lb_peer_" in query:
            return self._peers(query, job, color)
        if "ragops_lb_" not in query or job not in query or not color or color.group(1) not in self.traffic:
            return []
        requests, errors, p95 = self.traffic[color.group(1)]
        if query.startswith("histogram_quantile(") and "ragops_lb_request_duration_seconds_bucket" in query:
            return [({}, p95)]
        if "ragops_lb_requests_total" in query:
            return [({}, errors if re.search(r'status_class=~?"5xx"', query) else requests)]
        return []

    def _peers(self, query, job, color):
        if job not in query or not color or color.group(1) not in self.peer_traffic:
            return []
        peers = sorted(self.peer_traffic[color.group(1)].items())
        if query.startswith("histogram_quantile(") and "ragops_lb_peer_request_duration_seconds_bucket" in query:
            return [({"peer": peer}, p95) for peer, (dummy, dummy2, p95) in peers]
        if "ragops_lb_peer_requests_total" in query:
            five = bool(re.search(r'status_class=~?"5xx"', query))
            return [({"peer": peer}, errors if five else requests) for peer, (requests, errors, dummy) in peers]
        return []
