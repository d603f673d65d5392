"""The one request middleware (pure ASGI, no BaseHTTPMiddleware overhead).

For every HTTP request it adds X-App-Version / X-App-Color / X-Request-ID, enforces the JSON content
type and the body size limit on the JSON endpoints while the body streams in, turns an unexpected
exception into a JSON 500, records the bounded-label metrics and writes one JSON log line. A route
(method, path) may have a guard: given the request before its body is read, it answers a refusal, or
returns None to let the request go on. A JSON endpoint may have a shortcut: given the body, it answers
directly, or returns None to let the app handle the request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag_service import metrics
from rag_service.http.errors import json_error
from rag_service.http.state import Lifecycle

log = logging.getLogger("rag_service.request")

# Handlers put the degradation layer of an answer here, for the log line.
SOURCE_KEY = "rag.source"
UNMATCHED = "unmatched"
CLIENT_CLOSED = 499  # nginx's convention for "no response: the request was abandoned"

_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_CLOSE = (b"connection", b"close")
# Probes and scrapes, not traffic: they do not keep a draining process in its grace (Lifecycle.last_traffic_at).
_UNTRACKED_PREFIXES = ("/health", "/metrics")


Shortcut = Callable[[Scope, bytes], Awaitable[Response | None]]
Guard = Callable[[Scope], Response | None]


class BodyRejected(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        version: str,
        color: str,
        lifecycle: Lifecycle,
        max_body_bytes: int,
        json_paths: frozenset[str],
        shortcuts: Mapping[str, Shortcut] | None = None,
        guards: Mapping[tuple[str, str], Guard] | None = None,
    ) -> None:
        self.app = app
        self.identity = [(b"x-app-version", version.encode("ascii")), (b"x-app-color", color.encode("ascii"))]
        self.lifecycle = lifecycle
        self.max_body_bytes = max_body_bytes
        self.json_paths = json_paths
        self.shortcuts = dict(shortcuts or {})
        self.guards = dict(guards or {})
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        content_type = content_length = request_id = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                content_length = value
            elif name == b"x-request-id":
                request_id = value
        if request_id is None or not _REQUEST_ID.fullmatch(request_id):
            request_id = uuid.uuid4().hex.encode("ascii")

        lifecycle = self.lifecycle
        added = [*self.identity, (b"x-request-id", request_id)]
        status = 0
        close = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), *added]
                # Draining, or a request body left unread: ask the client (nginx) to stop reusing the connection.
                if close or lifecycle.draining:
                    headers.append(_CLOSE)
                message["headers"] = headers
            await send(message)

        endpoint: str | None = None
        if not scope["path"].startswith(_UNTRACKED_PREFIXES):
            lifecycle.last_traffic_at = time.monotonic()
        lifecycle.inflight += 1
        metrics.INFLIGHT_REQUESTS.inc()
        try:
            guard = self.guards.get((scope["method"], scope["path"])) if self.guards else None
            if guard is not None:
                endpoint = scope["path"]
                refused = guard(scope)
                if refused is not None:
                    close = True  # the body is left unread
                    await refused(scope, receive, send_with_headers)
                    return
            if scope["method"] == "POST" and scope["path"] in self.json_paths:
                endpoint = scope["path"]
                try:
                    receive, body = await self._read_json_body(content_type, content_length, receive)
                except BodyRejected as rejected:
                    close = True
                    await json_error(400, rejected.message)(scope, receive, send_with_headers)
                    return
                shortcut = self.shortcuts.get(endpoint)
                if shortcut is not None and body is not None:
                    response = await shortcut(scope, body)
                    if response is not None:
                        await response(scope, receive, send_with_headers)
                        return
            await self.app(scope, receive, send_with_headers)
        except asyncio.CancelledError:
            if lifecycle.draining:
                lifecycle.cut_requests += 1
                if not status:
                    # Cut by the drain timeout: tell the client (a retryable 503) rather than reset it. The task
                    # ends here either way; not re-raising spares uvicorn a traceback for a planned cancel.
                    await json_error(503, "shutting down: drain timeout reached")(scope, receive, send_with_headers)
                    return
            status = status or CLIENT_CLOSED
            raise
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id.decode("ascii")})
            if status:
                raise
            await json_error(500, "internal error")(scope, receive, send_with_headers)
        finally:
            lifecycle.inflight -= 1
            metrics.INFLIGHT_REQUESTS.dec()
            if endpoint is None:
                route = scope.get("route")
                endpoint = getattr(route, "path", None) or UNMATCHED
            self._record(scope, endpoint, status or 500, time.perf_counter() - started, request_id)

    async def _read_json_body(
        self, content_type: bytes | None, content_length: bytes | None, receive: Receive
    ) -> tuple[Receive, bytes | None]:
        """Read the whole body within the limit (without buffering past it); return a receive that replays it,
        and the body (None if the client went away before sending all of it)."""
        if content_type is None or content_type.split(b";", 1)[0].strip().lower() != b"application/json":
            raise BodyRejected("body: Content-Type must be application/json")
        limit = self.max_body_bytes
        too_large = f"body: larger than the limit of {limit} bytes"
        if content_length is not None and content_length.isdigit() and int(content_length) > limit:
            raise BodyRejected(too_large)
        chunks: list[bytes] = []
        size = 0
        body: bytes | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":  # disconnected: let the app see it
                first: Message | None = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyRejected(too_large)
            chunks.append(chunk)
            if not message.get("more_body", False):
                body = b"".join(chunks)
                first = {"type": "http.request", "body": body, "more_body": False}
                break

        async def replay() -> Message:
            nonlocal first
            if first is not None:
                message, first = first, None
                return message
            return await receive()

        return replay, body

    def _record(self, scope: Scope, endpoint: str, status: int, seconds: float, request_id: bytes) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "other"
        key = (endpoint, method, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.REQUESTS.labels(
                endpoint=endpoint, method=method, status=str(status)
            )
        counter.inc()
        duration = self._durations.get(endpoint)
        if duration is None:
            duration = self._durations[endpoint] = metrics.REQUEST_DURATION.labels(endpoint=endpoint)
        duration.observe(seconds)

        level = logging.WARNING if status >= 500 else logging.INFO
        if log.isEnabledFor(level):
            fields: dict[str, Any] = {
                "request_id": request_id.decode("ascii"),
                "method": method,
                "endpoint": endpoint,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
            }
            source = scope.get(SOURCE_KEY)
            if source is not None:
                fields["source"] = source
                fields["degraded"] = source != "rag"
            log.log(level, "request", extra=fields)
