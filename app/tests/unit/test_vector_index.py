import threading

import numpy as np
import pytest
from conftest import metric

from rag_service.retrieval.space import SpaceData
from rag_service.retrieval.hashing_embedder import HashingEmbedder
from rag_service.retrieval.vector_index import IndexNotReady, IndexSnapshot, VectorIndex

TEXTS = {
    "hours": "Support is open Monday to Friday, from 9:00 to 18:00.",
    "vat": "French VAT is charged at the standard rate of 20 percent.",
    "mobile": "The mobile application runs on iOS and Android.",
    "export": "Export any table as CSV or Excel.",
}


def corpus(texts: dict[str, str], version: int = 1, dim: int = 384) -> SpaceData:
    ids = list(texts)
    return SpaceData(
        version=version,
        chunk_ids=[f"{i}:0" for i in ids],
        doc_ids=ids,
        titles=[i.title() for i in ids],
        texts=list(texts.values()),
        matrix=HashingEmbedder(dim).embed(list(texts.values())),
    )


def test_search_ranks_by_cosine_similarity():
    snapshot = IndexSnapshot(corpus(TEXTS))
    hits = snapshot.search(HashingEmbedder(384).embed(["VAT rate in France"])[0], 2)
    assert hits[0].doc_id == "vat"
    assert len(hits) == 2
    assert hits[0].score >= hits[1].score
    assert hits[0].text == TEXTS["vat"]


def test_top_k_larger_than_the_corpus_returns_everything_sorted():
    snapshot = IndexSnapshot(corpus(TEXTS))
    hits = snapshot.search(HashingEmbedder(384).embed(["mobile application"])[0], 20)
    assert len(hits) == len(TEXTS)
    assert hits[0].doc_id == "mobile"
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_sparse_and_dense_queries_score_like_a_plain_dot_product():
    rng = np.random.default_rng(7)
    matrix = rng.standard_normal((500, 64)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    data = SpaceData(1, [str(i) for i in range(500)], [str(i) for i in range(500)], [""] * 500, [""] * 500, matrix)
    snapshot = IndexSnapshot(data)
    sparse = np.zeros(64, dtype=np.float32)
    sparse[[3, 17]] = [0.6, 0.8]
    dense = matrix[42]
    for query in (sparse, dense):
        expected = np.argsort(-(matrix @ query))[:5]
        hits = snapshot.search(query, 5)
        assert [int(hit.chunk_id) for hit in hits] == list(expected)
        assert np.allclose([hit.score for hit in hits], (matrix @ query)[expected], atol=1e-5)


def test_empty_index_answers_no_hits():
    snapshot = IndexSnapshot(corpus({}))
    assert snapshot.size == 0
    assert snapshot.search(np.ones(384, dtype=np.float32), 4) == []


class Source:
    """check_version/load stand-ins counting calls; `fail` makes both raise."""

    def __init__(self) -> None:
        self.version = 1
        self.texts = dict(TEXTS)
        self.loads = 0
        self.checks = 0
        self.fail = False

    def check_version(self) -> int:
        self.checks += 1
        if self.fail:
            raise ConnectionError("redis down")
        return self.version

    def load(self) -> SpaceData:
        self.loads += 1
        return corpus(self.texts, self.version)


def test_index_not_ready_until_loaded():
    index = VectorIndex(lambda: 1, lambda: corpus(TEXTS), 60)
    with pytest.raises(IndexNotReady):
        index.current()
    index.refresh()
    assert index.current().size == len(TEXTS)
    assert metric("rag_corpus_chunks") == len(TEXTS)


def test_rebuilds_only_when_the_version_changes():
    source = Source()
    index = VectorIndex(source.check_version, source.load, 0)
    index.refresh()
    index.refresh()
    assert source.loads == 1
    source.version = 2
    source.texts["new"] = "A brand new chunk about webhooks."
    index.maybe_refresh()
    assert source.loads == 2
    assert index.current().version == 2
    assert index.current().size == len(TEXTS) + 1


def test_version_checks_are_throttled_to_the_interval():
    source = Source()
    index = VectorIndex(source.check_version, source.load, 3600)
    index.maybe_refresh()
    for _check in range(100):
        index.maybe_refresh()
    assert source.checks == 1


def test_failed_check_keeps_serving_the_last_snapshot_and_reports_stale():
    source = Source()
    index = VectorIndex(source.check_version, source.load, 0)
    index.refresh()
    snapshot = index.current()
    source.fail = True
    index.maybe_refresh()  # never raises
    with pytest.raises(ConnectionError):
        index.refresh()
    assert index.stale
    assert index.current() is snapshot
    source.fail = False
    index.maybe_refresh()
    assert not index.stale


def test_searches_never_fail_while_snapshots_are_swapped():
    source = Source()
    index = VectorIndex(source.check_version, source.load, 0)
    index.refresh()
    query = HashingEmbedder(384).embed(["support hours"])[0]
    errors: list[Exception] = []
    done = threading.Event()

    def search() -> None:
        while not done.is_set():
            try:
                assert index.current().search(query, 3)
            except Exception as exc:  # collected for the main thread
                errors.append(exc)

    threads = [threading.Thread(target=search) for _thread in range(4)]
    for thread in threads:
        thread.start()
    for version in range(2, 40):
        source.version = version
        index.refresh()
    done.set()
    for thread in threads:
        thread.join()
    assert not errors
    assert index.current().version == 39
