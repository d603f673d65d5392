"""Alertmanager routes by severity to the local sink; nginx rate-limits per client but lets 10 concurrent through."""

from __future__ import annotations

import json
import uuid

import pytest
from conftest import http, poll

ALERTMANAGER = "http://127.0.0.1:9093"

# Run inside a throwaway container on the ragops network, so the requests come from a client address that
# is not exempt from rate limiting (loopback traffic arrives from the gateway, which the local inventory exempts).
BURST_CLIENT = r"""
import concurrent.futures, json, sys, urllib.error, urllib.request
def post(i):
    req = urllib.request.Request("http://ragops-nginx:8080/api/query", method="POST",
        data=json.dumps({"query": "support hours %d" % i, "client_id": "burst"}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
n = int(sys.argv[1])
with concurrent.futures.ThreadPoolExecutor(n) as pool:
    print(json.dumps(sorted(pool.map(post, range(n)))))
"""


def burst(host, concurrent: int) -> list[int]:
    out = host.check_output(
        "docker run --rm --network ragops ragops/debian-base:bookworm python3 -c %s %s",
        BURST_CLIENT,
        str(concurrent),
    )
    return json.loads(out)


@pytest.mark.parametrize(("severity", "receiver"), [("critical", "critical-pager"), ("warning", "warning-chat")])
def test_alert_is_routed_by_severity_to_the_sink(host, severity, receiver):
    name = f"MoleculeSynthetic{uuid.uuid4().hex[:8]}"
    alert = [{"labels": {"alertname": name, "severity": severity}, "annotations": {"summary": "molecule"}}]
    status, _headers, body = http("POST", f"{ALERTMANAGER}/api/v2/alerts", alert)
    assert status == 200, body

    def delivered():
        out = host.check_output(
            "docker exec ragops-alert-sink python3 -c %s",
            f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9099/alerts?alertname={name}').read().decode())",
        )
        return json.loads(out)

    alerts = poll(delivered, 60, f"{name} in the alert sink")
    assert {a["receiver"] for a in alerts} == {receiver}


def test_ten_concurrent_queries_from_one_client_pass(host):
    assert burst(host, 10) == [200] * 10


def test_a_flood_from_one_client_is_rate_limited(host):
    statuses = burst(host, 100)
    assert 429 in statuses, statuses
    assert set(statuses) <= {200, 429}, statuses
