"""The HTTP contract of the running service: shapes, types, headers, metrics, logs."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from integration.service_process import ADMIN_HEADERS, BASE_ENV, ServiceProcess, wait_until

VERSION, COLOR = BASE_ENV["RAG_VERSION"], BASE_ENV["RAG_COLOR"]
SOURCES = {"rag", "cache", "keyword_fallback", "error_handler"}


def assert_identity(response: httpx.Response) -> None:
    assert response.headers["x-app-version"] == VERSION, response.headers
    assert response.headers["x-app-color"] == COLOR, response.headers
    assert response.headers["x-request-id"]


def assert_query_shape(body: dict) -> None:
    assert set(body) == {
        "query",
        "answer",
        "sources",
        "processing_time",
        "success",
        "degraded",
        "source",
        "confidence",
    }
    assert isinstance(body["query"], str)
    assert isinstance(body["answer"], str) and body["answer"]
    assert isinstance(body["processing_time"], float) and body["processing_time"] >= 0
    assert body["success"] is True
    assert isinstance(body["degraded"], bool)
    assert body["source"] in SOURCES
    assert body["degraded"] is (body["source"] != "rag")
    assert isinstance(body["confidence"], float)
    assert isinstance(body["sources"], list)
    for source in body["sources"]:
        assert set(source) == {"id", "title", "score", "snippet"}
        assert isinstance(source["id"], str) and source["id"]
        assert isinstance(source["title"], str)
        assert isinstance(source["score"], float)
        assert isinstance(source["snippet"], str)


def query(service: ServiceProcess, text: str, **extra: object) -> httpx.Response:
    return service.client.post("/api/query", json={"query": text, "client_id": "contract-tests", **extra})


def test_health(shared_service: ServiceProcess) -> None:
    response = shared_service.client.get("/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "healthy"
    assert body["version"] == VERSION and body["color"] == COLOR
    assert isinstance(body["uptime"], float) and body["uptime"] > 0
    assert set(body["checks"]) == {"db", "vector", "ai"}
    assert all(check["status"] == "ok" for check in body["checks"].values()), body


def test_health_db_reports_latency(shared_service: ServiceProcess) -> None:
    response = shared_service.client.get("/health/db")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert isinstance(body["latency_ms"], (int, float)) and body["latency_ms"] >= 0


def test_health_vector_reports_chunk_count(shared_service: ServiceProcess) -> None:
    response = shared_service.client.get("/health/vector")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert isinstance(body["chunk_count"], int) and body["chunk_count"] > 0


def test_health_ai(shared_service: ServiceProcess) -> None:
    response = shared_service.client.get("/health/ai")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_query_answers_from_the_sample_corpus(shared_service: ServiceProcess) -> None:
    response = query(shared_service, "Quel est le taux de TVA applicable ?", top_k=3)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert_query_shape(body)
    assert body["query"] == "Quel est le taux de TVA applicable ?"
    assert body["source"] == "rag" and body["degraded"] is False
    assert 1 <= len(body["sources"]) <= 3


def test_query_top_k_is_optional_and_null_allowed(shared_service: ServiceProcess) -> None:
    assert_query_shape(query(shared_service, "support hours").json())
    assert_query_shape(query(shared_service, "support hours", top_k=None).json())


def test_query_ignores_unknown_fields(shared_service: ServiceProcess) -> None:
    response = query(shared_service, "pricing", session="abc", options={"x": 1})
    assert response.status_code == 200
    assert_query_shape(response.json())


def test_documents_shape(shared_service: ServiceProcess) -> None:
    doc_id = f"contract-{uuid.uuid4().hex[:8]}"
    response = shared_service.client.post(
        "/api/documents",
        headers=shared_service.admin_headers,
        json={
            "documents": [
                {
                    "id": doc_id,
                    "title": "Contract",
                    "text": "The contract test document mentions a zebra.",
                    "metadata": {"k": [1, "v"]},
                },
                "A plain string document about giraffes and their long necks.",
            ]
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"processed_count", "chunk_count", "ids"}
    assert body["processed_count"] == 2
    assert isinstance(body["chunk_count"], int) and body["chunk_count"] >= 2
    assert len(body["ids"]) == 2 and body["ids"][0] == doc_id
    assert all(isinstance(i, str) and i for i in body["ids"])


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/health", {}, 200),
        ("GET", "/health/db", {}, 200),
        ("GET", "/health/vector", {}, 200),
        ("GET", "/health/ai", {}, 200),
        ("POST", "/api/query", {"json": {"query": "tva", "client_id": "h"}}, 200),
        ("POST", "/api/query", {"json": {"query": ""}}, 400),
        ("POST", "/api/query", {"content": b"x", "headers": {"content-type": "text/plain"}}, 400),
        ("POST", "/api/documents", {"json": {}, "headers": ADMIN_HEADERS}, 400),
        ("POST", "/api/documents", {"json": {"documents": ["x"]}}, 401),
        ("POST", "/api/documents", {"json": {"documents": ["x"]}, "headers": {"Authorization": "Bearer no"}}, 403),
        ("GET", "/metrics", {}, 200),
        ("GET", "/openapi.json", {}, 200),
        ("GET", "/no/such/path", {}, 404),
        ("DELETE", "/api/query", {}, 405),
        ("GET", "/api/query", {}, 405),
    ],
)
def test_every_response_carries_identity_headers(
    shared_service: ServiceProcess, method: str, path: str, kwargs: dict, status: int
) -> None:
    response = shared_service.client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    assert_identity(response)
    if path != "/metrics":
        assert response.headers["content-type"].startswith("application/json")
    if status >= 400:
        body = response.json()
        assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"]


def test_not_found_and_method_not_allowed_are_json(shared_service: ServiceProcess) -> None:
    missing = shared_service.client.get("/nope")
    assert missing.status_code == 404 and missing.json() == {"error": "not found"}
    wrong = shared_service.client.put("/health")
    assert wrong.status_code == 405 and "error" in wrong.json()
    assert "GET" in wrong.headers["allow"]


def test_request_id_is_echoed_or_generated(shared_service: ServiceProcess) -> None:
    echoed = shared_service.client.get("/health", headers={"X-Request-ID": "abc-123.x_y"})
    assert echoed.headers["x-request-id"] == "abc-123.x_y"
    generated = shared_service.client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    fresh = shared_service.client.get("/health")
    assert fresh.headers["x-request-id"] != generated.headers["x-request-id"]


METRIC_NAMES = [
    "rag_requests_total",
    "rag_request_duration_seconds_bucket",
    "rag_request_duration_seconds_count",
    "rag_degraded_responses_total",
    "rag_circuit_breaker_state",
    "rag_dependency_failures_total",
    "rag_cache_requests_total",
    "rag_corpus_chunks",
    "rag_build_info",
]


def test_metrics_expose_every_contract_metric(shared_service: ServiceProcess) -> None:
    query(shared_service, "tva")
    response = shared_service.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in METRIC_NAMES:
        assert re.search(rf"^{name}[{{ ]", text, re.MULTILINE), f"{name} missing from /metrics"
    assert f'rag_build_info{{color="{COLOR}",version="{VERSION}"}} 1.0' in text
    for dependency in ("redis", "embedder", "generator"):
        assert shared_service.metric("rag_circuit_breaker_state", dependency=dependency) == 0.0
    assert shared_service.metric("rag_corpus_chunks") > 0
    assert shared_service.metric("rag_requests_total", endpoint="/api/query", method="POST", status="200") >= 1


def test_metric_labels_stay_bounded(shared_service: ServiceProcess) -> None:
    secrets = [f"uniqueclient{uuid.uuid4().hex}" for _client in range(5)]
    for secret in secrets:
        shared_service.client.post("/api/query", json={"query": f"question {secret}", "client_id": secret})
        shared_service.client.get(f"/unknown/{secret}")
        shared_service.client.request("PURGE", f"/api/{secret}")
    text = shared_service.client.get("/metrics").text
    for secret in secrets:
        assert secret not in text
    endpoints = set(re.findall(r'rag_requests_total\{endpoint="([^"]*)"', text))
    assert endpoints <= {
        "/health",
        "/health/db",
        "/health/vector",
        "/health/ai",
        "/api/query",
        "/api/documents",
        "/metrics",
        "/openapi.json",
        "unmatched",
    }, endpoints
    methods = set(re.findall(r'rag_requests_total\{[^}]*method="([^"]*)"', text))
    assert "PURGE" not in methods and "other" in methods


def test_openapi_documents_400_not_422(shared_service: ServiceProcess) -> None:
    schema = shared_service.client.get("/openapi.json").json()
    assert {"/api/query", "/api/documents", "/health", "/health/db", "/health/vector", "/health/ai", "/metrics"} <= set(
        schema["paths"]
    )
    for path in schema["paths"].values():
        for operation in path.values():
            assert "422" not in operation["responses"]
    assert "400" in schema["paths"]["/api/query"]["post"]["responses"]
    assert shared_service.client.get("/docs").status_code == 404


def test_one_json_log_line_per_request_without_query_text(shared_service: ServiceProcess) -> None:
    request_id = f"log-{uuid.uuid4().hex}"
    secret = f"secretquestion{uuid.uuid4().hex}"
    shared_service.client.post(
        "/api/query", json={"query": f"what about {secret}", "client_id": "logs"}, headers={"X-Request-ID": request_id}
    )

    def request_lines() -> list[dict]:
        return [r for r in shared_service.log_records() if r.get("request_id") == request_id]

    lines = wait_until(request_lines, timeout=5, message="request log line")
    assert len(lines) == 1
    line = lines[0]
    assert line["endpoint"] == "/api/query" and line["method"] == "POST" and line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["source"] in SOURCES and isinstance(line["degraded"], bool)
    assert line["level"] == "INFO"
    assert secret not in shared_service.output()
