"""One circuit breaker per dependency (pybreaker), with its state exported as a Prometheus gauge."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pybreaker

from rag_service import metrics
from rag_service.resilience.errors import is_dependency_failure

log = logging.getLogger(__name__)

T = TypeVar("T")

STATE_VALUES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}


class DependencyBreaker(pybreaker.CircuitBreakerListener):
    """A pybreaker.CircuitBreaker for one dependency.

    Only dependency failures count (see errors.is_dependency_failure); each one increments
    rag_dependency_failures_total. An open circuit raises pybreaker.CircuitBreakerError at once.

    pybreaker moves from open to half-open lazily, on the first call after the recovery timeout. state()
    reports half-open as soon as that timeout has elapsed, because the next call will be let through as
    the trial; the rag_circuit_breaker_state gauge reads state() at scrape time, so it shows the same.
    """

    def __init__(self, name: str, fail_max: int, reset_timeout: float) -> None:
        self.name = name
        self._opened_at = 0.0
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            exclude=[lambda exc: not is_dependency_failure(exc)],
            listeners=[self],
            name=name,
        )
        metrics.CIRCUIT_BREAKER_STATE.labels(dependency=name).set_function(lambda: STATE_VALUES[self.state()])

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # calling() runs fn outside pybreaker's lock; CircuitBreaker.call() would hold it for the whole call
        # and serialise every request of the thread pool behind one slow dependency call.
        with self._breaker.calling():
            return fn(*args, **kwargs)

    def state(self) -> str:
        current = self._breaker.current_state
        if current == pybreaker.STATE_OPEN and time.monotonic() - self._opened_at >= self._breaker.reset_timeout:
            return pybreaker.STATE_HALF_OPEN
        return current

    # pybreaker.CircuitBreakerListener
    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        metrics.DEPENDENCY_FAILURES.labels(dependency=self.name).inc()

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        if new_state.name == pybreaker.STATE_OPEN:
            self._opened_at = time.monotonic()
        old = old_state.name if old_state else None
        level = logging.WARNING if new_state.name == pybreaker.STATE_OPEN else logging.INFO
        log.log(
            level,
            "circuit breaker %s: %s -> %s",
            self.name,
            old,
            new_state.name,
            extra={"dependency": self.name, "breaker_state": new_state.name},
        )
