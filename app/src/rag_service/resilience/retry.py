"""Retry policy (tenacity): transient errors only, exponential backoff with full jitter, bounded attempts
and a total deadline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

from rag_service.config import Settings
from rag_service.resilience.errors import is_transient

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    backoff_initial: float
    backoff_max: float
    deadline: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_attempts=settings.retry_max_attempts,
            backoff_initial=settings.retry_backoff_initial_seconds,
            backoff_max=settings.retry_backoff_max_seconds,
            deadline=settings.retry_deadline_seconds,
        )

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call fn, retrying transient errors; the last error is re-raised as is.

        Wait before attempt n+1 is uniform in [0, min(backoff_max, backoff_initial * 2**(n-1))] (full
        jitter). stop_before_delay, rather than stop_after_delay, never starts an attempt whose backoff
        would end past the deadline, so the total time stays within the deadline plus one attempt.
        """
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_transient),
            wait=tenacity.wait_random_exponential(multiplier=self.backoff_initial, max=self.backoff_max),
            stop=tenacity.stop_after_attempt(self.max_attempts) | tenacity.stop_before_delay(self.deadline),
            reraise=True,
        )
        return retrying(fn, *args, **kwargs)
