"""Turning posted documents into what the corpus stores: a stable id, a title, chunks, a fingerprint."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from rag_service.models import Document
from rag_service.text.chunking import chunk_text, split_sentences
from rag_service.text.snippet import truncate

TITLE_MAX_CHARS = 80


@dataclass(frozen=True)
class PreparedDocument:
    id: str
    title: str
    metadata: dict[str, Any]
    fingerprint: str  # changes whenever anything stored for the document would change
    chunks: list[str]


def document_id(document: Document) -> str:
    """The given id, or one derived from the text so the same content posted twice maps to one document."""
    if document.id:
        return document.id
    canonical = " ".join(document.text.split())
    return "doc-" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


def default_title(text: str) -> str:
    return truncate(next(iter(split_sentences(text)), ""), TITLE_MAX_CHARS)


def prepare(document: Document, chunk_size: int, chunk_overlap: int, embedder_name: str) -> PreparedDocument:
    title = document.title or default_title(document.text)
    stored = {
        "text": document.text,
        "title": title,
        "metadata": document.metadata,
        "chunking": [chunk_size, chunk_overlap],
        "embedder": embedder_name,
    }
    fingerprint = hashlib.sha256(json.dumps(stored, sort_keys=True, default=str).encode()).hexdigest()
    return PreparedDocument(
        id=document_id(document),
        title=title,
        metadata=document.metadata,
        fingerprint=fingerprint,
        chunks=chunk_text(document.text, chunk_size, chunk_overlap),
    )
