# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The nginx side of a switch, as real HTTP servers: the admin API on a unix socket, and a load balancer that
routes by the admin's live color."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import threading
from urllib.parse import parse_qs, urlparse

from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import Reply, serve_tcp, serve_unix


class FakeAdmin:
    """The nginx admin API: GET /live, PUT /live[?expect=], GET /peers; persists to state_file before switching."""

    def __init__(self, tmp_path, color="blue"):
        self.state_file = str(tmp_path / "live_color")
        self.color = color
        self.generation = 0
        self.busy_answers = 0
        self.persist_fails = False
        self.before_put = None
        self.puts = []
        self.lock = threading.Lock()
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
    """GET /health answered with X-Ragops-Color (as the stack's nginx adds it) of the admin's live color. ``lag`` answers that many more requests with
    the color live before the last switch; ``stuck`` always answers that color; ``fail_next`` answers 502s."""

    def __init__(self, admin):
        self.admin = admin
        self.lag = 0
        self.stuck = None
        self.fail_next = 0
        self.served = []
        self.color_header = "X-Ragops-Color"
        self._last_seen = admin.color
        self._old = admin.color
        self.server = serve_tcp(self)
        self.url = self.server.base_url + "/health"

    def handle(self, method, path, headers, body):
        with self.admin.lock:
            live = self.admin.color
        if live != self._last_seen:
            self._old, self._last_seen = self._last_seen, live
        if self.fail_next > 0:
            self.fail_next -= 1
            return Reply(502, {"error": "bad gateway"})
        color = live
        if self.stuck:
            color = self.stuck
        elif self.lag > 0 and live != self._old:
            self.lag -= 1
            color = self._old
        self.served.append(color)
        return Reply(200, {"status": "healthy"}, headers={self.color_header: color})

    def close(self):
        self.server.close()
