"""Every kind of bad input is a 400 {"error": "<field>: <what is wrong>"}: never 422, never 500."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from integration.service_process import ServiceProcess, send_raw
from integration.test_contract import assert_identity
from redis_process import RedisProcess

MB = 1024 * 1024
JSON = {"content-type": "application/json"}


def assert_bad_request(response: httpx.Response, field: str) -> str:
    assert response.status_code == 400, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    assert_identity(response)
    body = response.json()
    assert list(body) == ["error"]
    assert body["error"].startswith(f"{field}: "), body["error"]
    return body["error"]


def post_raw(
    service: ServiceProcess, path: str, content: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST raw bytes (JSON content type unless headers are given), with the admin token on /api/documents."""
    auth = service.admin_headers if path == "/api/documents" else {}
    return service.client.post(path, content=content, headers={**auth, **(JSON if headers is None else headers)})


def post_documents_body(service: ServiceProcess, payload: object) -> httpx.Response:
    return service.client.post("/api/documents", json=payload, headers=service.admin_headers)


VALID_QUERY = {"query": "Quel est le taux de TVA ?", "client_id": "client-1"}


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b'{"query": "tva", ', "body"),
        (b"{'query': 'tva'}", "body"),
        (b"not json at all", "body"),
        (b"", "body"),
        (b"[]", "body"),
        (b'"a string"', "body"),
        (b"null", "body"),
        (b"42", "body"),
        (b'{"query": "caf\xe9", "client_id": "a"}', "body"),  # latin-1 bytes: not UTF-8
    ],
    ids=["truncated", "single-quotes", "garbage", "empty", "array", "string", "null", "number", "not-utf8"],
)
def test_malformed_query_body(shared_service: ServiceProcess, content: bytes, field: str) -> None:
    assert_bad_request(post_raw(shared_service, "/api/query", content), field)


@pytest.mark.parametrize("path", ["/api/query", "/api/documents"])
@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "application/jsonx"},
        {"content-type": "multipart/form-data; boundary=x"},
        {},
    ],
    ids=["text", "form", "jsonx", "multipart", "missing"],
)
def test_wrong_content_type(shared_service: ServiceProcess, path: str, headers: dict[str, str]) -> None:
    body = json.dumps(VALID_QUERY if path == "/api/query" else {"documents": ["x"]}).encode()
    error = assert_bad_request(post_raw(shared_service, path, body, headers), "body")
    assert "Content-Type" in error and "application/json" in error


def test_json_content_type_with_charset_is_accepted(shared_service: ServiceProcess) -> None:
    response = post_raw(
        shared_service,
        "/api/query",
        json.dumps(VALID_QUERY).encode(),
        {"content-type": "Application/JSON; charset=utf-8"},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"query": None}, "query"),
        ({"query": ""}, "query"),
        ({"query": "   \n\t "}, "query"),
        ({"query": "x" * 2001}, "query"),
        ({"query": 123}, "query"),
        ({"query": ["tva"]}, "query"),
        ({"query": {"text": "tva"}}, "query"),
        ({"query": True}, "query"),
        ({"client_id": None}, "client_id"),
        ({"client_id": ""}, "client_id"),
        ({"client_id": "a b"}, "client_id"),
        ({"client_id": "clé"}, "client_id"),
        ({"client_id": "a/b"}, "client_id"),
        ({"client_id": "a\n"}, "client_id"),
        ({"client_id": "x" * 65}, "client_id"),
        ({"client_id": 7}, "client_id"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 21}, "top_k"),
        ({"top_k": -1}, "top_k"),
        ({"top_k": "5"}, "top_k"),
        ({"top_k": True}, "top_k"),
        ({"top_k": 1.5}, "top_k"),
        ({"top_k": [5]}, "top_k"),
        ({"top_k": 10**30}, "top_k"),
    ],
)
def test_invalid_query_field(shared_service: ServiceProcess, override: dict, field: str) -> None:
    payload = {**VALID_QUERY, **override}
    payload = {k: v for k, v in payload.items() if not (k != "top_k" and v is None)}
    assert_bad_request(shared_service.client.post("/api/query", json=payload), field)


@pytest.mark.parametrize("missing", ["query", "client_id"])
def test_missing_query_field(shared_service: ServiceProcess, missing: str) -> None:
    payload = {k: v for k, v in VALID_QUERY.items() if k != missing}
    error = assert_bad_request(shared_service.client.post("/api/query", json=payload), missing)
    assert "required" in error


def test_several_errors_are_all_named(shared_service: ServiceProcess) -> None:
    response = shared_service.client.post("/api/query", json={"query": "", "client_id": "a b", "top_k": 0})
    error = assert_bad_request(response, "query")
    assert "client_id: " in error and "top_k: " in error


@pytest.mark.parametrize(
    "payload",
    [
        {"query": "x" * 2000, "client_id": "x" * 64, "top_k": 20},
        {"query": "é", "client_id": "A-z_0.9", "top_k": 1},
        {"query": "tva", "client_id": "c", "top_k": 5.0},  # an integral number is an integer, as in JSON Schema
    ],
    ids=["upper-bounds", "lower-bounds", "integral-float"],
)
def test_query_bounds_are_inclusive(shared_service: ServiceProcess, payload: dict) -> None:
    assert shared_service.client.post("/api/query", json=payload).status_code == 200


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "documents"),
        ({"documents": None}, "documents"),
        ({"documents": []}, "documents"),
        ({"documents": "just a string"}, "documents"),
        ({"documents": {"text": "x"}}, "documents"),
        ({"documents": [5]}, "documents[0]"),
        ({"documents": ["ok", None]}, "documents[1]"),
        ({"documents": [["nested"]]}, "documents[0]"),
        ({"documents": [True]}, "documents[0]"),
        ({"documents": [""]}, "documents[0]"),
        ({"documents": ["  "]}, "documents[0]"),
        ({"documents": [{"title": "no text"}]}, "documents[0].text"),
        ({"documents": [{"text": ""}]}, "documents[0].text"),
        ({"documents": [{"text": 5}]}, "documents[0].text"),
        ({"documents": [{"text": "ok", "id": 5}]}, "documents[0].id"),
        ({"documents": [{"text": "ok", "id": ""}]}, "documents[0].id"),
        ({"documents": [{"text": "ok", "id": "x" * 257}]}, "documents[0].id"),
        ({"documents": [{"text": "ok", "title": ["t"]}]}, "documents[0].title"),
        ({"documents": [{"text": "ok", "metadata": "m"}]}, "documents[0].metadata"),
        ({"documents": [{"text": "ok", "metadata": [1]}]}, "documents[0].metadata"),
        ({"documents": ["x"] * 1001}, "documents"),
    ],
)
def test_invalid_documents(shared_service: ServiceProcess, payload: dict, field: str) -> None:
    assert_bad_request(post_documents_body(shared_service, payload), field)


def test_document_over_one_megabyte(shared_service: ServiceProcess) -> None:
    big = "a" * (MB + 1)
    error = assert_bad_request(shared_service.post_documents([big]), "documents[0]")
    assert str(MB) in error
    assert_bad_request(shared_service.post_documents(["fine", {"text": big}]), "documents[1].text")


def test_document_limit_counts_utf8_bytes_not_characters(shared_service: ServiceProcess) -> None:
    text = "é" * (MB // 2 + 1)  # fewer than 1 MB characters, more than 1 MB in UTF-8
    assert len(text) < MB
    assert_bad_request(shared_service.post_documents([text]), "documents[0]")


SMALL_LIMIT = 16 * 1024


@pytest.fixture(scope="module")
def small_body_service(shared_redis: RedisProcess) -> Iterator[ServiceProcess]:
    # A small body limit keeps oversize requests under uvicorn's read buffer, so the client has sent
    # everything before the server answers and closes (no connection reset racing the response).
    service = ServiceProcess({"RAG_MAX_BODY_BYTES": str(SMALL_LIMIT)}, shared_redis.url).start()
    try:
        service.wait_healthy()
        yield service
    finally:
        service.close()


@pytest.mark.parametrize("path", ["/api/query", "/api/documents"])
def test_oversize_body(small_body_service: ServiceProcess, path: str) -> None:
    payload = json.dumps({"query": "q" * SMALL_LIMIT, "client_id": "c", "documents": ["d" * SMALL_LIMIT]}).encode()
    error = assert_bad_request(post_raw(small_body_service, path, payload), "body")
    assert str(SMALL_LIMIT) in error
    assert small_body_service.client.get("/health").status_code == 200


def test_oversize_chunked_body_is_cut_while_streaming(small_body_service: ServiceProcess) -> None:
    def stream() -> Iterator[bytes]:
        yield b'{"documents": ["'
        for _kib in range(2 * SMALL_LIMIT // 1024):
            yield b"x" * 1024
        yield b'"]}'

    response = small_body_service.client.post(
        "/api/documents", content=stream(), headers={**JSON, **small_body_service.admin_headers}
    )
    assert "content-length" not in response.request.headers
    error = assert_bad_request(response, "body")
    assert str(SMALL_LIMIT) in error


def test_body_at_the_limit_is_accepted(small_body_service: ServiceProcess) -> None:
    prefix = b'{"client_id": "c", "query": "tva", "pad": "'
    payload = prefix + b"p" * (SMALL_LIMIT - len(prefix) - 2) + b'"}'
    assert len(payload) == SMALL_LIMIT
    assert post_raw(small_body_service, "/api/query", payload).status_code == 200


def test_announced_huge_body_is_refused_without_reading_it(shared_service: ServiceProcess) -> None:
    """A 1 GB Content-Length is refused at once; the server does not wait for (or buffer) the body."""
    head, body, seconds = send_raw(
        shared_service.port,
        b"POST /api/query HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1073741824\r\n\r\n{"query":',
    )
    assert seconds < 2
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"].startswith("body: ")
    assert shared_service.client.get("/health").status_code == 200


def test_unknown_path_is_json_404(shared_service: ServiceProcess) -> None:
    for path in ("/api/queries", "/", "/health/unknown", "/api/query/extra"):
        response = shared_service.client.post(path, json=VALID_QUERY)
        assert response.status_code == 404, path
        assert response.json() == {"error": "not found"}
        assert_identity(response)
