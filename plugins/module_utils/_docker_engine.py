# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Read-only watch of one container through the Docker Engine API: a gate stops at once on a crash, a job wait
follows a one-off container until it exits.

It inspects a container and reads its log lines; it never changes anything (community.docker does that).
It speaks HTTP with http.client over the unix socket: ansible's Request installs a process-wide urllib opener,
which would send the gate's own TCP probes to the Docker socket afterwards.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.client
import json
import socket
import struct
from urllib.parse import quote

DEFAULT_SOCKET = "/var/run/docker.sock"
LOG_LINE_LIMIT = 300
JOB_LINE_LIMIT = 1000


class DockerEngineError(Exception):
    pass


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path, timeout):
        http.client.HTTPConnection.__init__(self, "docker", timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class DockerEngine(object):
    def __init__(self, socket_path=DEFAULT_SOCKET, timeout=2.0):
        self.socket_path = socket_path
        self.timeout = timeout

    def _get(self, path):
        connection = _UnixConnection(self.socket_path, self.timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise DockerEngineError("cannot reach the Docker engine on %s: %s" % (self.socket_path, exc))
        finally:
            connection.close()

    def inspect(self, name):
        """The container's inspect document, or None when there is no such container."""
        status, raw = self._get("/containers/%s/json" % quote(name, safe=""))
        if status == 404:
            return None
        if status != 200:
            raise DockerEngineError("the Docker engine answered HTTP %s to the inspect of %s%s" % (status, name, _message(raw)))
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError:
            raise DockerEngineError("the Docker engine answered the inspect of %s with no JSON" % name)

    def logs(self, name, tail=None, line_length=JOB_LINE_LIMIT):
        """Lines of stdout and stderr as Docker interleaves them, oldest first: the last `tail` ones, all when None.

        Each line is cut to `line_length` characters. Raises DockerEngineError when they cannot be read (no such
        container, or a logging driver that keeps no logs)."""
        if tail is not None and tail <= 0:
            return []
        query = "stdout=1&stderr=1&tail=%s" % ("all" if tail is None else "%d" % tail)
        status, raw = self._get("/containers/%s/logs?%s" % (quote(name, safe=""), query))
        if status != 200:
            raise DockerEngineError("the Docker engine answered HTTP %s to the logs of %s%s" % (status, name, _message(raw)))
        lines = demultiplex(raw).decode("utf-8", "replace").splitlines()
        if tail is not None:
            lines = lines[-tail:]
        return [line[:line_length] for line in lines]

    def log_tail(self, name, lines=8):
        """The last `lines` non-blank lines of stdout and stderr, oldest first; empty when they cannot be read."""
        try:
            return [line for line in self.logs(name, lines, LOG_LINE_LIMIT) if line.strip()]
        except DockerEngineError:
            return []


def _message(raw):
    """``: <message>`` of a Docker error answer ({"message": ...}), else nothing."""
    try:
        message = json.loads(raw.decode("utf-8")).get("message")
    except (ValueError, AttributeError):
        return ""
    return ": %s" % message if message else ""


def demultiplex(raw):
    """The payload of a log stream of a container without a TTY: frames of an 8-byte header, then the data."""
    chunks, offset = [], 0
    while offset + 8 <= len(raw) and raw[offset] in (0, 1, 2) and raw[offset + 1:offset + 4] == b"\0\0\0":
        size = struct.unpack(">I", raw[offset + 4:offset + 8])[0]
        chunks.append(raw[offset + 8:offset + 8 + size])
        offset += 8 + size
    if offset == 0:
        return raw  # a container with a TTY sends the plain stream
    return b"".join(chunks)


def crash_reason(inspected, baseline_restarts):
    """Why the container counts as crashed (exited, dead, restarting or restarted since the baseline), or None."""
    if inspected is None:
        return "the container does not exist"
    state = inspected.get("State") or {}
    restarts = int(inspected.get("RestartCount") or 0)
    status = state.get("Status")
    detail = "exit code %s" % state.get("ExitCode")
    if state.get("Error"):
        detail += ", %s" % state["Error"]
    if status in ("exited", "dead"):
        return "the container %s (%s)" % (status, detail)
    if state.get("Restarting"):
        return "the container is crash-looping: restarting after %s, %d restart(s)" % (detail, restarts)
    if restarts > baseline_restarts:
        # Running again after the restart: Docker reports the new run's exit code (0), not the crash's.
        return "the container restarted %d time(s) since the gate started" % (restarts - baseline_restarts)
    return None
