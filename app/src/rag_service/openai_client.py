"""HTTP client for OpenAI-compatible APIs (embeddings, chat completions): bearer auth, timeouts, JSON."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from rag_service.resilience.errors import ProviderError


class OpenAICompatibleClient:
    """Thread-safe (one pooled httpx.Client). Raises httpx.HTTPStatusError on 4xx/5xx, httpx transport
    errors on connection failures and timeouts, ProviderError when the body is not a JSON object."""

    def __init__(self, base_url: str, api_key: SecretStr | None, timeout_seconds: float) -> None:
        headers = {"Accept": "application/json"}
        if api_key is not None and api_key.get_secret_value():
            headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=httpx.Timeout(timeout_seconds))

    def post_json(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = self._http.post(path, json=payload)
        response.raise_for_status()
        try:
            body = response.json()
        except ValueError as exc:
            raise ProviderError(f"{path}: response is not JSON") from exc
        if not isinstance(body, dict):
            raise ProviderError(f"{path}: response is not a JSON object")
        return body

    def close(self) -> None:
        self._http.close()
