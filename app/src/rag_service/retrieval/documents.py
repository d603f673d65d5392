"""Turning posted documents into what the corpus stores: a stable id, a title, the text, a content fingerprint.

Chunks are not part of a document: each embedding space cuts its own (retrieval/space.py), so the same
document is stored once, whatever the spaces that index it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from rag_service.models import Document
from rag_service.text.chunking import split_sentences
from rag_service.text.snippet import truncate

TITLE_MAX_CHARS = 80


@dataclass(frozen=True)
class PreparedDocument:
    id: str
    title: str
    text: str
    metadata: dict[str, Any]
    fingerprint: str  # changes whenever the text, the title or the metadata change


def document_id(document: Document) -> str:
    """The given id, or one derived from the text so the same content posted twice maps to one document."""
    if document.id:
        return document.id
    canonical = " ".join(document.text.split())
    return "doc-" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


def default_title(text: str) -> str:
    return truncate(next(iter(split_sentences(text)), ""), TITLE_MAX_CHARS)


def content_fingerprint(text: str, title: str, metadata: dict[str, Any]) -> str:
    stored = {"text": text, "title": title, "metadata": metadata}
    return hashlib.sha256(json.dumps(stored, sort_keys=True, default=str).encode()).hexdigest()


def prepare(document: Document) -> PreparedDocument:
    title = document.title or default_title(document.text)
    # Metadata goes through JSON once, so that what is fingerprinted is what is stored and read back.
    metadata = json.loads(json.dumps(document.metadata, default=str))
    return PreparedDocument(
        id=document_id(document),
        title=title,
        text=document.text,
        metadata=metadata,
        fingerprint=content_fingerprint(document.text, title, metadata),
    )
