"""Document ingestion through HTTP: idempotent, and one corpus shared by every process."""

from __future__ import annotations

import uuid

from integration.conftest import StartService
from integration.service_process import ServiceProcess, wait_until
from redis_process import RedisProcess

FAST_REFRESH = {"RAG_CORPUS_CHECK_INTERVAL_SECONDS": "0.1"}


def chunk_count(service: ServiceProcess) -> int:
    return service.client.get("/health/vector").json()["chunk_count"]


def post(service: ServiceProcess, documents: list) -> dict:
    response = service.post_documents(documents)
    assert response.status_code == 200, response.text
    return response.json()


def test_posting_the_same_documents_twice_does_not_duplicate(
    start_service: StartService, redis_server: RedisProcess
) -> None:
    service = start_service(FAST_REFRESH, redis_server.url)
    service.wait_healthy()
    before = chunk_count(service)
    long_text = " ".join(f"Sentence number {i} explains the quarterly widget audit procedure." for i in range(40))
    documents = [
        {"id": "audit-guide", "title": "Widget audit", "text": long_text, "metadata": {"team": "qa"}},
        "A document without an id, identified by its content: the blue heron nests by the river.",
    ]
    first = post(service, documents)
    assert first["processed_count"] == 2 and first["ids"][0] == "audit-guide"
    assert first["ids"][1].startswith("doc-")
    assert first["chunk_count"] > 2  # the long text was chunked
    after_first = chunk_count(service)
    assert after_first == before + first["chunk_count"]

    second = post(service, documents)
    assert second == first
    assert chunk_count(service) == after_first

    # The same content with different whitespace is the same document; a new id is a new one.
    respaced = post(
        service, ["A document without an id,  identified by its content:\nthe blue heron nests by the river."]
    )
    assert respaced["ids"] == [first["ids"][1]]
    assert chunk_count(service) == after_first

    # Replacing a document by id swaps its chunks rather than adding to them.
    replaced = post(service, [{"id": "audit-guide", "text": "The widget audit is now a single short step."}])
    assert replaced["chunk_count"] == 1
    assert chunk_count(service) == after_first - first["chunk_count"] + 1 + 1


def test_corpus_is_shared_by_two_processes(start_service: StartService, redis_server: RedisProcess) -> None:
    blue = start_service({**FAST_REFRESH, "RAG_COLOR": "blue"}, redis_server.url)
    green = start_service({**FAST_REFRESH, "RAG_COLOR": "green"}, redis_server.url)
    blue.wait_healthy()
    green.wait_healthy()
    word = f"zorblax{uuid.uuid4().hex[:6]}"
    doc_id = f"shared-{word}"
    text = f"The {word} teapot brews quantum tea for the operations team every morning."
    assert post(blue, [{"id": doc_id, "title": f"The {word} teapot", "text": text}])["ids"] == [doc_id]

    def green_cites_it() -> dict | None:
        response = green.client.post(
            "/api/query", json={"query": f"What does the {word} teapot brew?", "client_id": "x"}
        )
        assert response.status_code == 200
        body = response.json()
        return body if doc_id in [s["id"] for s in body["sources"]] else None

    body = wait_until(green_cites_it, timeout=5, message="green sees blue's document")
    assert body["source"] == "rag" and response_header_color(green) == "green"
    assert chunk_count(green) == chunk_count(blue)


def response_header_color(service: ServiceProcess) -> str:
    return service.client.get("/health").headers["x-app-color"]
