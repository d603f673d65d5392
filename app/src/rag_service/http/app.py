"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from rag_service import metrics
from rag_service.config import Settings
from rag_service.http.api import api_router, query_shortcut
from rag_service.http.auth import WRITE_ROUTES, admin_guard, document_security
from rag_service.http.drills import Drills
from rag_service.http.errors import install_error_handlers
from rag_service.http.health import health_router
from rag_service.http.middleware import RequestMiddleware
from rag_service.http.state import AppContext, Lifecycle, Service

JSON_PATHS = frozenset({"/api/query", "/api/documents"})


def create_app(settings: Settings, service: Service | None = None, lifecycle: Lifecycle | None = None) -> FastAPI:
    """Build the app. A service passed in is owned by the caller; otherwise the app creates a RagService and
    starts/closes it with its lifespan."""
    owns_service = service is None
    if service is None:
        from rag_service.service import RagService

        service = RagService(settings)
    lifecycle = lifecycle or Lifecycle()
    ctx = AppContext(settings=settings, service=service, lifecycle=lifecycle, drills=Drills(settings.chaos_mode))
    metrics.initialise(settings.version, settings.color)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if owns_service:
            await run_in_threadpool(service.start)
        try:
            yield
        finally:
            if owns_service:
                await run_in_threadpool(service.close)

    app = FastAPI(
        title="rag-service",
        version=settings.version,
        summary="Reference RAG question-answering API deployed by ragops.platform",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    app.include_router(health_router(ctx))
    app.include_router(api_router(ctx))

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def prometheus_metrics() -> Response:
        """Prometheus text exposition format."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(
        RequestMiddleware,
        version=settings.version,
        color=settings.color,
        lifecycle=lifecycle,
        max_body_bytes=settings.max_body_bytes,
        json_paths=JSON_PATHS,
        shortcuts={"/api/query": query_shortcut(ctx)},
        guards=dict.fromkeys(WRITE_ROUTES, admin_guard(settings.admin_token)),
    )
    _document_errors_as_400(app)
    return app


def _document_errors_as_400(app: FastAPI) -> None:
    """FastAPI documents a 422 on every route with a body; this service answers 400 instead. The admin token
    is checked by the middleware, not by a FastAPI dependency, so its scheme is declared here too."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            document_security(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
