"""The embedder interface and the choice between the local default and an OpenAI-compatible provider."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from rag_service.config import Settings
from rag_service.retrieval.hashing_embedder import HashingEmbedder
from rag_service.retrieval.openai_embedder import OpenAIEmbedder


class Embedder(Protocol):
    name: str  # shown by /health/ai
    kind: str  # with model and dim, part of the embedding space's name (retrieval/space.py)
    model: str
    dim: int
    batch_size: int  # texts per embed() call the caller should send at most
    # True when embed() computes in-process without I/O: it may run on the event loop, and it cannot fail
    # as a dependency (no breaker or retry applies to it).
    in_process: bool

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text (a text with no words gives a zero row)."""

    def close(self) -> None: ...


def embed_in_batches(embedder: Embedder, texts: Sequence[str], guard=None) -> np.ndarray:
    """embedder.embed over texts in its batch size, stacked; a remote embedder's calls go through guard (its retries
    and breaker), an in-process one is called directly."""
    size = embedder.batch_size
    parts = [
        guard.call(embedder.embed, texts[i : i + size])
        if guard is not None and not embedder.in_process
        else embedder.embed(texts[i : i + size])
        for i in range(0, len(texts), size)
    ]
    return np.vstack(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)


def build_embedder(settings: Settings) -> Embedder:
    if settings.embeddings_base_url:
        return OpenAIEmbedder(
            base_url=settings.embeddings_base_url,
            api_key=settings.embeddings_api_key,
            model=settings.embeddings_model,
            dim=settings.embedding_dim,
            timeout_seconds=settings.provider_timeout_seconds,
        )
    return HashingEmbedder(settings.embedding_dim)
