"""Shortening text for answers and source snippets."""

from __future__ import annotations

SNIPPET_CHARS = 200  # the snippet of a source in an answer


def truncate(text: str, limit: int) -> str:
    """At most `limit` chars, cut between words, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"
