"""The HTTP layer's safety nets, against a deliberately broken core (in process): whatever the core does,
/api/query answers 200, a broken probe is a 503 check, and anything else is a JSON 500 with the identity
headers, never a bare traceback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rag_service.config import load_settings
from rag_service.http.app import create_app
from rag_service.models import Answer, CheckResult, DependencyUnavailable, Document, IngestResult

ADMIN_TOKEN = "last-resort-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class BrokenService:
    def start(self) -> None: ...
    def close(self) -> None: ...

    def answer(self, query: str, top_k: int | None = None) -> Answer:
        raise RuntimeError("core bug")

    def ingest(self, documents: list[Document]) -> IngestResult:
        if documents[0].text == "redis down":
            raise DependencyUnavailable("redis", "circuit open")
        raise RuntimeError("core bug")

    def check_db(self) -> CheckResult:
        raise RuntimeError("probe bug")

    def check_vector(self, completeness: bool = True) -> CheckResult:
        return CheckResult(ok=True, details={"chunk_count": 1})

    def check_ai(self) -> CheckResult:
        return CheckResult(ok=False, details={"embedder": {"ok": False}}, error="embedder: down")

    def breaker_states(self) -> dict[str, str]:
        return {"redis": "closed", "embedder": "open", "generator": "closed"}


@pytest.fixture
def call() -> Iterator[Any]:
    settings = load_settings(version="1.2.3", color="blue", support_contact="help@example.org", admin_token=ADMIN_TOKEN)
    app = create_app(settings, BrokenService())

    def request(method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(go())

    yield request


def assert_identity(response: httpx.Response) -> None:
    assert response.headers["x-app-version"] == "1.2.3" and response.headers["x-app-color"] == "blue"


def test_query_never_500_even_if_the_core_raises(call: Any) -> None:
    response = call("POST", "/api/query", json={"query": "anything", "client_id": "c"})
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "error_handler" and body["degraded"] is True and body["sources"] == []
    assert "help@example.org" in body["answer"]


def test_unexpected_error_is_a_json_500_with_identity(call: Any) -> None:
    response = call("POST", "/api/documents", json={"documents": ["boom"]}, headers=ADMIN)
    assert response.status_code == 500
    assert response.json() == {"error": "internal error"}
    assert_identity(response)


def test_dependency_unavailable_is_a_json_503(call: Any) -> None:
    response = call("POST", "/api/documents", json={"documents": ["redis down"]}, headers=ADMIN)
    assert response.status_code == 503
    assert response.json() == {"error": "redis unavailable: circuit open"}
    assert_identity(response)


def test_broken_probe_is_a_failed_check(call: Any) -> None:
    db = call("GET", "/health/db")
    assert db.status_code == 503
    assert db.json()["status"] == "error" and "probe bug" in db.json()["error"]
    ai = call("GET", "/health/ai")
    assert ai.status_code == 503 and ai.json()["error"] == "embedder: down"
    # /health: the index still serves, so healthy; the open AI breaker shows in the checks.
    health = call("GET", "/health")
    assert health.status_code == 200
    checks = health.json()["checks"]
    assert checks["db"]["status"] == "error" and checks["vector"]["status"] == "ok"
    assert checks["ai"] == {
        "embedder": "open",
        "generator": "closed",
        "status": "error",
        "error": "circuit open: embedder",
    }
