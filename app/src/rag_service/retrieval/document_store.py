"""The documents in Redis, stored once and shared by every embedding space, color and process.

Keys (all under RAG_REDIS_KEY_PREFIX):
  documents:version  counter: the corpus version, bumped by every write that changes a document (absent: none ever)
  documents          sorted set: each document id, scored by the corpus version that last changed it
  document:<id>      hash: text, title, metadata (JSON), fingerprint

The score is what lets every space catch up incrementally: the documents it has not seen yet are those scored
above the version it last synced (retrieval/space_sync.py). There is no delete: a document is replaced by id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from rag_service.retrieval.documents import PreparedDocument

FIELDS = ("text", "title", "metadata", "fingerprint")
BATCH = 1000


@dataclass(frozen=True)
class StoredDocument:
    id: str
    title: str
    text: str
    metadata: dict[str, Any]
    fingerprint: str


class DocumentStore:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._version_key = f"{prefix}documents:version"
        self._index_key = f"{prefix}documents"
        self._doc_prefix = f"{prefix}document:"

    @property
    def version_key(self) -> str:
        return self._version_key

    @property
    def index_key(self) -> str:
        return self._index_key

    def ping(self) -> float:
        """Round-trip time of a PING, in seconds."""
        started = time.perf_counter()
        self._redis.ping()
        return time.perf_counter() - started

    def version(self) -> int:
        """The corpus version; 0 when no document was ever written (a new or wiped Redis)."""
        value = self._redis.get(self._version_key)
        return int(value) if value is not None else 0

    def count(self) -> int:
        return int(self._redis.zcard(self._index_key))

    def fingerprints(self, doc_ids: Sequence[str]) -> dict[str, str | None]:
        pipe = self._redis.pipeline(transaction=False)
        for doc_id in doc_ids:
            pipe.hget(self._doc_prefix + doc_id, "fingerprint")
        return {doc_id: value.decode() if value else None for doc_id, value in zip(doc_ids, pipe.execute())}

    def put(self, documents: Sequence[PreparedDocument]) -> list[str]:
        """Store documents, replacing any with the same id, in one transaction. Returns the ids that changed (none:
        no version bump). Ids must be unique within one call."""
        keys = [self._doc_prefix + document.id for document in documents]
        changed: list[str] = []

        def commit(pipe: redis.client.Pipeline) -> None:
            changed.clear()
            reads = self._redis.pipeline(transaction=False)
            reads.get(self._version_key)
            for key in keys:
                reads.hget(key, "fingerprint")
            raw_version, *current = reads.execute()
            version = (int(raw_version) if raw_version is not None else 0) + 1
            pipe.multi()
            for document, key, fingerprint in zip(documents, keys, current):
                if fingerprint is not None and fingerprint.decode() == document.fingerprint:
                    continue
                pipe.hset(
                    key,
                    mapping={
                        "text": document.text,
                        "title": document.title,
                        "metadata": json.dumps(document.metadata, default=str),
                        "fingerprint": document.fingerprint,
                    },
                )
                pipe.zadd(self._index_key, {document.id: version})
                changed.append(document.id)
            if changed:
                pipe.set(self._version_key, version)

        # WATCH the version too: two writers never give the same version to different changes.
        self._redis.transaction(commit, self._version_key, *keys)
        return list(changed)

    def changed_between(self, after: int, upto: int) -> list[str]:
        """Ids of the documents last changed by a version in (after, upto], oldest change first."""
        raw = self._redis.zrangebyscore(self._index_key, f"({after}", upto)
        return [doc_id.decode() for doc_id in raw]

    def get(self, doc_ids: Sequence[str]) -> dict[str, StoredDocument]:
        """The stored documents among doc_ids (missing ones are left out)."""
        found: dict[str, StoredDocument] = {}
        for start in range(0, len(doc_ids), BATCH):
            batch = doc_ids[start : start + BATCH]
            pipe = self._redis.pipeline(transaction=False)
            for doc_id in batch:
                pipe.hmget(self._doc_prefix + doc_id, *FIELDS)
            for doc_id, (text, title, metadata, fingerprint) in zip(batch, pipe.execute()):
                if text is None or fingerprint is None:
                    continue
                found[doc_id] = StoredDocument(
                    id=doc_id,
                    title=title.decode() if title else "",
                    text=text.decode(),
                    metadata=json.loads(metadata) if metadata else {},
                    fingerprint=fingerprint.decode(),
                )
        return found

    def titles(self, doc_ids: Sequence[str]) -> dict[str, str]:
        titles: dict[str, str] = {}
        for start in range(0, len(doc_ids), BATCH):
            batch = doc_ids[start : start + BATCH]
            pipe = self._redis.pipeline(transaction=False)
            for doc_id in batch:
                pipe.hget(self._doc_prefix + doc_id, "title")
            titles.update({doc_id: (title or b"").decode() for doc_id, title in zip(batch, pipe.execute())})
        return titles
