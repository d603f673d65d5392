"""Sentence splitting and sentence-aware chunking with overlap."""

from __future__ import annotations

import re

# A sentence ends with terminal punctuation (optionally closed by quotes or brackets; French puts a space
# before "»") and whitespace; a newline always ends one (lists, headings).
_BOUNDARY = re.compile(r"[.!?…]+(?:\s?»)?[\"'\u201d\u2019)\]]*\s+|\s*\n\s*")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences; a lowercase word after a period (e.g. 'e.g. the') does not start one."""
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        is_newline = "\n" in match.group()
        if not is_newline and end < len(text) and text[end].islower():
            continue
        sentence = text[start:end].strip()
        if sentence:
            sentences.append(sentence)
        start = end
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _split_long(sentence: str, size: int, overlap: int) -> list[str]:
    """Windows of at most `size` chars over a sentence too long for one chunk, cut between words."""
    pieces: list[str] = []
    words = [w[i : i + size] for w in sentence.split() for i in range(0, len(w), size)]
    start = 0
    while start < len(words):
        length, end = 0, start
        while end < len(words) and length + len(words[end]) + (end > start) <= size:
            length += len(words[end]) + (end > start)
            end += 1
        pieces.append(" ".join(words[start:end]))
        if end >= len(words):
            break
        # Step back over up to `overlap` chars of words, always moving forward by at least one word.
        back, carried = end, 0
        while back - 1 > start and carried + len(words[back - 1]) + 1 <= overlap:
            back -= 1
            carried += len(words[back]) + 1
        start = back
    return pieces


def chunk_text(text: str, size: int, overlap: int) -> list[str]:
    """Pack whole sentences into chunks of at most `size` chars.

    Each chunk starts with the trailing sentences of the previous one, up to `overlap` chars, so that a
    passage straddling a boundary is retrievable from either side. Sentences longer than `size` are cut
    into overlapping windows between words.
    """
    if overlap >= size:
        raise ValueError("overlap must be smaller than size")
    units: list[str] = []
    for sentence in split_sentences(text):
        units.extend(_split_long(sentence, size, overlap) if len(sentence) > size else [sentence])

    chunks: list[str] = []
    current: list[str] = []
    for unit in units:
        if current and _joined_length([*current, unit]) > size:
            chunks.append(" ".join(current))
            carried: list[str] = []
            for previous in reversed(current):
                if _joined_length([previous, *carried]) > overlap:
                    break
                carried.insert(0, previous)
            while carried and _joined_length([*carried, unit]) > size:
                carried.pop(0)
            current = carried
        current.append(unit)
    if current:
        chunks.append(" ".join(current))
    return chunks


def _joined_length(parts: list[str]) -> int:
    return sum(map(len, parts)) + len(parts) - 1
