"""Embedding spaces: the vectors of one way of cutting and embedding the shared documents.

A space is named by everything that changes its vectors: the embedder's kind, model and dimension, the chunking
and the recipe of the embedded text. Two versions of the app with the same name share a space; a version that
changes any of it gets a space of its own, built beside the live one (python -m rag_service reindex), so that
both colors keep answering from complete indexes while it is built, and a rollback finds its space intact.

Keys of one space (under RAG_REDIS_KEY_PREFIX, <sid> being a hash of its name):
  space:<sid>:meta        hash: name, kind, model, dim, chunk_size, chunk_overlap, recipe, created_at
  space:<sid>:version     counter, INCR'd by every commit that changes the space (what a search index reloads on)
  space:<sid>:synced      the corpus version (documents:version) whose every change the space holds
  space:<sid>:chunks      set of the ids of the chunks visible to searches
  space:<sid>:chunk:<id>  hash: text, doc_id, vector (little-endian float32 bytes)
  space:<sid>:doc:<id>    hash: fingerprint (of the document content embedded), chunk_ids (JSON list)
  space:<sid>:versions    set of the app versions that served or built the space
  space:<sid>:progress    hash: the last re-index's state, done, total, chunks, started_at, updated_at
  space:<sid>:lock        held by whoever syncs the space (redis-py's Lock)
And the registry of every space: spaces (hash sid -> name) and spaces:used (sorted set sid -> last use, epoch s).

A write first stages the new chunks under fresh ids, with a TTL, outside any transaction; then one MULTI/EXEC,
WATCHing the space's document records, makes them visible. A crash before EXEC leaves only invisible staged chunks,
which expire.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np
import redis
from redis.lock import Lock

from rag_service.text.chunking import chunk_text

log = logging.getLogger(__name__)

# What is embedded for a chunk: its document's title, a newline, the chunk (the title often names the topic that
# the text only implies). Changing this changes every vector, hence the space name.
RECIPE = "title-nl-chunk-1"
STAGING_TTL_SECONDS = 3600
BATCH = 1000
CHUNK_FIELDS = ("text", "doc_id", "vector")


@dataclass(frozen=True)
class EmbeddingSpace:
    kind: str
    model: str
    dim: int
    chunk_size: int
    chunk_overlap: int
    recipe: str = RECIPE

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.model}/{self.dim}/c{self.chunk_size}-o{self.chunk_overlap}/{self.recipe}"

    @property
    def id(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()[:12]

    def chunks(self, text: str) -> list[str]:
        return chunk_text(text, self.chunk_size, self.chunk_overlap)

    @staticmethod
    def inputs(title: str, chunks: Sequence[str]) -> list[str]:
        return [f"{title}\n{chunk}" for chunk in chunks]

    def describe(self) -> dict[str, str | int]:
        return {
            "name": self.name,
            "kind": self.kind,
            "model": self.model,
            "dim": self.dim,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "recipe": self.recipe,
        }


@dataclass(frozen=True)
class EmbeddedDocument:
    doc_id: str
    fingerprint: str  # of the document content that was chunked and embedded
    chunks: list[str]
    vectors: np.ndarray  # one row per chunk


def embed_documents(
    space: EmbeddingSpace,
    documents: Sequence,
    embed: Callable[[list[str]], np.ndarray],
    chunks: dict[str, list[str]] | None = None,
) -> list[EmbeddedDocument]:
    """Cut each document (id, title, text, fingerprint) into the space's chunks, or take them from `chunks`, and embed
    them all in one call of embed(texts). Raises what embed raises."""
    chunked = [(document, chunks[document.id] if chunks else space.chunks(document.text)) for document in documents]
    inputs = [text for document, pieces in chunked for text in space.inputs(document.title, pieces)]
    vectors = embed(inputs) if inputs else np.zeros((0, space.dim), dtype=np.float32)
    embedded, row = [], 0
    for document, pieces in chunked:
        embedded.append(EmbeddedDocument(document.id, document.fingerprint, pieces, vectors[row : row + len(pieces)]))
        row += len(pieces)
    return embedded


@dataclass(frozen=True)
class SpaceData:
    """Everything a search index needs, columns aligned by row (titles filled in from the documents)."""

    version: int
    chunk_ids: list[str]
    doc_ids: list[str]
    titles: list[str]
    texts: list[str]
    matrix: np.ndarray  # (chunks, dim) float32


@dataclass(frozen=True)
class SpaceState:
    version: int  # of the space (commits)
    synced: int  # the corpus version it holds completely
    corpus_version: int
    documents_behind: int  # documents changed after `synced`


def _batches(items: Sequence, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class SpaceStore:
    def __init__(self, client: redis.Redis, prefix: str, space: EmbeddingSpace) -> None:
        self._redis = client
        self.space = space
        base = f"{prefix}space:{space.id}:"
        self._meta_key = base + "meta"
        self._version_key = base + "version"
        self._synced_key = base + "synced"
        self._chunks_key = base + "chunks"
        self._chunk_prefix = base + "chunk:"
        self._doc_prefix = base + "doc:"
        self._versions_key = base + "versions"
        self._progress_key = base + "progress"
        self._lock_key = base + "lock"
        self._registry_key = f"{prefix}spaces"
        self._used_key = f"{prefix}spaces:used"

    # Registry

    def register(self, app_version: str) -> None:
        """Record the space (once) and that app_version uses it, now."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._registry_key, self.space.id, self.space.name)
        pipe.hset(self._meta_key, mapping={key: str(value) for key, value in self.space.describe().items()})
        pipe.hsetnx(self._meta_key, "created_at", f"{time.time():.3f}")
        pipe.sadd(self._versions_key, app_version)
        pipe.zadd(self._used_key, {self.space.id: time.time()})
        pipe.execute()

    def touch(self) -> None:
        self._redis.zadd(self._used_key, {self.space.id: time.time()})

    # State

    def version(self) -> int:
        value = self._redis.get(self._version_key)
        return int(value) if value is not None else 0

    def state(self, corpus_version_key: str, corpus_index_key: str) -> SpaceState:
        """The space's commits, what it synced, and how far behind the corpus it is: one round trip."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.get(self._version_key)
        pipe.get(self._synced_key)
        pipe.get(corpus_version_key)
        raw_version, raw_synced, raw_corpus = pipe.execute()
        synced = int(raw_synced) if raw_synced is not None else 0
        behind = int(self._redis.zcount(corpus_index_key, f"({synced}", "+inf"))
        return SpaceState(
            version=int(raw_version) if raw_version is not None else 0,
            synced=synced,
            corpus_version=int(raw_corpus) if raw_corpus is not None else 0,
            documents_behind=behind,
        )

    def synced(self) -> int:
        value = self._redis.get(self._synced_key)
        return int(value) if value is not None else 0

    def mark_synced(self, corpus_version: int) -> None:
        """Record that the space holds every change up to corpus_version (never moves backwards)."""

        def advance(pipe: redis.client.Pipeline) -> None:
            current = pipe.get(self._synced_key)
            pipe.multi()
            if current is None or int(current) < corpus_version:
                pipe.set(self._synced_key, corpus_version)

        self._redis.transaction(advance, self._synced_key)

    def progress(self) -> dict[str, str]:
        return {key.decode(): value.decode() for key, value in self._redis.hgetall(self._progress_key).items()}

    def set_progress(self, **fields: str | int | float) -> None:
        self._redis.hset(self._progress_key, mapping={key: str(value) for key, value in fields.items()})

    def lock(self, timeout: float) -> Lock:
        return self._redis.lock(self._lock_key, timeout=timeout, blocking=False)

    # Documents of the space

    def fingerprints(self, doc_ids: Sequence[str]) -> dict[str, str | None]:
        pipe = self._redis.pipeline(transaction=False)
        for doc_id in doc_ids:
            pipe.hget(self._doc_prefix + doc_id, "fingerprint")
        return {doc_id: value.decode() if value else None for doc_id, value in zip(doc_ids, pipe.execute())}

    def write(self, documents: Sequence[EmbeddedDocument]) -> int:
        """Store the documents' chunks, replacing any of the same document. Returns how many changed (0: no version
        bump). Document ids must be unique within one call."""
        staged = {item.doc_id: self._stage(item) for item in documents}
        doc_keys = [self._doc_prefix + doc_id for doc_id in staged]
        changed = 0

        def commit(pipe: redis.client.Pipeline) -> None:
            nonlocal changed
            # Read the current records on another connection, batched: EXEC still fails if any watched record
            # changes after the WATCH, so these reads are as good as reads inside the transaction.
            reads = self._redis.pipeline(transaction=False)
            for key in doc_keys:
                reads.hmget(key, "fingerprint", "chunk_ids")
            current = reads.execute()
            changed = 0
            pipe.multi()
            for item, key, (fingerprint, old_ids_json) in zip(documents, doc_keys, current):
                new_ids = staged[item.doc_id]
                new_keys = [self._chunk_prefix + chunk_id for chunk_id in new_ids]
                if fingerprint is not None and fingerprint.decode() == item.fingerprint:
                    if new_keys:
                        pipe.delete(*new_keys)
                    continue
                old_ids = set(json.loads(old_ids_json)) if old_ids_json else set()
                for chunk_key in new_keys:
                    pipe.persist(chunk_key)
                if new_ids:
                    pipe.sadd(self._chunks_key, *new_ids)
                if old_ids:
                    pipe.srem(self._chunks_key, *old_ids)
                    pipe.delete(*(self._chunk_prefix + chunk_id for chunk_id in old_ids))
                pipe.hset(key, mapping={"fingerprint": item.fingerprint, "chunk_ids": json.dumps(new_ids)})
                changed += 1
            if changed:
                pipe.incr(self._version_key)

        self._redis.transaction(commit, *doc_keys)
        return changed

    def _stage(self, item: EmbeddedDocument) -> list[str]:
        token = uuid.uuid4().hex[:12]
        chunk_ids = [f"{item.doc_id}:{token}:{position}" for position in range(len(item.chunks))]
        vectors = item.vectors.astype("<f4", copy=False)
        for batch in _batches(range(len(chunk_ids)), BATCH):
            pipe = self._redis.pipeline(transaction=False)
            for position in batch:
                key = self._chunk_prefix + chunk_ids[position]
                pipe.hset(
                    key,
                    mapping={"text": item.chunks[position], "doc_id": item.doc_id, "vector": vectors[position].tobytes()},
                )
                pipe.expire(key, STAGING_TTL_SECONDS)
            pipe.execute()
        return chunk_ids

    def load(self, titles: Callable[[list[str]], dict[str, str]]) -> SpaceData:
        """Read every visible chunk, and its document's title from titles(doc ids). The version is read with the
        chunk set, atomically; a chunk replaced while loading is skipped (the next version check reloads)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.get(self._version_key)
        pipe.smembers(self._chunks_key)
        raw_version, raw_ids = pipe.execute()
        ids = sorted(raw_id.decode() for raw_id in raw_ids)

        chunk_ids: list[str] = []
        doc_ids: list[str] = []
        texts: list[str] = []
        vectors: list[bytes] = []
        skipped = 0
        vector_bytes = self.space.dim * 4
        for batch in _batches(ids, BATCH):
            pipe = self._redis.pipeline(transaction=False)
            for chunk_id in batch:
                pipe.hmget(self._chunk_prefix + chunk_id, *CHUNK_FIELDS)
            for chunk_id, (text, doc_id, vector) in zip(batch, pipe.execute()):
                if text is None or vector is None or len(vector) != vector_bytes:
                    skipped += 1
                    continue
                chunk_ids.append(chunk_id)
                doc_ids.append(doc_id.decode())
                texts.append(text.decode())
                vectors.append(vector)
        if skipped:
            log.warning("skipped %d chunks missing or not of %d dimensions", skipped, self.space.dim)
        matrix = np.frombuffer(b"".join(vectors), dtype="<f4").astype(np.float32).reshape(-1, self.space.dim)
        found = titles(sorted(set(doc_ids)))
        return SpaceData(
            version=int(raw_version) if raw_version is not None else 0,
            chunk_ids=chunk_ids,
            doc_ids=doc_ids,
            titles=[found.get(doc_id, "") for doc_id in doc_ids],
            texts=texts,
            matrix=matrix,
        )


def delete_space(client: redis.Redis, prefix: str, space_id: str) -> int:
    """Remove every key of a space and its registry entries. Returns the number of keys removed."""
    removed = 0
    for batch in _batches(list(client.scan_iter(match=f"{prefix}space:{space_id}:*", count=1000)), BATCH):
        removed += int(client.unlink(*batch))
    pipe = client.pipeline(transaction=True)
    pipe.hdel(f"{prefix}spaces", space_id)
    pipe.zrem(f"{prefix}spaces:used", space_id)
    pipe.execute()
    return removed
