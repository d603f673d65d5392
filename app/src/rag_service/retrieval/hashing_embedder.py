"""Local deterministic embedder: signed feature hashing of word unigrams and bigrams."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from itertools import pairwise

import numpy as np

from rag_service.text.normalise import content_words


@lru_cache(maxsize=1 << 18)
def _feature_hash(feature: str) -> int:
    # blake2b, not hash(): Python's str hash is salted per process, and every process must agree.
    return int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")


def features(text: str) -> list[str]:
    """Normalised content words and their adjacent pairs ('tva', 'taux tva')."""
    tokens = content_words(text)
    return tokens + [f"{a} {b}" for a, b in pairwise(tokens)]


class HashingEmbedder:
    """Each feature adds +1 or -1 (from one hash bit) to the dimension its hash selects; the signs make
    collisions cancel out on average instead of piling up. Rows are L2-normalised, so a dot product is
    the cosine similarity."""

    batch_size = 1024
    in_process = True
    kind = "hashing"
    # The feature scheme (words, pairs, blake2b, signs): a change to it is a new model, hence a new space.
    model = "feature-hash-1"

    def __init__(self, dim: int) -> None:
        self.name = f"hashing-{dim}"
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        flat_index: list[int] = []
        signs: list[float] = []
        for row, text in enumerate(texts):
            base = row * self.dim
            for feature in features(text):
                digest = _feature_hash(feature)
                flat_index.append(base + digest % self.dim)
                signs.append(1.0 if digest >> 63 else -1.0)
        size = len(texts) * self.dim
        counts = np.bincount(np.asarray(flat_index, dtype=np.intp), weights=signs, minlength=size)
        vectors = counts.reshape(len(texts), self.dim).astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        np.divide(vectors, norms, out=vectors, where=norms > 0)
        return vectors

    def close(self) -> None:
        pass
