"""Every RAG_CHAOS drill mode, on the real process."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from integration.conftest import StartService
from integration.test_contract import assert_identity, assert_query_shape
from redis_process import RedisProcess

QUERY = {"query": "Quel est le taux de TVA ?", "client_id": "drills"}


def drill_warning(records: list[dict]) -> dict:
    return next(r for r in records if r["level"] == "WARNING" and "drill" in r["message"])


def test_crash_on_start_exits_non_zero_with_a_message(start_service: StartService, redis_server: RedisProcess) -> None:
    service = start_service({"RAG_CHAOS": "crash_on_start"}, redis_server.url, wait=False)
    assert service.wait_exit(timeout=30) == 3
    output = service.output()
    assert "crash_on_start" in output
    critical = [r for r in service.log_records() if r["level"] == "CRITICAL"]
    assert critical and "crash_on_start" in critical[0]["message"]


def test_unhealthy(start_service: StartService, redis_server: RedisProcess) -> None:
    service = start_service({"RAG_CHAOS": "unhealthy"}, redis_server.url)
    response = service.client.get("/health")
    assert response.status_code == 503
    assert_identity(response)
    body = response.json()
    assert body["status"] == "unhealthy" and body["reason"] == "drill: unhealthy"
    assert body["version"] and body["color"] and isinstance(body["uptime"], float)
    # Only /health lies: the process still serves.
    assert service.client.post("/api/query", json=QUERY).status_code == 200
    assert "unhealthy" in drill_warning(service.log_records())["message"]


def test_slow_adds_latency_to_queries_only(start_service: StartService, redis_server: RedisProcess) -> None:
    service = start_service({"RAG_CHAOS": "slow:400"}, redis_server.url)
    service.wait_healthy()
    started = time.monotonic()
    response = service.client.post("/api/query", json=QUERY)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed >= 0.4
    assert response.json()["processing_time"] >= 0.4
    started = time.monotonic()
    assert service.client.get("/health").status_code == 200
    assert time.monotonic() - started < 0.4
    assert "slow:400" in drill_warning(service.log_records())["message"]


def test_slow_requests_do_not_queue_behind_each_other(start_service: StartService, redis_server: RedisProcess) -> None:
    service = start_service({"RAG_CHAOS": "slow:500"}, redis_server.url)
    service.wait_healthy()
    started = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        codes = list(
            pool.map(lambda _: httpx.post(f"{service.url}/api/query", json=QUERY, timeout=10).status_code, range(10))
        )
    assert codes == [200] * 10
    assert time.monotonic() - started < 4.0  # 10 x 0.5 s would be 5 s if the delay blocked the server


def test_error_rate_half(start_service: StartService, redis_server: RedisProcess) -> None:
    service = start_service({"RAG_CHAOS": "error_rate:0.5"}, redis_server.url)
    service.wait_healthy()
    responses = [service.client.post("/api/query", json=QUERY) for _request in range(200)]
    failures = [r for r in responses if r.status_code == 500]
    assert {r.status_code for r in responses} <= {200, 500}
    # Binomial(200, 0.5): sd ~7; [50, 150] is > 7 sd away from the mean, so this cannot flake.
    assert 50 <= len(failures) <= 150, len(failures)
    for response in failures[:5]:
        assert_identity(response)
        assert response.json()["error"].startswith("drill: ")
    assert service.metric("rag_requests_total", endpoint="/api/query", method="POST", status="500") == len(failures)
    assert service.client.get("/health").status_code == 200


def test_error_rate_zero_never_fails(start_service: StartService, redis_server: RedisProcess) -> None:
    service = start_service({"RAG_CHAOS": "error_rate:0"}, redis_server.url)
    service.wait_healthy()
    assert {service.client.post("/api/query", json=QUERY).status_code for _request in range(50)} == {200}


def test_error_rate_one_always_fails(start_service: StartService, redis_server: RedisProcess) -> None:
    service = start_service({"RAG_CHAOS": "error_rate:1"}, redis_server.url)
    service.wait_healthy()
    responses = [service.client.post("/api/query", json=QUERY) for _request in range(50)]
    assert {r.status_code for r in responses} == {500}
    assert all(r.headers["content-type"] == "application/json" for r in responses)
    assert_identity(responses[0])
    # Bad input is still a 400: validation comes before the drill.
    assert service.client.post("/api/query", json={"query": ""}).status_code == 400
    assert service.client.get("/health").status_code == 200


def test_bad_contract_omits_sources(start_service: StartService, redis_server: RedisProcess) -> None:
    service = start_service({"RAG_CHAOS": "bad_contract"}, redis_server.url)
    service.wait_healthy()
    response = service.client.post("/api/query", json=QUERY)
    assert response.status_code == 200
    body = response.json()
    assert "sources" not in body
    assert_query_shape({**body, "sources": []})


def test_no_drill_no_warning(start_service: StartService, redis_server: RedisProcess) -> None:
    service = start_service({}, redis_server.url)
    service.wait_healthy()
    assert not [r for r in service.log_records() if "drill" in r.get("message", "")]
