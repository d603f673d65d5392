"""Embeddings from an OpenAI-compatible POST {base}/embeddings endpoint."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import SecretStr

from rag_service.openai_client import OpenAICompatibleClient
from rag_service.resilience.errors import ProviderError


class OpenAIEmbedder:
    """Vectors must have RAG_EMBEDDING_DIM dimensions: the corpus in Redis is shared by every process, so
    its vector size is a deployment setting rather than whatever the model returns."""

    batch_size = 128
    in_process = False
    kind = "openai"

    def __init__(self, base_url: str, api_key: SecretStr | None, model: str, dim: int, timeout_seconds: float) -> None:
        self.name = f"openai:{model}"
        self.dim = dim
        self.model = model
        self._client = OpenAICompatibleClient(base_url, api_key, timeout_seconds)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        body = self._client.post_json("/embeddings", {"model": self.model, "input": list(texts)})
        try:
            items = sorted(body["data"], key=lambda item: item["index"])
            vectors = np.array([item["embedding"] for item in items], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError(f"/embeddings: unexpected response shape ({exc})") from exc
        if vectors.shape != (len(texts), self.dim):
            raise ProviderError(
                f"/embeddings: expected {len(texts)} vectors of {self.dim} dimensions, got shape {vectors.shape}"
                " (set RAG_EMBEDDING_DIM to the model's dimension)"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        np.divide(vectors, norms, out=vectors, where=norms > 0)
        return vectors

    def close(self) -> None:
        self._client.close()
