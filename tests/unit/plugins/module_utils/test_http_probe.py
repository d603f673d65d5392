# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time

import pytest

from ansible_collections.ragops.platform.plugins.module_utils._http_probe import (
    build_url,
    excerpt,
    probe,
    response_failures,
)
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import (
    Reply,
    closed_port_url,
    tcp_server,
    unix_server,
)


@pytest.fixture
def server():
    srv = tcp_server()
    yield srv
    srv.close()


def test_json_response_is_parsed_with_headers_and_latency(server):
    server.script.route("/health", Reply(200, {"status": "healthy"}, headers={"X-App-Color": "green"}))
    result = probe("GET", server.base_url + "/health")
    assert result["status"] == 200
    assert result["is_json"] and result["json"] == {"status": "healthy"}
    assert result["headers"]["x-app-color"] == "green"
    assert result["error"] is None
    assert 0 < result["latency_ms"] < 2000


def test_http_error_status_is_returned_not_raised(server):
    server.script.route("/health", Reply(503, {"status": "unhealthy"}))
    result = probe("GET", server.base_url + "/health")
    assert (result["status"], result["json"], result["error"]) == (503, {"status": "unhealthy"}, None)


def test_redirect_is_reported_not_followed(server):
    server.script.route("/old", Reply(302, body="moved", headers={"Location": "/health"}))
    result = probe("GET", server.base_url + "/old")
    assert result["status"] == 302
    assert server.script.hits("/health") == 0


def test_text_body_is_kept_as_text(server):
    server.script.route("/metrics", Reply(200, body="rag_requests_total 3\n"))
    result = probe("GET", server.base_url + "/metrics")
    assert result["body"] == "rag_requests_total 3\n"
    assert not result["is_json"] and result["json"] is None


def test_json_body_is_sent_with_content_type(server):
    server.script.route("/api/query", Reply(200, {"answer": "ok"}), method="POST")
    result = probe("POST", server.base_url + "/api/query", body={"query": "TVA ?", "client_id": "t"},
                   headers={"X-Request-ID": "probe-1"})
    assert result["status"] == 200
    sent = server.script.requests[-1]
    headers = dict((name.lower(), value) for name, value in sent["headers"].items())
    assert json.loads(sent["body"]) == {"query": "TVA ?", "client_id": "t"}
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"] == "probe-1"


def test_string_body_is_sent_as_is(server):
    server.script.route("/api/query", Reply(400, {"error": "body: malformed JSON"}), method="POST")
    probe("POST", server.base_url + "/api/query", body='{"query": "x",', headers={"content-type": "text/plain"})
    sent = server.script.requests[-1]
    assert sent["body"] == b'{"query": "x",'
    assert [value for name, value in sent["headers"].items() if name.lower() == "content-type"] == ["text/plain"]


def test_slow_response_times_out_within_the_request_timeout(server):
    server.script.route("/slow", Reply(200, {"ok": True}, delay=2.0))
    started = time.monotonic()
    result = probe("GET", server.base_url + "/slow", timeout=0.3)
    assert time.monotonic() - started < 1.0
    assert result["status"] is None
    assert result["error"] == "timed out after 0.3 s"


def test_body_dripping_past_the_timeout_is_cut(server):
    server.script.route("/drip", Reply(200, body="x" * 200, drip=(20, 0.1)))
    started = time.monotonic()
    result = probe("GET", server.base_url + "/drip", timeout=0.3)
    assert time.monotonic() - started < 1.0
    assert result["error"] == "timed out after 0.3 s reading the body"


def test_connection_refused_is_an_error_text():
    result = probe("GET", closed_port_url() + "/health", timeout=1)
    assert result["status"] is None
    assert "Connection refused" in result["error"]


def test_unix_socket(tmp_path):
    srv = unix_server(tmp_path / "admin.sock")
    try:
        srv.script.route("/live", Reply(200, {"color": "blue"}))
        result = probe("GET", "http://localhost/live", unix_socket=str(tmp_path / "admin.sock"))
        assert (result["status"], result["json"]) == (200, {"color": "blue"})
    finally:
        srv.close()


def test_missing_unix_socket_is_an_error_text(tmp_path):
    result = probe("GET", "http://localhost/live", unix_socket=str(tmp_path / "absent.sock"))
    assert result["status"] is None
    assert "absent.sock" in result["error"]


def test_bad_url_is_an_error_text():
    assert probe("GET", "no-scheme/health")["error"].startswith("connection failed: ValueError")


@pytest.mark.parametrize("base, url, full", [
    ("http://172.30.57.11:8000", "/health", "http://172.30.57.11:8000/health"),
    ("http://172.30.57.11:8000/", "health/db", "http://172.30.57.11:8000/health/db"),
    ("http://a:1", "http://b:2/x", "http://b:2/x"),
])
def test_build_url(base, url, full):
    assert build_url(base, url) == full


def test_excerpt_keeps_small_json_and_cuts_big_bodies():
    small = dict(is_json=True, json={"status": "ok"}, body='{"status": "ok"}')
    assert excerpt(small) == {"status": "ok"}
    big_json = dict(is_json=True, json={"data": "é" * 3000}, body="")
    cut = excerpt(big_json)
    assert isinstance(cut, str) and len(cut.encode("utf-8")) <= 2048 and cut.endswith("... (truncated)")
    text = dict(is_json=False, json=None, body="x" * 5000)
    assert len(excerpt(text).encode("utf-8")) <= 2048


def test_response_failures():
    ok = dict(error=None, status=200, is_json=True, json={"status": "healthy"}, body="")
    assert response_failures(ok, [200], [dict(path="status", op="eq", value="healthy")]) == []
    bad = dict(error=None, status=503, is_json=True, json={"status": "unhealthy"}, body="")
    assert response_failures(bad, [200], [dict(path="status", op="eq", value="healthy")]) == [
        "expected status 200, got 503", "status: expected eq 'healthy', got 'unhealthy'"]
    assert response_failures(bad, [200, 204]) == ["expected status in [200, 204], got 503"]
    text = dict(error=None, status=200, is_json=False, json=None, body="<html>")
    assert response_failures(text, [200], [dict(path="status", op="eq", value="x")]) == ["body is not JSON: '<html>'"]
    down = dict(error="timed out after 2.0 s", status=None)
    assert response_failures(down, [200]) == ["request failed: timed out after 2.0 s"]


def test_body_failures_of_a_text_body():
    ok = dict(error=None, status=200, is_json=False, json=None, body="ok\n")
    assert response_failures(ok, [200], body_contains="ok", body_regex=r"^ok$") == []
    assert response_failures(ok, [200], body_contains="OK") == ["body: expected to contain 'OK', got 'ok\\n'"]
    assert response_failures(ok, [200], body_regex="^ready") == ["body: expected to match regex '^ready', got 'ok\\n'"]
    long = dict(ok, body="starting " * 50)
    failure = response_failures(long, [200], body_contains="ok")[0]
    assert failure.startswith("body: expected to contain 'ok', got 'starting starting") and failure.endswith("...")
    down = dict(error="timed out after 2.0 s", status=None)
    assert response_failures(down, [200], body_contains="ok") == ["request failed: timed out after 2.0 s"]
