"""Answers from an OpenAI-compatible POST {base}/chat/completions endpoint, grounded in the chunks."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import SecretStr

from rag_service.generation.generator import GeneratedAnswer
from rag_service.openai_client import OpenAICompatibleClient
from rag_service.resilience.errors import ProviderError
from rag_service.retrieval.vector_index import Hit

SYSTEM_PROMPT = (
    "You answer questions about a product using only the numbered context passages. "
    "If the passages do not contain the answer, say so. Answer in the language of the question, "
    "in at most five sentences."
)
MAX_TOKENS = 400


def build_messages(query: str, hits: Sequence[Hit]) -> list[dict[str, str]]:
    context = "\n\n".join(f"[{n}] {hit.title}\n{hit.text}" for n, hit in enumerate(hits, start=1))
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {query}"},
    ]


class OpenAIChatGenerator:
    in_process = False

    def __init__(self, base_url: str, api_key: SecretStr | None, model: str, timeout_seconds: float) -> None:
        self.name = f"openai:{model}"
        self.model = model
        self._client = OpenAICompatibleClient(base_url, api_key, timeout_seconds)

    def generate(self, query: str, hits: Sequence[Hit]) -> GeneratedAnswer:
        body = self._client.post_json(
            "/chat/completions",
            {"model": self.model, "messages": build_messages(query, hits), "temperature": 0, "max_tokens": MAX_TOKENS},
        )
        try:
            text = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ProviderError(f"/chat/completions: unexpected response shape ({exc!r})") from exc
        if not isinstance(text, str) or not text.strip():
            raise ProviderError("/chat/completions: empty answer")
        # The model gives no score; retrieval similarity is the best signal of how grounded the answer is.
        return GeneratedAnswer(text=text.strip(), confidence=min(max(hits[0].score, 0.0), 1.0))

    def close(self) -> None:
        self._client.close()
