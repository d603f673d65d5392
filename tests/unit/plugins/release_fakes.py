# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Stateful fakes for the switch and analysis modules: the nginx admin API on a unix socket, a load balancer that
routes by the admin state, an app with Prometheus metrics, and a Prometheus query API. All are real HTTP servers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import socketserver
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from ansible.module_utils.testing import patch_module_args

APP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.server.app.handle(self.command, self.path, body)
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload).encode("utf-8")
            headers = dict({"Content-Type": "application/json"}, **headers)
        elif not isinstance(payload, bytes):
            payload = payload.encode("utf-8")
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_PUT = do_POST = _handle

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def get_request(self):
        request, dummy = super().get_request()
        return request, ("unix", 0)


class _TCPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # probes open a connection each; the default backlog of 5 refuses some


def _serve(server, app):
    server.app = app
    threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True).start()
    return server


class FakeAdmin:
    """The nginx admin API: GET /live, PUT /live[?expect=], GET /peers; persists to state_file before switching."""

    def __init__(self, tmp_path, color="blue"):
        # A unix socket path is limited to about 100 bytes: a short folder, not pytest's tmp_path.
        self.socket_dir = tempfile.mkdtemp(prefix="ragops-admin-")
        self.socket_path = os.path.join(self.socket_dir, "admin.sock")
        self.state_file = str(tmp_path / "live_color")
        self.color = color
        self.generation = 0
        self.busy_answers = 0
        self.persist_fails = False
        self.before_put = None
        self.puts = []
        self.lock = threading.Lock()
        self.write_state(color)
        self.server = _serve(_UnixServer(self.socket_path, _Handler), self)

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

    def handle(self, method, path, body):
        url = urlparse(path)
        if url.path == "/peers":
            return 200, {}, {"live": self.color, "peers": {"blue": "10.0.0.10:8000", "green": "10.0.0.11:8000"}}
        if url.path != "/live":
            return 404, {}, {"error": "not found"}
        if method == "GET":
            persisted, error = self.persisted()
            return 200, {}, {"color": self.color, "address": "x", "source": "shared_dict", "set_by": "api",
                             "since": 0, "generation": self.generation, "persisted": persisted,
                             "persisted_error": error, "in_sync": persisted == self.color}
        if method != "PUT":
            return 405, {"Allow": "GET, HEAD, PUT"}, {"error": "method not allowed"}
        with self.lock:
            expect = parse_qs(url.query).get("expect", [None])[0]
            self.puts.append({"body": body.decode(), "expect": expect})
            if self.before_put:
                self.before_put(self)
            if self.busy_answers > 0:
                self.busy_answers -= 1
                return 409, {}, {"error": "another switch is in progress"}
            color = body.decode().strip()
            if color not in ("blue", "green"):
                return 400, {}, {"error": "body must be one of: blue, green"}
            if expect and expect != self.color:
                return 409, {}, {"error": "live color is %s, not %s" % (self.color, expect), "color": self.color}
            if self.persist_fails:
                return 500, {}, {"error": "live color unchanged: cannot persist", "color": self.color}
            self.write_state(color)
            previous, changed = self.color, self.color != color
            if changed:
                self.color = color
                self.generation += 1
            return 200, {}, {"color": color, "address": "x", "previous": previous, "changed": changed,
                             "persisted": True, "generation": self.generation}

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


class FakeLB:
    """GET /health answered with X-App-Color of the admin's live color. ``lag`` answers that many more requests with
    the color live before the last switch; ``stuck`` always answers that color; ``fail_next`` answers 502s."""

    def __init__(self, admin):
        self.admin = admin
        self.lag = 0
        self.stuck = None
        self.fail_next = 0
        self.served = []
        self._last_seen = admin.color
        self._old = admin.color
        self.server = _serve(_TCPServer(("127.0.0.1", 0), _Handler), self)
        self.url = "http://127.0.0.1:%d/health" % self.server.server_address[1]

    def handle(self, method, path, body):
        with self.admin.lock:
            live = self.admin.color
        if live != self._last_seen:
            self._old, self._last_seen = self._last_seen, live
        if self.fail_next > 0:
            self.fail_next -= 1
            return 502, {}, {"error": "bad gateway"}
        color = live
        if self.stuck:
            color = self.stuck
        elif self.lag > 0 and live != self._old:
            self.lag -= 1
            color = self._old
        self.served.append(color)
        return 200, {"X-App-Color": color}, {"status": "healthy"}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeApp:
    """An app color's /metrics (text format, like prometheus_client) and POST /api/query.

    ``per_scrape`` is a list of (requests, errors, latency_seconds): before answering its n-th scrape (n >= 1) the
    app counts that traffic; the last entry repeats. ``query_error``/``query_latency`` shape the probes' own traffic."""

    def __init__(self, color="green", version="1.1.0", per_scrape=None, query_status=200, scrape_delay=0.0):
        self.color, self.version = color, version
        self.scrape_delay = scrape_delay
        self.per_scrape = list(per_scrape or [(0, 0, 0.01)])
        self.query_status = query_status
        self.scrapes = 0
        self.queries = 0
        self.statuses = {}
        self.buckets = [0] * (len(APP_BUCKETS) + 1)
        self.duration_sum = 0.0
        self.lock = threading.Lock()
        self.server = _serve(_TCPServer(("127.0.0.1", 0), _Handler), self)
        self.base_url = "http://127.0.0.1:%d" % self.server.server_address[1]
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
        lines = [
            "# HELP rag_requests_total HTTP requests served",
            "# TYPE rag_requests_total counter",
            'rag_requests_total{endpoint="/health",method="GET",status="200"} 1234.0',
        ]
        for status, count in sorted(self.statuses.items()):
            lines.append('rag_requests_total{endpoint="/api/query",method="POST",status="%s"} %s' % (status, float(count)))
        lines += ["# HELP rag_request_duration_seconds HTTP request duration",
                  "# TYPE rag_request_duration_seconds histogram"]
        cumulative = 0
        for bound, count in zip(APP_BUCKETS + (float("inf"),), self.buckets):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append('rag_request_duration_seconds_bucket{endpoint="/api/query",le="%s"} %s' % (le, float(cumulative)))
        lines.append('rag_request_duration_seconds_count{endpoint="/api/query"} %s' % float(cumulative))
        lines.append('rag_request_duration_seconds_sum{endpoint="/api/query"} %s' % self.duration_sum)
        lines.append('rag_request_duration_seconds_bucket{endpoint="/health",le="+Inf"} 1234.0')
        lines.append('rag_build_info{color="%s",version="%s"} 1.0' % (self.color, self.version))
        return "\n".join(lines) + "\n"

    def handle(self, method, path, body):
        headers = {"X-App-Color": self.color, "X-App-Version": self.version}
        if path == "/metrics" and method == "GET":
            time.sleep(self.scrape_delay)
            with self.lock:
                if self.scrapes > 0:
                    requests, errors, latency = self.per_scrape[min(self.scrapes - 1, len(self.per_scrape) - 1)]
                    self.observe("500", latency, errors)
                    self.observe("200", latency, requests - errors)
                self.scrapes += 1
                text = self.render()
            return 200, dict(headers, **{"Content-Type": "text/plain; version=0.0.4"}), text
        if path == "/api/query" and method == "POST":
            with self.lock:
                self.queries += 1
                self.observe(str(self.query_status), 0.004)
            if self.query_status != 200:
                return self.query_status, headers, {"error": "drill: injected error"}
            return 200, headers, {"answer": "ok", "sources": []}
        return 404, headers, {"error": "not found"}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakePrometheus:
    """GET /api/v1/query answered by ``answer(query)`` -> list of (labels, value) or a (status, body) error."""

    def __init__(self, answer):
        self.answer = answer
        self.queries = []
        self.server = _serve(_TCPServer(("127.0.0.1", 0), _Handler), self)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def handle(self, method, path, body):
        url = urlparse(path)
        if url.path != "/api/v1/query":
            return 404, {}, "404 page not found\n"
        query = parse_qs(url.query).get("query", [""])[0]
        self.queries.append(query)
        answer = self.answer(query)
        if isinstance(answer, tuple):
            return answer[0], {}, answer[1]
        result = [{"metric": labels, "value": [1700000000.0, str(value)]} for labels, value in answer]
        return 200, {}, {"status": "success", "data": {"resultType": "vector", "result": result}}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def closed_port_url(path="/"):
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return "http://127.0.0.1:%d%s" % (port, path)


def run_module(module, args, capsys, check_mode=False):
    """Runs module.main() with args; the result dict, with ``failed`` set by fail_json."""
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


class FakeDockerEngine:
    """The read-only part of the Docker Engine API a crash watch uses: inspect and logs of one container.

    ``states`` is a list of (Status, Restarting, RestartCount, ExitCode) returned by successive inspects; the last
    one repeats. ``name`` is the only container that exists."""

    def __init__(self, name, states, logs=("line one", "line two")):
        self.name = name
        self.states = list(states)
        self.logs = list(logs)
        self.inspects = 0
        self.socket_dir = tempfile.mkdtemp(prefix="ragops-docker-")
        self.socket_path = os.path.join(self.socket_dir, "docker.sock")
        self.server = _serve(_UnixServer(self.socket_path, _Handler), self)

    def handle(self, method, path, body):
        url = urlparse(path)
        if method != "GET" or not url.path.startswith("/containers/"):
            return 404, {}, {"message": "page not found"}
        name, dummy, what = url.path[len("/containers/"):].partition("/")
        if name != self.name:
            return 404, {}, {"message": "No such container: %s" % name}
        if what == "logs":
            stream = b""
            for line in self.logs[-int(parse_qs(url.query).get("tail", ["all"])[0]):]:
                data = (line + "\n").encode("utf-8")
                stream += bytes([2, 0, 0, 0]) + len(data).to_bytes(4, "big") + data
            return 200, {"Content-Type": "application/vnd.docker.raw-stream"}, stream
        status, restarting, restarts, code = self.states[min(self.inspects, len(self.states) - 1)]
        self.inspects += 1
        return 200, {}, {"Name": "/" + self.name, "RestartCount": restarts,
                         "State": {"Status": status, "Running": status == "running", "Restarting": restarting,
                                   "ExitCode": code, "Error": ""}}

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.socket_dir, ignore_errors=True)
