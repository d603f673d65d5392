"""python -m rag_service reindex: build this version's embedding space from the shared documents, before the version
gets traffic (the platform runs it as the pre-switch job of every deploy; with the live space it returns at once).

It embeds, in batches, every document the space lacks, with a progress line per batch (and the progress in the
space's Redis record, which serving processes export as rag_reindex_progress_ratio). Killed, it resumes on the next
run: the documents already embedded are skipped. Documents ingested meanwhile are embedded too: it runs until the
space holds the corpus's latest version. Then it removes the spaces nothing needs any more (retrieval/retention.py).

Exit status: 0 when the space is complete; 1 on a failure (Redis or the embedder); 2 on invalid configuration.
"""

from __future__ import annotations

import sys
import threading
import time

from rag_service.config import ConfigError, Settings, load_settings

EXIT_FAILED = 1
EXIT_CONFIG = 2
# The space's lock expires this long after a killed run (renewed every LOCK_RENEW_SECONDS while alive).
LOCK_SECONDS = 20.0
LOCK_RENEW_SECONDS = 5.0
LOCK_WAIT_SECONDS = 120.0
MAX_PASSES = 100


def say(message: str) -> None:
    print(f"reindex: {message}", flush=True)


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"reindex: invalid configuration: {line}", file=sys.stderr)
        return EXIT_CONFIG
    return run(settings)


def run(settings: Settings) -> int:
    """reindex(), its failures printed and turned into the exit status."""
    try:
        return reindex(settings)
    except Exception as exc:  # Redis or the embedder: the space keeps what was committed; the next run resumes
        say(f"FAILED: {type(exc).__name__}: {exc}")
        return EXIT_FAILED


def reindex(settings: Settings) -> int:
    from rag_service.redis_client import connect
    from rag_service.retrieval.document_store import DocumentStore
    from rag_service.retrieval.documents import prepare
    from rag_service.retrieval.embedder import build_embedder
    from rag_service.retrieval.retention import prune_spaces
    from rag_service.retrieval.space import SpaceStore
    from rag_service.retrieval.space_sync import RatePacer, SyncProgress, sync_space
    from rag_service.service import RagService, space_of

    client = connect(settings)
    embedder = build_embedder(settings)
    space = space_of(settings, embedder)
    documents = DocumentStore(client, settings.redis_key_prefix)
    store = SpaceStore(client, settings.redis_key_prefix, space)
    store.register(settings.version)
    if settings.load_sample_corpus and documents.version() == 0:
        documents.put([prepare(document) for document in RagService.sample_documents()])
        say("sample corpus loaded into an empty Redis")

    lock = store.lock(LOCK_SECONDS)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while not lock.acquire(blocking=False):
        if time.monotonic() > deadline:
            say(f"FAILED: the space {space.name} is being synced by another process for {LOCK_WAIT_SECONDS:.0f} s")
            return EXIT_FAILED
        time.sleep(0.5)
    stop_renewing = threading.Event()

    def renew() -> None:
        while not stop_renewing.wait(LOCK_RENEW_SECONDS):
            try:
                lock.extend(LOCK_SECONDS, replace_ttl=True)
            except Exception:  # lost or Redis down: the sync stays idempotent; the main loop reports Redis errors
                pass

    threading.Thread(target=renew, name="reindex-lock", daemon=True).start()
    try:
        last = store.progress()
        state = store.state(documents.version_key, documents.index_key)
        say(
            f"space {space.name} (id {space.id}): corpus version {state.corpus_version}, {documents.count()} documents,"
            f" {state.documents_behind} to check"
        )
        if last.get("state") == "building":
            say(f"resuming: the last re-index of this space stopped at {last.get('done')}/{last.get('total')} documents")

        embed = _embedder_call(embedder, settings)
        pace = RatePacer(settings.reindex_max_chunks_per_second)
        started, shown = time.monotonic(), 0.0
        totals = {"embedded": 0, "skipped": 0, "chunks": 0}

        def on_batch(progress: SyncProgress) -> None:
            nonlocal shown
            store.set_progress(state="building", done=progress.seen, total=progress.total, updated_at=f"{time.time():.3f}")
            if time.monotonic() - shown >= 1.0 or progress.seen == progress.total:
                shown = time.monotonic()
                share = 100.0 * progress.seen / max(progress.total, 1)
                say(
                    f"{progress.seen}/{progress.total} documents ({share:.1f}%), {progress.embedded} embedded,"
                    f" {progress.skipped} already there, {progress.chunks} chunks, {progress.chunks_per_second:.0f} chunks/s"
                )

        for _pass in range(MAX_PASSES):
            store.set_progress(state="building", done=0, total=0, started_at=f"{time.time():.3f}")
            progress = sync_space(documents, store, embed, settings.reindex_batch_documents, on_batch=on_batch, pace=pace)
            for key in totals:
                totals[key] += getattr(progress, key)
            # Documents ingested during the pass: another one, until the space holds the latest version.
            if documents.version() <= progress.target:
                break
        else:
            say(f"FAILED: the corpus kept changing through {MAX_PASSES} passes")
            return EXIT_FAILED
        store.set_progress(state="complete", done=progress.total, total=progress.total, updated_at=f"{time.time():.3f}")
        seconds = time.monotonic() - started
        say(
            f"done: space {space.name} complete at corpus version {progress.target}: {totals['embedded']} documents"
            f" embedded ({totals['chunks']} chunks) in {seconds:.1f} s, {totals['chunks'] / max(seconds, 1e-9):.0f}"
            f" chunks/s; {totals['skipped']} already in the space"
        )
    finally:
        stop_renewing.set()
        try:
            lock.release()
        except Exception:  # expired: the sync is idempotent
            pass

    keep_versions = [settings.version, *(v.strip() for v in settings.reindex_keep_versions.split(","))]
    for verdict in prune_spaces(
        client,
        settings.redis_key_prefix,
        space.id,
        keep_versions,
        settings.space_keep_recent,
        settings.space_retention_seconds,
    ):
        if verdict.kept_because is None:
            say(f"removed the space {verdict.name} (versions {', '.join(verdict.versions) or 'none'})")
        else:
            say(f"kept the space {verdict.name}: {verdict.kept_because}")
    client.close()
    return 0


def _embedder_call(embedder, settings: Settings):
    """embed(texts) in the embedder's batches; a remote embedder's calls retried like the service's."""
    from rag_service.resilience.breakers import DependencyBreaker
    from rag_service.resilience.guard import Guard
    from rag_service.resilience.retry import RetryPolicy
    from rag_service.retrieval.embedder import embed_in_batches

    guard = Guard(
        DependencyBreaker("embedder", settings.breaker_failure_threshold, settings.breaker_recovery_timeout_seconds),
        RetryPolicy.from_settings(settings),
    )
    return lambda texts: embed_in_batches(embedder, texts, guard)
