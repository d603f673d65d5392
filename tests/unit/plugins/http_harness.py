# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Test helpers: scriptable HTTP servers (TCP on 127.0.0.1, or a unix socket) and a module runner."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible.module_utils.testing import patch_module_args


class Reply:
    """One scripted response. ``delay`` waits before the headers, ``drip`` = (pieces, pause) sends the body slowly."""

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

    def next_reply(self, method, path, headers, body):
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
        reply = self.server.script.next_reply(self.command, self.path, dict(self.headers.items()), body)
        if reply.delay:
            time.sleep(reply.delay)
        try:
            self.send_response(reply.status)
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


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def get_request(self):
        request, dummy = super().get_request()
        return request, ("unix", 0)


class _TCPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class Server:
    def __init__(self, server, base_url, script):
        self._server = server
        self.base_url = base_url
        self.script = script
        self._thread = threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True)
        self._thread.start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()


def tcp_server():
    script = Script()
    server = _TCPServer(("127.0.0.1", 0), _Handler)
    server.script = script
    return Server(server, "http://127.0.0.1:%d" % server.server_address[1], script)


def unix_server(path):
    script = Script()
    server = _UnixHTTPServer(str(path), _Handler)
    server.script = script
    return Server(server, "http://localhost", script)


def closed_port_url():
    """A loopback URL nothing listens on."""
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return "http://127.0.0.1:%d" % port


def run_module(module, args, capsys, check_mode=False):
    """Runs ``module.main()`` with ``args``; returns the result dict, with ``failed`` set by fail_json."""
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)
