from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from integration.service_process import ServiceProcess
from redis_process import RedisProcess

# Above the 1 MB document limit, so that a 1 MB+ document reaches the per-document check.
SHARED_MAX_BODY_BYTES = 3 * 1024 * 1024

StartService = Callable[..., ServiceProcess]


@pytest.fixture
def start_service() -> Iterator[StartService]:
    """start_service(env={...}, redis_url=..., wait=True): a running service, killed at teardown."""
    started: list[ServiceProcess] = []

    def start(env: dict[str, str] | None = None, redis_url: str | None = None, wait: bool = True) -> ServiceProcess:
        service = ServiceProcess(env, redis_url).start()
        started.append(service)
        if wait:
            service.wait_listening()
        return service

    yield start
    for service in started:
        service.close()


@pytest.fixture(scope="session")
def shared_redis() -> Iterator[RedisProcess]:
    """A redis-server of its own for the shared service (the redis_server fixture flushes between tests)."""
    server = RedisProcess()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def shared_service(shared_redis: RedisProcess) -> Iterator[ServiceProcess]:
    """One healthy service with the sample corpus, for the read-mostly contract and bad-input tests."""
    service = ServiceProcess({"RAG_MAX_BODY_BYTES": str(SHARED_MAX_BODY_BYTES)}, shared_redis.url).start()
    try:
        service.wait_healthy()
        yield service
    finally:
        service.close()
