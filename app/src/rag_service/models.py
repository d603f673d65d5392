"""Plain result types passed between the service core and the HTTP layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

AnswerSource = Literal["rag", "cache", "keyword_fallback", "error_handler"]


@dataclass(frozen=True)
class Document:
    text: str
    id: str | None = None
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    score: float
    snippet: str


@dataclass(frozen=True)
class Answer:
    query: str
    answer: str
    sources: list[Source]
    degraded: bool
    source: AnswerSource
    confidence: float
    success: bool = True


@dataclass(frozen=True)
class IngestResult:
    processed_count: int
    chunk_count: int
    ids: list[str]


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class DependencyUnavailable(Exception):
    """A dependency needed for this operation is down (or its circuit is open)."""

    def __init__(self, dependency: str, reason: str) -> None:
        super().__init__(f"{dependency} unavailable: {reason}")
        self.dependency = dependency
        self.reason = reason
