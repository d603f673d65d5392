"""The call path to one dependency: retries around a circuit breaker around each attempt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from rag_service.resilience.breakers import DependencyBreaker
from rag_service.resilience.retry import RetryPolicy

T = TypeVar("T")


class Guard:
    """Every attempt goes through the breaker, so each failed attempt counts towards opening it, and an
    open circuit raises pybreaker.CircuitBreakerError, which is not transient: it stops the retries at
    once instead of waiting out backoffs against a dependency known to be down."""

    def __init__(self, breaker: DependencyBreaker, policy: RetryPolicy) -> None:
        self.breaker = breaker
        self.policy = policy

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self.policy.call(self.breaker.call, fn, *args, **kwargs)

    def call_once(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A single attempt, for calls whose caller has its own fallback (query path, health probes)."""
        return self.breaker.call(fn, *args, **kwargs)
