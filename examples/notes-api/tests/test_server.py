"""Tests of notes-api: in-thread servers for the HTTP contract, subprocesses for SIGTERM, migrate and the health check."""

import http.client
import importlib.util
import io
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest

APP_DIR = Path(__file__).resolve().parent.parent
SERVER_PY = APP_DIR / "server.py"
DOCKERFILE = APP_DIR / "Dockerfile"
WAIT = 10.0


def _load_server_module():
    spec = importlib.util.spec_from_file_location("notes_api_server", SERVER_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


notes = _load_server_module()


def wait_until(predicate, timeout=WAIT, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


# ---------------------------------------------------------------- in-thread server

@pytest.fixture
def start():
    """start(version=..., fail_rate=...) -> a serving NotesServer with .port; every one is drained at teardown."""
    started = []

    def _start(version="dev", fail_rate=0):
        config = {"port": 0, "version": version, "fail_rate": Fraction(fail_rate)}
        server = notes.NotesServer(("127.0.0.1", 0), config)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()
        started.append(server)
        server.port = server.server_address[1]
        return server

    yield _start
    for server in started:
        if not server.draining.is_set():
            server.drain(timeout=2)


class Client:
    """One keep-alive HTTP/1.1 connection; request() returns (status, headers, body)."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)

    def request(self, method, path, body=None, headers=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        response = self.conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def json(self, method, path, payload=None):
        body = None if payload is None else json.dumps(payload).encode()
        status, headers, data = self.request(method, path, body, {"Content-Type": "application/json"})
        assert headers["content-type"] == "application/json"
        return status, json.loads(data)

    def close(self):
        self.conn.close()


@pytest.fixture
def client_for():
    clients = []

    def _client(port):
        client = Client(port)
        clients.append(client)
        return client

    yield _client
    for client in clients:
        client.close()


def test_healthz_is_plain_ok(start, client_for):
    port = start().port
    status, headers, body = client_for(port).request("GET", "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert headers["content-type"].startswith("text/plain")
    assert headers["content-length"] == "3"


def test_index_reports_version(start, client_for):
    port = start(version="1.4.2").port
    status, headers, body = client_for(port).request("GET", "/")
    assert (status, body) == (200, b"notes-api 1.4.2\n")
    assert headers["content-type"].startswith("text/plain")


def test_notes_are_created_and_listed_on_one_keep_alive_connection(start, client_for):
    port = start().port
    client = client_for(port)
    assert client.json("GET", "/notes") == (200, [])
    first_socket = client.conn.sock
    assert client.json("POST", "/notes", {"text": "buy milk"}) == (201, {"id": 1, "text": "buy milk"})
    assert client.json("POST", "/notes", {"text": "ship it"}) == (201, {"id": 2, "text": "ship it"})
    assert client.json("GET", "/notes") == (200, [{"id": 1, "text": "buy milk"}, {"id": 2, "text": "ship it"}])
    assert client.conn.sock is first_socket, "the server closed a keep-alive connection"


def test_responses_carry_no_app_headers_and_no_metrics_endpoints(start, client_for):
    port = start().port
    client = client_for(port)
    for path in ("/", "/healthz", "/notes"):
        headers = client.request("GET", path)[1]
        assert not [name for name in headers if name.startswith("x-app")], path
    for path in ("/metrics", "/health"):
        assert client.request("GET", path)[0] == 404


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "invalid JSON"),
    (b"\xff\xfe", "invalid JSON"),
    (b"", "invalid JSON"),
    (b'["text"]', "JSON object"),
    (b'{"txt": "x"}', "'text'"),
    (b'{"text": 3}', "'text'"),
    (b'{"text": "  "}', "'text'"),
])
def test_bad_note_bodies_get_400_json(start, client_for, body, fragment):
    port = start().port
    client = client_for(port)
    status, headers, data = client.request("POST", "/notes", body, {"Content-Type": "application/json"})
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert fragment in json.loads(data)["error"]
    assert client.json("GET", "/notes") == (200, []), "the connection stays usable and nothing was stored"


def test_unknown_path_is_404_and_wrong_method_405(start, client_for):
    port = start().port
    client = client_for(port)
    status, payload = client.json("GET", "/nope")
    assert status == 404 and "/nope" in payload["error"]
    status, headers, data = client.request("DELETE", "/notes")
    assert status == 405
    assert headers["allow"] == "GET, HEAD, POST"
    assert "DELETE" in json.loads(data)["error"]


def test_head_sends_headers_only(start, client_for):
    port = start(version="2.0").port
    client = client_for(port)
    status, headers, body = client.request("HEAD", "/")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str(len(b"notes-api 2.0\n"))
    assert client.request("GET", "/healthz")[2] == b"ok\n", "keep-alive survives a HEAD"


def test_fail_rate_one_fails_everything_but_healthz(start, client_for):
    server = start(fail_rate=1)
    port = server.port
    client = client_for(port)
    requests = [("GET", "/", None), ("GET", "/notes", None), ("POST", "/notes", b'{"text": "x"}'),
                ("GET", "/nope", None), ("DELETE", "/notes", None)] * 2
    for method, path, body in requests:
        status, headers, data = client.request(method, path, body)
        assert status == 500, (method, path)
        assert headers["content-type"] == "application/json"
        assert json.loads(data) == {"error": "injected failure"}
        assert client.request("GET", "/healthz")[:1] == (200,)
    assert server.notes.all() == [], "a failed POST stores nothing"


def test_fail_rate_half_fails_exactly_every_second_request(start, client_for):
    port = start(fail_rate=0.5).port
    client = client_for(port)
    statuses = []
    for attempt in range(10):
        statuses.append(client.request("GET", "/")[0])
        assert client.request("GET", "/healthz")[0] == 200, "health checks are neither failed nor counted"
    assert statuses == [200, 500] * 5


@pytest.mark.parametrize("rate, calls, failures", [
    ("0", 100, 0), ("1", 100, 100), ("0.5", 101, 50), ("0.25", 100, 25), ("0.3", 100, 30), ("1/3", 10, 3),
])
def test_failure_injector_counts_are_exact(rate, calls, failures):
    injector = notes.FailureInjector(Fraction(rate))
    assert sum(injector.should_fail() for call in range(calls)) == failures


def test_failure_injector_is_exact_across_threads():
    injector = notes.FailureInjector(Fraction("0.5"))
    results = []
    lock = threading.Lock()

    def worker():
        mine = [injector.should_fail() for call in range(250)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(results), sum(results)) == (2000, 1000)


def _raw_exchange(port, payload):
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_pipelined_requests_are_all_answered(start):
    port = start().port
    payload = (b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
               b"POST /notes HTTP/1.1\r\nHost: t\r\nContent-Length: 12\r\n\r\n{\"text\":\"p\"}"
               b"GET /notes HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    reply = _raw_exchange(port, payload)
    assert re.findall(rb"HTTP/1.1 (\d{3})", reply) == [b"200", b"201", b"200"]
    assert reply.endswith(b'[{"id":1,"text":"p"}]')


@pytest.mark.parametrize("headers, status", [
    (b"Content-Length: abc\r\n", b"400"),
    (b"Content-Length: %d\r\n" % (notes.MAX_BODY_BYTES + 1), b"413"),
    (b"Transfer-Encoding: chunked\r\n", b"411"),
])
def test_unusable_body_framing_is_refused_and_closed(start, headers, status):
    port = start().port
    reply = _raw_exchange(port, b"POST /notes HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 " + status)
    assert b"Connection: close" in reply


def test_drain_closes_idle_keep_alive_connections_promptly(start, client_for):
    server = start()
    port = server.port
    client = client_for(port)
    assert client.request("GET", "/healthz")[0] == 200
    began = time.monotonic()
    assert server.drain(timeout=3) is True
    assert time.monotonic() - began < 2
    assert client.conn.sock.recv(1) == b"", "the idle connection was closed"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


# ---------------------------------------------------------------- configuration

def test_config_defaults():
    assert notes.load_config({}) == {"port": 9000, "version": "dev", "fail_rate": Fraction(0)}


def test_config_reads_environment():
    config = notes.load_config({"NOTES_PORT": "9100", "NOTES_VERSION": "3.1", "NOTES_FAIL_RATE": "0.25"})
    assert config == {"port": 9100, "version": "3.1", "fail_rate": Fraction(1, 4)}


@pytest.mark.parametrize("env, field", [
    ({"NOTES_FAIL_RATE": "1.5"}, "NOTES_FAIL_RATE"),
    ({"NOTES_FAIL_RATE": "-0.1"}, "NOTES_FAIL_RATE"),
    ({"NOTES_FAIL_RATE": "often"}, "NOTES_FAIL_RATE"),
    ({"NOTES_FAIL_RATE": "nan"}, "NOTES_FAIL_RATE"),
    ({"NOTES_PORT": "http"}, "NOTES_PORT"),
    ({"NOTES_PORT": "70000"}, "NOTES_PORT"),
])
def test_bad_config_names_the_variable(env, field):
    with pytest.raises(notes.ConfigError, match=field):
        notes.load_config(env)


# ---------------------------------------------------------------- subprocesses

def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTES_")}
    env.update(extra)
    return env


class Process:
    """server.py in a subprocess; stdout lines arrive in a queue so tests can wait for them."""

    def __init__(self, tmp_path, **env):
        self.stderr_path = tmp_path / "stderr.log"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([sys.executable, str(SERVER_PY)], env=_env(**env), stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect_line(self, pattern):
        deadline = time.monotonic() + WAIT
        while True:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            assert line is not None, "server exited before printing %r" % pattern
            match = re.search(pattern, line)
            if match:
                return match

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


@pytest.fixture
def spawn(tmp_path):
    processes = []

    def _spawn(**env):
        process = Process(tmp_path, **env)
        processes.append(process)
        return process

    yield _spawn
    for process in processes:
        process.stop()


def _serving_port(process):
    port = int(process.expect_line(r"listening on 0\.0\.0\.0:(\d+)").group(1))

    def healthy():
        client = Client(port)
        try:
            return client.request("GET", "/healthz")[0] == 200
        except OSError:
            return False
        finally:
            client.close()

    wait_until(healthy, what="/healthz")
    return port


def _refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        pass  # the listener closed during this handshake; the next probe tells
    return False


def test_subprocess_serves_with_env_settings(spawn):
    port = _serving_port(spawn(NOTES_PORT="0", NOTES_VERSION="9.9", NOTES_FAIL_RATE="1.0"))
    client = Client(port)
    assert client.request("GET", "/")[:1] == (500,)
    assert client.request("GET", "/healthz")[2] == b"ok\n"
    client.close()


def test_sigterm_drains_in_flight_requests_and_exits_zero(spawn):
    process = spawn(NOTES_PORT="0")
    port = _serving_port(process)
    idle, in_flight, health = (socket.create_connection(("127.0.0.1", port), timeout=WAIT) for index in range(3))
    with idle, in_flight, health:
        for sock in (idle, in_flight, health):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            assert _read_one_response(sock).endswith(b"\r\n\r\nok\n")
        body = b'{"text": "late"}'
        in_flight.sendall(b"POST /notes HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:5])
        health.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")

        process.proc.send_signal(signal.SIGTERM)
        process.expect_line(r"^notes-api: draining$")
        wait_until(lambda: _refused(port), what="the listener to close")

        health.sendall(b"\r\n")
        reply = _raw_rest(health)
        assert reply.startswith(b"HTTP/1.1 503") and reply.endswith(b"draining\n")
        assert b"Connection: close" in reply

        in_flight.sendall(body[5:])
        reply = _raw_rest(in_flight)
        assert reply.startswith(b"HTTP/1.1 201") and reply.endswith(b'{"id":1,"text":"late"}')
        assert b"Connection: close" in reply

        assert idle.recv(1) == b"", "the idle keep-alive connection is closed by the drain"
    assert process.proc.wait(timeout=5) == 0
    process.expect_line(r"^notes-api: stopped$")


def _read_one_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-response"
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0]
    length = int(re.search(rb"\r\nContent-Length: (\d+)", head).group(1))
    while len(data) < len(head) + 4 + length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        data += chunk
    return data


def _raw_rest(sock):
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def test_sigterm_on_idle_server_exits_zero_quickly(spawn):
    process = spawn(NOTES_PORT="0")
    _serving_port(process)
    began = time.monotonic()
    process.proc.send_signal(signal.SIGTERM)
    assert process.proc.wait(timeout=5) == 0
    assert time.monotonic() - began < 3


def test_bad_fail_rate_exits_2_naming_the_variable():
    result = subprocess.run([sys.executable, str(SERVER_PY)], env=_env(NOTES_FAIL_RATE="2"),
                            capture_output=True, text=True, check=False, timeout=WAIT)
    assert result.returncode == 2
    assert "NOTES_FAIL_RATE" in result.stderr


def test_unknown_command_exits_2_with_usage():
    result = subprocess.run([sys.executable, str(SERVER_PY), "frobnicate"], env=_env(),
                            capture_output=True, text=True, check=False, timeout=WAIT)
    assert result.returncode == 2
    assert "usage" in result.stderr


# ---------------------------------------------------------------- migrate job

def _migrate(timeout=WAIT, **env):
    return subprocess.run([sys.executable, str(SERVER_PY), "migrate"], env=_env(**env),
                          capture_output=True, text=True, check=False, timeout=timeout)


def test_migrate_prints_progress_and_exits_zero():
    result = _migrate(NOTES_VERSION="1.2")
    lines = result.stdout.splitlines()
    assert result.returncode == 0
    assert lines[0] == "migrate: notes-api 1.2 starting"
    assert [line for line in lines if line.startswith("migrate: step")] == [
        "migrate: step 1/3 check schema", "migrate: step 2/3 apply changes", "migrate: step 3/3 verify"]
    assert lines[-1] == "migrate: done"
    assert result.stderr == ""


def test_migrate_failure_exits_3_with_error_on_stderr():
    result = _migrate(NOTES_MIGRATE_FAIL="1")
    assert result.returncode == 3
    assert result.stderr.startswith("migrate: error: step 2/3")
    assert "migrate: step 1/3" in result.stdout
    assert "migrate: done" not in result.stdout


def test_migrate_sleep_outlasts_a_job_timeout():
    with pytest.raises(subprocess.TimeoutExpired):
        _migrate(timeout=1, NOTES_MIGRATE_SLEEP="30")


def test_migrate_sleeps_the_given_seconds_before_working():
    out, err, calls = io.StringIO(), io.StringIO(), []

    def fake_sleep(seconds):
        calls.append((seconds, out.getvalue().count("step")))

    assert notes.migrate({"NOTES_MIGRATE_SLEEP": "2.5"}, out=out, err=err, sleep=fake_sleep) == 0
    assert calls == [(2.5, 0)], "one sleep, before any step"
    assert out.getvalue().endswith("migrate: done\n")


def test_migrate_bad_sleep_exits_2_naming_the_variable():
    result = _migrate(NOTES_MIGRATE_SLEEP="soon")
    assert result.returncode == 2
    assert "NOTES_MIGRATE_SLEEP" in result.stderr


# ---------------------------------------------------------------- image recipe

def _dockerfile_instructions():
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_builds_without_buildkit_from_the_local_base():
    lines = _dockerfile_instructions()
    assert lines[0] == "ARG BASE_IMAGE=ragops/debian-base:bookworm"
    assert lines[1] == "FROM ${BASE_IMAGE}"
    text = "\n".join(lines)
    assert "--mount" not in text and "<<" not in text and "--chmod" not in text
    assert "apt-get" not in text and "pip" not in text
    for expected in ("ARG VERSION=dev", "ARG FAIL_RATE=0", "USER 20000:20000", "EXPOSE 9000", "STOPSIGNAL SIGTERM",
                     'CMD ["python3", "/srv/notes/server.py"]', "COPY server.py /srv/notes/server.py"):
        assert expected in lines, expected
    env = next(line for line in lines if line.startswith("ENV "))
    assert "NOTES_VERSION=${VERSION}" in env and "NOTES_FAIL_RATE=${FAIL_RATE}" in env


def _healthcheck_command():
    line = next(line for line in _dockerfile_instructions() if line.startswith("HEALTHCHECK "))
    return json.loads(line.split(" CMD ", 1)[1])


def test_image_health_check_passes_even_when_every_request_fails(spawn):
    port = _serving_port(spawn(NOTES_PORT="0", NOTES_FAIL_RATE="1"))
    result = subprocess.run(_healthcheck_command(), env=_env(NOTES_PORT=str(port), http_proxy="http://127.0.0.1:9"),
                            capture_output=True, text=True, check=False, timeout=WAIT)
    assert result.returncode == 0, result.stderr


def test_image_health_check_fails_without_a_server():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = subprocess.run(_healthcheck_command(), env=_env(NOTES_PORT=str(port)),
                            capture_output=True, text=True, check=False, timeout=WAIT)
    assert result.returncode != 0
