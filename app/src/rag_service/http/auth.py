"""The admin token of the write endpoints: `Authorization: Bearer <RAG_ADMIN_TOKEN>`.

The request middleware applies the guard before it reads the body, so a refused request writes nothing,
costs no body buffering, and gets its refusal whatever the body holds. The token lives in the guard's
closure, out of every repr, and never appears in a response, a log line or an exception.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from pydantic import SecretStr
from starlette.responses import Response
from starlette.types import Scope

from rag_service.http.errors import json_error
from rag_service.http.middleware import Guard

# Every (method, path) that changes data. Reads (/api/query, /health*, /metrics) are open.
WRITE_ROUTES = frozenset({("POST", "/api/documents")})
SECURITY_SCHEME = "adminToken"

DISABLED = "ingestion is disabled: RAG_ADMIN_TOKEN is not set on this service"
MISSING = "authorization required: send Authorization: Bearer <RAG_ADMIN_TOKEN>"
NOT_BEARER = "authorization: expected a Bearer credential (Authorization: Bearer <RAG_ADMIN_TOKEN>)"
WRONG = "forbidden: invalid admin token"
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def bearer_credential(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes | None, str]:
    """(credential, "") from the request's one Authorization header, or (None, why it is not usable)."""
    values = [value for name, value in headers if name == b"authorization"]
    if not values:
        return None, MISSING
    if len(values) > 1:
        return None, NOT_BEARER
    scheme, _space, credential = values[0].strip().partition(b" ")
    credential = credential.strip()
    if scheme.lower() != b"bearer" or not credential:
        return None, NOT_BEARER
    return credential, ""


def admin_guard(token: SecretStr | None) -> Guard:
    """A guard answering the refusal (401, 403) for a request, or None to let it through."""
    expected = token.get_secret_value().encode("ascii") if token is not None else b""

    def guard(scope: Scope) -> Response | None:
        if not expected:
            return json_error(403, DISABLED)
        credential, problem = bearer_credential(scope["headers"])
        if credential is None:
            return json_error(401, problem, CHALLENGE)
        if not hmac.compare_digest(credential, expected):
            return json_error(403, WRONG)
        return None

    return guard


def document_security(schema: dict) -> None:
    """Declare the bearer scheme in an OpenAPI document and require it on the write operations."""
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "RAG_ADMIN_TOKEN of the service; writes are refused (403) when it is not set",
    }
    for method, path in WRITE_ROUTES:
        operation = schema.get("paths", {}).get(path, {}).get(method.lower())
        if operation is not None:
            operation["security"] = [{SECURITY_SCHEME: []}]
