"""Service settings from RAG_* environment variables, validated at start."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag_service.chaos import ChaosMode, parse_chaos

ENV_PREFIX = "RAG_"
DATA_DIR = Path(__file__).parent / "data"

PositiveSeconds = Annotated[float, Field(gt=0, le=3600)]
# Visible ASCII only: what an Authorization header can carry unchanged, and what compare_digest accepts.
ADMIN_TOKEN_PATTERN = re.compile(r"[!-~]{16,4096}")
# Settings whose value is never echoed in an error message.
SECRET_FIELDS = frozenset({"embeddings_api_key", "llm_api_key", "admin_token"})


class ConfigError(Exception):
    """Raised with one line per invalid setting, each naming its environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Serving
    host: str = "0.0.0.0"
    port: int = Field(8000, ge=1, le=65535)
    version: str = Field("dev", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    color: str = Field("standalone", pattern=r"^[a-z][a-z0-9-]{0,31}$")
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    drain_timeout_seconds: PositiveSeconds = 20.0
    # Part of the drain budget: after SIGTERM the listener stays open this long so that load balancers
    # can observe /health "draining" before connections are refused.
    drain_grace_seconds: float = Field(2.0, ge=0, le=600)
    # Longer than nginx's upstream keepalive_timeout (60 s), so the proxy closes idle connections first.
    keep_alive_timeout_seconds: float = Field(75.0, ge=1, le=3600)
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    # Bearer token required by the write endpoints; unset or empty refuses every write (secure by default).
    admin_token: SecretStr | None = None

    # Redis (answer cache and the shared corpus)
    redis_url: str = "redis://localhost:6379/0"
    redis_timeout_seconds: PositiveSeconds = 0.5
    redis_key_prefix: str = Field("rag:", min_length=1, max_length=64)
    cache_ttl_seconds: int = Field(3600, ge=1)
    corpus_check_interval_seconds: float = Field(1.0, ge=0, le=60)

    # Retrieval
    chunk_size: int = Field(500, ge=100, le=8000)
    chunk_overlap: int = Field(100, ge=0, le=2000)
    embedding_dim: int = Field(384, ge=16, le=8192)
    default_top_k: int = Field(4, ge=1, le=20)
    # Chunks less similar than this (cosine) to the query are not used to answer it.
    min_relevance_score: float = Field(0.1, ge=0, le=1)
    load_sample_corpus: bool = True
    max_documents_per_call: int = Field(1000, ge=1)

    # Embedding spaces (retrieval/space.py). A serving process keeps its space up with documents ingested elsewhere;
    # a space never complete yet it builds only when at most this many are missing (else: python -m rag_service reindex).
    space_follow_max_behind: int = Field(500, ge=0)
    reindex_batch_documents: int = Field(100, ge=1, le=10000)
    # Chunks embedded per second by the re-index at most (0: no limit), to spare a paid or shared embedder.
    reindex_max_chunks_per_second: float = Field(0.0, ge=0)
    # What the re-index may remove afterwards: a space that none of these versions uses, that is not among the
    # most recently used, and that no process used for this long. Comma-separated versions (the deploy gives the
    # candidate, live and previous ones).
    reindex_keep_versions: str = Field("", max_length=4096)
    space_keep_recent: int = Field(2, ge=2, le=100)
    space_retention_seconds: float = Field(7 * 24 * 3600.0, ge=0)
    max_document_bytes: int = Field(1024 * 1024, ge=1)

    # Optional OpenAI-compatible providers; unset base URL means the local default.
    embeddings_base_url: str | None = None
    embeddings_model: str = "text-embedding-3-small"
    embeddings_api_key: SecretStr | None = None
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    provider_timeout_seconds: PositiveSeconds = 10.0

    # Resilience
    breaker_failure_threshold: int = Field(5, ge=1, le=1000)
    breaker_recovery_timeout_seconds: PositiveSeconds = 10.0
    retry_max_attempts: int = Field(3, ge=1, le=10)
    retry_backoff_initial_seconds: float = Field(0.05, gt=0, le=60)
    retry_backoff_max_seconds: float = Field(1.0, gt=0, le=300)
    retry_deadline_seconds: PositiveSeconds = 5.0

    # Degradation
    faq_path: Path = DATA_DIR / "faq_fr.json"
    support_contact: str = Field("support@example.com", min_length=1, max_length=200)

    # Drills (off by default): crash_on_start, unhealthy, slow:<ms>, error_rate:<0..1>, bad_contract
    chaos: str = ""

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not re.match(r"^(redis|rediss|unix)://", value):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("embeddings_base_url", "llm_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("admin_token", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("admin_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not ADMIN_TOKEN_PATTERN.fullmatch(value.get_secret_value()):
            raise ValueError("must be 16 to 4096 visible ASCII characters (no spaces), or empty to refuse writes")
        return value

    @field_validator("chaos")
    @classmethod
    def _chaos(cls, value: str) -> str:
        parse_chaos(value)  # raises ValueError naming the accepted modes
        return value

    @field_validator("faq_path")
    @classmethod
    def _faq_exists(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("RAG_CHUNK_OVERLAP must be smaller than RAG_CHUNK_SIZE")
        if self.drain_grace_seconds >= self.drain_timeout_seconds:
            raise ValueError("RAG_DRAIN_GRACE_SECONDS must be smaller than RAG_DRAIN_TIMEOUT_SECONDS")
        if self.retry_backoff_initial_seconds > self.retry_backoff_max_seconds:
            raise ValueError("RAG_RETRY_BACKOFF_INITIAL_SECONDS must not exceed RAG_RETRY_BACKOFF_MAX_SECONDS")
        return self

    @cached_property
    def chaos_mode(self) -> ChaosMode:
        return parse_chaos(self.chaos)


def load_settings(**overrides) -> Settings:
    """Build settings from the environment (and overrides, for tests); raise ConfigError on bad values."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            name = f"{ENV_PREFIX}{field.upper()}" if field else "configuration"
            value = err.get("input")
            shown = "" if field in SECRET_FIELDS or isinstance(value, dict) else f" (got {value!r})"
            lines.append(f"{name}: {err['msg']}{shown}")
        raise ConfigError("\n".join(lines)) from None
