"""A service per embedding space over one shared corpus: the re-index, writes reaching every space in use, the
completeness that /health/vector reports, answers cached per space and version, and the retrieval drill."""

import json
import time

from conftest import metric, wait_until
from fake_openai import Reply

from rag_service.models import Document
from rag_service.reindex import run
from rag_service.retrieval.space import EmbeddingSpace
from rag_service.service import SAMPLE_CORPUS_PATH

SAMPLE_SIZE = len(json.loads(SAMPLE_CORPUS_PATH.read_text()))
VAT = "Quel est le taux de TVA ?"
FAILING = Reply(status=500, body={"error": "generator down"})


def space_id(dim: int) -> str:
    return EmbeddingSpace("hashing", "feature-hash-1", dim, 500, 100).id


def imported(count: int, word: str = "quorblat") -> list[Document]:
    return [
        Document(text=f"The {word} unit {n} stores pallets in aisle {n}. It is inspected weekly.", id=f"{word}-{n}")
        for n in range(count)
    ]


def run_reindex(settings_for, capsys, **overrides) -> tuple[int, str]:
    code = run(settings_for(**overrides))
    return code, capsys.readouterr().out


def test_a_new_dimension_is_built_by_the_reindex_then_complete(make_service, settings_for, capsys):
    live = make_service()
    live.ingest(imported(60))
    candidate = make_service(embedding_dim=256, space_follow_max_behind=10)
    details = candidate.check_vector().details
    assert details["space"] != live.check_vector().details["space"]
    assert (details["chunk_count"], details["space_complete"], details["documents_behind"]) == (0, False, SAMPLE_SIZE + 60)

    code, out = run_reindex(settings_for, capsys, embedding_dim=256, reindex_batch_documents=16)
    assert code == 0, out
    assert f"{SAMPLE_SIZE + 60}/{SAMPLE_SIZE + 60} documents (100.0%)" in out
    assert f"{SAMPLE_SIZE + 60} documents embedded" in out
    wait_until(lambda: candidate.check_vector().details["space_complete"], what="the candidate's space complete")
    # The re-index's progress, exported by the processes of its space.
    wait_until(lambda: metric("rag_reindex_progress_ratio") == 1.0, what="rag_reindex_progress_ratio at 1")
    details = candidate.check_vector().details
    assert (details["document_count"], details["documents_behind"]) == (SAMPLE_SIZE + 60, 0)
    assert "billing-tva" in {source.id for source in candidate.answer(VAT).sources}
    # The live space was not touched, and the run again changes nothing.
    assert live.check_vector().details["space_complete"] is True
    code, out = run_reindex(settings_for, capsys, embedding_dim=256)
    assert code == 0 and "0 documents embedded" in out


def test_a_killed_reindex_resumes_where_it_stopped(make_service, settings_for, capsys, monkeypatch):
    make_service().ingest(imported(80))
    from rag_service.retrieval import space_sync

    calls = {"n": 0}
    real = space_sync._sync_batch

    def dies_after_three_batches(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise ConnectionError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(space_sync, "_sync_batch", dies_after_three_batches)
    code, out = run_reindex(settings_for, capsys, embedding_dim=128, reindex_batch_documents=10)
    assert code == 1 and "FAILED: ConnectionError: killed" in out
    monkeypatch.setattr(space_sync, "_sync_batch", real)
    code, out = run_reindex(settings_for, capsys, embedding_dim=128, reindex_batch_documents=10)
    assert code == 0, out
    assert "resuming: the last re-index of this space stopped at 30/" in out
    assert f"{SAMPLE_SIZE + 80 - 30} documents embedded" in out and "30 already in the space" in out


def test_documents_ingested_through_either_color_reach_both_spaces(make_service):
    blue = make_service()
    green = make_service(embedding_dim=256)  # a second space, built at once from the small sample by its follower
    wait_until(lambda: green.check_vector().details["space_complete"], what="green's space")
    blue.ingest([Document(text="The flibbertigibbet gauge reads 42 units.", id="gauge-blue")])
    green.ingest([Document(text="The snorkelwump valve opens at 7 bar.", id="valve-green")])
    for service in (blue, green):
        wait_until(lambda s=service: s.check_vector().details["space_complete"], what="both spaces caught up")
        assert "gauge-blue" in {s.id for s in service.answer("flibbertigibbet gauge").sources}
        assert "valve-green" in {s.id for s in service.answer("snorkelwump valve").sources}


def test_reindex_removes_only_spaces_nothing_needs(make_service, settings_for, capsys, redis_server):
    served = make_service()  # 384 dimensions, in use
    for dim, version in ((32, "0.1.0"), (64, "0.2.0")):
        assert run_reindex(settings_for, capsys, embedding_dim=dim, version=version)[0] == 0
    client = redis_server.client()
    stale = {sid.decode(): time.time() - 1000 for sid, name in client.hgetall("rag:spaces").items() if b"/384/" not in name}
    client.zadd("rag:spaces:used", {**stale, served.space.id: time.time()})
    code, out = run_reindex(
        settings_for,
        capsys,
        embedding_dim=128,
        version="0.3.0",
        reindex_keep_versions="0.1.0",
        space_keep_recent=2,
        space_retention_seconds=0,
    )
    assert code == 0
    assert "kept the space hashing/feature-hash-1/32/c500-o100/title-nl-chunk-1: used by 0.1.0" in out
    assert "kept the space hashing/feature-hash-1/128/c500-o100/title-nl-chunk-1: built now" in out
    assert "kept the space hashing/feature-hash-1/384/c500-o100/title-nl-chunk-1: among the 2 most recently used" in out
    assert "removed the space hashing/feature-hash-1/64/c500-o100/title-nl-chunk-1 (versions 0.2.0)" in out
    spaces = sorted(name.decode().split("/")[2] for name in client.hvals("rag:spaces"))
    assert spaces == ["128", "32", "384"]
    assert client.keys("rag:space:" + space_id(64) + ":*") == []


def test_answers_are_cached_per_version(make_service, fake_openai):
    old = make_service(llm_base_url=fake_openai.url, version="1.0.0")
    old.answer(VAT)
    fake_openai.default = FAILING
    assert old.answer(VAT).source == "cache"
    assert make_service(llm_base_url=fake_openai.url, version="1.1.0").answer(VAT).source != "cache"


def test_truncate_retrieval_drill_keeps_only_the_best_chunks(make_service):
    honest = make_service().answer("What are the support hours and the support channels?", top_k=4)
    drilled = make_service(chaos="truncate_retrieval:1").answer(
        "What are the support hours and the support channels?", top_k=4
    )
    assert len(drilled.sources) == 1 < len(honest.sources)


def test_reindex_refuses_bad_configuration(monkeypatch, capsys):
    from rag_service.reindex import main

    monkeypatch.setenv("RAG_REINDEX_BATCH_DOCUMENTS", "0")
    assert main() == 2
    assert "RAG_REINDEX_BATCH_DOCUMENTS" in capsys.readouterr().err
