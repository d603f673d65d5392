"""Request and response bodies of the HTTP contract.

Requests are strict: no coercion ("5" or true is not an int, 5 is not a string). An integral number
written 5.0 is an integer, as in JSON Schema (JSON has one number type); 5.5 is not. Unknown
fields are ignored, so that a newer client keeps working against the older color during a
blue/green switch. The per-call document limits come from settings, hence the factory.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
)

from rag_service.models import Document

STRICT = ConfigDict(strict=True, extra="ignore")

# Tags of the document union; they appear in pydantic error locations and are stripped from messages.
DOCUMENT_TAGS = frozenset({"string", "object"})


def _json_utf8(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """JSON escapes can smuggle lone surrogates ("\\ud800") that no UTF-8 consumer (Redis, logs, responses)
    can encode. pydantic refuses them in str fields; free-form metadata is checked here."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("must be valid Unicode (lone surrogate)") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


# Not blank. An explicit ASCII class (not \S) so that pydantic's, Python's and JSON Schema's regex engines,
# which disagree on exotic whitespace, all agree with the published schema.
NOT_BLANK = r"[^ \t\n\r\f\v]"
QueryText = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=NOT_BLANK)]
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


def _integral_float(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


TopK = Annotated[int, Field(ge=1, le=20), BeforeValidator(_integral_float)]


class QueryRequest(BaseModel):
    model_config = STRICT

    query: QueryText
    client_id: ClientId
    top_k: TopK | None = None


class DocumentsRequestBase(BaseModel):
    """Base of the settings-specific request model built by documents_request_model()."""

    model_config = STRICT

    def to_documents(self) -> list[Document]:
        out: list[Document] = []
        for item in self.documents:  # type: ignore[attr-defined]
            if isinstance(item, str):
                out.append(Document(text=item))
            else:
                out.append(Document(text=item.text, id=item.id, title=item.title, metadata=item.metadata or {}))
        return out


def _document_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return None


@lru_cache(maxsize=8)
def documents_request_model(max_documents: int, max_document_bytes: int) -> type[DocumentsRequestBase]:
    def within_bytes(value: str) -> str:
        if len(value) > max_document_bytes or len(value.encode("utf-8")) > max_document_bytes:
            raise ValueError(f"must be at most {max_document_bytes} bytes (UTF-8)")
        return value

    DocumentText = Annotated[str, StringConstraints(min_length=1, pattern=NOT_BLANK), AfterValidator(within_bytes)]

    class DocumentObject(BaseModel):
        model_config = STRICT

        id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
        title: Annotated[str, StringConstraints(max_length=1000)] | None = None
        text: DocumentText
        metadata: Annotated[dict[str, Any] | None, AfterValidator(_json_utf8)] = None

    DocumentItem = Annotated[
        Union[Annotated[DocumentText, Tag("string")], Annotated[DocumentObject, Tag("object")]],
        Discriminator(
            _document_kind,
            custom_error_type="document_type",
            custom_error_message='must be a string or an object with a "text" string',
        ),
    ]

    class DocumentsRequest(DocumentsRequestBase):
        documents: Annotated[list[DocumentItem], Field(min_length=1, max_length=max_documents)]

    return DocumentsRequest


# Responses (documentation of the contract; handlers serialise them directly for speed)


class SourceOut(BaseModel):
    id: str
    title: str
    score: float
    snippet: str


class QueryResponse(BaseModel):
    query: str
    answer: str
    sources: list[SourceOut]
    processing_time: float = Field(description="seconds")
    success: bool
    degraded: bool
    source: Literal["rag", "cache", "keyword_fallback", "error_handler"]
    confidence: float


class DocumentsResponse(BaseModel):
    processed_count: int
    chunk_count: int
    ids: list[str]


class ErrorResponse(BaseModel):
    error: str


class HealthResponse(BaseModel):
    status: Literal["healthy", "unhealthy", "draining"]
    version: str
    color: str
    uptime: float = Field(description="seconds since the process started")
    checks: dict[str, dict[str, Any]]
    reason: str | None = None


class CheckResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "error"]
    error: str | None = None
