from rag_service.generation.extractive import MAX_CHARS, ExtractiveGenerator, overlap_score
from rag_service.retrieval.vector_index import Hit


def hit(doc_id: str, text: str, score: float = 0.5) -> Hit:
    return Hit(f"{doc_id}:0", doc_id, doc_id.title(), text, score)


def test_extractive_answer_picks_the_matching_sentence():
    hits = [
        hit("plans", "Nordlys has three plans. The Starter plan is for one shop. Prices are given on quotation."),
        hit("vat", "Invoices are in euros. French customers pay VAT at the standard rate of 20%. Payment is monthly."),
    ]
    generated = ExtractiveGenerator().generate("What VAT rate do French customers pay?", hits)
    assert "standard rate of 20%" in generated.text
    assert "Invoices are in euros" not in generated.text
    assert generated.used == [1]
    assert 0.0 <= generated.confidence <= 1.0


def test_weakly_matching_sentences_are_left_out():
    hits = [
        hit("hours", "Support is open from 9:00 to 18:00 during opening hours. Call us."),
        hit("webhooks", "Webhooks are retried for 24 hours."),
    ]
    generated = ExtractiveGenerator().generate("support opening hours", hits)
    assert generated.text == "Support is open from 9:00 to 18:00 during opening hours."
    assert generated.used == [0]


def test_extractive_answer_keeps_passage_order_and_length_cap():
    text = " ".join(f"The widget step {n} needs the widget key." for n in range(60))
    generated = ExtractiveGenerator().generate("widget key", [hit("manual", text)])
    assert len(generated.text) <= MAX_CHARS
    parts = generated.text.split(". ")
    numbers = [int(part.split()[3]) for part in parts if part.startswith("The widget step")]
    assert numbers == sorted(numbers)


def test_no_sentence_sharing_a_term_means_no_answer():
    assert ExtractiveGenerator().generate("weather in Oslo", [hit("plans", "Three plans exist.")]) is None


def test_overlap_score_is_a_binary_cosine():
    assert overlap_score({"a", "b"}, {"a", "b"}) == 1.0
    assert overlap_score({"a"}, {"b"}) == 0.0
    assert overlap_score(set(), {"a"}) == 0.0
    assert abs(overlap_score({"a", "b"}, {"a", "c", "d", "e"}) - 1 / 8**0.5) < 1e-9


def test_rag_answer_from_the_sample_corpus_cites_its_sources(make_service):
    service = make_service()
    answer = service.answer("Quel est le taux de TVA ?")
    assert (answer.source, answer.degraded, answer.success) == ("rag", False, True)
    assert "20 %" in answer.answer and "278" in answer.answer
    assert answer.sources[0].id == "billing-tva"
    assert answer.sources[0].title == "Facturation et TVA"
    assert 0.0 < answer.confidence <= 1.0

    hours = service.answer("What are the support opening hours?")
    assert "9:00 to 18:00" in hours.answer
    assert "support-response-times" in {source.id for source in hours.sources}


def test_sources_are_one_per_document_with_rounded_scores_and_short_snippets(make_service):
    service = make_service()
    answer = service.answer("plans pricing Business Enterprise users", top_k=8)
    ids = [source.id for source in answer.sources]
    assert len(ids) == len(set(ids)) > 0
    for source in answer.sources:
        assert source.score == round(source.score, 4)
        assert 0 < len(source.snippet) <= 200
    assert [source.score for source in answer.sources] == sorted((s.score for s in answer.sources), reverse=True)


def test_unrelated_question_gets_a_healthy_no_answer(make_service):
    answer = make_service().answer("quantum chromodynamics gluon")
    assert (answer.source, answer.degraded, answer.sources, answer.confidence) == ("rag", False, [], 0.0)
    assert "pas trouvé" in answer.answer


def test_top_k_bounds_the_sources(make_service):
    service = make_service()
    assert len(service.answer("plans support data Nordlys", top_k=1).sources) <= 1
