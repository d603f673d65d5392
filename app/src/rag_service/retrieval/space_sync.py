"""Bringing an embedding space up to date with the shared documents: embed what it lacks, in batches.

One algorithm serves the re-index job (python -m rag_service reindex: a whole new space, before its version gets
traffic) and every serving process (SpaceFollower: the few documents ingested through another color, within a
second). It is idempotent and resumable: a document whose content fingerprint the space already holds is skipped,
so a sync killed halfway resumes where it stopped, and two syncers of one space never store a document twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag_service import metrics
from rag_service.retrieval.document_store import DocumentStore
from rag_service.retrieval.space import SpaceStore, embed_documents

log = logging.getLogger(__name__)

Embed = Callable[[list[str]], np.ndarray]


@dataclass
class SyncProgress:
    target: int  # the corpus version being synced to
    total: int  # documents changed after the space's synced version, up to target
    seen: int = 0  # of those, looked at
    embedded: int = 0  # documents (re-)embedded
    skipped: int = 0  # documents the space already held (a resumed sync)
    chunks: int = 0  # chunks embedded
    started: float = field(default_factory=time.monotonic)
    complete: bool = False

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0


def sync_space(
    documents: DocumentStore,
    store: SpaceStore,
    embed: Embed,
    batch_documents: int = 100,
    max_documents: int | None = None,
    on_batch: Callable[[SyncProgress], None] | None = None,
    pace: Callable[[int], None] | None = None,
) -> SyncProgress:
    """Embed into the space every document changed since its synced version, batch by batch; then mark it synced.

    Stops early, incomplete, after max_documents documents (None: no limit). on_batch sees the progress after each
    batch; pace(chunks) is called before embedding a batch of that many chunks (a rate limit). Raises what Redis
    and embed raise, leaving what was committed in place.
    """
    target = documents.version()
    synced = store.synced()
    pending = documents.changed_between(synced, target) if synced < target else []
    progress = SyncProgress(target=target, total=len(pending))
    for start in range(0, len(pending), batch_documents):
        if max_documents is not None and progress.seen >= max_documents:
            return progress
        batch = pending[start : start + batch_documents]
        _sync_batch(documents, store, embed, batch, progress, pace)
        if on_batch is not None:
            on_batch(progress)
    store.mark_synced(target)
    progress.complete = True
    return progress


def _sync_batch(
    documents: DocumentStore,
    store: SpaceStore,
    embed: Embed,
    batch: Sequence[str],
    progress: SyncProgress,
    pace: Callable[[int], None] | None,
) -> None:
    current = documents.get(batch)
    held = store.fingerprints(list(current))
    todo = [document for doc_id, document in current.items() if held[doc_id] != document.fingerprint]
    progress.seen += len(batch)
    progress.skipped += len(batch) - len(todo)
    if not todo:
        return

    def paced(texts: list[str]) -> np.ndarray:
        if pace is not None:
            pace(len(texts))
        return embed(texts)

    embedded = embed_documents(store.space, todo, paced)
    store.write(embedded)
    progress.embedded += len(todo)
    progress.chunks += sum(len(item.chunks) for item in embedded)


def missing_documents(documents: DocumentStore, store: SpaceStore, doc_ids: Sequence[str]) -> int:
    """How many of doc_ids the space lacks or holds in an older content (fingerprints only: no text is read)."""
    missing = 0
    for start in range(0, len(doc_ids), 1000):
        batch = list(doc_ids[start : start + 1000])
        current, held = documents.fingerprints(batch), store.fingerprints(batch)
        missing += sum(1 for doc_id in batch if current[doc_id] is not None and held[doc_id] != current[doc_id])
    return missing


class RatePacer:
    """Blocks so that at most `rate` chunks per second are embedded, on average (rate 0: no limit)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic, sleep=time.sleep) -> None:
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._next = clock()

    def __call__(self, chunks: int) -> None:
        if self._rate <= 0:
            return
        now = self._clock()
        if self._next > now:
            self._sleep(self._next - now)
            now = self._next
        self._next = max(self._next, now) + chunks / self._rate


class SpaceFollower:
    """A serving process's thread that keeps its own space in step with documents ingested elsewhere (through the
    other color, another host, the re-index job), and marks the space as used.

    A space that was complete once follows every write. A space never complete yet is built here only when at most
    `max_behind` documents are missing (the sample corpus, a first small import): a new space over a real corpus is
    the re-index job's work, run before the version gets traffic, not a serving process's. It syncs under the
    space's lock, so that the processes of one space (every app host's color) do not embed the same documents.
    """

    LOCK_SECONDS = 30.0
    TOUCH_SECONDS = 10.0

    def __init__(
        self,
        documents: DocumentStore,
        store: SpaceStore,
        embed: Embed,
        app_version: str,
        interval: float,
        max_behind: int,
        batch_documents: int,
        on_synced: Callable[[], None],
    ) -> None:
        self._documents = documents
        self._store = store
        self._embed = embed
        self._app_version = app_version
        self._registered = False
        self._interval = max(interval, 0.05)
        self._max_behind = max_behind
        self._batch = batch_documents
        self._on_synced = on_synced
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="space-follower", daemon=True)
        self._touched = 0.0
        self.warned_behind = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.step()
            except Exception as exc:  # Redis or the embedder down: the next step retries
                log.debug("space follow step failed: %r", exc)

    def step(self) -> bool:
        """One check; returns whether it synced anything."""
        now = time.monotonic()
        if not self._registered:
            self._store.register(self._app_version)
            self._registered, self._touched = True, now
        elif now - self._touched >= self.TOUCH_SECONDS:
            self._store.touch()
            self._touched = now
        synced = self._store.synced()
        target = self._documents.version()
        pending = self._documents.changed_between(synced, target) if synced < target else []
        metrics.SPACE_DOCUMENTS_BEHIND.set(len(pending))
        progress = self._store.progress()
        if progress.get("total"):
            metrics.REINDEX_PROGRESS.set(int(progress.get("done", 0)) / max(int(progress["total"]), 1))
        if not pending:
            return False
        # A space never complete yet (synced 0) far behind is a new space: the re-index's. One that was complete follows
        # every write, however many (the live color embedded as many itself), so that it stays ready for a rollback.
        # Documents ingested through a process of this same space are in it already: only the others count.
        behind = missing_documents(self._documents, self._store, pending) if synced == 0 else 0
        if behind > self._max_behind:
            if not self.warned_behind:
                log.warning(
                    "embedding space %s is %d documents behind the corpus (more than %d): run python -m rag_service "
                    "reindex to build it",
                    self._store.space.name,
                    behind,
                    self._max_behind,
                )
                self.warned_behind = True
            return False
        lock = self._store.lock(self.LOCK_SECONDS)
        if not lock.acquire(blocking=False):
            return False  # another process (or the re-index job) syncs it
        try:
            progress = sync_space(self._documents, self._store, self._embed, self._batch)
        finally:
            try:
                lock.release()
            except Exception:  # expired: harmless, the sync is idempotent
                pass
        self.warned_behind = False
        if progress.embedded:
            self._on_synced()
        return progress.embedded > 0
