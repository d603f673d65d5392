import subprocess
import sys

import numpy as np

from rag_service.retrieval.hashing_embedder import HashingEmbedder, features
from rag_service.text.normalise import content_words, fold, normalise_text


def test_normalisation_folds_case_accents_and_punctuation():
    assert fold("Équipe ÇA élève") == "equipe ca eleve"
    assert normalise_text("  Quel est le TAUX de T.V.A. ?? ") == "quel est le taux de t v a"
    assert content_words("What are the support hours?") == ["support", "hours"]
    assert content_words("Quels sont les horaires du support ?") == ["horaires", "support"]


def test_features_are_unigrams_and_bigrams_of_content_words():
    assert features("The taux de TVA!") == ["taux", "tva", "taux tva"]


def test_vectors_are_float32_l2_normalised_and_empty_text_is_zero():
    vectors = HashingEmbedder(384).embed(["Support hours are Monday to Friday.", "", "?!"])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert np.isclose(np.linalg.norm(vectors[0]), 1.0, atol=1e-6)
    assert not vectors[1].any() and not vectors[2].any()


def test_same_text_modulo_case_accents_punctuation_stopwords_embeds_identically():
    embedder = HashingEmbedder(384)
    a, b = embedder.embed(["Quel est le taux de TVA ?", "taux TVA"])
    assert np.array_equal(a, b)
    c, d = embedder.embed(["Équipe élevée", "equipe elevee"])
    assert np.array_equal(c, d)


def test_bigrams_make_word_order_count():
    embedder = HashingEmbedder(384)
    phrase, reordered = embedder.embed(["support hours", "hours support"])
    assert not np.array_equal(phrase, reordered)
    document = embedder.embed(["Our support hours are short."])[0]
    assert document @ phrase > document @ reordered


def test_embedding_is_stable_across_processes_and_hash_seeds():
    code = (
        "from rag_service.retrieval.hashing_embedder import HashingEmbedder;"
        "import sys; sys.stdout.write(HashingEmbedder(384).embed(['Nordlys pricing on quotation']).tobytes().hex())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {HashingEmbedder(384).embed(["Nordlys pricing on quotation"]).tobytes().hex()}


def test_dimension_is_configurable():
    assert HashingEmbedder(64).embed(["anything at all"]).shape == (1, 64)
