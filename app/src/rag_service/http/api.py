"""POST /api/query and POST /api/documents (admin token: rag_service.http.auth)."""

# No `from __future__ import annotations` here: the documents body model is built per settings inside
# api_router(), and FastAPI must see the class itself, not a string it cannot resolve.

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Scope

from rag_service import metrics
from rag_service.degradation.apology import apology
from rag_service.http.middleware import SOURCE_KEY
from rag_service.http.responses import finite, json_response
from rag_service.http.schemas import (
    DocumentsResponse,
    ErrorResponse,
    QueryRequest,
    QueryResponse,
    documents_request_model,
)
from rag_service.http.state import AppContext
from rag_service.models import Answer

log = logging.getLogger(__name__)

BAD_REQUEST: dict[int | str, dict[str, Any]] = {400: {"model": ErrorResponse, "description": "Invalid input"}}
ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No Bearer credential (checked before the body)"},
    403: {"model": ErrorResponse, "description": "Wrong admin token, or RAG_ADMIN_TOKEN not set (writes disabled)"},
}


def answer_body(answer: Answer, processing_time: float, with_sources: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"query": answer.query, "answer": answer.answer}
    if with_sources:
        body["sources"] = [
            {"id": s.id, "title": s.title, "score": finite(s.score), "snippet": s.snippet} for s in answer.sources
        ]
    body.update(
        processing_time=round(processing_time, 6),
        success=answer.success,
        degraded=answer.degraded,
        source=answer.source,
        confidence=finite(answer.confidence),
    )
    return body


def query_responder(ctx: AppContext) -> Callable[[QueryRequest, Scope, float], Awaitable[Response]]:
    """The answer to a valid POST /api/query, drills aside: shared by the route and the shortcut."""
    service, drills, support_contact = ctx.service, ctx.drills, ctx.settings.support_contact
    # Optional (see Service): answers without a worker thread when no I/O is needed.
    answer_or_defer = getattr(service, "answer_or_defer", None)

    async def respond(body: QueryRequest, scope: Scope, started: float) -> Response:
        try:
            if answer_or_defer is None:
                answer = await run_in_threadpool(service.answer, body.query, body.top_k)
            else:
                # The CPU-only part runs here, on the event loop: a hop to the thread pool and back costs
                # more than the answer. Whatever blocks on I/O (Redis, providers) still runs in the pool.
                ready = answer_or_defer(body.query, body.top_k)
                answer = ready if isinstance(ready, Answer) else await run_in_threadpool(ready)
        except Exception:  # the core never raises; if it ever does, the contract still holds: no 500
            log.exception("answer failed outside the degradation chain")
            metrics.DEGRADED_RESPONSES.labels(layer="error_handler").inc()
            answer = apology(body.query, support_contact)
        scope[SOURCE_KEY] = answer.source
        return json_response(answer_body(answer, time.perf_counter() - started, not drills.bad_contract))

    return respond


def query_shortcut(ctx: AppContext) -> Callable[[Scope, bytes], Awaitable[Response | None]]:
    """POST /api/query straight from the request middleware, for a well-formed request: FastAPI's routing,
    dependency solving and exception machinery cost more than the answer itself.

    The body is decoded and validated exactly as the route does it (json.loads, then the QueryRequest model
    from Python objects), and answered by the same code. Anything else returns None and goes through the
    route, which makes the same decision and gives the same 400: malformed or invalid bodies, drills that
    act on queries (their failures are the route's exception handlers' business), and requests FastAPI's
    native OpenTelemetry instruments (it traces the route).
    """
    respond = query_responder(ctx)
    drills = ctx.drills

    async def shortcut(scope: Scope, raw: bytes) -> Response | None:
        if drills.affects_queries or scope.get("fastapi.telemetry") is not None:
            return None
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                return None
            body = QueryRequest.model_validate(data, from_attributes=True)
        except Exception:  # the route reports it
            return None
        return await respond(body, scope, time.perf_counter())

    return shortcut


def api_router(ctx: AppContext) -> APIRouter:
    router = APIRouter(tags=["api"])
    service, drills = ctx.service, ctx.drills
    respond = query_responder(ctx)
    DocumentsRequest = documents_request_model(ctx.settings.max_documents_per_call, ctx.settings.max_document_bytes)

    @router.post(
        "/api/query",
        response_model=QueryResponse,
        responses={**BAD_REQUEST, 500: {"model": ErrorResponse, "description": "Only under the error_rate drill"}},
    )
    async def query(body: QueryRequest, request: Request) -> Response:
        """Answer a question. Always 200: when a dependency fails the answer degrades (cache, keyword FAQ,
        apology) with `degraded: true` and its `source`."""
        started = time.perf_counter()
        if drills.affects_queries:
            await drills.before_query()
        return await respond(body, request.scope, started)

    @router.post(
        "/api/documents",
        response_model=DocumentsResponse,
        responses={**BAD_REQUEST, **ADMIN_ONLY, 503: {"model": ErrorResponse, "description": "Redis unavailable"}},
    )
    def documents(body: DocumentsRequest) -> Response:  # type: ignore[valid-type]
        """Add documents to the shared corpus; requires `Authorization: Bearer <RAG_ADMIN_TOKEN>` (checked by
        the request middleware, before the body is read). Idempotent: the same id (or, without an id, the
        same text) replaces rather than duplicates."""
        result = service.ingest(body.to_documents())
        return json_response(
            {"processed_count": result.processed_count, "chunk_count": result.chunk_count, "ids": list(result.ids)}
        )

    return router
