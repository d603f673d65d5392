"""The answer generator interface."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rag_service.retrieval.vector_index import Hit


@dataclass(frozen=True)
class GeneratedAnswer:
    text: str
    confidence: float  # in [0, 1], derived from similarity scores; not a calibrated probability
    used: list[int] | None = None  # positions of the hits the answer draws from; None: all of them


class Generator(Protocol):
    name: str
    # True when generate() computes in-process without I/O: it may run on the event loop, and it cannot
    # fail as a dependency (no breaker or retry applies to it).
    in_process: bool

    def generate(self, query: str, hits: Sequence[Hit]) -> GeneratedAnswer | None:
        """Answer from the retrieved chunks (at least one, best first); None when they hold no answer."""

    def close(self) -> None: ...
