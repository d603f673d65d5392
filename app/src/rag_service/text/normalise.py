"""Normalisation shared by the embedder, the answer cache key and the FAQ matcher."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[^\W_]+")
# The Unicode blocks of combining diacritical marks, which NFKD splits off accented letters.
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")

# Function words of English and French; they carry no topic and would dominate hashed similarities.
STOPWORDS = frozenset(
    """
    a about after all also am an and any are as at be been before being both but by can could did do
    does doing for from had has have having he her here him his how i if in into is it its just me more
    most my no nor not of off on once only or other our out over own same she should so some such than
    that the their them then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your
    au aux avec ce ces cet cette c d dans de des du elle en est et etre eux il ils j je l la le les leur
    leurs lui m ma mais me meme mes moi mon n ne nos notre nous on ont ou par pas pour qu que quel quelle
    quelles quels qui s sa se ses son sont sur t ta te tes toi ton tu un une vos votre vous y
    """.split()
)


def fold(text: str) -> str:
    """Lowercase with accents removed: 'Équipe' -> 'equipe'."""
    if text.isascii():
        return text.lower()
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text.casefold()))


def words(text: str) -> list[str]:
    """Folded words, punctuation stripped."""
    return _WORD.findall(fold(text))


def normalise_text(text: str) -> str:
    """Folded words joined by single spaces: the canonical form of a query."""
    return " ".join(words(text))


def content_words(text: str) -> list[str]:
    """Folded words without stopwords, in order."""
    return [word for word in words(text) if word not in STOPWORDS]
