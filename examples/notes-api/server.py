# notes-api: the platform's second test workload. Standard library only, shares nothing with the RAG service.
#
#   python3 server.py           serve HTTP on 0.0.0.0:$NOTES_PORT (default 9000)
#   python3 server.py migrate   one-off pre-switch job: prints progress, exits 0 (3 with NOTES_MIGRATE_FAIL=1)
#
# Contract: GET /healthz (plain text "ok"), GET / (plain text version), GET/POST /notes (JSON). No metrics.
# NOTES_FAIL_RATE (0..1) makes that share of requests to every path but /healthz answer 500, chosen by a counter
# so that N requests always give exactly floor(N * rate) failures.

import json
import os
import select
import signal
import sys
import threading
import time
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

DEFAULT_PORT = 9000
MAX_BODY_BYTES = 64 * 1024
# Longer than a proxy's usual upstream keep-alive (nginx: 60s), so the proxy, not us, closes idle connections.
IDLE_TIMEOUT = 75.0
READ_TIMEOUT = 30.0
IDLE_POLL = 0.05
DRAIN_TIMEOUT = 5.0
MIGRATE_STEPS = ("check schema", "apply changes", "verify")


class ConfigError(ValueError):
    pass


def _fraction_env(environ, name, default):
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = Fraction(raw)
    except (ValueError, ZeroDivisionError):
        raise ConfigError("%s must be a number between 0 and 1, got %r" % (name, raw))
    if not 0 <= value <= 1:
        raise ConfigError("%s must be a number between 0 and 1, got %r" % (name, raw))
    return value


def _port_env(environ, name, default):
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > 65535:
        raise ConfigError("%s must be a TCP port number 0..65535, got %r" % (name, raw))
    return int(raw)


def _seconds_env(environ, name):
    raw = environ.get(name, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError("%s must be a number of seconds >= 0, got %r" % (name, raw))
    if not 0 <= value < float("inf"):
        raise ConfigError("%s must be a number of seconds >= 0, got %r" % (name, raw))
    return value


def load_config(environ):
    """Server settings from the environment; raises ConfigError naming the variable."""
    return {
        "port": _port_env(environ, "NOTES_PORT", DEFAULT_PORT),
        "version": environ.get("NOTES_VERSION", "").strip() or "dev",
        "fail_rate": _fraction_env(environ, "NOTES_FAIL_RATE", Fraction(0)),
    }


class FailureInjector:
    """Request n (1-based) fails when floor(n * rate) steps up: rate 1/2 fails every 2nd, 1 fails all."""

    def __init__(self, rate):
        self.rate = Fraction(rate)
        self._count = 0
        self._lock = threading.Lock()

    def should_fail(self):
        if not self.rate:
            return False
        with self._lock:
            self._count += 1
            n = self._count
        return (n * self.rate) // 1 > ((n - 1) * self.rate) // 1


class NoteStore:
    def __init__(self):
        self._notes = []
        self._lock = threading.Lock()

    def add(self, text):
        with self._lock:
            note = {"id": len(self._notes) + 1, "text": text}
            self._notes.append(note)
            return dict(note)

    def all(self):
        with self._lock:
            return [dict(note) for note in self._notes]


class NotesServer(ThreadingHTTPServer):
    """Keeps a count of open connections so that drain() can wait for in-flight requests."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, config):
        self.config = config
        self.notes = NoteStore()
        self.injector = FailureInjector(config["fail_rate"])
        self.draining = threading.Event()
        self._open = 0
        self._open_cond = threading.Condition()
        super().__init__(address, NotesHandler)

    def process_request(self, request, client_address):
        with self._open_cond:
            self._open += 1
        try:
            super().process_request(request, client_address)
        except Exception:
            # No thread (e.g. the container's pids limit): the caller closes the socket, so uncount it.
            with self._open_cond:
                self._open -= 1
                self._open_cond.notify_all()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_cond:
                self._open -= 1
                self._open_cond.notify_all()

    def open_connections(self):
        with self._open_cond:
            return self._open

    def drain(self, timeout=DRAIN_TIMEOUT):
        """Stop accepting, let open connections finish their current request; True when all closed in time."""
        self.draining.set()
        self.shutdown()
        self.server_close()
        deadline = time.monotonic() + timeout
        with self._open_cond:
            while self._open:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._open_cond.wait(left)
        return True


class NotesHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "notes-api"
    timeout = READ_TIMEOUT
    # Headers and body go out in two writes; without TCP_NODELAY the second waits on the client's delayed ACK.
    disable_nagle_algorithm = True

    def version_string(self):
        return self.server_version

    def handle_one_request(self):
        if not self._wait_for_request():
            self.close_connection = True
            return
        super().handle_one_request()

    def _wait_for_request(self):
        # An idle keep-alive connection must not hold up a drain: wait for bytes in short polls
        # and give up when draining (or idle too long). A request whose bytes arrived is served.
        if self._buffered():
            return True
        deadline = time.monotonic() + IDLE_TIMEOUT
        while True:
            try:
                readable = select.select([self.connection], [], [], IDLE_POLL)[0]
            except (OSError, ValueError):
                return False
            if readable:
                return True
            if self.server.draining.is_set() or time.monotonic() > deadline:
                # Bytes that arrived before the drain began still count as a request in flight.
                return self._readable_now()

    def _readable_now(self):
        try:
            return bool(select.select([self.connection], [], [], 0)[0])
        except (OSError, ValueError):
            return False

    def _buffered(self):
        # A pipelined request may already sit in rfile's buffer, where select() cannot see it.
        try:
            self.connection.setblocking(False)
            return bool(self.rfile.peek(1))
        except OSError:
            return False
        finally:
            try:
                self.connection.settimeout(self.timeout)
            except OSError:
                pass

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        sys.stderr.write("notes-api: %s %s\n" % (self.address_string(), format % args))

    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_PATCH(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def _dispatch(self):
        body = self._read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        if path != "/healthz" and self.server.injector.should_fail():
            self._send_json(500, {"error": "injected failure"})
            return
        routes = {
            "/healthz": {"GET": self._healthz, "HEAD": self._healthz},
            "/": {"GET": self._index, "HEAD": self._index},
            "/notes": {"GET": self._list_notes, "HEAD": self._list_notes, "POST": self._create_note},
        }
        methods = routes.get(path)
        if methods is None:
            self._send_json(404, {"error": "no such path: %s" % path})
        elif self.command not in methods:
            self._send_json(405, {"error": "method %s not allowed on %s" % (self.command, path)},
                            extra={"Allow": ", ".join(sorted(methods))})
        else:
            methods[self.command](body)

    def _read_body(self):
        """The request body as bytes, or None after an error reply (the connection is then closed)."""
        if self.headers.get("Transfer-Encoding"):
            self._send_json(411, {"error": "Transfer-Encoding is not supported, send Content-Length"}, close=True)
            return None
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        if not raw.strip().isdigit():
            self._send_json(400, {"error": "Content-Length must be a non-negative integer, got %r" % raw}, close=True)
            return None
        length = int(raw)
        if length > MAX_BODY_BYTES:
            self._send_json(413, {"error": "body exceeds %d bytes" % MAX_BODY_BYTES}, close=True)
            return None
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            return None
        return body

    def _healthz(self, _body):
        if self.server.draining.is_set():
            self._send_text(503, "draining\n")
        else:
            self._send_text(200, "ok\n")

    def _index(self, _body):
        self._send_text(200, "notes-api %s\n" % self.server.config["version"])

    def _list_notes(self, _body):
        self._send_json(200, self.server.notes.all())

    def _create_note(self, body):
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            self._send_json(400, {"error": "invalid JSON body: %s" % exc})
            return
        if not isinstance(payload, dict):
            self._send_json(400, {"error": "body must be a JSON object with field 'text'"})
            return
        text = payload.get("text")
        if not isinstance(text, str) or not text.strip():
            self._send_json(400, {"error": "field 'text' must be a non-empty string"})
            return
        self._send_json(201, self.server.notes.add(text))

    def _send_text(self, status, text):
        self._send(status, "text/plain; charset=utf-8", text.encode("utf-8"))

    def _send_json(self, status, payload, close=False, extra=None):
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        self._send(status, "application/json", body, close=close, extra=extra)

    def _send(self, status, content_type, body, close=False, extra=None):
        if close or self.server.draining.is_set():
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def serve(config, out=sys.stdout, err=sys.stderr):
    server = NotesServer(("0.0.0.0", config["port"]), config)
    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="notes-accept", daemon=True)
    worker.start()
    out.write("notes-api %s: listening on 0.0.0.0:%d (fail rate %g)\n"
              % (config["version"], server.server_address[1], float(config["fail_rate"])))
    out.flush()
    while not stop.wait(1.0):
        pass
    server.draining.set()
    out.write("notes-api: draining\n")
    out.flush()
    if server.drain():
        out.write("notes-api: stopped\n")
    else:
        err.write("notes-api: drain timed out with %d connection(s) open\n" % server.open_connections())
    out.flush()
    return 0


def migrate(environ, out=sys.stdout, err=sys.stderr, sleep=time.sleep):
    """The one-off pre-switch job. Exit codes: 0 done, 2 bad settings, 3 failed (NOTES_MIGRATE_FAIL=1)."""
    try:
        delay = _seconds_env(environ, "NOTES_MIGRATE_SLEEP")
    except ConfigError as exc:
        err.write("migrate: error: %s\n" % exc)
        return 2
    fail = environ.get("NOTES_MIGRATE_FAIL", "").strip() == "1"
    version = environ.get("NOTES_VERSION", "").strip() or "dev"
    out.write("migrate: notes-api %s starting\n" % version)
    out.flush()
    if delay:
        out.write("migrate: waiting %gs (NOTES_MIGRATE_SLEEP)\n" % delay)
        out.flush()
        sleep(delay)
    for number, step in enumerate(MIGRATE_STEPS, 1):
        if fail and number == 2:
            err.write("migrate: error: step %d/%d %s failed (NOTES_MIGRATE_FAIL=1)\n" % (number, len(MIGRATE_STEPS), step))
            err.flush()
            return 3
        out.write("migrate: step %d/%d %s\n" % (number, len(MIGRATE_STEPS), step))
        out.flush()
    out.write("migrate: done\n")
    out.flush()
    return 0


def main(argv, environ):
    command = argv[1] if len(argv) > 1 else "serve"
    if command == "migrate":
        return migrate(environ)
    if command != "serve" or len(argv) > 2:
        sys.stderr.write("usage: server.py [serve|migrate]\n")
        return 2
    try:
        config = load_config(environ)
    except ConfigError as exc:
        sys.stderr.write("notes-api: error: %s\n" % exc)
        return 2
    try:
        return serve(config)
    except OSError as exc:
        sys.stderr.write("notes-api: error: cannot listen on port %d: %s\n" % (config["port"], exc))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv, os.environ))
