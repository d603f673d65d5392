"""The service core behind the HTTP layer: the degradation chain of a query, ingestion, dependency checks.

Thread-safe: every public method may be called from many threads at once.

Resilience, per dependency (redis, embedder, generator): each attempt goes through that dependency's
circuit breaker; the retry policy (transient errors only) wraps the attempts. Calls that full RAG cannot
do without (embedding the query, generating the answer) and ingestion are retried. Redis calls on the
query path (answer cache, corpus version check) are single attempts: they are optional to the answer,
the next layer or the next check takes over, and a query must not wait out backoffs on a dead Redis.
Health checks are single attempts too, so they report what they see. An in-process embedder or generator
(the local defaults) does no I/O and cannot fail as a dependency, so it is called directly.

answer() blocks on I/O and suits worker threads. answer_or_defer() is for an event loop: it answers at once
when no I/O is needed, and otherwise hands back the rest of the same chain to run in a worker thread.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import pybreaker

from rag_service import metrics
from rag_service.config import DATA_DIR, Settings
from rag_service.degradation.answer_cache import AnswerCache
from rag_service.degradation.apology import apology
from rag_service.degradation.faq import Faq
from rag_service.generation.factory import build_generator
from rag_service.models import Answer, CheckResult, DependencyUnavailable, Document, IngestResult, Source
from rag_service.redis_client import connect
from rag_service.resilience.breakers import DependencyBreaker
from rag_service.resilience.errors import DEPENDENCY_ERRORS
from rag_service.resilience.guard import Guard
from rag_service.resilience.retry import RetryPolicy
from rag_service.retrieval.document_store import DocumentStore
from rag_service.retrieval.documents import prepare
from rag_service.retrieval.embedder import build_embedder, embed_in_batches
from rag_service.retrieval.space import EmbeddingSpace, SpaceStore, embed_documents
from rag_service.retrieval.space_sync import SpaceFollower, sync_space
from rag_service.retrieval.vector_index import Hit, VectorIndex
from rag_service.text.snippet import SNIPPET_CHARS, truncate

log = logging.getLogger(__name__)

SAMPLE_CORPUS_PATH = DATA_DIR / "sample_corpus.json"
UNAVAILABLE = (*DEPENDENCY_ERRORS, pybreaker.CircuitBreakerError)
PROBE_TEXT = "health probe"
PROBE_HIT = Hit("probe", "probe", "Probe", "The service answers questions from its documentation.", 1.0)


def describe(exc: BaseException) -> str:
    if isinstance(exc, pybreaker.CircuitBreakerError):
        return "circuit open"
    return f"{type(exc).__name__}: {exc}"


def space_of(settings: Settings, embedder: Any) -> EmbeddingSpace:
    """The embedding space that these settings and this embedder make."""
    return EmbeddingSpace(
        kind=embedder.kind,
        model=embedder.model,
        dim=embedder.dim,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
    )


def _milliseconds(seconds: float) -> float:
    return round(seconds * 1000, 3)


class RagService:
    def __init__(self, settings: Settings) -> None:
        """Builds clients without connecting. Raises ValueError if the FAQ file is unusable."""
        self._settings = settings
        policy = RetryPolicy.from_settings(settings)
        self._breakers = {
            name: DependencyBreaker(name, settings.breaker_failure_threshold, settings.breaker_recovery_timeout_seconds)
            for name in metrics.DEPENDENCIES
        }
        self._redis_guard = Guard(self._breakers["redis"], policy)
        self._embedder_guard = Guard(self._breakers["embedder"], policy)
        self._generator_guard = Guard(self._breakers["generator"], policy)

        self._redis = connect(settings)
        self._embedder = build_embedder(settings)
        self._generator = build_generator(settings)
        self._documents = DocumentStore(self._redis, settings.redis_key_prefix)
        self.space = space_of(settings, self._embedder)
        self._space = SpaceStore(self._redis, settings.redis_key_prefix, self.space)
        self._index = VectorIndex(
            check_version=self._space_version,
            load=lambda: self._redis_guard.call_once(self._space.load, self._documents.titles),
            check_interval_seconds=settings.corpus_check_interval_seconds,
        )
        self._follower = SpaceFollower(
            self._documents,
            self._space,
            self._embed,
            app_version=settings.version,
            interval=settings.corpus_check_interval_seconds,
            max_behind=settings.space_follow_max_behind,
            batch_documents=settings.reindex_batch_documents,
            on_synced=self._refresh_quietly,
        )
        # Answers are cached per space and version: a new version never serves another one's answers.
        self._cache = AnswerCache(
            self._redis,
            self._redis_guard,
            f"{settings.redis_key_prefix}cache:{self.space.id}:{settings.version}:",
            settings.cache_ttl_seconds,
        )
        self._faq = Faq.load(settings.faq_path, settings.support_contact)
        self._in_process = self._embedder.in_process and self._generator.in_process

    # Lifecycle

    def start(self) -> None:
        """Load the search index (seeding the sample corpus into an empty Redis if enabled). Never raises:
        with Redis down, queries degrade and the load is retried on later queries and checks."""
        try:
            self._index.refresh()
            self._space.register(self._settings.version)  # else the follower's first step does
        except Exception as exc:
            log.warning("search index not loaded at start, queries degrade until Redis answers: %s", describe(exc))
        self._follower.start()

    def close(self) -> None:
        self._follower.stop()
        self._embedder.close()
        self._generator.close()
        self._redis.close()

    # Queries

    def answer(self, query: str, top_k: int | None = None) -> Answer:
        """Full RAG, else the cached answer, else the FAQ, else an apology. Never raises."""
        top_k = top_k or self._settings.default_top_k
        try:
            return self._answer(query, top_k)
        except Exception:
            return self._last_resort(query)

    def answer_or_defer(self, query: str, top_k: int | None = None) -> Answer | Callable[[], Answer]:
        """answer() for a caller on an event loop, which must not block on I/O. Never raises.

        Returns the answer when it takes no I/O: the embedder and the generator are in-process, no corpus
        version check is due, full RAG succeeds, and the answer cache needs no write. Otherwise returns a
        function that completes the same chain, I/O included, for a worker thread: it returns the answer and
        never raises either.
        """
        top_k = top_k or self._settings.default_top_k
        if not self._in_process or self._index.check_due():
            return partial(self.answer, query, top_k)
        try:
            try:
                result = self._rag(query, top_k)
            except Exception as exc:
                log.debug("full RAG failed, degrading: %s", describe(exc))
                return partial(self._finish_degraded, query, top_k)
            entry = self._cache.entry(result, top_k) if result.sources else None
        except Exception:
            return self._last_resort(query)
        return result if entry is None else partial(self._finish_cached, result, *entry)

    def _answer(self, query: str, top_k: int) -> Answer:
        try:
            result = self._full_rag(query, top_k)
        except Exception as exc:
            # DEBUG: the HTTP layer logs one line per request, with the layer that answered.
            log.debug("full RAG failed, degrading: %s", describe(exc))
        else:
            if result.sources:
                self._cache.put(result, top_k)
            return result
        return self._degraded(query, top_k)

    def _finish_cached(self, result: Answer, key: str, value: str) -> Answer:
        self._cache.write(key, value)  # never raises
        return result

    def _finish_degraded(self, query: str, top_k: int) -> Answer:
        try:
            return self._degraded(query, top_k)
        except Exception:
            return self._last_resort(query)

    def _degraded(self, query: str, top_k: int) -> Answer:
        cached = self._cache.get(query, top_k)
        if cached is not None:
            degraded = cached.to_answer(query)
        elif (match := self._faq.match(query)) is not None:
            degraded = match.to_answer(query)
        else:
            degraded = apology(query, self._settings.support_contact)
        metrics.DEGRADED_RESPONSES.labels(layer=degraded.source).inc()
        return degraded

    def _last_resort(self, query: str) -> Answer:
        """The apology when the chain itself failed; call it from an except block (it logs the traceback)."""
        log.exception("degradation chain failed")
        metrics.DEGRADED_RESPONSES.labels(layer="error_handler").inc()
        return apology(query, self._settings.support_contact)

    def _full_rag(self, query: str, top_k: int) -> Answer:
        self._index.maybe_refresh()
        return self._rag(query, top_k)

    def _rag(self, query: str, top_k: int) -> Answer:
        """Full RAG on the index as it is (no version check)."""
        snapshot = self._index.current()
        if self._embedder.in_process:
            vector = self._embedder.embed([query])[0]
        else:
            vector = self._embedder_guard.call(self._embedder.embed, [query])[0]
        hits = [hit for hit in snapshot.search(vector, top_k) if hit.score >= self._settings.min_relevance_score]
        if self._settings.chaos_mode.truncate_retrieval:
            hits = hits[: self._settings.chaos_mode.truncate_retrieval]
        if not hits:
            generated = None
        elif self._generator.in_process:
            generated = self._generator.generate(query, hits)
        else:
            generated = self._generator_guard.call(self._generator.generate, query, hits)
        if generated is None:
            return Answer(
                query=query,
                answer=(
                    "Je n'ai pas trouvé d'information sur ce sujet dans la documentation. Reformulez votre "
                    f"question ou contactez notre support : {self._settings.support_contact}."
                ),
                sources=[],
                degraded=False,
                source="rag",
                confidence=0.0,
            )
        used = hits if generated.used is None else [hits[i] for i in generated.used]
        return Answer(
            query=query,
            answer=generated.text,
            sources=self._sources(used),
            degraded=False,
            source="rag",
            confidence=round(generated.confidence, 4),
        )

    @staticmethod
    def _sources(hits: Sequence[Hit]) -> list[Source]:
        """One source per document, at the score and snippet of its best chunk, best first."""
        sources: dict[str, Source] = {}
        for hit in sorted(hits, key=lambda hit: -hit.score):
            if hit.doc_id not in sources:
                sources[hit.doc_id] = Source(
                    id=hit.doc_id, title=hit.title, score=round(hit.score, 4), snippet=truncate(hit.text, SNIPPET_CHARS)
                )
        return list(sources.values())

    # Ingestion

    def ingest(self, documents: list[Document]) -> IngestResult:
        """Add or replace documents (by id; by content when they have none), embed them into this process's space,
        and refresh its index. Every other space in use catches up on its own (SpaceFollower, the re-index job).

        processed_count counts the documents posted, chunk_count the chunks of the distinct documents in this
        space, and ids gives each posted document's id, in order. Re-posting an unchanged document rewrites
        nothing. Raises DependencyUnavailable("redis" | "embedder", reason).
        """
        result = self._store_documents(documents)
        self._refresh_quietly()
        return result

    def _refresh_quietly(self) -> None:
        try:
            self._index.refresh()
        except Exception as exc:
            log.warning("index refresh after ingestion failed, the next version check retries: %s", describe(exc))

    def _store_documents(self, documents: Sequence[Document]) -> IngestResult:
        prepared = [prepare(document) for document in documents]
        distinct = list({document.id: document for document in prepared}.values())  # a later duplicate id wins
        try:
            # The shared documents first: a crash after this leaves the space behind, which its follower repairs.
            self._redis_guard.call(self._documents.put, distinct)
            held = self._redis_guard.call(self._space.fingerprints, [document.id for document in distinct])
        except UNAVAILABLE as exc:
            raise DependencyUnavailable("redis", describe(exc)) from exc
        chunked = {document.id: self.space.chunks(document.text) for document in distinct}
        changed = [document for document in distinct if held[document.id] != document.fingerprint]
        try:
            embedded = embed_documents(self.space, changed, self._embed, chunked)
        except UNAVAILABLE as exc:
            raise DependencyUnavailable("embedder", describe(exc)) from exc
        if embedded:
            try:
                self._redis_guard.call(self._space.write, embedded)
            except UNAVAILABLE as exc:
                raise DependencyUnavailable("redis", describe(exc)) from exc
        return IngestResult(
            processed_count=len(documents),
            chunk_count=sum(len(chunks) for chunks in chunked.values()),
            ids=[document.id for document in prepared],
        )

    def _embed(self, texts: list[str]) -> np.ndarray:
        return embed_in_batches(self._embedder, texts, self._embedder_guard)

    def _space_version(self) -> int:
        """The version of this process's space in Redis. A Redis where no document was ever written (corpus version
        0: new, or wiped by a restart without persistence) first gets the sample corpus, when enabled, and this
        space is built from it at once (the sample is small)."""
        if self._settings.load_sample_corpus and self._redis_guard.call_once(self._documents.version) == 0:
            self._redis_guard.call_once(self._documents.put, [prepare(d) for d in self.sample_documents()])
            self._redis_guard.call_once(sync_space, self._documents, self._space, self._embed)
            log.info("sample corpus loaded into an empty Redis")
        return self._redis_guard.call_once(self._space.version)

    @staticmethod
    def sample_documents() -> list[Document]:
        entries = json.loads(SAMPLE_CORPUS_PATH.read_text(encoding="utf-8"))
        return [
            Document(text=entry["text"], id=entry["id"], title=entry["title"], metadata={"collection": "sample"})
            for entry in entries
        ]

    # Checks

    def check_db(self) -> CheckResult:
        details: dict[str, Any] = {}
        try:
            details["latency_ms"] = _milliseconds(self._redis_guard.call_once(self._documents.ping))
        except Exception as exc:
            return CheckResult(ok=False, details={"breaker": self._breakers["redis"].state()}, error=describe(exc))
        details["breaker"] = self._breakers["redis"].state()
        return CheckResult(ok=True, details=details)

    def check_vector(self, completeness: bool = True) -> CheckResult:
        """OK while an index is loaded and answers a probe search. An index that Redis cannot confirm
        (stale: true) still serves, so it is still OK."""
        self._index.maybe_refresh()
        snapshot = self._index.snapshot
        verified_at = self._index.verified_at
        details: dict[str, Any] = {
            "space": self.space.name,
            "space_id": self.space.id,
            "chunk_count": snapshot.size if snapshot else 0,
            "document_count": snapshot.document_count if snapshot else 0,
            "space_version": snapshot.version if snapshot else None,
            "stale": self._index.stale,
            "seconds_since_verified": round(time.monotonic() - verified_at, 3) if verified_at else None,
        }
        if completeness:  # two Redis round trips: /health/vector only, not the often-polled /health
            details.update(self._space_completeness(snapshot))
        if snapshot is None:
            return CheckResult(ok=False, details=details, error="search index not loaded (Redis unreachable)")
        try:
            probe = snapshot.vector(0) if snapshot.size else np.zeros(snapshot.dim, dtype=np.float32)
            started = time.perf_counter()
            snapshot.search(probe, 1)
            details["probe_ms"] = _milliseconds(time.perf_counter() - started)
        except Exception as exc:
            return CheckResult(ok=False, details=details, error=f"probe search failed: {describe(exc)}")
        return CheckResult(ok=True, details=details)

    def _space_completeness(self, snapshot: Any) -> dict[str, Any]:
        """Whether this process answers from every document of the corpus: its space synced the corpus version and
        its index holds that space's last commit. Unknown (None) while Redis does not answer."""
        try:
            state = self._redis_guard.call_once(self._space.state, self._documents.version_key, self._documents.index_key)
        except Exception:
            return {"space_complete": None, "documents_behind": None, "corpus_version": None}
        loaded = snapshot is not None and snapshot.version == state.version
        complete = state.synced >= state.corpus_version and state.documents_behind == 0 and loaded
        return {
            "space_complete": complete,
            "documents_behind": state.documents_behind,
            "corpus_version": state.corpus_version,
            "space_synced_version": state.synced,
        }

    def check_ai(self) -> CheckResult:
        """Probe the embedder and the generator once each (with remote providers: one API call each)."""
        embedder = self._probe(self._embedder.name, self._embedder_guard, self._embedder.embed, [PROBE_TEXT])
        generator = self._probe(
            self._generator.name, self._generator_guard, self._generator.generate, PROBE_TEXT, [PROBE_HIT]
        )
        errors = [
            f"{name}: {component['error']}"
            for name, component in (("embedder", embedder), ("generator", generator))
            if not component["ok"]
        ]
        return CheckResult(
            ok=not errors,
            details={"embedder": embedder, "generator": generator},
            error="; ".join(errors) or None,
        )

    @staticmethod
    def _probe(provider: str, guard: Guard, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            guard.call_once(fn, *args)
        except Exception as exc:
            return {"ok": False, "provider": provider, "breaker": guard.breaker.state(), "error": describe(exc)}
        return {
            "ok": True,
            "provider": provider,
            "breaker": guard.breaker.state(),
            "latency_ms": _milliseconds(time.perf_counter() - started),
        }

    def breaker_states(self) -> dict[str, str]:
        return {name: breaker.state() for name, breaker in self._breakers.items()}
