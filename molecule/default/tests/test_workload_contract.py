"""What the platform sees for itself, for any app: nginx's color header and per-color traffic metrics; and the
reference service's ingestion, closed to anonymous clients at nginx and at the color."""

from __future__ import annotations

import http.client as httpclient
import os
import socket
from pathlib import Path

import pytest
from conftest import PUBLIC, http, poll, prometheus_query

ADMIN_SOCKET = "/opt/ragops/nginx/run/admin.sock"
BLUE = "http://172.30.57.10:8000"
TOKEN_FILE = Path(os.environ.get("HOME", "/root")) / ".local/share/ragops/secrets/admin_token"
PLANTED = {"documents": [{"id": "planted-vat", "title": "TVA", "text": "Le taux normal de TVA en France est de 2 %."}]}


class _UnixConnection(httpclient.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(ADMIN_SOCKET)


def lb_metrics() -> dict[str, float]:
    """nginx's traffic metrics as the release engine reads them: GET /metrics on the admin socket."""
    connection = _UnixConnection("nginx", timeout=10)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200
        text = response.read().decode()
    finally:
        connection.close()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def chunk_count() -> int:
    status, _headers, body = http("GET", f"{BLUE}/health/vector")
    assert status == 200, body
    return body["chunk_count"]


@pytest.fixture(scope="module")
def token() -> str:
    return TOKEN_FILE.read_text().strip()


@pytest.mark.parametrize("url", [PUBLIC, BLUE], ids=["through-nginx", "at-the-color"])
def test_an_anonymous_write_is_refused_and_writes_nothing(url):
    before = chunk_count()
    status, headers, body = http("POST", f"{url}/api/documents", PLANTED)
    assert status == 401, body
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert isinstance(body, dict) and "error" in body
    status, _headers, body = http("POST", f"{url}/api/documents", PLANTED, headers={"Authorization": "Bearer wrong"})
    assert status == 403, body
    assert chunk_count() == before
    status, _headers, answer = http("POST", f"{PUBLIC}/api/query",
                                    {"query": "Quel est le taux normal de TVA en France ?", "client_id": "t"})
    assert status == 200
    assert "planted-vat" not in [source["id"] for source in answer["sources"]]


def test_the_admin_token_writes_through_nginx(token):
    document = {"documents": [{"id": "contract-test", "title": "Desk", "text": "The Oslo desk opens at 8:30."}]}
    status, _headers, body = http("POST", f"{PUBLIC}/api/documents", document,
                                  headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body
    assert body["ids"] == ["contract-test"]


def test_only_the_routes_of_the_workload_are_public():
    assert http("GET", f"{PUBLIC}/api/query")[0] == 405
    assert http("GET", f"{PUBLIC}/api/documents")[0] == 405
    assert http("GET", f"{PUBLIC}/health/db")[0] == 404
    assert http("GET", f"{PUBLIC}/docs")[0] == 404


def test_nginx_counts_each_request_by_the_color_it_chose():
    key = 'ragops_lb_requests_total{color="blue",status_class="2xx"}'
    count = 'ragops_lb_request_duration_seconds_count{color="blue"}'
    before = lb_metrics()
    for _request in range(25):
        status, headers, _body = http("GET", f"{PUBLIC}/health")
        assert status == 200 and headers["X-Ragops-Color"] == "blue"

    def counted():
        metrics = lb_metrics()
        return metrics if metrics[key] >= before[key] + 25 else None

    after = poll(counted, 10, "25 more blue 2xx")
    assert after[count] - before[count] >= 25
    assert after['ragops_lb_requests_total{color="green",status_class="2xx"}'] == \
        before['ragops_lb_requests_total{color="green",status_class="2xx"}']
    assert after['ragops_lb_request_duration_seconds_bucket{color="blue",le="+Inf"}'] == after[count]


def test_prometheus_scrapes_the_traffic_metrics_of_nginx():
    up = poll(lambda: prometheus_query('up{job="ragops-lb"} == 1'), 30, "the ragops-lb target up")
    assert up
    series = poll(lambda: prometheus_query('ragops_lb_requests_total{color="blue",status_class="2xx"} > 0'), 30,
                  "blue's 2xx in Prometheus")
    assert series[0]["metric"]["job"] == "ragops-lb"
