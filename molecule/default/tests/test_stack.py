"""The converged platform: containers healthy, exposure as designed, monitoring live, a query answered."""

from __future__ import annotations

import json

import pytest
from conftest import PROMETHEUS, PUBLIC, http, poll

HEALTHCHECKED = [
    "ragops-nginx",
    "ragops-redis",
    "ragops-app-blue",
    "ragops-prometheus",
    "ragops-alertmanager",
    "ragops-alert-sink",
    "ragops-node-exporter",
    "ragops-redis-exporter",
    "ragops-nginx-exporter",
]

# container -> the only host bindings it may publish
PUBLISHED = {
    "ragops-nginx": {"8080/tcp": [("127.0.0.1", "8080")]},
    "ragops-prometheus": {"9090/tcp": [("127.0.0.1", "9090")]},
    "ragops-alertmanager": {"9093/tcp": [("127.0.0.1", "9093")]},
}

ALERTS = {
    "RagHighErrorRate",
    "RagHighLatencyP95",
    "HostMemoryHigh",
    "ServiceDown",
    "CircuitBreakerOpen",
    "RagDegradedAnswersHigh",
}


@pytest.mark.parametrize("name", HEALTHCHECKED)
def test_container_running_and_healthy(docker_inspect, name):
    def healthy():
        state = docker_inspect(name)["State"]
        return state["Running"] and state.get("Health", {}).get("Status") == "healthy"

    poll(healthy, 60, f"{name} healthy")


def test_only_designed_ports_are_published(host):
    names = host.check_output("docker ps --format '{{.Names}}' --filter name=^ragops-").split()
    assert set(HEALTHCHECKED) <= set(names)
    for name in names:
        ports = json.loads(host.check_output(f"docker inspect -f '{{{{json .NetworkSettings.Ports}}}}' {name}"))
        published = {
            port: sorted((b["HostIp"], b["HostPort"]) for b in bindings)
            for port, bindings in (ports or {}).items()
            if bindings
        }
        assert published == PUBLISHED.get(name, {}), f"{name} publishes {published}"


def test_nginx_config_is_valid(host):
    result = host.run("docker exec ragops-nginx nginx -t -c /etc/ragops-nginx/nginx.conf")
    assert result.rc == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


def test_every_prometheus_target_is_up():
    def all_up():
        _status, _headers, body = http("GET", f"{PROMETHEUS}/api/v1/targets?state=active")
        targets = body["data"]["activeTargets"]
        jobs = {t["labels"]["job"] for t in targets}
        down = [(t["labels"]["job"], t["scrapeUrl"], t["lastError"]) for t in targets if t["health"] != "up"]
        return targets and not down and jobs and (jobs, targets)

    jobs, targets = poll(all_up, 60, "every Prometheus target up")
    assert {"rag-app", "nginx", "redis", "node", "prometheus", "alertmanager"} <= jobs, jobs
    app = [t for t in targets if t["labels"]["job"] == "rag-app"]
    assert [t["labels"]["color"] for t in app] == ["blue"]


def test_alert_rules_are_loaded():
    _status, _headers, body = http("GET", f"{PROMETHEUS}/api/v1/rules?type=alert")
    loaded = {rule["name"] for group in body["data"]["groups"] for rule in group["rules"]}
    assert ALERTS <= loaded, ALERTS - loaded


def test_redis_refuses_unauthenticated_commands(host):
    result = host.run("docker exec -e REDISCLI_AUTH= ragops-redis redis-cli -h 127.0.0.1 ping")
    assert "NOAUTH" in result.stdout + result.stderr, result.stdout


def test_query_through_nginx_is_answered_with_sources():
    status, headers, body = http(
        "POST", f"{PUBLIC}/api/query", {"query": "What are the support hours?", "client_id": "molecule"}
    )
    assert status == 200, body
    assert body["success"] is True and body["source"] == "rag" and body["degraded"] is False
    assert body["sources"], body
    assert headers["X-App-Color"] == "blue"
    # nginx's own header, from the peer it picked: what the platform reads, for any app.
    assert headers["X-Ragops-Color"] == "blue"


def test_health_passes_through_nginx():
    status, headers, body = http("GET", f"{PUBLIC}/health")
    assert status == 200 and body["status"] == "healthy"
    assert body["color"] == headers["X-App-Color"] == "blue"


def test_app_metrics_are_not_public():
    status, _headers, _body = http("GET", f"{PUBLIC}/metrics")
    assert status == 404
