# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The read-only part of the Docker Engine API, as a real HTTP server on a unix socket."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from urllib.parse import parse_qs, urlparse

from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import Reply, serve_unix


class FakeDockerEngine:
    """The read-only part of the Docker Engine API a crash watch uses: inspect and logs of one container.

    ``states`` is a list of (Status, Restarting, RestartCount, ExitCode) returned by successive inspects; the last
    one repeats. As with Docker, Running is true while restarting too. ``name`` is the only container that exists."""

    def __init__(self, name, states, logs=("line one", "line two")):
        self.name = name
        self.states = list(states)
        self.logs = list(logs)
        self.inspects = 0
        self.server = serve_unix(self, name="docker.sock")
        self.socket_path = self.server.socket_path

    def handle(self, method, path, headers, body):
        url = urlparse(path)
        if method != "GET" or not url.path.startswith("/containers/"):
            return Reply(404, {"message": "page not found"})
        name, dummy, what = url.path[len("/containers/"):].partition("/")
        if name != self.name:
            return Reply(404, {"message": "No such container: %s" % name})
        if what == "logs":
            stream = b""
            for line in self.logs[-int(parse_qs(url.query).get("tail", ["all"])[0]):]:
                data = (line + "\n").encode("utf-8")
                stream += bytes([2, 0, 0, 0]) + len(data).to_bytes(4, "big") + data
            return Reply(200, body=stream, headers={"Content-Type": "application/vnd.docker.raw-stream"})
        status, restarting, restarts, code = self.states[min(self.inspects, len(self.states) - 1)]
        self.inspects += 1
        running = status in ("running", "restarting", "paused")
        return Reply(200, {"Name": "/" + self.name, "RestartCount": restarts,
                           "State": {"Status": status, "Running": running, "Restarting": restarting,
                                     "ExitCode": code, "Error": ""}})

    def close(self):
        self.server.close()
