# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""One app color as a real HTTP server: its Prometheus metrics (text format, like prometheus_client) and its
query API."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time

from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import Reply, serve_tcp

APP_NAMES = {"requests": "rag_requests_total", "duration": "rag_request_duration_seconds",
             "build_info": "rag_build_info", "endpoint_label": "endpoint"}
APP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class FakeApp:
    """An app color's /metrics (text format, like prometheus_client) and POST /api/query.

    ``per_scrape`` is a list of (requests, errors, latency_seconds): before answering its n-th scrape (n >= 1) the
    app counts that traffic; the last entry repeats. ``query_status`` is the status of POST /api/query, the probes'
    own traffic. ``names`` renames the metrics: keys requests, duration, build_info, endpoint_label (defaults: the
    reference app's rag_requests_total, rag_request_duration_seconds, rag_build_info, endpoint)."""

    def __init__(self, color="green", version="1.1.0", per_scrape=None, query_status=200, scrape_delay=0.0,
                 names=None):
        self.color, self.version = color, version
        self.names = dict(APP_NAMES, **(names or {}))
        self.scrape_delay = scrape_delay
        self.per_scrape = list(per_scrape or [(0, 0, 0.01)])
        self.query_status = query_status
        self.scrapes = 0
        self.queries = 0
        self.statuses = {}
        self.buckets = [0] * (len(APP_BUCKETS) + 1)
        self.duration_sum = 0.0
        self.lock = threading.Lock()
        self.server = serve_tcp(self)
        self.base_url = self.server.base_url
        self.metrics_url = self.base_url + "/metrics"
        self.query_url = self.base_url + "/api/query"

    def observe(self, status, seconds, count=1):
        self.statuses[status] = self.statuses.get(status, 0) + count
        for index, bound in enumerate(APP_BUCKETS):
            if seconds <= bound:
                self.buckets[index] += count
                break
        else:
            self.buckets[-1] += count
        self.duration_sum += seconds * count

    def reset(self):
        with self.lock:
            self.statuses, self.buckets, self.duration_sum = {}, [0] * (len(APP_BUCKETS) + 1), 0.0

    def render(self):
        requests, duration, label = self.names["requests"], self.names["duration"], self.names["endpoint_label"]
        lines = [
            "# HELP %s HTTP requests served" % requests,
            "# TYPE %s counter" % requests,
            '%s{%s="/health",method="GET",status="200"} 1234.0' % (requests, label),
        ]
        for status, count in sorted(self.statuses.items()):
            lines.append('%s{%s="/api/query",method="POST",status="%s"} %s' % (requests, label, status, float(count)))
        lines += ["# HELP %s HTTP request duration" % duration, "# TYPE %s histogram" % duration]
        cumulative = 0
        for bound, count in zip(APP_BUCKETS + (float("inf"),), self.buckets):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append('%s_bucket{%s="/api/query",le="%s"} %s' % (duration, label, le, float(cumulative)))
        lines.append('%s_count{%s="/api/query"} %s' % (duration, label, float(cumulative)))
        lines.append('%s_sum{%s="/api/query"} %s' % (duration, label, self.duration_sum))
        lines.append('%s_bucket{%s="/health",le="+Inf"} 1234.0' % (duration, label))
        lines.append('%s{color="%s",version="%s"} 1.0' % (self.names["build_info"], self.color, self.version))
        return "\n".join(lines) + "\n"

    def handle(self, method, path, headers, body):
        identity = {"X-App-Color": self.color, "X-App-Version": self.version}
        if path == "/metrics" and method == "GET":
            time.sleep(self.scrape_delay)
            with self.lock:
                if self.scrapes > 0:
                    requests, errors, latency = self.per_scrape[min(self.scrapes - 1, len(self.per_scrape) - 1)]
                    self.observe("500", latency, errors)
                    self.observe("200", latency, requests - errors)
                self.scrapes += 1
                text = self.render()
            return Reply(200, body=text, headers=dict(identity, **{"Content-Type": "text/plain; version=0.0.4"}))
        if path == "/api/query" and method == "POST":
            with self.lock:
                self.queries += 1
                self.observe(str(self.query_status), 0.004)
            if self.query_status != 200:
                return Reply(self.query_status, {"error": "drill: injected error"}, headers=identity)
            return Reply(200, {"answer": "ok", "sources": []}, headers=identity)
        return Reply(404, {"error": "not found"}, headers=identity)

    def close(self):
        self.server.close()
