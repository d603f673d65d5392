"""Answer cache in Redis (degradation layer 2): filled by every successful full-RAG answer, read only
when full RAG fails."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass

import redis

from rag_service import metrics
from rag_service.models import Answer, Source
from rag_service.resilience.guard import Guard
from rag_service.text.normalise import normalise_text

log = logging.getLogger(__name__)

# A popular question would cost a Redis write per answer. The entry this process wrote less than this long
# ago, with the same value, is not written again: it is in Redis with nearly its whole TTL left. Answers
# served for longer still rewrite it (and restart its TTL) at least this often.
REWRITE_AFTER_SECONDS = 1.0
# Entries remembered for that; past this, the memory is cleared (costing only extra writes).
REMEMBERED_WRITES = 4096


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
    Each Redis call is one attempt through the Redis breaker; the caller has further fallbacks.

    A write is split in two for callers on an event loop: entry() (no I/O) says what to write, if anything,
    and write() does the Redis call. put() does both."""

    def __init__(self, client: redis.Redis, guard: Guard, namespace: str, ttl_seconds: int) -> None:
        """namespace: the key prefix of this process's entries (the service gives one per space and version)."""
        self._redis = client
        self._guard = guard
        self._prefix = namespace
        self._ttl = ttl_seconds
        self._rewrite_after = min(REWRITE_AFTER_SECONDS, ttl_seconds / 2)
        # key -> (value, monotonic time before the SET): the recent successful writes of this process.
        self._written: dict[str, tuple[str, float]] = {}

    def key(self, query: str, top_k: int) -> str:
        """Queries differing only in case, accents, punctuation or spacing share an entry."""
        digest = hashlib.sha256(f"{top_k}\n{normalise_text(query)}".encode()).hexdigest()
        return self._prefix + digest

    def put(self, answer: Answer, top_k: int) -> None:
        entry = self.entry(answer, top_k)
        if entry is not None:
            self.write(*entry)

    def entry(self, answer: Answer, top_k: int) -> tuple[str, str] | None:
        """The (key, value) to write for a successful answer; None when this process wrote the same value
        under that key less than REWRITE_AFTER_SECONDS ago. No I/O."""
        sources = [{"id": s.id, "title": s.title, "score": s.score, "snippet": s.snippet} for s in answer.sources]
        value = json.dumps({"answer": answer.answer, "sources": sources, "confidence": answer.confidence})
        key = self.key(answer.query, top_k)
        written = self._written.get(key)
        if written is not None and written[0] == value and time.monotonic() - written[1] < self._rewrite_after:
            return None
        return key, value

    def write(self, key: str, value: str) -> None:
        started = time.monotonic()
        try:
            self._guard.call_once(self._redis.set, key, value, ex=self._ttl)
        except Exception as exc:
            self._written.pop(key, None)
            log.debug("answer cache write failed: %r", exc)
            return
        if len(self._written) >= REMEMBERED_WRITES:
            self._written.clear()
        self._written[key] = (value, started)

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
