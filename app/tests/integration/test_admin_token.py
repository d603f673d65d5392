"""RAG_ADMIN_TOKEN on the real process: writes need `Authorization: Bearer <token>`, a refusal writes nothing
(Redis and the index are byte-for-byte unchanged), reads never need it, refusals are counted and the token
is never logged."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from integration.service_process import ADMIN_TOKEN, ServiceProcess, send_raw
from integration.test_contract import assert_identity
from redis_process import RedisProcess

CORPUS_KEYS = ("documents*", "document:*", "space:*")  # under the key prefix; cache:* is written by queries
WRONG_TOKEN = "not-the-admin-token-but-looks-like-one"
READS = [
    ("POST", "/api/query", {"json": {"query": "Quel est le taux de TVA ?", "client_id": "auth"}}),
    ("GET", "/health", {}),
    ("GET", "/health/db", {}),
    ("GET", "/health/vector", {}),
    ("GET", "/health/ai", {}),
    ("GET", "/metrics", {}),
]


def start(redis: RedisProcess, env: dict[str, str]) -> ServiceProcess:
    service = ServiceProcess({"RAG_CORPUS_CHECK_INTERVAL_SECONDS": "0", **env}, redis.url).start()
    service.wait_healthy()
    return service


@pytest.fixture(scope="module")
def guarded(shared_redis: RedisProcess) -> Iterator[ServiceProcess]:
    service = start(shared_redis, {"RAG_REDIS_KEY_PREFIX": f"auth-{uuid.uuid4().hex[:6]}:"})
    try:
        yield service
    finally:
        service.close()


@pytest.fixture(scope="module")
def unguarded(shared_redis: RedisProcess) -> Iterator[ServiceProcess]:
    """RAG_ADMIN_TOKEN set but empty: writes are disabled."""
    service = start(shared_redis, {"RAG_REDIS_KEY_PREFIX": f"noauth-{uuid.uuid4().hex[:6]}:", "RAG_ADMIN_TOKEN": ""})
    try:
        yield service
    finally:
        service.close()


def corpus_snapshot(redis: RedisProcess, service: ServiceProcess) -> dict[bytes, bytes]:
    """Every corpus key of the service's prefix with its serialised value, and the index /health/vector sees."""
    client = redis.client()
    prefix = service.env["RAG_REDIS_KEY_PREFIX"]
    keys = {key for pattern in CORPUS_KEYS for key in client.scan_iter(match=prefix + pattern)}
    snapshot = {key: client.dump(key) for key in sorted(keys)}
    vector = service.client.get("/health/vector").json()
    snapshot[b"index"] = json.dumps(
        [vector["chunk_count"], vector["document_count"], vector["corpus_version"], vector["space_version"]]
    ).encode()
    assert len(snapshot) > 1, "the sample corpus should be loaded"
    return snapshot


def unique_document() -> tuple[str, dict]:
    word = f"quibbix{uuid.uuid4().hex[:8]}"
    return word, {"id": f"auth-{word}", "title": f"The {word} lantern", "text": f"The {word} lantern glows green."}


def cited(service: ServiceProcess, word: str) -> list[str]:
    response = service.client.post("/api/query", json={"query": f"What does the {word} lantern do?", "client_id": "a"})
    assert response.status_code == 200
    return [source["id"] for source in response.json()["sources"]]


def assert_refused(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    assert_identity(response)
    body = response.json()
    assert list(body) == ["error"] and body["error"]
    return body["error"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}, {"Authorization": ADMIN_TOKEN}],
    ids=["missing", "basic", "bearer-alone", "no-scheme"],
)
def test_no_bearer_credential_is_401_and_writes_nothing(
    guarded: ServiceProcess, shared_redis: RedisProcess, headers: dict[str, str]
) -> None:
    word, document = unique_document()
    before = corpus_snapshot(shared_redis, guarded)
    response = guarded.client.post("/api/documents", json={"documents": [document]}, headers=headers)
    assert "Bearer" in assert_refused(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert corpus_snapshot(shared_redis, guarded) == before
    assert document["id"] not in cited(guarded, word)


@pytest.mark.parametrize(
    "token",
    [WRONG_TOKEN, ADMIN_TOKEN[:-1], ADMIN_TOKEN + "0", ADMIN_TOKEN.upper()],
    ids=["wrong", "prefix", "longer", "case"],
)
def test_wrong_token_is_403_and_writes_nothing(guarded: ServiceProcess, shared_redis: RedisProcess, token: str) -> None:
    word, document = unique_document()
    before = corpus_snapshot(shared_redis, guarded)
    response = guarded.post_documents([document], headers={"Authorization": f"Bearer {token}"})
    assert "invalid admin token" in assert_refused(response, 403)
    assert "www-authenticate" not in response.headers
    assert corpus_snapshot(shared_redis, guarded) == before
    assert document["id"] not in cited(guarded, word)


def test_the_token_is_checked_before_the_body(guarded: ServiceProcess, shared_redis: RedisProcess) -> None:
    before = corpus_snapshot(shared_redis, guarded)
    for content, content_type in ((b'{"documents": [', "application/json"), (b"documents=x", "text/plain")):
        response = guarded.client.post("/api/documents", content=content, headers={"content-type": content_type})
        assert_refused(response, 401)
        # The body was not read: the connection is not reused.
        assert response.headers["connection"] == "close"
    assert corpus_snapshot(shared_redis, guarded) == before


def test_announced_huge_body_without_token_is_refused_without_reading_it(guarded: ServiceProcess) -> None:
    head, body, seconds = send_raw(
        guarded.port,
        b"POST /api/documents HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1073741824\r\n\r\n{"documents":',
    )
    assert seconds < 2
    assert head.startswith(b"HTTP/1.1 401"), head
    assert b"www-authenticate: bearer" in head.lower()
    assert json.loads(body)["error"].startswith("authorization required")


def test_right_token_writes_and_the_document_is_retrievable(
    guarded: ServiceProcess, shared_redis: RedisProcess
) -> None:
    word, document = unique_document()
    before = corpus_snapshot(shared_redis, guarded)
    assert document["id"] not in cited(guarded, word)
    response = guarded.post_documents([document])
    assert response.status_code == 200, response.text
    assert response.json()["ids"] == [document["id"]]
    assert corpus_snapshot(shared_redis, guarded) != before
    assert document["id"] in cited(guarded, word)
    # The scheme is case-insensitive.
    other_word, other = unique_document()
    lower = guarded.post_documents([other], headers={"Authorization": f"bearer {ADMIN_TOKEN}"})
    assert lower.status_code == 200, lower.text
    assert other["id"] in cited(guarded, other_word)


def test_unset_token_disables_writes(unguarded: ServiceProcess, shared_redis: RedisProcess) -> None:
    assert unguarded.admin_headers == {}
    before = corpus_snapshot(shared_redis, unguarded)
    for headers in ({}, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, {"Authorization": "Bearer"}):
        word, document = unique_document()
        response = unguarded.post_documents([document], headers=headers)
        error = assert_refused(response, 403)
        assert "ingestion is disabled" in error and "RAG_ADMIN_TOKEN is not set" in error
        assert document["id"] not in cited(unguarded, word)
    assert corpus_snapshot(shared_redis, unguarded) == before
    warnings = [r for r in unguarded.log_records() if "RAG_ADMIN_TOKEN is not set" in r.get("message", "")]
    assert len(warnings) == 1 and warnings[0]["level"] == "WARNING"


@pytest.mark.parametrize("service_name", ["guarded", "unguarded"])
@pytest.mark.parametrize("authorization", [None, f"Bearer {WRONG_TOKEN}", "Basic eDp5"], ids=["none", "wrong", "basic"])
def test_reads_never_need_the_token(
    request: pytest.FixtureRequest, service_name: str, authorization: str | None
) -> None:
    service: ServiceProcess = request.getfixturevalue(service_name)
    headers = {"Authorization": authorization} if authorization else {}
    for method, path, kwargs in READS:
        response = service.client.request(method, path, headers=headers, **kwargs)
        assert response.status_code == 200, (method, path, response.status_code, response.text)


def test_refusals_are_counted_with_their_status(guarded: ServiceProcess) -> None:
    def count(status: str) -> float:
        return guarded.metric("rag_requests_total", endpoint="/api/documents", method="POST", status=status) or 0.0

    before = {status: count(status) for status in ("401", "403", "200")}
    for _request in range(3):
        guarded.post_documents(["counted"], headers={"Authorization": ""})
    for _request in range(2):
        guarded.post_documents(["counted"], headers={"Authorization": f"Bearer {WRONG_TOKEN}"})
    assert guarded.post_documents(["counted"]).status_code == 200
    assert count("401") == before["401"] + 3
    assert count("403") == before["403"] + 2
    assert count("200") == before["200"] + 1
    logged = [r["status"] for r in guarded.log_records() if r.get("endpoint") == "/api/documents"]
    assert logged.count(401) >= 3 and logged.count(403) >= 2


def test_tokens_are_never_logged(guarded: ServiceProcess) -> None:
    assert guarded.post_documents(["logged?"]).status_code == 200
    assert guarded.post_documents(["logged?"], headers={"Authorization": f"Bearer {WRONG_TOKEN}"}).status_code == 403
    assert {200, 403} <= {r["status"] for r in guarded.log_records() if r.get("endpoint") == "/api/documents"}
    output = guarded.output()
    assert ADMIN_TOKEN not in output and WRONG_TOKEN not in output


def test_openapi_declares_the_bearer_scheme_on_writes_only(guarded: ServiceProcess) -> None:
    schema = guarded.client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert len(schemes) == 1
    [(name, scheme)] = schemes.items()
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    documents = schema["paths"]["/api/documents"]["post"]
    assert documents["security"] == [{name: []}]
    assert {"401", "403"} <= set(documents["responses"])
    assert "security" not in schema["paths"]["/api/query"]["post"]
    assert ADMIN_TOKEN not in json.dumps(schema)
