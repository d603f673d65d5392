"""The Redis client: every call bounded by RAG_REDIS_TIMEOUT_SECONDS, no hidden retries."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rag_service.config import Settings


def connect(settings: Settings) -> redis.Redis:
    """A pooled, thread-safe client. It connects lazily, so this never fails on a down server.

    redis-py retries failed commands by itself (3 times, with backoff, since 6.0); that is disabled so the
    service's own policy (resilience.retry behind a circuit breaker) is the only one, and a dead Redis
    costs one connection attempt per call.
    """
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        retry=Retry(NoBackoff(), 0),
    )
