import json
import time

import pytest
from conftest import metric
from fake_openai import Reply

from rag_service.config import DATA_DIR
from rag_service.degradation.apology import apology
from rag_service.degradation.faq import Faq

VAT = "Quel est le taux de TVA ?"
FAILING = Reply(status=500, body={"error": "generator down"})


def degraded_count(layer: str) -> float:
    return metric("rag_degraded_responses_total", layer=layer)


def cache_count(result: str) -> float:
    return metric("rag_cache_requests_total", result=result)


@pytest.fixture
def faq():
    return Faq.load(DATA_DIR / "faq_fr.json", "aide@nordlys.example")


# Layer order, each layer forced


def test_layer_1_full_rag_when_everything_works(make_service, fake_openai):
    service = make_service(llm_base_url=fake_openai.url)
    answer = service.answer(VAT)
    assert (answer.source, answer.degraded) == ("rag", False)
    assert answer.answer == fake_openai.chat_answer
    assert "billing-tva" in {source.id for source in answer.sources}


def test_layer_2_cache_when_the_generator_fails_after_a_success(make_service, fake_openai):
    service = make_service(llm_base_url=fake_openai.url)
    fresh = service.answer(VAT)
    fake_openai.default = FAILING
    hits, degraded = cache_count("hit"), degraded_count("cache")
    # Same query modulo case, accents and punctuation.
    cached = service.answer("quel est le TAUX de tva")
    assert (cached.source, cached.degraded, cached.success) == ("cache", True, True)
    assert cached.answer == fresh.answer
    assert cached.sources == fresh.sources
    assert cached.query == "quel est le TAUX de tva"
    assert cache_count("hit") == hits + 1
    assert degraded_count("cache") == degraded + 1


def test_cache_entries_expire_after_the_ttl(make_service, fake_openai, redis_server):
    service = make_service(llm_base_url=fake_openai.url, cache_ttl_seconds=120)
    service.answer(VAT)
    [key] = redis_server.client().keys("rag:cache:*")
    assert 0 < redis_server.client().ttl(key) <= 120


def test_cache_is_keyed_by_top_k(make_service, fake_openai):
    service = make_service(llm_base_url=fake_openai.url)
    service.answer(VAT, top_k=2)
    fake_openai.default = FAILING
    assert service.answer(VAT, top_k=2).source == "cache"
    assert service.answer(VAT, top_k=3).source == "keyword_fallback"


def test_layer_3_keyword_fallback_when_rag_fails_and_nothing_is_cached(make_service, fake_openai):
    service = make_service(llm_base_url=fake_openai.url)
    fake_openai.default = FAILING
    misses, degraded = cache_count("miss"), degraded_count("keyword_fallback")
    answer = service.answer(VAT)
    assert (answer.source, answer.degraded) == ("keyword_fallback", True)
    assert "20 %" in answer.answer and "278" in answer.answer
    assert answer.sources[0].id == "faq-tva"
    assert cache_count("miss") == misses + 1
    assert degraded_count("keyword_fallback") == degraded + 1


def test_layer_4_apology_when_nothing_matches(make_service, fake_openai):
    service = make_service(llm_base_url=fake_openai.url, support_contact="aide@nordlys.example")
    fake_openai.default = FAILING
    degraded = degraded_count("error_handler")
    answer = service.answer("Is the mobile application on Android?")  # retrieved, but in no FAQ entry
    assert (answer.source, answer.degraded, answer.success, answer.sources) == ("error_handler", True, True, [])
    assert "Désolé" in answer.answer and "aide@nordlys.example" in answer.answer
    assert degraded_count("error_handler") == degraded + 1


def test_redis_dead_before_the_index_loads_degrades_to_keyword_then_apology(make_service, redis_server):
    redis_server.stop()
    service = make_service()  # start() must not raise
    errors = cache_count("error")
    started = time.monotonic()
    vat = service.answer(VAT)
    unknown = service.answer("quantum chromodynamics")
    assert time.monotonic() - started < 1.0
    assert (vat.source, vat.degraded) == ("keyword_fallback", True)
    assert (unknown.source, unknown.degraded) == ("error_handler", True)
    assert cache_count("error") >= errors + 1
    assert not service.check_vector().ok


def test_answer_never_raises_even_on_an_unexpected_bug(make_service, monkeypatch):
    service = make_service()
    monkeypatch.setattr(service, "_full_rag", lambda *a: 1 / 0)
    monkeypatch.setattr(service._faq, "match", lambda *a: 1 / 0)
    answer = service.answer(VAT)
    assert (answer.source, answer.degraded) == ("error_handler", True)


# The FAQ


@pytest.mark.parametrize(
    ("query", "entry", "expected"),
    [
        ("Quel est le taux de TVA applicable ?", "faq-tva", ["20 %", "article 278", "CGI"]),
        ("What VAT do you charge?", "faq-tva", ["20 %"]),
        ("Combien coûtent vos tarifs ?", "faq-tarifs", ["devis"]),
        ("Quels sont vos prix ?", "faq-tarifs", ["devis"]),
        ("Quels sont les horaires du support ?", "faq-horaires-support", ["lundi au vendredi", "9h", "18h"]),
        ("À quelle heure êtes-vous ouverts ?", "faq-horaires-support", ["9h à 18h"]),
        ("Où trouver mes factures ?", "faq-factures", ["PDF"]),
    ],
)
def test_faq_answers_in_french(faq, query, entry, expected):
    match = faq.match(query)
    assert match is not None and match.entry.id == entry
    answer = match.to_answer(query)
    assert (answer.source, answer.degraded) == ("keyword_fallback", True)
    for fragment in expected:
        assert fragment in answer.answer
    assert 0 < answer.confidence <= 0.6


def test_faq_substitutes_the_support_contact(faq):
    assert "aide@nordlys.example" in faq.match("devis").entry.answer


def test_faq_needs_a_keyword_and_short_keywords_match_exactly(faq):
    assert faq.match("quantum chromodynamics") is None
    assert faq.match("http status") is None  # 'ht' is a keyword, but not a prefix of 'http'
    assert faq.match("prix HT").entry.id in {"faq-tva", "faq-tarifs"}


def test_faq_best_score_wins_and_ties_go_to_the_earlier_entry(tmp_path):
    path = tmp_path / "faq.json"
    path.write_text(
        json.dumps(
            [
                {"id": "a", "title": "A", "answer": "A", "keywords": ["alpha"]},
                {"id": "b", "title": "B", "answer": "B", "keywords": ["alpha", "beta gamma"]},
                {"id": "c", "title": "C", "answer": "C", "keywords": ["delta"]},
            ]
        )
    )
    faq = Faq.load(path, "x")
    assert faq.match("alpha").entry.id == "a"
    assert faq.match("alpha beta gamma").entry.id == "b"
    assert faq.match("beta delta gamma").entry.id == "c"  # 'beta gamma' is a phrase


def test_unusable_faq_file_is_rejected_with_its_name(tmp_path):
    path = tmp_path / "faq.json"
    path.write_text('[{"id": "a"}]')
    with pytest.raises(ValueError, match=r"faq\.json"):
        Faq.load(path, "x")


def test_apology_never_fails_and_names_the_contact():
    answer = apology("q", "+33 1 23 45 67 89")
    assert answer.source == "error_handler" and answer.degraded and answer.confidence == 0.0
    assert "+33 1 23 45 67 89" in answer.answer
