"""The corpus in Redis, shared by every process of every color.

Keys (all under RAG_REDIS_KEY_PREFIX):
  corpus:version     counter, INCR'd by every commit that changes the corpus (absent: nothing ever written)
  corpus:chunks      set of the ids of the chunks visible to searches
  chunk:<chunk id>   hash: text, doc_id, title, metadata (JSON), vector (little-endian float32 bytes)
  doc:<document id>  hash: fingerprint, title, chunk_ids (JSON list)

A write first stages the new chunks under fresh ids, with a TTL, outside any transaction; then one
MULTI/EXEC, WATCHing the document records, makes them visible: it removes the TTL, swaps the chunk ids in
the visible set, deletes the replaced chunks, updates the document records and bumps the version. A crash
before EXEC leaves only invisible staged chunks, which expire.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np
import redis

from rag_service.retrieval.documents import PreparedDocument

log = logging.getLogger(__name__)

STAGING_TTL_SECONDS = 3600
BATCH = 1000
CHUNK_FIELDS = ("text", "doc_id", "title", "vector")


@dataclass(frozen=True)
class EmbeddedDocument:
    document: PreparedDocument
    vectors: np.ndarray  # one row per chunk


@dataclass(frozen=True)
class CorpusData:
    """Everything the search index needs, columns aligned by row."""

    version: int
    chunk_ids: list[str]
    doc_ids: list[str]
    titles: list[str]
    texts: list[str]
    matrix: np.ndarray  # (chunks, dim) float32


def _batches(items: Sequence, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class CorpusStore:
    def __init__(self, client: redis.Redis, prefix: str, dim: int) -> None:
        self._redis = client
        self._dim = dim
        self._version_key = f"{prefix}corpus:version"
        self._chunks_key = f"{prefix}corpus:chunks"
        self._chunk_prefix = f"{prefix}chunk:"
        self._doc_prefix = f"{prefix}doc:"

    def ping(self) -> float:
        """Round-trip time of a PING, in seconds."""
        started = time.perf_counter()
        self._redis.ping()
        return time.perf_counter() - started

    def version(self) -> int:
        """The corpus version; 0 when nothing was ever written (a new or wiped Redis)."""
        value = self._redis.get(self._version_key)
        return int(value) if value is not None else 0

    def fingerprints(self, doc_ids: Sequence[str]) -> dict[str, str | None]:
        pipe = self._redis.pipeline(transaction=False)
        for doc_id in doc_ids:
            pipe.hget(self._doc_prefix + doc_id, "fingerprint")
        return {doc_id: value.decode() if value else None for doc_id, value in zip(doc_ids, pipe.execute())}

    def write(self, documents: Sequence[EmbeddedDocument]) -> int:
        """Store documents, replacing any with the same id. Returns how many changed (0: no version bump).

        Document ids must be unique within one call.
        """
        staged = {item.document.id: self._stage(item) for item in documents}
        doc_keys = [self._doc_prefix + doc_id for doc_id in staged]
        changed = 0

        def commit(pipe: redis.client.Pipeline) -> None:
            nonlocal changed
            # Read the current records on another connection, batched: EXEC still fails if any watched
            # record changes after the WATCH, so these reads are as good as reads inside the transaction.
            reads = self._redis.pipeline(transaction=False)
            for key in doc_keys:
                reads.hmget(key, "fingerprint", "chunk_ids")
            current = reads.execute()
            changed = 0
            pipe.multi()
            for item, key, (fingerprint, old_ids_json) in zip(documents, doc_keys, current):
                document, new_ids = item.document, staged[item.document.id]
                new_keys = [self._chunk_prefix + chunk_id for chunk_id in new_ids]
                if fingerprint is not None and fingerprint.decode() == document.fingerprint:
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
                pipe.hset(
                    key,
                    mapping={
                        "fingerprint": document.fingerprint,
                        "title": document.title,
                        "chunk_ids": json.dumps(new_ids),
                    },
                )
                changed += 1
            if changed:
                pipe.incr(self._version_key)

        self._redis.transaction(commit, *doc_keys)
        return changed

    def _stage(self, item: EmbeddedDocument) -> list[str]:
        document = item.document
        token = uuid.uuid4().hex[:12]
        chunk_ids = [f"{document.id}:{token}:{position}" for position in range(len(document.chunks))]
        metadata = json.dumps(document.metadata, default=str)
        vectors = item.vectors.astype("<f4", copy=False)
        for batch in _batches(range(len(chunk_ids)), BATCH):
            pipe = self._redis.pipeline(transaction=False)
            for position in batch:
                key = self._chunk_prefix + chunk_ids[position]
                pipe.hset(
                    key,
                    mapping={
                        "text": document.chunks[position],
                        "doc_id": document.id,
                        "title": document.title,
                        "metadata": metadata,
                        "vector": vectors[position].tobytes(),
                    },
                )
                pipe.expire(key, STAGING_TTL_SECONDS)
            pipe.execute()
        return chunk_ids

    def load(self) -> CorpusData:
        """Read every visible chunk. The version is read with the chunk set, atomically; a chunk replaced
        while loading is skipped (the next version check reloads)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.get(self._version_key)
        pipe.smembers(self._chunks_key)
        raw_version, raw_ids = pipe.execute()
        ids = sorted(raw_id.decode() for raw_id in raw_ids)

        chunk_ids: list[str] = []
        doc_ids: list[str] = []
        titles: list[str] = []
        texts: list[str] = []
        vectors: list[bytes] = []
        skipped = 0
        vector_bytes = self._dim * 4
        for batch in _batches(ids, BATCH):
            pipe = self._redis.pipeline(transaction=False)
            for chunk_id in batch:
                pipe.hmget(self._chunk_prefix + chunk_id, *CHUNK_FIELDS)
            for chunk_id, (text, doc_id, title, vector) in zip(batch, pipe.execute()):
                if text is None or vector is None or len(vector) != vector_bytes:
                    skipped += 1
                    continue
                chunk_ids.append(chunk_id)
                doc_ids.append(doc_id.decode())
                titles.append(title.decode())
                texts.append(text.decode())
                vectors.append(vector)
        if skipped:
            log.warning("skipped %d chunks missing or not of %d dimensions", skipped, self._dim)
        matrix = np.frombuffer(b"".join(vectors), dtype="<f4").astype(np.float32).reshape(-1, self._dim)
        return CorpusData(
            version=int(raw_version) if raw_version is not None else 0,
            chunk_ids=chunk_ids,
            doc_ids=doc_ids,
            titles=titles,
            texts=texts,
            matrix=matrix,
        )
