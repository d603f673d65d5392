"""Graceful shutdown: draining /health, in-flight requests complete, exit status."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from integration.conftest import StartService
from integration.service_process import ServiceProcess, wait_until
from integration.test_contract import assert_identity, assert_query_shape
from redis_process import RedisProcess

QUERY = {"query": "Quel est le taux de TVA ?", "client_id": "shutdown"}


class BackgroundQuery(threading.Thread):
    def __init__(self, service: ServiceProcess) -> None:
        super().__init__(daemon=True)
        self.url = service.url
        self.response: httpx.Response | None = None
        self.error: Exception | None = None
        self.finished_at = 0.0
        self.start()

    def run(self) -> None:
        try:
            self.response = httpx.post(f"{self.url}/api/query", json=QUERY, timeout=30)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            self.error = exc
        self.finished_at = time.monotonic()


def wait_inflight(service: ServiceProcess, queries: int) -> None:
    # The /metrics request itself counts as one in flight.
    wait_until(lambda: (service.metric("rag_inflight_requests") or 0) >= queries + 1, timeout=5, message="in flight")


def wait_log(service: ServiceProcess, fragment: str) -> None:
    wait_until(lambda: fragment in service.output(), timeout=5, message=f"log {fragment!r}")


def test_sigterm_drains_in_flight_requests_and_exits_0(start_service: StartService, redis_server: RedisProcess) -> None:
    # The grace must outlast the test's own steps below (even on a loaded machine); the slow requests
    # outlast the grace, so the exit also waits for in-flight work after the listener closes.
    grace, drain_timeout = 2.5, 10.0
    service = start_service(
        {
            "RAG_CHAOS": "slow:3000",
            "RAG_DRAIN_GRACE_SECONDS": str(grace),
            "RAG_DRAIN_TIMEOUT_SECONDS": str(drain_timeout),
        },
        redis_server.url,
    )
    service.wait_healthy()
    first = BackgroundQuery(service)
    wait_inflight(service, 1)

    signalled = time.monotonic()
    service.signal(signal.SIGTERM)
    health = wait_until(
        lambda: (r := httpx.get(f"{service.url}/health", timeout=2)).status_code == 503 and r,
        timeout=2,
        message="draining",
    )
    assert health.json()["status"] == "draining"
    assert_identity(health)
    assert health.headers["connection"] == "close"
    wait_until(lambda: service.metric("rag_draining") == 1.0, timeout=2, message="rag_draining 1")

    # Still serving during the grace period: a request arriving now completes too.
    second = BackgroundQuery(service)
    wait_inflight(service, 2)
    assert time.monotonic() - signalled < grace, "the test was too slow to observe the grace period"

    for query in (first, second):
        query.join(timeout=10)
        assert query.error is None, query.error
        assert query.response is not None and query.response.status_code == 200
        assert_query_shape(query.response.json())

    assert service.wait_exit(timeout=drain_timeout) == 0
    exited = time.monotonic()
    assert exited - signalled < drain_timeout
    # Exits once the work is done, not at the end of the drain timeout.
    assert exited - max(first.finished_at, second.finished_at) < 3.0
    messages = [r["message"] for r in service.log_records()]
    assert any("draining" in m for m in messages)
    assert any("drained" in m for m in messages)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_process_without_traffic_skips_the_grace(start_service: StartService, redis_server: RedisProcess, sig: int) -> None:
    # Health checks and scrapes are not traffic: the idle color of a blue/green pair exits without waiting.
    grace = 5.0
    service = start_service({"RAG_DRAIN_GRACE_SECONDS": str(grace)}, redis_server.url)
    service.wait_healthy()
    assert httpx.get(f"{service.url}/metrics", timeout=5).status_code == 200
    signalled = time.monotonic()
    service.signal(sig)
    assert service.wait_exit(timeout=10) == 0
    assert time.monotonic() - signalled < grace
    assert any("skipped: no traffic before the signal" in r["message"] for r in service.log_records())


def test_process_with_recent_traffic_keeps_the_grace(start_service: StartService, redis_server: RedisProcess) -> None:
    grace = 1.0
    service = start_service({"RAG_DRAIN_GRACE_SECONDS": str(grace)}, redis_server.url)
    service.wait_healthy()
    assert httpx.post(f"{service.url}/api/query", json=QUERY, timeout=10).status_code == 200
    signalled = time.monotonic()
    service.signal(signal.SIGTERM)
    assert service.wait_exit(timeout=10) == 0
    assert time.monotonic() - signalled >= grace
    assert not any("skipped" in r["message"] for r in service.log_records())


def test_listener_closes_after_the_grace_period(start_service: StartService, redis_server: RedisProcess) -> None:
    service = start_service(
        {"RAG_CHAOS": "slow:3000", "RAG_DRAIN_GRACE_SECONDS": "0.3", "RAG_DRAIN_TIMEOUT_SECONDS": "10"},
        redis_server.url,
    )
    service.wait_healthy()
    query = BackgroundQuery(service)
    wait_inflight(service, 1)
    service.signal(signal.SIGTERM)
    wait_log(service, "grace over")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{service.url}/health", timeout=2)
    query.join(timeout=10)
    assert query.response is not None and query.response.status_code == 200
    assert service.wait_exit(timeout=10) == 0


def test_drain_timeout_cuts_requests_and_exits_1(start_service: StartService, redis_server: RedisProcess) -> None:
    service = start_service(
        {"RAG_CHAOS": "slow:20000", "RAG_DRAIN_GRACE_SECONDS": "0", "RAG_DRAIN_TIMEOUT_SECONDS": "1"}, redis_server.url
    )
    service.wait_healthy()
    query = BackgroundQuery(service)
    wait_inflight(service, 1)
    signalled = time.monotonic()
    service.signal(signal.SIGTERM)
    assert service.wait_exit(timeout=10) == 1
    assert time.monotonic() - signalled < 5.0
    query.join(timeout=5)
    # The cut request is told so (retryable 503), not left hanging or reset.
    assert query.response is not None and query.response.status_code == 503, query.error
    assert query.response.json()["error"].startswith("shutting down")
    assert_identity(query.response)
    assert any("cut short" in r["message"] for r in service.log_records())


def test_second_signal_forces_exit(start_service: StartService, redis_server: RedisProcess) -> None:
    service = start_service(
        {"RAG_CHAOS": "slow:20000", "RAG_DRAIN_GRACE_SECONDS": "0", "RAG_DRAIN_TIMEOUT_SECONDS": "60"}, redis_server.url
    )
    service.wait_healthy()
    BackgroundQuery(service)
    wait_inflight(service, 1)
    service.signal(signal.SIGTERM)
    wait_log(service, "grace over")
    assert service.returncode is None
    forced = time.monotonic()
    service.signal(signal.SIGTERM)
    assert service.wait_exit(timeout=10) == 1
    assert time.monotonic() - forced < 5.0
