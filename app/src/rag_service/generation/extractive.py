"""Extractive answers: the sentences of the retrieved chunks that best match the query."""

from __future__ import annotations

import math
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from functools import lru_cache

from rag_service.generation.generator import GeneratedAnswer
from rag_service.retrieval.hashing_embedder import features
from rag_service.retrieval.vector_index import Hit
from rag_service.text.chunking import split_sentences
from rag_service.text.snippet import truncate

MAX_CHARS = 600
MAX_SENTENCES = 3
# A further sentence joins the answer only if it scores at least this share of the best one.
RELATIVE_THRESHOLD = 0.7
# Chunks whose sentences and features are kept ready (about 10 KB each): the chunks retrieved for popular
# questions come back query after query.
SENTENCE_CACHE_CHUNKS = 1024


def overlap_score(query: AbstractSet[str], sentence: AbstractSet[str]) -> float:
    """Cosine similarity of binary feature vectors."""
    if not query or not sentence:
        return 0.0
    return len(query & sentence) / math.sqrt(len(query) * len(sentence))


@lru_cache(maxsize=SENTENCE_CACHE_CHUNKS)
def sentence_features(text: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """The sentences of a chunk, in order, each with its set of features. Memoised by chunk text: splitting
    and normalising the retrieved chunks was most of the cost of an answer."""
    return tuple((sentence, frozenset(features(sentence))) for sentence in split_sentences(text))


class ExtractiveGenerator:
    """Sentences are scored on the embedder's features (content words and their pairs) compared exactly,
    not through hashed vectors: at sentence scale, hash collisions in 384 dimensions would weigh as much
    as a shared word. A sentence sharing no feature with the query is never used, so an answer can only
    be made of sentences that mention the query's terms; with none, there is no answer (None)."""

    name = "extractive"
    in_process = True

    def generate(self, query: str, hits: Sequence[Hit]) -> GeneratedAnswer | None:
        query_features = frozenset(features(query))
        # (score, chunk rank, position in chunk, sentence); overlapping chunks repeat sentences.
        scored: list[tuple[float, int, int, str]] = []
        seen: set[str] = set()
        for rank, hit in enumerate(hits):
            for position, (sentence, terms) in enumerate(sentence_features(hit.text)):
                if sentence in seen:
                    continue
                seen.add(sentence)
                score = overlap_score(query_features, terms)
                if score > 0:
                    scored.append((score, rank, position, sentence))
        if not scored:
            return None
        scored.sort(key=lambda item: (-item[0], item[1], item[2]))
        best = scored[0][0]

        chosen = [scored[0]]
        length = len(scored[0][3])
        for candidate in scored[1:]:
            if len(chosen) == MAX_SENTENCES or candidate[0] < RELATIVE_THRESHOLD * best:
                break
            if length + 1 + len(candidate[3]) <= MAX_CHARS:
                chosen.append(candidate)
                length += 1 + len(candidate[3])
        # Read in retrieval order, then position, so sentences of one passage keep their order.
        chosen.sort(key=lambda item: (item[1], item[2]))
        return GeneratedAnswer(
            text=truncate(" ".join(item[3] for item in chosen), MAX_CHARS),
            confidence=min(max((hits[0].score + best) / 2, 0.0), 1.0),
            used=sorted({rank for _score, rank, _position, _sentence in chosen}),
        )

    def close(self) -> None:
        pass
