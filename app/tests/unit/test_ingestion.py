import json

import pytest
from conftest import wait_until
from fake_openai import Reply

from rag_service.models import DependencyUnavailable, Document
from rag_service.service import SAMPLE_CORPUS_PATH

SAMPLE_SIZE = len(json.loads(SAMPLE_CORPUS_PATH.read_text()))
WIDGET = "The Zephyr widget calibrates flux capacitors in under three seconds."


def sources_of(service, query):
    return {source.id for source in service.answer(query).sources}


def test_sample_corpus_is_loaded_into_an_empty_redis(make_service):
    service = make_service()
    details = service.check_vector().details
    assert details["document_count"] == SAMPLE_SIZE
    answer = service.answer("Quel est le taux de TVA ?")
    assert answer.source == "rag" and not answer.degraded
    assert "billing-tva" in {source.id for source in answer.sources}


def test_sample_corpus_can_be_turned_off(make_service):
    service = make_service(load_sample_corpus=False)
    assert service.check_vector().details["chunk_count"] == 0


def test_two_services_starting_on_an_empty_redis_seed_the_sample_once(make_service, redis_server):
    first, second = make_service(start=False), make_service(start=False)
    first.start()
    second.start()
    assert second.check_vector().details["document_count"] == SAMPLE_SIZE
    assert len(redis_server.client().keys("rag:document:*")) == SAMPLE_SIZE


def test_same_id_twice_does_not_duplicate(make_service, redis_server):
    service = make_service(load_sample_corpus=False)
    document = Document(text=WIDGET, id="widget", title="Zephyr widget")
    first = service.ingest([document])
    version = service.check_vector().details["corpus_version"]
    second = service.ingest([document])
    assert first == second
    assert (second.processed_count, second.chunk_count, second.ids) == (1, 1, ["widget"])
    assert service.check_vector().details["corpus_version"] == version  # nothing rewritten
    assert service.check_vector().details["chunk_count"] == 1


def test_same_content_without_id_does_not_duplicate(make_service):
    service = make_service(load_sample_corpus=False)
    first = service.ingest([Document(text=WIDGET)])
    second = service.ingest([Document(text=WIDGET), Document(text=WIDGET)])
    assert second.ids == first.ids * 2
    assert first.ids[0].startswith("doc-")
    assert service.check_vector().details["document_count"] == 1
    assert second.chunk_count == 1


def test_same_id_with_new_text_replaces_the_old_chunks(make_service):
    service = make_service(load_sample_corpus=False)
    service.ingest([Document(text=WIDGET, id="widget")])
    service.ingest([Document(text="The Zephyr widget now ships with a solar charger.", id="widget")])
    answer = service.answer("Zephyr widget")
    assert "solar charger" in answer.answer
    assert "flux" not in answer.answer
    assert service.check_vector().details["chunk_count"] == 1


def test_duplicate_ids_in_one_call_keep_the_last(make_service):
    service = make_service(load_sample_corpus=False)
    result = service.ingest([Document(text=WIDGET, id="w"), Document(text="Zephyr widget, second version.", id="w")])
    assert result.ids == ["w", "w"] and result.processed_count == 2
    assert "second version" in service.answer("Zephyr widget").answer


def test_long_document_is_chunked(make_service):
    service = make_service(load_sample_corpus=False, chunk_size=200, chunk_overlap=50)
    text = " ".join(f"Paragraph {n} explains the Zephyr widget option {n}." for n in range(40))
    result = service.ingest([Document(text=text, id="long")])
    assert result.chunk_count > 5
    assert service.check_vector().details["chunk_count"] == result.chunk_count


def test_corpus_is_shared_between_services(make_service):
    writer = make_service()
    reader = make_service()
    version = reader.check_vector().details["corpus_version"]
    assert "widget" not in sources_of(reader, "Zephyr widget flux capacitors")
    writer.ingest([Document(text=WIDGET, id="widget", title="Zephyr widget")])
    # The reader sees it once its throttled version check notices the new version.
    wait_until(lambda: "widget" in sources_of(reader, "Zephyr widget flux capacitors"), what="reader sees the document")
    details = reader.check_vector().details
    assert details["corpus_version"] > version
    assert details["document_count"] == SAMPLE_SIZE + 1


def test_reader_with_a_long_check_interval_keeps_its_index_until_the_check(make_service):
    writer = make_service()
    reader = make_service(corpus_check_interval_seconds=60)
    writer.ingest([Document(text=WIDGET, id="widget")])
    assert reader.check_vector().details["document_count"] == SAMPLE_SIZE
    reader._index.refresh()
    assert reader.check_vector().details["document_count"] == SAMPLE_SIZE + 1


def test_ingest_with_redis_down_raises_dependency_unavailable(make_service, redis_server):
    service = make_service()
    redis_server.stop()
    with pytest.raises(DependencyUnavailable) as raised:
        service.ingest([Document(text=WIDGET, id="widget")])
    assert raised.value.dependency == "redis"


def test_ingest_with_the_embedder_failing_raises_dependency_unavailable(make_service, fake_openai):
    service = make_service(load_sample_corpus=False, embeddings_base_url=fake_openai.url)
    fake_openai.default = Reply(status=500, body={"error": "boom"})
    with pytest.raises(DependencyUnavailable) as raised:
        service.ingest([Document(text=WIDGET, id="widget")])
    assert raised.value.dependency == "embedder"
