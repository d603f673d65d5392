from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from redis_process import RedisProcess  # noqa: E402


@pytest.fixture(scope="session")
def redis_session():
    server = RedisProcess()
    server.start()
    yield server
    server.close()


@pytest.fixture
def redis_server(redis_session):
    """A running, empty redis-server. Tests may stop() and restart() it."""
    if redis_session.proc is None or redis_session.proc.poll() is not None:
        redis_session.start()
    redis_session.client().flushall()
    yield redis_session
    if redis_session.proc is None or redis_session.proc.poll() is not None:
        redis_session.start()
