"""Dependencies failing under a running service: degradation in order, breakers, health, recovery.

The core keeps answering with full RAG from its in-process index while Redis is down (the index only
goes stale), so the cache layer is reached when full RAG itself fails: here the embeddings provider
(a local fake) is broken first, then Redis is killed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integration.conftest import StartService
from integration.fake_provider import FakeEmbeddings
from integration.service_process import ServiceProcess, wait_until
from integration.test_contract import assert_identity, assert_query_shape
from redis_process import RedisProcess

RECOVERY_SECONDS = 2.0
# Small thresholds and timeouts so that breakers open and recover within a test.
RESILIENCE_ENV = {
    "RAG_BREAKER_FAILURE_THRESHOLD": "2",
    "RAG_BREAKER_RECOVERY_TIMEOUT_SECONDS": str(RECOVERY_SECONDS),
    "RAG_RETRY_MAX_ATTEMPTS": "2",
    "RAG_RETRY_BACKOFF_INITIAL_SECONDS": "0.01",
    "RAG_RETRY_BACKOFF_MAX_SECONDS": "0.05",
    "RAG_RETRY_DEADLINE_SECONDS": "1",
    "RAG_REDIS_TIMEOUT_SECONDS": "0.2",
    "RAG_PROVIDER_TIMEOUT_SECONDS": "1",
    "RAG_CORPUS_CHECK_INTERVAL_SECONDS": "0.2",
}
RECOVERY_MARGIN = RECOVERY_SECONDS + 5.0

IN_CORPUS = "How do I reset my password?"  # sample corpus: account-password; matches no FAQ keyword
FAQ = "Quel est le taux de TVA ?"  # FAQ entry faq-tva
UNKNOWN = "xyzzy plugh frobnicate"  # nothing anywhere


def ask(service: ServiceProcess, query: str) -> dict:
    response = service.client.post("/api/query", json={"query": query, "client_id": "outage"})
    assert response.status_code == 200, response.text
    assert_identity(response)
    body = response.json()
    assert_query_shape(body)
    return body


def breaker(service: ServiceProcess, dependency: str) -> float | None:
    return service.metric("rag_circuit_breaker_state", dependency=dependency)


def assert_layer(body: dict, source: str) -> None:
    assert body["source"] == source, body
    assert body["degraded"] is (source != "rag")


@pytest.fixture
def fake_embeddings() -> Iterator[FakeEmbeddings]:
    fake = FakeEmbeddings()
    yield fake
    fake.close()


def test_degrades_cache_then_keyword_then_apology_and_recovers(
    start_service: StartService, redis_server: RedisProcess, fake_embeddings: FakeEmbeddings
) -> None:
    service = start_service({**RESILIENCE_ENV, "RAG_EMBEDDINGS_BASE_URL": fake_embeddings.url}, redis_server.url)
    service.wait_healthy()
    full = ask(service, IN_CORPUS)
    assert_layer(full, "rag")
    assert "account-password" in [s["id"] for s in full["sources"]]

    # 1. The embedder breaks: full RAG fails, Redis still answers from its cache.
    fake_embeddings.failing = True
    for _query in range(4):
        cached = ask(service, IN_CORPUS)
        assert_layer(cached, "cache")
        assert cached["answer"] == full["answer"] and cached["sources"] == full["sources"]
    assert_layer(ask(service, FAQ), "keyword_fallback")
    assert ask(service, FAQ)["sources"][0]["id"] == "faq-tva"
    apology = ask(service, UNKNOWN)
    assert_layer(apology, "error_handler")
    assert apology["sources"] == [] and apology["answer"]
    assert breaker(service, "embedder") == 2.0
    assert service.metric("rag_cache_requests_total", result="hit") >= 4
    assert service.metric("rag_degraded_responses_total", layer="cache") >= 4
    assert service.client.get("/health/ai").status_code == 503
    # Degraded but serving: /health stays 200 (the AI breaker shows in its checks).
    health = service.client.get("/health").json()
    assert health["status"] == "healthy" and health["checks"]["ai"]["status"] == "error"

    # 2. Redis dies too: no cache any more; the FAQ and the apology still answer, never a 500.
    redis_server.stop()
    for _round in range(10):
        assert_layer(ask(service, IN_CORPUS), "error_handler")
        assert_layer(ask(service, FAQ), "keyword_fallback")
    wait_until(lambda: breaker(service, "redis") == 2.0, timeout=5, message="redis breaker open")
    db = service.client.get("/health/db")
    assert db.status_code == 503 and db.json()["status"] == "error" and db.json()["error"]
    ingest = service.post_documents(["during the outage"])
    assert ingest.status_code == 503 and "error" in ingest.json()
    assert_identity(ingest)

    # 3. Both come back: within the recovery timeout (+ margin) breakers close and full RAG answers again.
    fake_embeddings.failing = False
    redis_server.start()

    def recovered() -> bool:
        ask(service, IN_CORPUS)
        return (
            service.client.get("/health/db").status_code == 200
            and breaker(service, "redis") == 0.0
            and breaker(service, "embedder") == 0.0
        )

    wait_until(recovered, timeout=RECOVERY_MARGIN, interval=0.2, message="recovery")
    assert_layer(ask(service, IN_CORPUS), "rag")
    assert service.client.get("/health").status_code == 200


def test_redis_killed_with_index_loaded_keeps_full_rag(start_service: StartService, redis_server: RedisProcess) -> None:
    service = start_service(RESILIENCE_ENV, redis_server.url)
    service.wait_healthy()
    assert_layer(ask(service, IN_CORPUS), "rag")

    redis_server.stop()

    def breaker_open() -> bool:
        assert_layer(ask(service, IN_CORPUS), "rag")  # the in-process index keeps serving
        return breaker(service, "redis") == 2.0

    wait_until(breaker_open, timeout=5, interval=0.1, message="redis breaker open")
    db = service.client.get("/health/db")
    assert db.status_code == 503 and db.json()["status"] == "error"
    # The index keeps serving; it reports itself stale once its next version check (every 0.2 s) fails.
    vector = wait_until(
        lambda: (body := service.client.get("/health/vector").json())["stale"] and body, timeout=3, message="stale"
    )
    assert vector["status"] == "ok" and vector["chunk_count"] > 0
    assert service.client.get("/health").status_code == 200
    assert service.metric("rag_dependency_failures_total", dependency="redis") >= 2

    redis_server.start()
    wait_until(
        lambda: service.client.get("/health/db").status_code == 200 and breaker(service, "redis") == 0.0,
        timeout=RECOVERY_MARGIN,
        interval=0.2,
        message="recovery",
    )
    wait_until(lambda: service.client.get("/health/vector").json()["stale"] is False, timeout=5, message="fresh index")


def test_redis_down_at_start_degrades_then_recovers(start_service: StartService, redis_server: RedisProcess) -> None:
    redis_server.stop()
    service = start_service(RESILIENCE_ENV, redis_server.url)
    health = service.client.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "unhealthy" and health.json()["checks"]["db"]["status"] == "error"

    for _round in range(10):
        assert_layer(ask(service, FAQ), "keyword_fallback")
        assert_layer(ask(service, IN_CORPUS), "error_handler")
    assert breaker(service, "redis") == 2.0
    assert service.client.get("/health/vector").status_code == 503

    redis_server.start()
    wait_until(
        lambda: service.client.get("/health").status_code == 200,
        timeout=RECOVERY_MARGIN,
        interval=0.2,
        message="healthy after Redis came back",
    )
    wait_until(lambda: ask(service, IN_CORPUS)["source"] == "rag", timeout=5, message="full RAG again")
