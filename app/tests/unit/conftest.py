from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fake_openai import FakeOpenAI
from prometheus_client import REGISTRY

from rag_service.config import Settings, load_settings
from rag_service.service import RagService

FAST = {
    "redis_timeout_seconds": 0.2,
    "corpus_check_interval_seconds": 0.05,
    "breaker_failure_threshold": 3,
    "breaker_recovery_timeout_seconds": 0.5,
    "retry_max_attempts": 3,
    "retry_backoff_initial_seconds": 0.01,
    "retry_backoff_max_seconds": 0.05,
    "retry_deadline_seconds": 1.0,
    "provider_timeout_seconds": 0.5,
}


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll until predicate() is true; fail after timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.01)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings_for(redis_server) -> Callable[..., Settings]:
    def build(**overrides: object) -> Settings:
        return load_settings(**{"redis_url": redis_server.url, **FAST, **overrides})

    return build


@pytest.fixture
def make_service(settings_for) -> Iterator[Callable[..., RagService]]:
    """Build and start a RagService on the test Redis (fast timeouts); closed after the test."""
    services: list[RagService] = []

    def build(start: bool = True, **overrides: object) -> RagService:
        service = RagService(settings_for(**overrides))
        services.append(service)
        if start:
            service.start()
        return service

    yield build
    for service in services:
        service.close()
