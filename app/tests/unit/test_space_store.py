"""The shared documents, the embedding spaces built from them, their sync and their retention, on a real Redis."""

import time

import numpy as np
import pytest

from rag_service.models import Document
from rag_service.redis_client import connect
from rag_service.retrieval.document_store import DocumentStore
from rag_service.retrieval.documents import document_id, prepare
from rag_service.retrieval.hashing_embedder import HashingEmbedder
from rag_service.retrieval.retention import prune_spaces
from rag_service.retrieval.space import STAGING_TTL_SECONDS, EmbeddedDocument, EmbeddingSpace, SpaceStore
from rag_service.retrieval.space_sync import RatePacer, SpaceFollower, sync_space

SPACE = EmbeddingSpace("hashing", "feature-hash-1", 384, 200, 40)
OTHER = EmbeddingSpace("hashing", "feature-hash-1", 64, 300, 40)
LONG = " ".join(f"Sentence {n} describes feature {n} of the product in a few words." for n in range(12))


@pytest.fixture
def client(settings_for):
    client = connect(settings_for())
    yield client
    client.close()


def embedder_for(space):
    return HashingEmbedder(space.dim).embed


def embedded(space, doc_id: str, text: str) -> EmbeddedDocument:
    document = prepare(Document(text=text, id=doc_id, title=doc_id.title()))
    chunks = space.chunks(text)
    return EmbeddedDocument(doc_id, document.fingerprint, chunks, HashingEmbedder(space.dim).embed(chunks))


def docs(count: int, start: int = 0, word: str = "widget") -> list:
    return [
        prepare(Document(text=f"{word} {n} is described here. {LONG}", id=f"d{n}", title=f"Doc {n}"))
        for n in range(start, start + count)
    ]


# The shared documents


def test_documents_are_stored_once_with_a_version_per_change(client):
    store = DocumentStore(client, "t:")
    assert store.version() == 0
    assert store.put(docs(3)) == ["d0", "d1", "d2"]
    assert (store.version(), store.count()) == (1, 3)
    assert store.put(docs(3)) == []  # unchanged: no version bump
    assert store.version() == 1
    assert store.put([prepare(Document(text="New text.", id="d1", title="Doc 1"))]) == ["d1"]
    assert store.version() == 2
    assert store.changed_between(0, 1) == ["d0", "d2"]  # d1 now belongs to version 2
    assert store.changed_between(1, 2) == ["d1"]
    stored = store.get(["d1", "missing"])
    assert list(stored) == ["d1"] and stored["d1"].text == "New text." and stored["d1"].title == "Doc 1"


def test_keys_carry_the_prefix(client):
    DocumentStore(client, "t:").put(docs(1))
    SpaceStore(client, "t:", SPACE).write([embedded(SPACE, "d0", "Short text.")])
    assert all(key.startswith(b"t:") for key in client.keys("*"))


def test_document_ids_from_content_when_missing():
    first = document_id(Document(text="Same   text here."))
    assert first == document_id(Document(text="Same text here. "))
    assert first != document_id(Document(text="Other text."))
    assert document_id(Document(text="x", id="given")) == "given"


def test_fingerprint_covers_text_title_metadata_only():
    base = prepare(Document(text="Text.", id="a", title="T", metadata={"k": 1}))
    assert base.fingerprint == prepare(Document(text="Text.", id="a", title="T", metadata={"k": 1})).fingerprint
    for changed in (
        Document(text="Text!", id="a", title="T", metadata={"k": 1}),
        Document(text="Text.", id="a", title="U", metadata={"k": 1}),
        Document(text="Text.", id="a", title="T", metadata={"k": 2}),
    ):
        assert prepare(changed).fingerprint != base.fingerprint
    assert prepare(Document(text="First sentence here. Second.", id="a")).title == "First sentence here."


# One space


def test_space_names_change_with_whatever_changes_the_vectors():
    assert SPACE.name == "hashing/feature-hash-1/384/c200-o40/title-nl-chunk-1"
    ids = {
        SPACE.id,
        EmbeddingSpace("hashing", "feature-hash-1", 256, 200, 40).id,
        EmbeddingSpace("hashing", "feature-hash-1", 384, 300, 40).id,
        EmbeddingSpace("hashing", "feature-hash-1", 384, 200, 50).id,
        EmbeddingSpace("openai", "feature-hash-1", 384, 200, 40).id,
    }
    assert len(ids) == 5


def test_write_then_load_round_trips_text_vectors_and_titles(client):
    DocumentStore(client, "t:").put([prepare(Document(text=LONG, id="doc-a", title="Doc-A"))])
    space = SpaceStore(client, "t:", SPACE)
    item = embedded(SPACE, "doc-a", LONG)
    assert space.write([item]) == 1
    data = space.load(DocumentStore(client, "t:").titles)
    assert data.version == space.version() == 1
    assert len(data.chunk_ids) == len(item.chunks) > 1
    order = sorted(range(len(data.chunk_ids)), key=lambda i: int(data.chunk_ids[i].rsplit(":", 1)[1]))
    assert [data.texts[i] for i in order] == item.chunks
    assert np.array_equal(data.matrix[order], item.vectors)
    assert set(data.titles) == {"Doc-A"}


def test_changed_document_replaces_its_chunks(client):
    space = SpaceStore(client, "t:", SPACE)
    space.write([embedded(SPACE, "doc-a", LONG), embedded(SPACE, "doc-b", "Another document.")])
    space.write([embedded(SPACE, "doc-a", "Completely new text.")])
    data = space.load(lambda ids: {})
    assert space.version() == 2
    assert sorted(data.texts) == ["Another document.", "Completely new text."]
    chunk_keys = client.keys(f"t:space:{SPACE.id}:chunk:*")
    assert len(chunk_keys) == 2  # the replaced chunks are deleted
    assert all(client.ttl(key) == -1 for key in chunk_keys)


def test_staged_chunks_are_invisible_and_expire(client):
    space = SpaceStore(client, "t:", SPACE)
    space._stage(embedded(SPACE, "doc-a", LONG))  # a writer that crashes before its commit
    assert space.load(lambda ids: {}).chunk_ids == []
    ttls = [client.ttl(key) for key in client.keys(f"t:space:{SPACE.id}:chunk:*")]
    assert ttls and all(0 < ttl <= STAGING_TTL_SECONDS for ttl in ttls)


def test_spaces_do_not_see_each_other(client):
    SpaceStore(client, "t:", SPACE).write([embedded(SPACE, "doc-a", "Short text.")])
    assert SpaceStore(client, "t:", OTHER).load(lambda ids: {}).chunk_ids == []


# Sync


def test_sync_builds_a_space_from_the_documents_then_only_what_changed(client):
    documents, space = DocumentStore(client, "t:"), SpaceStore(client, "t:", OTHER)
    documents.put(docs(30))
    first = sync_space(documents, space, embedder_for(OTHER), batch_documents=7)
    assert (first.complete, first.total, first.embedded, first.skipped) == (True, 30, 30, 0)
    assert space.synced() == documents.version()
    assert len(set(space.load(documents.titles).doc_ids)) == 30
    documents.put(docs(2, start=30))
    second = sync_space(documents, space, embedder_for(OTHER), batch_documents=7)
    assert (second.total, second.embedded) == (2, 2)
    assert sync_space(documents, space, embedder_for(OTHER)).total == 0


def test_a_sync_killed_halfway_resumes_without_embedding_again(client):
    documents, space = DocumentStore(client, "t:"), SpaceStore(client, "t:", OTHER)
    documents.put(docs(40))
    partial = sync_space(documents, space, embedder_for(OTHER), batch_documents=10, max_documents=20)
    assert (partial.complete, partial.embedded) == (False, 20)
    assert space.synced() == 0  # not marked: the next run looks again
    seen = []
    resumed = sync_space(documents, space, lambda texts: seen.append(len(texts)) or embedder_for(OTHER)(texts), 10)
    assert (resumed.complete, resumed.embedded, resumed.skipped) == (True, 20, 20)
    assert len(set(space.load(documents.titles).doc_ids)) == 40


def test_state_tells_how_far_behind_a_space_is(client):
    documents, space = DocumentStore(client, "t:"), SpaceStore(client, "t:", OTHER)
    documents.put(docs(5))
    state = space.state(documents.version_key, documents.index_key)
    assert (state.synced, state.corpus_version, state.documents_behind) == (0, 1, 5)
    sync_space(documents, space, embedder_for(OTHER))
    assert space.state(documents.version_key, documents.index_key).documents_behind == 0


def test_the_follower_catches_up_a_few_documents_but_not_a_whole_new_space(client):
    documents = DocumentStore(client, "t:")
    documents.put(docs(10))
    space = SpaceStore(client, "t:", OTHER)
    synced = []
    follower = SpaceFollower(documents, space, embedder_for(OTHER), "1.0.0", 1.0, 5, 100, lambda: synced.append(1))
    assert follower.step() is False and follower.warned_behind  # 10 behind > 5: the re-index's work
    assert space.synced() == 0
    sync_space(documents, space, embedder_for(OTHER))
    documents.put(docs(3, start=10, word="gadget"))
    assert follower.step() is True and synced == [1]
    assert space.state(documents.version_key, documents.index_key).documents_behind == 0
    assert client.hget("t:spaces", OTHER.id).decode() == OTHER.name
    assert client.sismember(f"t:space:{OTHER.id}:versions", "1.0.0")


def test_a_space_that_was_complete_follows_a_big_import_through_the_other_space(client):
    documents = DocumentStore(client, "t:")
    documents.put(docs(3))
    space = SpaceStore(client, "t:", OTHER)
    sync_space(documents, space, embedder_for(OTHER))
    documents.put(docs(40, start=3, word="gadget"))  # 40 > max_behind 5, ingested through another space's color
    follower = SpaceFollower(documents, space, embedder_for(OTHER), "1.0.0", 1.0, 5, 100, lambda: None)
    assert follower.step() is True and not follower.warned_behind
    assert space.state(documents.version_key, documents.index_key).documents_behind == 0
    assert len(set(space.load(documents.titles).doc_ids)) == 43


def test_the_follower_marks_synced_what_a_process_of_its_space_ingested(client):
    documents = DocumentStore(client, "t:")
    space = SpaceStore(client, "t:", OTHER)
    ingested = docs(50)
    documents.put(ingested)  # as POST /api/documents does: the documents, then this space's own vectors
    embed = embedder_for(OTHER)
    space.write([EmbeddedDocument(d.id, d.fingerprint, OTHER.chunks(d.text), embed(OTHER.chunks(d.text))) for d in ingested])
    follower = SpaceFollower(documents, space, embedder_for(OTHER), "1.0.0", 1.0, 5, 100, lambda: None)
    assert follower.step() is False and not follower.warned_behind  # 50 changed, none missing: no embedding
    assert space.state(documents.version_key, documents.index_key).documents_behind == 0


def test_the_follower_leaves_a_space_locked_by_another_syncer(client):
    documents = DocumentStore(client, "t:")
    documents.put(docs(3))
    space = SpaceStore(client, "t:", OTHER)
    holder = space.lock(30)
    assert holder.acquire(blocking=False)
    follower = SpaceFollower(documents, space, embedder_for(OTHER), "1.0.0", 1.0, 500, 100, lambda: None)
    assert follower.step() is False
    holder.release()
    assert follower.step() is True


def test_rate_pacer_spaces_batches_by_their_chunks():
    now, slept = [100.0], []

    def sleep(seconds):
        slept.append(round(seconds, 3))
        now[0] += seconds

    pace = RatePacer(100.0, clock=lambda: now[0], sleep=sleep)
    pace(50)
    pace(50)
    pace(10)
    assert slept == [0.5, 0.5]
    RatePacer(0)(10**6)  # no limit: returns at once


# Retention


def test_retention_keeps_named_versions_recent_and_fresh_spaces(client):
    spaces = [EmbeddingSpace("hashing", "feature-hash-1", dim, 200, 40) for dim in (16, 32, 64, 128, 256)]
    for number, space in enumerate(spaces):
        SpaceStore(client, "t:", space).register(f"{number}.0.0")
        SpaceStore(client, "t:", space).write([embedded(space, "d0", "Short text.")])
    now = time.time()
    ages = [9000, 8000, 7000, 10, 5]  # seconds since last use
    for space, age in zip(spaces, ages):
        client.zadd("t:spaces:used", {space.id: now - age})
    verdicts = {v.name: v for v in prune_spaces(client, "t:", spaces[4].id, ["0.0.0"], 2, 100, now=now)}
    assert verdicts[spaces[0].name].kept_because == "used by 0.0.0"
    assert verdicts[spaces[1].name].kept_because is None  # old, unnamed, not recent
    assert verdicts[spaces[2].name].kept_because is None
    assert "most recently used" in verdicts[spaces[3].name].kept_because
    assert verdicts[spaces[4].name].kept_because == "built now"
    assert client.keys(f"t:space:{spaces[1].id}:*") == []
    assert client.hget("t:spaces", spaces[1].id) is None
    assert client.keys(f"t:space:{spaces[0].id}:*")
    # Within the retention window, even an unnamed old space stays.
    again = {v.name: v for v in prune_spaces(client, "t:", spaces[4].id, [], 2, 10**6, now=now)}
    assert again[spaces[0].name].kept_because.startswith("used 9000 s ago")
