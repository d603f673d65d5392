"""Answer cache in Redis (degradation layer 2): filled by every successful full-RAG answer, read only
when full RAG fails."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass

import redis

from rag_service import metrics
from rag_service.models import Answer, Source
from rag_service.resilience.guard import Guard
from rag_service.text.normalise import normalise_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedAnswer:
    answer: str
    sources: list[Source]
    confidence: float

    def to_answer(self, query: str) -> Answer:
        return Answer(
            query=query,
            answer=self.answer,
            sources=self.sources,
            degraded=True,
            source="cache",
            confidence=self.confidence,
        )


class AnswerCache:
    """Never raises: a Redis failure is a miss (counted as an error) on reads and is ignored on writes.
    Each call is one attempt through the Redis breaker; the caller has further fallbacks."""

    def __init__(self, client: redis.Redis, guard: Guard, prefix: str, ttl_seconds: int) -> None:
        self._redis = client
        self._guard = guard
        self._prefix = f"{prefix}cache:"
        self._ttl = ttl_seconds

    def key(self, query: str, top_k: int) -> str:
        """Queries differing only in case, accents, punctuation or spacing share an entry."""
        digest = hashlib.sha256(f"{top_k}\n{normalise_text(query)}".encode()).hexdigest()
        return self._prefix + digest

    def put(self, answer: Answer, top_k: int) -> None:
        value = json.dumps(
            {"answer": answer.answer, "sources": [asdict(s) for s in answer.sources], "confidence": answer.confidence}
        )
        try:
            self._guard.call_once(self._redis.set, self.key(answer.query, top_k), value, ex=self._ttl)
        except Exception as exc:
            log.debug("answer cache write failed: %r", exc)

    def get(self, query: str, top_k: int) -> CachedAnswer | None:
        try:
            raw = self._guard.call_once(self._redis.get, self.key(query, top_k))
            if raw is None:
                metrics.CACHE_REQUESTS.labels(result="miss").inc()
                return None
            entry = json.loads(raw)
            cached = CachedAnswer(
                answer=entry["answer"],
                sources=[Source(**source) for source in entry["sources"]],
                confidence=float(entry["confidence"]),
            )
        except Exception as exc:
            log.debug("answer cache read failed: %r", exc)
            metrics.CACHE_REQUESTS.labels(result="error").inc()
            return None
        metrics.CACHE_REQUESTS.labels(result="hit").inc()
        return cached
