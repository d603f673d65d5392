"""The choice between the local extractive generator and an OpenAI-compatible chat provider."""

from __future__ import annotations

from rag_service.config import Settings
from rag_service.generation.extractive import ExtractiveGenerator
from rag_service.generation.generator import Generator
from rag_service.generation.openai_chat import OpenAIChatGenerator


def build_generator(settings: Settings) -> Generator:
    if settings.llm_base_url:
        return OpenAIChatGenerator(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            model=settings.llm_model,
            timeout_seconds=settings.provider_timeout_seconds,
        )
    return ExtractiveGenerator()
