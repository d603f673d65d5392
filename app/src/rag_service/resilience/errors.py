"""Which exceptions are dependency failures (they count against a circuit breaker) and which are transient
(worth retrying)."""

from __future__ import annotations

import httpx
import redis.exceptions


class ProviderError(Exception):
    """An AI provider answered, but with something unusable (malformed JSON, wrong shape or size)."""


def is_transient(exc: BaseException) -> bool:
    """Connection errors, timeouts, HTTP 429 and 5xx: another attempt may succeed."""
    if isinstance(exc, (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)):
        return False
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return status == 429 or status >= 500
    return isinstance(exc, httpx.TransportError)


# Any error raised by a dependency, transient or not: a provider answering 401 is as unusable as one that
# is down. Errors of our own code (ValueError, KeyError...) are not among them.
DEPENDENCY_ERRORS = (redis.exceptions.RedisError, httpx.HTTPError, ProviderError)


def is_dependency_failure(exc: BaseException) -> bool:
    return isinstance(exc, DEPENDENCY_ERRORS)
