"""Every error is JSON {"error": "..."}: bad input is a 400 naming the field (never 422), unknown path 404,
wrong method 405, a dependency down 503. Unexpected exceptions become a 500 in the request middleware."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from rag_service.http.responses import json_response
from rag_service.http.schemas import DOCUMENT_TAGS, NOT_BLANK
from rag_service.models import DependencyUnavailable

MAX_REPORTED_ERRORS = 5

_FRIENDLY = {
    "missing": "field required",
    "string_type": "must be a string",
    "string_unicode": "must be valid Unicode text",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be a boolean",
    "list_type": "must be an array",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
}


class DrillFailure(Exception):
    """Raised by the error_rate drill."""


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message}, status, headers)


def field_path(loc: Sequence[Any]) -> str:
    """("body", "documents", 3, "object", "text") -> "documents[3].text"."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in DOCUMENT_TAGS:
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def describe(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    loc = error.get("loc", ())
    if kind == "json_invalid":
        detail = (error.get("ctx") or {}).get("error", "")
        position = loc[1] if len(loc) > 1 else "?"
        return f"body: malformed JSON ({detail} at position {position})"
    path = field_path(loc)
    if path == "body" and kind == "missing":
        return "body: a JSON object is required"
    if kind == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern")
        return f"{path}: " + ("must not be blank" if pattern == NOT_BLANK else f"must match {pattern}")
    message = _FRIENDLY.get(kind) or str(error.get("msg", "invalid"))
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return f"{path}: {message}"


def validation_message(errors: Iterable[dict[str, Any]]) -> str:
    messages: list[str] = []
    for error in errors:
        message = describe(error)
        if message not in messages:
            messages.append(message)
    extra = len(messages) - MAX_REPORTED_ERRORS
    text = "; ".join(messages[:MAX_REPORTED_ERRORS])
    return f"{text}; and {extra} more" if extra > 0 else text


async def _validation_error(_request: Request, exc: RequestValidationError) -> Response:
    return json_error(400, validation_message(exc.errors()))


async def _http_error(_request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        message = "not found"
    elif exc.status_code == 405:
        message = "method not allowed"
    elif exc.status_code in (400, 413, 422):
        # FastAPI's catch-all when reading/decoding the body fails for a reason other than bad JSON syntax.
        cause = exc.__cause__
        if isinstance(cause, UnicodeDecodeError):
            message = "body: not valid UTF-8"
        elif isinstance(cause, RecursionError):
            message = "body: JSON nested too deeply"
        else:
            message = f"body: {exc.detail}"
    else:
        message = str(exc.detail)
    # Body limits and parse failures surface as 413/422 in some Starlette/FastAPI paths; the contract says 400.
    status = 400 if exc.status_code in (413, 422) else exc.status_code
    return json_error(status, message, headers=exc.headers)


async def _dependency_unavailable(_request: Request, exc: DependencyUnavailable) -> Response:
    return json_error(503, str(exc))


async def _drill_failure(_request: Request, exc: DrillFailure) -> Response:
    return json_error(500, f"drill: {exc}")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(DependencyUnavailable, _dependency_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(DrillFailure, _drill_failure)  # type: ignore[arg-type]
