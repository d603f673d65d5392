"""Health endpoints: /health for load balancers and the release engine, one endpoint per dependency."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from rag_service.http.drills import UNHEALTHY_REASON
from rag_service.http.responses import json_response
from rag_service.http.schemas import CheckResponse, HealthResponse
from rag_service.http.state import AppContext
from rag_service.models import CheckResult

log = logging.getLogger(__name__)

NOT_SERVING = "neither Redis nor the search index is available"
AI_DEPENDENCIES = ("embedder", "generator")


def check_body(check: Callable[[], CheckResult]) -> dict[str, Any]:
    try:
        result = check()
    except Exception as exc:  # a broken probe is a failed check, not a 500
        log.exception("health probe failed")
        result = CheckResult(ok=False, error=f"{type(exc).__name__}: {exc}")
    body: dict[str, Any] = {**result.details, "status": "ok" if result.ok else "error"}
    if not result.ok:
        body["error"] = result.error or "check failed"
    return body


def health_router(ctx: AppContext) -> APIRouter:
    router = APIRouter(tags=["health"])
    service, lifecycle, drills = ctx.service, ctx.lifecycle, ctx.drills
    identity = {"version": ctx.settings.version, "color": ctx.settings.color}

    def overall(status: str, checks: dict[str, Any], reason: str | None = None) -> Response:
        body = {"status": status, **identity, "uptime": round(lifecycle.uptime(), 3), "checks": checks}
        if reason:
            body["reason"] = reason
        return json_response(body, 200 if status == "healthy" else 503)

    def ai_breakers() -> CheckResult:
        # /health is polled often and the AI probe (/health/ai) may cost a paid API call: report breakers here.
        states = service.breaker_states()
        details = {name: states.get(name, "unknown") for name in AI_DEPENDENCIES}
        open_ = [name for name, state in details.items() if state == "open"]
        return CheckResult(ok=not open_, details=details, error="circuit open: " + ", ".join(open_) if open_ else None)

    def run_checks() -> dict[str, Any]:
        return {
            "db": check_body(service.check_db),
            "vector": check_body(lambda: service.check_vector(completeness=False)),
            "ai": check_body(ai_breakers),
        }

    @router.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    async def health() -> Response:
        """200 while this process can serve; 503 "unhealthy", or "draining" from SIGTERM until exit."""
        if lifecycle.draining:
            return overall("draining", {}, "shutting down")
        if drills.unhealthy:
            return overall("unhealthy", {}, UNHEALTHY_REASON)
        checks = await run_in_threadpool(run_checks)
        # Redis down with the index loaded still answers with full RAG; an empty index with Redis up can be fed.
        if checks["db"]["status"] == "ok" or checks["vector"]["status"] == "ok":
            return overall("healthy", checks)
        return overall("unhealthy", checks, NOT_SERVING)

    def dependency(check: Callable[[], CheckResult]) -> Response:
        body = check_body(check)
        return json_response(body, 200 if body["status"] == "ok" else 503)

    responses: dict[int | str, dict[str, Any]] = {503: {"model": CheckResponse}}

    @router.get("/health/db", response_model=CheckResponse, responses=responses)
    def health_db() -> Response:
        """Redis PING, with its latency."""
        return dependency(service.check_db)

    @router.get("/health/vector", response_model=CheckResponse, responses=responses)
    def health_vector() -> Response:
        """The search index is loaded and answers a probe search; reports the chunk count."""
        return dependency(service.check_vector)

    @router.get("/health/ai", response_model=CheckResponse, responses=responses)
    def health_ai() -> Response:
        """The embedder and the answer generator each work on a probe."""
        return dependency(service.check_ai)

    return router
