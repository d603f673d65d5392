"""POST /api/query and POST /api/documents."""

# No `from __future__ import annotations` here: the documents body model is built per settings inside
# api_router(), and FastAPI must see the class itself, not a string it cannot resolve.

import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

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


def api_router(ctx: AppContext) -> APIRouter:
    router = APIRouter(tags=["api"])
    service, drills, support_contact = ctx.service, ctx.drills, ctx.settings.support_contact
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
        try:
            answer = await run_in_threadpool(service.answer, body.query, body.top_k)
        except Exception:  # the core never raises; if it ever does, the contract still holds: no 500
            log.exception("answer failed outside the degradation chain")
            metrics.DEGRADED_RESPONSES.labels(layer="error_handler").inc()
            answer = apology(body.query, support_contact)
        request.scope[SOURCE_KEY] = answer.source
        return json_response(answer_body(answer, time.perf_counter() - started, not drills.bad_contract))

    @router.post(
        "/api/documents",
        response_model=DocumentsResponse,
        responses={**BAD_REQUEST, 503: {"model": ErrorResponse, "description": "Redis unavailable"}},
    )
    def documents(body: DocumentsRequest) -> Response:  # type: ignore[valid-type]
        """Add documents to the shared corpus. Idempotent: the same id (or, without an id, the same text)
        replaces rather than duplicates."""
        result = service.ingest(body.to_documents())
        return json_response(
            {"processed_count": result.processed_count, "chunk_count": result.chunk_count, "ids": list(result.ids)}
        )

    return router
