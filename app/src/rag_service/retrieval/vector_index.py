"""In-process cosine search over one embedding space, rebuilt when the space version in Redis changes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rag_service import metrics
from rag_service.retrieval.space import SpaceData

log = logging.getLogger(__name__)


class IndexNotReady(Exception):
    """The index was never loaded (Redis unreachable since start)."""


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    doc_id: str
    title: str
    text: str
    score: float


class IndexSnapshot:
    """An immutable copy of the corpus for searching. Vectors are stored transposed (dim x chunks), so
    that a sparse query (the hashing embedder's: a few dozen non-zero dimensions) is scored by reading
    only the rows of those dimensions instead of the whole matrix (15 MB at 10,000 chunks)."""

    def __init__(self, data: SpaceData) -> None:
        self.version = data.version
        self.size = len(data.chunk_ids)
        self.dim = data.matrix.shape[1]
        self.document_count = len(set(data.doc_ids))
        self._chunk_ids = data.chunk_ids
        self._doc_ids = data.doc_ids
        self._titles = data.titles
        self._texts = data.texts
        self._columns = np.ascontiguousarray(data.matrix.T)

    def vector(self, row: int) -> np.ndarray:
        return self._columns[:, row]

    def search(self, vector: np.ndarray, top_k: int) -> list[Hit]:
        """The top_k chunks by cosine similarity (vectors are L2-normalised), best first."""
        if self.size == 0:
            return []
        vector = vector.astype(np.float32, copy=False)
        nonzero = np.flatnonzero(vector)
        if len(nonzero) * 4 < self.dim:
            scores = vector[nonzero] @ self._columns[nonzero]
        else:
            scores = vector @ self._columns
        best = top_distinct(scores, top_k) if top_k < self.size else None
        if best is None:
            if top_k < self.size:
                candidates = np.argpartition(-scores, top_k)[:top_k]
            else:
                candidates = np.arange(self.size)
            best = candidates[np.argsort(-scores[candidates], kind="stable")]
        return [
            Hit(self._chunk_ids[i], self._doc_ids[i], self._titles[i], self._texts[i], float(scores[i])) for i in best
        ]


def top_distinct(scores: np.ndarray, top_k: int) -> np.ndarray | None:
    """The rows of the top_k scores, best first, when the top_k + 1 highest scores are all distinct and
    positive; None otherwise (the caller then uses argpartition over every score).

    With distinct values the top_k rows and their order are unique, so this is exactly what argpartition
    and a stable sort would return; with ties their choice is the reference, hence the fallback. It is
    faster because a sparse query leaves most scores tied (at 0), where argpartition over 10,000 chunks is
    slow: only the rows scoring at least a fraction of the best are ranked here.
    """
    highest = scores.max()
    if not highest > 0:  # also NaN
        return None
    for fraction in (0.5, 0.25):
        rows = np.flatnonzero(scores >= highest * fraction)
        if len(rows) > top_k:
            break
    else:
        return None
    candidates = scores[rows]
    order = np.argpartition(-candidates, top_k)[: top_k + 1]
    order = order[np.argsort(-candidates[order])]
    ranked = candidates[order]
    if not np.all(ranked[:-1] > ranked[1:]):
        return None
    return rows[order[:top_k]]


class VectorIndex:
    """Thread-safe: searches read the current snapshot, a rebuild swaps in a whole new one.

    `check_version` and `load` read Redis; when they fail the last snapshot keeps serving and the index
    reports itself stale.
    """

    def __init__(
        self,
        check_version: Callable[[], int],
        load: Callable[[], SpaceData],
        check_interval_seconds: float,
    ) -> None:
        self._check_version = check_version
        self._load = load
        self._interval = check_interval_seconds
        self._snapshot: IndexSnapshot | None = None
        self._lock = threading.Lock()
        self._next_check = 0.0
        self.verified_at: float | None = None  # monotonic time of the last successful version check
        self.stale = False  # the last version check failed

    @property
    def snapshot(self) -> IndexSnapshot | None:
        return self._snapshot

    def current(self) -> IndexSnapshot:
        snapshot = self._snapshot
        if snapshot is None:
            raise IndexNotReady("the search index has not been loaded yet")
        return snapshot

    def refresh(self) -> None:
        """Check the version now and rebuild if it changed. Raises what check_version/load raise."""
        with self._lock:
            self._refresh_locked()

    def check_due(self) -> bool:
        """Whether maybe_refresh() would check the space version (a Redis read) if called now."""
        return time.monotonic() >= self._next_check

    def maybe_refresh(self) -> None:
        """refresh() at most once per check interval, by one thread; others go on with the current
        snapshot instead of waiting. Never raises."""
        if time.monotonic() < self._next_check or not self._lock.acquire(blocking=False):
            return
        try:
            if time.monotonic() >= self._next_check:
                self._refresh_locked()
        except Exception as exc:  # any failure leaves the last snapshot serving
            log.debug("index refresh failed: %r", exc)
        finally:
            self._lock.release()

    def _refresh_locked(self) -> None:
        self._next_check = time.monotonic() + self._interval
        try:
            version = self._check_version()
            if self._snapshot is None or version != self._snapshot.version:
                data = self._load()
                self._snapshot = IndexSnapshot(data)
                metrics.CORPUS_CHUNKS.set(len(data.chunk_ids))
                log.info("search index loaded: %d chunks, space version %d", len(data.chunk_ids), data.version)
        except Exception as exc:
            if not self.stale:
                log.warning("corpus refresh from Redis failed, searches keep the last loaded index: %r", exc)
            self.stale = True
            raise
        self.stale = False
        self.verified_at = time.monotonic()
