# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The read-only part of the Docker Engine API, as a real HTTP server on a unix socket."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
from urllib.parse import parse_qs, urlparse

from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import Reply, serve_unix

STDOUT, STDERR = 1, 2
NEVER = "0001-01-01T00:00:00Z"  # what Docker reports for a time that has not happened


def state(status, exit_code=0, restarting=False, restarts=0, error="", oom_killed=False, started_at=NEVER,
          finished_at=NEVER):
    """One container state, for `FakeDockerEngine` states."""
    return dict(status=status, exit_code=exit_code, restarting=restarting, restarts=restarts, error=error,
                oom_killed=oom_killed, started_at=started_at, finished_at=finished_at)


def _normal_state(entry):
    if entry is None or isinstance(entry, dict):
        return entry
    status, restarting, restarts, code = entry
    return state(status, exit_code=code, restarting=restarting, restarts=restarts)


def _normal_line(entry):
    """(since, stream, text) of a log entry: a text (stdout from the start), (stream, text) or (since, stream, text)."""
    if isinstance(entry, str):
        return 0.0, STDOUT, entry
    if len(entry) == 2:
        return (0.0,) + tuple(entry)
    return tuple(entry)


class FakeDockerEngine:
    """The read-only part of the Docker Engine API a crash watch and a job wait use: inspect and logs of one container.

    ``states`` are the container's successive states, each a `state()` dict, a tuple (Status, Restarting,
    RestartCount, ExitCode), or None while no such container exists (not created yet, or removed). Without
    ``clock``, the n-th inspect gets the n-th state and the last one repeats. With ``clock`` (a `FakeTime`'s, shared
    with the code under test), ``states`` are (since, state) pairs: an inspect at clock() gets the last state whose
    ``since`` has come, and no container before the first one. As with Docker, Running is true while restarting too.

    ``logs`` entries are a text (a stdout line), (stream, text) or, with ``clock``, (since, stream, text) to show
    only from ``since`` on. ``tty`` sends them as one plain stream, as for a container with a TTY. A ``log_status``
    other than 200 answers the logs with that error, as with a logging driver that keeps none.
    ``requests`` records every (method, path) received."""

    def __init__(self, name, states, logs=("line one", "line two"), clock=None, tty=False, log_status=200):
        self.name = name
        self.clock = clock
        if clock is None:
            self.states = [_normal_state(entry) for entry in states]
        else:
            self.states = [(since, _normal_state(entry)) for since, entry in states]
        self.logs = [_normal_line(entry) for entry in logs]
        self.tty = tty
        self.log_status = log_status
        self.inspects = 0
        self.requests = []
        self._lock = threading.Lock()
        self.server = serve_unix(self, name="docker.sock")
        self.socket_path = self.server.socket_path

    def current(self):
        """The container's state now (None: no such container); counts an inspect."""
        with self._lock:
            self.inspects += 1
            if self.clock is None:
                return self.states[min(self.inspects - 1, len(self.states) - 1)]
            now = self.clock()
            found = None
            for since, entry in self.states:
                if since <= now:
                    found = entry
            return found

    def handle(self, method, path, headers, body):
        self.requests.append((method, path))
        url = urlparse(path)
        if method != "GET" or not url.path.startswith("/containers/"):
            return Reply(404, {"message": "page not found"})
        name, dummy, what = url.path[len("/containers/"):].partition("/")
        if name != self.name:
            return Reply(404, {"message": "No such container: %s" % name})
        if what == "logs":
            return self._logs(parse_qs(url.query))
        if what != "json":
            return Reply(404, {"message": "page not found"})
        current = self.current()
        if current is None:
            return Reply(404, {"message": "No such container: %s" % name})
        running = current["status"] in ("running", "restarting", "paused")
        return Reply(200, {"Name": "/" + self.name, "RestartCount": current["restarts"],
                           "State": {"Status": current["status"], "Running": running,
                                     "Paused": current["status"] == "paused", "Restarting": current["restarting"],
                                     "OOMKilled": current["oom_killed"], "Dead": current["status"] == "dead",
                                     "ExitCode": current["exit_code"], "Error": current["error"],
                                     "StartedAt": current["started_at"], "FinishedAt": current["finished_at"]}})

    def _logs(self, query):
        if self.log_status != 200:
            return Reply(self.log_status, {"message": "configured logging driver does not support reading"})
        now = self.clock() if self.clock else 0.0
        wanted = set()
        if query.get("stdout", ["0"])[0] in ("1", "true"):
            wanted.add(STDOUT)
        if query.get("stderr", ["0"])[0] in ("1", "true"):
            wanted.add(STDERR)
        lines = [(stream, text) for since, stream, text in self.logs if since <= now and stream in wanted]
        tail = query.get("tail", ["all"])[0]
        if tail != "all":
            lines = lines[len(lines) - min(int(tail), len(lines)):]
        stream = b""
        for number, text in lines:
            data = (text + "\n").encode("utf-8")
            stream += data if self.tty else bytes([number, 0, 0, 0]) + len(data).to_bytes(4, "big") + data
        return Reply(200, body=stream, headers={"Content-Type": "application/vnd.docker.raw-stream"})

    def close(self):
        self.server.close()
