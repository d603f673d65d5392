"""Input fuzzing against the in-process app (real RagService, real redis-server): no input yields a 5xx.

hypothesis generates arbitrary JSON and near-miss bodies; schemathesis generates requests from the
service's own OpenAPI document and checks the responses against it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import GenerationMode
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration.service_process import ADMIN_HEADERS, ADMIN_TOKEN
from rag_service.config import load_settings
from rag_service.http.app import create_app
from rag_service.http.auth import WRITE_ROUTES
from rag_service.service import RagService
from redis_process import RedisProcess

FUZZ_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
MAX_BODY = 256 * 1024


class Client:
    """A synchronous face on an httpx.AsyncClient over the ASGI app, through an anyio portal."""

    def __init__(self, portal: BlockingPortal, client: httpx.AsyncClient) -> None:
        self.portal = portal
        self.client = client

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.portal.call(lambda: self.client.post(path, **kwargs))


@pytest.fixture(scope="module")
def fuzz_app(shared_redis: RedisProcess) -> Iterator[Any]:
    config = load_settings(
        redis_url=shared_redis.url,
        redis_key_prefix="fuzz:",
        max_body_bytes=MAX_BODY,
        version="fuzz",
        color="fuzz",
        admin_token=ADMIN_TOKEN,
    )
    service = RagService(config)
    service.start()
    try:
        yield create_app(config, service)
    finally:
        service.close()


@pytest.fixture(scope="module")
def client(fuzz_app: Any) -> Iterator[Client]:
    with start_blocking_portal() as portal:
        transport = httpx.ASGITransport(app=fuzz_app)
        # With the admin token, so that document bodies reach validation (refusals: test_admin_token.py).
        async_client = httpx.AsyncClient(transport=transport, base_url="http://fuzz", headers=ADMIN_HEADERS)
        yield Client(portal, async_client)
        portal.call(async_client.aclose)


json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
client_ids = st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True) | st.text(max_size=70)
query_bodies = (
    st.fixed_dictionaries(
        {"query": st.text(max_size=2100) | json_values, "client_id": client_ids | json_values},
        optional={"top_k": st.integers(-3, 25) | json_values, "extra": json_values},
    )
    | json_values
)
document_items = (
    st.text(max_size=200)
    | st.fixed_dictionaries(
        {"text": st.text(max_size=200) | json_values},
        optional={
            "id": st.text(max_size=40) | json_values,
            "title": st.text(max_size=40) | json_values,
            "metadata": json_values,
        },
    )
    | json_values
)
document_bodies = st.fixed_dictionaries({"documents": st.lists(document_items, max_size=5) | json_values}) | json_values
content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", ""]
)


def assert_not_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    assert response.headers["x-app-version"] == "fuzz"
    body = response.json()
    if response.status_code == 400:
        assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"]


@FUZZ_SETTINGS
@given(body=query_bodies)
def test_query_never_5xx(client: Client, body: Any) -> None:
    response = client.post("/api/query", json=body)
    assert_not_server_error(response)
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert response.json()["success"] is True


@FUZZ_SETTINGS
@given(body=document_bodies)
def test_documents_never_5xx(client: Client, body: Any) -> None:
    response = client.post("/api/documents", json=body)
    assert_not_server_error(response)
    assert response.status_code in (200, 400)


@FUZZ_SETTINGS
@given(
    path=st.sampled_from(["/api/query", "/api/documents"]),
    raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
    content_type=content_types,
)
def test_raw_bodies_never_5xx(client: Client, path: str, raw: bytes, content_type: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(path, content=raw, headers=headers)
    assert_not_server_error(response)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"query": "\\ud800", "client_id": "a"}',
        b'{"query": "NaN", "client_id": "a", "top_k": NaN}',
        b'{"query": "x", "client_id": "a", "top_k": Infinity}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"documents": [{"text": "ok", "metadata": {"k": "\\udfff"}}]}',
        b'{"documents": ["\\ud800", {"text": "a\\udc00b"}, {"text": "ok", "id": "\\ud83d"}]}',
        b'{"documents": [{"text": "ok", "metadata": {"n": NaN}}]}',
        b'{"query": "a", "query": "b", "client_id": "dup"}',
        b"\xef\xbb\xbf" + json.dumps({"query": "bom", "client_id": "a"}).encode(),
    ],
    ids=[
        "lone-surrogate",
        "nan",
        "infinity",
        "deep-nesting",
        "surrogate-metadata",
        "surrogate-documents",
        "nan-metadata",
        "duplicate-key",
        "bom",
    ],
)
def test_nasty_json_never_5xx(client: Client, raw: bytes) -> None:
    for path in ("/api/query", "/api/documents"):
        assert_not_server_error(client.post(path, content=raw, headers={"content-type": "application/json"}))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_openapi_conformance(fuzz_app: Any, mode: GenerationMode) -> None:
    """Requests generated from the service's own OpenAPI document: no 5xx, and every response (status
    code, content type, body) conforms to the document; invalid requests are rejected."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=schema.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        # Generated credentials would stop every write at the token check: send the real one on writes.
        response = case.call(headers=ADMIN_HEADERS if (case.method.upper(), case.path) in WRITE_ROUTES else None)
        assert response.status_code < 500, (case.method, case.path, response.status_code, response.text)
        case.validate_response(response)

    check()
