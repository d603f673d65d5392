# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The nginx side of a release, as real HTTP servers: the admin API on a unix socket (with nginx's own traffic
metrics at /metrics), and a load balancer that routes by the admin's live color."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.client
import os
import threading
import time
from urllib.parse import parse_qs, urlparse

from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import Reply, serve_tcp, serve_unix


LB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LB_COLORS = ("blue", "green", "none")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


PEER_COLORS = ("blue", "green")


def _bucket(seconds):
    for index, bound in enumerate(LB_BUCKETS):
        if seconds <= bound:
            return index
    return len(LB_BUCKETS)


class LBMetrics:
    """nginx's own traffic metrics, per color it routed to ("none" when it routed nowhere), in the Prometheus text
    format: ragops_lb_requests_total{color,status_class} and the histogram ragops_lb_request_duration_seconds{color}.
    Every color x class series exists from the start at 0, as nginx creates them.

    Per peer too, as roles/nginx's traffic.lua: ragops_lb_peer_requests_total{color,peer,status_class} and the
    histogram ragops_lb_peer_request_duration_seconds{color,peer}, for the blue and green peers nginx routes to now
    (``peers``: {color: [host:port, ...]}), every series of such a peer at 0 before its first request. A peer's counts
    stay when it leaves ``peers``, unexported, and show again if it comes back.

    The test moves the counters with ``observe``/``add`` (``peer``: the peer that answered; the color's fleet-wide
    counters move with it), or with ``per_scrape``: a list of {color or (color, peer): (requests, errors,
    latency_seconds)} counted before the n-th scrape (n >= 1); the last entry repeats. ``available`` false answers
    /metrics with a 404, as an nginx without the metrics would."""

    def __init__(self, per_scrape=None, peers=None):
        self.lock = threading.Lock()
        self.per_scrape = list(per_scrape or [])
        self.peers = dict((color, list(addresses)) for color, addresses in (peers or {}).items())
        self.scrapes = 0
        self.available = True
        self.reset()

    def reset(self):
        with self.lock:
            self.requests = dict(((color, cls), 0) for color in LB_COLORS for cls in STATUS_CLASSES)
            self.buckets = dict((color, [0] * (len(LB_BUCKETS) + 1)) for color in LB_COLORS)
            self.sums = dict((color, 0.0) for color in LB_COLORS)
            self.peer_requests = {}  # (color, peer, class) -> count, created on demand as nginx's incr() does
            self.peer_buckets = {}  # (color, peer) -> per-bucket counts
            self.peer_sums = {}  # (color, peer) -> seconds

    def _observe(self, color, status, seconds, count, peer=None):
        cls = "%dxx" % (int(status) // 100)
        self.requests[(color, cls)] += count
        self.buckets[color][_bucket(seconds)] += count
        self.sums[color] += seconds * count
        if peer is not None and color in PEER_COLORS and count:
            key = (color, peer)
            self.peer_requests[(color, peer, cls)] = self.peer_requests.get((color, peer, cls), 0) + count
            self.peer_buckets.setdefault(key, [0] * (len(LB_BUCKETS) + 1))[_bucket(seconds)] += count
            self.peer_sums[key] = self.peer_sums.get(key, 0.0) + seconds * count

    def observe(self, color, status, seconds, count=1, peer=None):
        with self.lock:
            self._observe(color, status, seconds, count, peer)

    def _add(self, color, requests, errors, latency, peer=None):
        self._observe(color, 500, latency, errors, peer)
        self._observe(color, 200, latency, requests - errors, peer)

    def add(self, color, requests, errors=0, latency=0.01, peer=None):
        """``requests`` answers of ``color`` (by ``peer``) taking ``latency`` seconds each, ``errors`` of them 500s,
        the rest 200s."""
        with self.lock:
            self._add(color, requests, errors, latency, peer)

    def count(self, color, status_class=None):
        with self.lock:
            return sum(value for (have, cls), value in self.requests.items()
                       if have == color and status_class in (None, cls))

    def peer_count(self, color, peer, status_class=None):
        with self.lock:
            return sum(value for (have, who, cls), value in self.peer_requests.items()
                       if (have, who) == (color, peer) and status_class in (None, cls))

    def _render_peers(self, lines):
        lines += ["# HELP ragops_lb_peer_requests_total Requests nginx answered, by the peer that answered",
                  "# TYPE ragops_lb_peer_requests_total counter"]
        for color in PEER_COLORS:
            for peer in self.peers.get(color, []):
                for cls in STATUS_CLASSES:
                    lines.append('ragops_lb_peer_requests_total{color="%s",peer="%s",status_class="%s"} %d' % (
                        color, peer, cls, self.peer_requests.get((color, peer, cls), 0)))
        lines += ["# HELP ragops_lb_peer_request_duration_seconds Request time, by the peer that answered",
                  "# TYPE ragops_lb_peer_request_duration_seconds histogram"]
        for color in PEER_COLORS:
            for peer in self.peers.get(color, []):
                cumulative = 0
                counts = self.peer_buckets.get((color, peer), [0] * (len(LB_BUCKETS) + 1))
                for bound, count in zip(LB_BUCKETS + (float("inf"),), counts):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else "%g" % bound
                    lines.append('ragops_lb_peer_request_duration_seconds_bucket{color="%s",peer="%s",le="%s"} %d' % (
                        color, peer, le, cumulative))
                lines.append('ragops_lb_peer_request_duration_seconds_sum{color="%s",peer="%s"} %.6f' % (
                    color, peer, self.peer_sums.get((color, peer), 0.0)))
                lines.append('ragops_lb_peer_request_duration_seconds_count{color="%s",peer="%s"} %d' % (
                    color, peer, cumulative))

    def render(self):
        lines = ["# HELP ragops_lb_requests_total Requests nginx answered, by the color it routed to",
                 "# TYPE ragops_lb_requests_total counter"]
        for (color, cls), value in sorted(self.requests.items()):
            lines.append('ragops_lb_requests_total{color="%s",status_class="%s"} %d' % (color, cls, value))
        lines += ["# HELP ragops_lb_request_duration_seconds Request time, by the color nginx routed to",
                  "# TYPE ragops_lb_request_duration_seconds histogram"]
        for color in LB_COLORS:
            cumulative = 0
            for bound, count in zip(LB_BUCKETS + (float("inf"),), self.buckets[color]):
                cumulative += count
                le = "+Inf" if bound == float("inf") else "%g" % bound
                lines.append('ragops_lb_request_duration_seconds_bucket{color="%s",le="%s"} %d' % (color, le, cumulative))
            lines.append('ragops_lb_request_duration_seconds_sum{color="%s"} %.6f' % (color, self.sums[color]))
            lines.append('ragops_lb_request_duration_seconds_count{color="%s"} %d' % (color, cumulative))
        self._render_peers(lines)
        return "\n".join(lines) + "\n"

    def scrape(self):
        """The /metrics text, after counting the traffic ``per_scrape`` gives this scrape."""
        with self.lock:
            if self.scrapes > 0 and self.per_scrape:
                traffic = self.per_scrape[min(self.scrapes - 1, len(self.per_scrape) - 1)]
                for key, (requests, errors, latency) in sorted(traffic.items(), key=lambda item: str(item[0])):
                    color, peer = key if isinstance(key, tuple) else (key, None)
                    self._add(color, requests, errors, latency, peer)
            self.scrapes += 1
            return self.render()


class FakeAdmin:
    """The nginx admin API: GET /live, PUT /live[?expect=], GET /peers, GET /metrics (``metrics``, an LBMetrics);
    persists to state_file before switching."""

    def __init__(self, tmp_path, color="blue"):
        self.state_file = str(tmp_path / "live_color")
        self.color = color
        self.generation = 0
        self.busy_answers = 0
        self.persist_fails = False
        self.before_put = None
        self.puts = []
        self.lock = threading.Lock()
        self.metrics = LBMetrics()
        self.write_state(color)
        self.server = serve_unix(self, name="admin.sock")
        self.socket_path = self.server.socket_path

    def write_state(self, color):
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as handle:
            handle.write(color + "\n")
        os.rename(tmp, self.state_file)

    def persisted(self):
        try:
            with open(self.state_file) as handle:
                value = handle.read().strip()
        except OSError as exc:
            return None, str(exc)
        return (value, None) if value in ("blue", "green") else (None, "invalid content")

    def handle(self, method, path, headers, body):
        url = urlparse(path)
        if url.path == "/metrics" and method == "GET":
            if not self.metrics.available:
                return Reply(404, body="not found\n")
            return Reply(200, body=self.metrics.scrape(), headers={"Content-Type": "text/plain; version=0.0.4"})
        if url.path == "/peers":
            return Reply(200, {"live": self.color, "peers": {"blue": "10.0.0.10:8000", "green": "10.0.0.11:8000"}})
        if url.path != "/live":
            return Reply(404, {"error": "not found"})
        if method == "GET":
            persisted, error = self.persisted()
            return Reply(200, {"color": self.color, "address": "x", "source": "shared_dict", "set_by": "api",
                               "since": 0, "generation": self.generation, "persisted": persisted,
                               "persisted_error": error, "in_sync": persisted == self.color})
        if method != "PUT":
            return Reply(405, {"error": "method not allowed"}, headers={"Allow": "GET, HEAD, PUT"})
        with self.lock:
            expect = parse_qs(url.query).get("expect", [None])[0]
            self.puts.append({"body": body.decode(), "expect": expect})
            if self.before_put:
                self.before_put(self)
            if self.busy_answers > 0:
                self.busy_answers -= 1
                return Reply(409, {"error": "another switch is in progress"})
            color = body.decode().strip()
            if color not in ("blue", "green"):
                return Reply(400, {"error": "body must be one of: blue, green"})
            if expect and expect != self.color:
                return Reply(409, {"error": "live color is %s, not %s" % (self.color, expect), "color": self.color})
            if self.persist_fails:
                return Reply(500, {"error": "live color unchanged: cannot persist", "color": self.color})
            self.write_state(color)
            previous, changed = self.color, self.color != color
            if changed:
                self.color = color
                self.generation += 1
            return Reply(200, {"color": color, "address": "x", "previous": previous, "changed": changed,
                               "persisted": True, "generation": self.generation})

    def close(self):
        self.server.close()


class FakeLB:
    """The load balancer, routing to the admin's live color and naming it in X-Ragops-Color, as the stack's nginx does.

    Without ``backends`` it answers every request itself with 200 {"status": "healthy"}. With ``backends``
    ({color: base URL}) it proxies each request to the color's app, passes the app's answer on, and counts it in the
    admin's LBMetrics like nginx (a refused backend is a 502 of that color). ``lag`` answers that many more requests
    with the color live before the last switch; ``stuck`` always answers that color; ``fail_next`` answers 502s that
    name no color (nginx routed them nowhere: counted under color "none")."""

    def __init__(self, admin, backends=None):
        self.admin = admin
        self.backends = dict(backends or {})
        self.lag = 0
        self.stuck = None
        self.fail_next = 0
        self.served = []
        self.color_header = "X-Ragops-Color"
        self._last_seen = admin.color
        self._old = admin.color
        self.server = serve_tcp(self)
        self.base_url = self.server.base_url
        self.url = self.base_url + "/health"

    def handle(self, method, path, headers, body):
        with self.admin.lock:
            live = self.admin.color
            if live != self._last_seen:
                self._old, self._last_seen = self._last_seen, live
            if self.fail_next > 0:
                self.fail_next -= 1
                color = None
            elif self.stuck:
                color = self.stuck
            elif self.lag > 0 and live != self._old:
                self.lag -= 1
                color = self._old
            else:
                color = live
        if color is None:
            self.admin.metrics.observe("none", 502, 0.0)
            return Reply(502, {"error": "bad gateway"})
        self.served.append(color)
        if not self.backends:
            return Reply(200, {"status": "healthy"}, headers={self.color_header: color})
        return self._forward(color, method, path, headers, body)

    def _forward(self, color, method, path, headers, body):
        backend = urlparse(self.backends[color])
        connection = http.client.HTTPConnection(backend.hostname, backend.port, timeout=5)
        passed = dict((name, value) for name, value in headers.items()
                      if name.lower() not in ("host", "connection", "content-length"))
        started = time.monotonic()
        try:
            connection.request(method, path, body=body or None, headers=passed)
            response = connection.getresponse()
            status, data = response.status, response.read()
            answer_headers = dict((name, value) for name, value in response.getheaders()
                                  if name.lower() not in ("content-length", "connection", "date", "server"))
        except OSError:
            status, data, answer_headers = 502, b'{"error": "bad gateway"}', {"Content-Type": "application/json"}
        finally:
            connection.close()
        self.admin.metrics.observe(color, status, time.monotonic() - started)
        answer_headers[self.color_header] = color
        return Reply(status, body=data, headers=answer_headers)

    def close(self):
        self.server.close()
