"""Keyword fallback (degradation layer 3): the best-matching entry of a FAQ file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rag_service.models import Answer, Source
from rag_service.text.normalise import words
from rag_service.text.snippet import SNIPPET_CHARS, truncate

# Keyword words this long or longer also match longer query words ('tarif' matches 'tarifs'); shorter
# ones must match exactly, so 'ht' does not match 'http'.
PREFIX_MATCH_MIN = 4


@dataclass(frozen=True)
class FaqEntry:
    id: str
    title: str
    answer: str
    keywords: tuple[tuple[str, ...], ...]  # each keyword as its normalised words


@dataclass(frozen=True)
class FaqMatch:
    entry: FaqEntry
    score: int  # matched keyword words

    @property
    def confidence(self) -> float:
        return min(0.3 + 0.05 * self.score, 0.6)

    def to_answer(self, query: str) -> Answer:
        entry = self.entry
        source = Source(
            id=entry.id, title=entry.title, score=self.confidence, snippet=truncate(entry.answer, SNIPPET_CHARS)
        )
        return Answer(
            query=query,
            answer=entry.answer,
            sources=[source],
            degraded=True,
            source="keyword_fallback",
            confidence=self.confidence,
        )


def _word_matches(keyword_word: str, query_word: str) -> bool:
    if len(keyword_word) >= PREFIX_MATCH_MIN:
        return query_word.startswith(keyword_word)
    return query_word == keyword_word


def _occurs(keyword: tuple[str, ...], query: list[str]) -> bool:
    span = len(keyword)
    return any(
        all(_word_matches(k, q) for k, q in zip(keyword, query[start : start + span]))
        for start in range(len(query) - span + 1)
    )


class Faq:
    """Entries: {"id", "title", "answer", "keywords": [...]}; "{support_contact}" in an answer is
    replaced by RAG_SUPPORT_CONTACT. An entry scores the number of words of its keywords found in the
    query (a keyword of several words must appear as a phrase); the best score wins, ties go to the
    earlier entry, and a query matching no keyword gets no entry."""

    def __init__(self, entries: list[FaqEntry]) -> None:
        self.entries = entries

    @classmethod
    def load(cls, path: Path, support_contact: str) -> Faq:
        """Raises ValueError naming the file and the entry when the file is unusable."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"FAQ file {path}: {exc}") from exc
        if not isinstance(raw, list):
            raise ValueError(f"FAQ file {path}: expected a JSON list of entries")
        entries = []
        for n, item in enumerate(raw):
            try:
                keywords = tuple(tuple(words(keyword)) for keyword in item["keywords"])
                entry = FaqEntry(
                    id=str(item["id"]),
                    title=str(item["title"]),
                    answer=str(item["answer"]).replace("{support_contact}", support_contact),
                    keywords=tuple(keyword for keyword in keywords if keyword),
                )
            except (KeyError, TypeError) as exc:
                raise ValueError(f"FAQ file {path}: entry {n} needs id, title, answer and keywords ({exc!r})") from exc
            entries.append(entry)
        return cls(entries)

    def match(self, query: str) -> FaqMatch | None:
        query_words = words(query)
        best: FaqMatch | None = None
        for entry in self.entries:
            score = sum(len(keyword) for keyword in entry.keywords if _occurs(keyword, query_words))
            if score and (best is None or score > best.score):
                best = FaqMatch(entry, score)
        return best
