import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag_service.text.chunking import chunk_text, split_sentences


def sentence(n: int) -> str:
    return f"Sentence number {n} talks about topic {n} in some detail."


def test_split_sentences_on_terminal_punctuation_and_newlines():
    text = "First one. Second one? Third one! Fourth line\nFifth line"
    assert split_sentences(text) == ["First one.", "Second one?", "Third one!", "Fourth line", "Fifth line"]


def test_split_sentences_keeps_abbreviations_and_french_quotes():
    assert split_sentences("Use a plan, e.g. the Pro plan. Next.") == ["Use a plan, e.g. the Pro plan.", "Next."]
    assert split_sentences("Il a dit « Oui. » Puis il est parti.") == ["Il a dit « Oui. »", "Puis il est parti."]


def test_tiny_and_empty_inputs():
    assert chunk_text("", 500, 100) == []
    assert chunk_text("   \n ", 500, 100) == []
    assert chunk_text("Just one short sentence.", 500, 100) == ["Just one short sentence."]


def test_chunks_respect_size_and_keep_sentences_whole():
    sentences = [sentence(n) for n in range(40)]
    chunks = chunk_text(" ".join(sentences), 200, 60)
    assert len(chunks) > 5
    assert all(len(chunk) <= 200 for chunk in chunks)
    for chunk in chunks:
        # every chunk is a run of whole sentences
        assert all(part in sentences for part in split_sentences(chunk))
    covered = {part for chunk in chunks for part in split_sentences(chunk)}
    assert covered == set(sentences)


def test_consecutive_chunks_overlap_by_whole_sentences_within_the_overlap():
    chunks = chunk_text(" ".join(sentence(n) for n in range(40)), 200, 60)
    for previous, following in zip(chunks, chunks[1:]):
        carried = split_sentences(following)[0]
        assert previous.endswith(carried)
        assert len(carried) <= 60


def test_no_overlap_when_the_last_sentence_is_longer_than_the_overlap():
    chunks = chunk_text(" ".join(sentence(n) for n in range(10)), 200, 20)
    parts = [split_sentences(chunk) for chunk in chunks]
    for previous, following in zip(parts, parts[1:]):
        assert previous[-1] != following[0]


def test_huge_sentence_is_cut_between_words_with_overlap():
    words = [f"w{n:04d}" for n in range(2000)]
    chunks = chunk_text(" ".join(words), 500, 100)
    assert all(len(chunk) <= 500 for chunk in chunks)
    seen = [chunk.split() for chunk in chunks]
    assert {w for chunk in seen for w in chunk} == set(words)
    for previous, following in zip(seen, seen[1:]):
        assert following[0] in previous  # windows overlap
        assert following[-1] not in previous  # and move forward


def test_word_longer_than_a_chunk_is_hard_cut():
    chunks = chunk_text("x" * 1250, 500, 100)
    assert [len(chunk) for chunk in chunks] == [500, 500, 250]


def test_overlap_must_be_smaller_than_size():
    with pytest.raises(ValueError):
        chunk_text("Some text.", 100, 100)


words_strategy = st.lists(
    st.from_regex(r"[A-Za-zéà]{1,15}", fullmatch=True) | st.sampled_from([".", "!", "?", "\n"]),
    min_size=0,
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(words_strategy, st.integers(100, 600), st.integers(0, 99))
def test_any_text_chunks_within_size_and_loses_no_word(tokens, size, overlap):
    text = " ".join(tokens)
    chunks = chunk_text(text, size, overlap)
    assert all(0 < len(chunk) <= size for chunk in chunks)
    found = set(re.findall(r"\w+", " ".join(chunks)))
    assert set(re.findall(r"\w+", text)) == found
