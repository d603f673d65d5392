import numpy as np
import pytest

from rag_service.models import Document
from rag_service.redis_client import connect
from rag_service.retrieval.corpus_store import STAGING_TTL_SECONDS, CorpusStore, EmbeddedDocument
from rag_service.retrieval.documents import document_id, prepare
from rag_service.retrieval.hashing_embedder import HashingEmbedder

DIM = 384


@pytest.fixture
def store(settings_for):
    client = connect(settings_for())
    yield CorpusStore(client, "t:", DIM), client
    client.close()


def embedded(doc_id: str, text: str) -> EmbeddedDocument:
    document = prepare(Document(text=text, id=doc_id, title=doc_id.title()), 200, 40, "hashing-384")
    return EmbeddedDocument(document, HashingEmbedder(DIM).embed(document.chunks))


LONG = " ".join(f"Sentence {n} describes feature {n} of the product in a few words." for n in range(12))


def test_write_then_load_round_trips_text_and_vectors(store):
    corpus, _client = store
    item = embedded("doc-a", LONG)
    assert corpus.version() == 0
    assert corpus.write([item]) == 1
    data = corpus.load()
    assert data.version == corpus.version() == 1
    assert len(data.chunk_ids) == len(item.document.chunks) > 1
    order = sorted(range(len(data.chunk_ids)), key=lambda i: int(data.chunk_ids[i].rsplit(":", 1)[1]))
    assert [data.texts[i] for i in order] == item.document.chunks
    assert np.array_equal(data.matrix[order], item.vectors)
    assert set(data.doc_ids) == {"doc-a"}
    assert set(data.titles) == {"Doc-A"}


def test_keys_carry_the_prefix(store):
    corpus, client = store
    corpus.write([embedded("doc-a", "Short text.")])
    assert all(key.startswith(b"t:") for key in client.keys("*"))


def test_unchanged_document_is_not_rewritten(store):
    corpus, client = store
    corpus.write([embedded("doc-a", LONG)])
    keys_before = set(client.keys("*"))
    assert corpus.write([embedded("doc-a", LONG)]) == 0
    assert corpus.version() == 1
    assert set(client.keys("*")) == keys_before  # staged copies were dropped


def test_changed_document_replaces_its_chunks(store):
    corpus, client = store
    corpus.write([embedded("doc-a", LONG), embedded("doc-b", "Another document.")])
    corpus.write([embedded("doc-a", "Completely new text.")])
    data = corpus.load()
    assert corpus.version() == 2
    assert sorted(data.texts) == ["Another document.", "Completely new text."]
    assert len(client.keys("t:chunk:*")) == 2  # the replaced chunks are deleted
    assert all(client.ttl(key) == -1 for key in client.keys("t:chunk:*"))


def test_staged_chunks_are_invisible_and_expire(store):
    corpus, client = store
    corpus._stage(embedded("doc-a", LONG))  # a writer that crashes before its commit
    assert corpus.load().chunk_ids == []
    ttls = [client.ttl(key) for key in client.keys("t:chunk:*")]
    assert ttls and all(0 < ttl <= STAGING_TTL_SECONDS for ttl in ttls)


def test_fingerprints_of_known_and_unknown_documents(store):
    corpus, _client = store
    item = embedded("doc-a", "Short text.")
    corpus.write([item])
    assert corpus.fingerprints(["doc-a", "nope"]) == {"doc-a": item.document.fingerprint, "nope": None}


def test_vectors_of_another_dimension_are_skipped(store):
    corpus, client = store
    corpus.write([embedded("doc-a", "Short text.")])
    other = CorpusStore(client, "t:", 64)
    assert other.load().chunk_ids == []


def test_document_ids_from_content_when_missing():
    first = document_id(Document(text="Same   text here."))
    assert first == document_id(Document(text="Same text here. "))
    assert first != document_id(Document(text="Other text."))
    assert document_id(Document(text="x", id="given")) == "given"


def test_fingerprint_covers_text_title_metadata():
    base = prepare(Document(text="Text.", id="a", title="T", metadata={"k": 1}), 200, 40, "e")
    assert (
        base.fingerprint
        == prepare(Document(text="Text.", id="a", title="T", metadata={"k": 1}), 200, 40, "e").fingerprint
    )
    for changed in (
        Document(text="Text!", id="a", title="T", metadata={"k": 1}),
        Document(text="Text.", id="a", title="U", metadata={"k": 1}),
        Document(text="Text.", id="a", title="T", metadata={"k": 2}),
    ):
        assert prepare(changed, 200, 40, "e").fingerprint != base.fingerprint
    assert prepare(Document(text="First sentence here. Second.", id="a"), 200, 40, "e").title == "First sentence here."
