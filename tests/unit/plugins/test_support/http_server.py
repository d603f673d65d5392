# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Real HTTP servers for the tests, on a thread: TCP on 127.0.0.1, or a unix socket, both served by one handler.

A server answers each request with ``app.handle(method, path, headers, body)``, which returns a `Reply`. A `Script`
is an app that answers scripted replies per route; the fakes (fake_nginx, fake_app, ...) are apps with state."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import socket
import socketserver
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Reply:
    """One response. ``json_body`` is sent as JSON, else ``body`` (text or bytes) as it is. ``delay`` waits before
    the headers, ``drip`` = (pieces, pause) sends the body slowly. A Content-Type in ``headers`` wins."""

    def __init__(self, status=200, json_body=None, body=None, headers=None, delay=0.0, drip=None):
        self.status = status
        if json_body is not None:
            self.body = json.dumps(json_body).encode("utf-8")
            self.content_type = "application/json"
        else:
            self.body = (body or "").encode("utf-8") if not isinstance(body, bytes) else body
            self.content_type = "text/plain; charset=utf-8"
        self.headers = headers or {}
        self.delay = delay
        self.drip = drip

    @classmethod
    def of(cls, status, payload, headers=None):
        """A reply of ``payload``: JSON for a dict or a list, else the text or bytes as they are."""
        if isinstance(payload, (dict, list)):
            return cls(status, json_body=payload, headers=headers)
        return cls(status, body=payload, headers=headers)


class Script:
    """Routes ``(method, path)`` to a list of replies: the n-th request gets the n-th reply, the last one repeats."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        self._lock = threading.Lock()

    def route(self, path, *replies, **kwargs):
        self.routes[(kwargs.get("method", "GET"), path)] = list(replies)
        return self

    def hits(self, path, method="GET"):
        return sum(1 for request in self.requests if request["path"] == path and request["method"] == method)

    def handle(self, method, path, headers, body):
        with self._lock:
            number = self.hits(path, method)
            self.requests.append(dict(method=method, path=path, headers=headers, body=body))
            replies = self.routes.get((method, path))
        if not replies:
            return Reply(404, {"error": "not found"})
        return replies[min(number, len(replies) - 1)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.server.app.handle(self.command, self.path, dict(self.headers.items()), body)
        if reply.delay:
            time.sleep(reply.delay)
        try:
            self.send_response(reply.status)
            if "Content-Type" not in reply.headers:
                self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if reply.drip:
                pieces, pause = reply.drip
                step = max(1, len(reply.body) // pieces)
                for start in range(0, len(reply.body), step):
                    self.wfile.write(reply.body[start:start + step])
                    self.wfile.flush()
                    time.sleep(pause)
            else:
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


class _TCPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # probes open a connection each; the default backlog of 5 refuses some


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def get_request(self):
        request, dummy = super().get_request()
        return request, ("unix", 0)


class HTTPTestServer:
    """``app`` served on a thread. ``base_url`` is the URL to request; ``socket_path`` is set for a unix socket."""

    def __init__(self, app, server, base_url, socket_path=None, private_dir=None):
        self.app = app
        self.base_url = base_url
        self.socket_path = socket_path
        self._private_dir = private_dir
        self._server = server
        server.app = app
        threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True).start()

    @property
    def script(self):
        """The Script a scripted server answers from."""
        return self.app

    def close(self):
        self._server.shutdown()
        self._server.server_close()
        if self._private_dir:
            shutil.rmtree(self._private_dir, ignore_errors=True)


def serve_tcp(app):
    server = _TCPServer(("127.0.0.1", 0), _Handler)
    return HTTPTestServer(app, server, "http://127.0.0.1:%d" % server.server_address[1])


def serve_unix(app, path=None, name="http.sock"):
    """``app`` on the unix socket ``path``; without it, on ``name`` in a new folder that close() removes (a socket
    path is limited to about 100 bytes, so a short folder rather than pytest's tmp_path)."""
    private_dir = None
    if path is None:
        private_dir = tempfile.mkdtemp(prefix="ragops-test-")
        path = os.path.join(private_dir, name)
    server = _UnixServer(str(path), _Handler)
    return HTTPTestServer(app, server, "http://localhost", socket_path=str(path), private_dir=private_dir)


def tcp_server():
    """A scripted server on 127.0.0.1: route replies on its ``script``."""
    return serve_tcp(Script())


def unix_server(path):
    """A scripted server on the unix socket ``path``."""
    return serve_unix(Script(), path)


def closed_port_url(path=""):
    """A loopback URL nothing listens on, ending with ``path``."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return "http://127.0.0.1:%d%s" % (port, path)
