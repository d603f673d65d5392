import threading
import time

import pybreaker
import pytest
import redis
from conftest import metric, wait_until

from rag_service.resilience.breakers import DependencyBreaker


def state_metric(dependency: str) -> float:
    return metric("rag_circuit_breaker_state", dependency=dependency)


def fail() -> None:
    raise redis.exceptions.ConnectionError("refused")


def test_breaker_opens_after_the_threshold_and_fails_fast():
    breaker = DependencyBreaker("generator", fail_max=3, reset_timeout=60)
    failures = metric("rag_dependency_failures_total", dependency="generator")
    for _attempt in range(2):
        with pytest.raises(redis.exceptions.ConnectionError):
            breaker.call(fail)
    assert breaker.state() == "closed" and state_metric("generator") == 0
    with pytest.raises(pybreaker.CircuitBreakerError):  # the failure that trips it
        breaker.call(fail)
    assert breaker.state() == "open" and state_metric("generator") == 2
    assert metric("rag_dependency_failures_total", dependency="generator") == failures + 3

    calls = []
    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(calls.append, 1)
    assert calls == []  # not even attempted
    assert metric("rag_dependency_failures_total", dependency="generator") == failures + 3


def test_half_open_after_the_recovery_timeout_then_closed_on_success():
    breaker = DependencyBreaker("generator", fail_max=1, reset_timeout=0.2)
    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(fail)
    assert breaker.state() == "open"
    wait_until(lambda: breaker.state() == "half-open", timeout=2, what="half-open")
    assert state_metric("generator") == 1
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state() == "closed" and state_metric("generator") == 0


def test_failed_trial_reopens():
    breaker = DependencyBreaker("generator", fail_max=1, reset_timeout=0.2)
    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(fail)
    wait_until(lambda: breaker.state() == "half-open", timeout=2, what="half-open")
    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(fail)
    assert breaker.state() == "open"


def test_our_own_errors_do_not_count():
    breaker = DependencyBreaker("generator", fail_max=1, reset_timeout=60)
    for _attempt in range(3):
        with pytest.raises(ValueError):
            breaker.call(int, "not a number")
    assert breaker.state() == "closed"


def test_calls_run_concurrently_through_a_closed_breaker():
    breaker = DependencyBreaker("generator", fail_max=5, reset_timeout=60)
    inside = threading.Barrier(3, timeout=2)
    threads = [threading.Thread(target=breaker.call, args=(inside.wait,)) for _thread in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not inside.broken  # all three were inside the guarded call at once


def test_redis_killed_opens_the_breaker_and_recovery_closes_it(make_service, redis_server):
    service = make_service(breaker_failure_threshold=3, breaker_recovery_timeout_seconds=0.5)
    assert service.check_db().ok
    assert service.check_db().details["latency_ms"] > 0
    assert service.breaker_states() == {"redis": "closed", "embedder": "closed", "generator": "closed"}

    redis_server.stop()
    results = [service.check_db() for _check in range(3)]
    assert not any(result.ok for result in results)
    assert service.breaker_states()["redis"] == "open"
    assert state_metric("redis") == 2

    # Open: fails fast, without touching the network.
    started = time.perf_counter()
    result = service.check_db()
    assert time.perf_counter() - started < 0.05
    assert result.error == "circuit open" and result.details["breaker"] == "open"

    # Queries keep being answered, by the in-process index, and fast.
    started = time.perf_counter()
    for _query in range(20):
        answer = service.answer("Quel est le taux de TVA ?")
        assert answer.source == "rag" and answer.success
    assert time.perf_counter() - started < 0.5
    # Its version checks fail (fast, circuit open): it keeps serving and says it is stale.
    wait_until(lambda: service.check_vector().details["stale"], what="index reported stale")
    assert service.check_vector().ok

    redis_server.start()
    wait_until(lambda: service.breaker_states()["redis"] == "half-open", timeout=2, what="half-open")
    assert state_metric("redis") == 1
    assert service.check_db().ok  # the trial call
    assert service.breaker_states()["redis"] == "closed"
    assert state_metric("redis") == 0
    # The restarted Redis lost its data: the service notices and seeds the sample corpus again.
    wait_until(lambda: not service.check_vector().details["stale"], what="index verified again")
    assert service.check_vector().details["document_count"] > 0


def test_queries_alone_open_the_redis_breaker_when_redis_dies(make_service, redis_server):
    service = make_service(breaker_failure_threshold=3)
    failures = metric("rag_dependency_failures_total", dependency="redis")
    redis_server.stop()
    for _query in range(3):  # each successful answer writes the cache: one failed Redis call each
        assert service.answer("Quel est le taux de TVA ?").source == "rag"
    assert service.breaker_states()["redis"] == "open"
    assert metric("rag_dependency_failures_total", dependency="redis") >= failures + 3


def test_redis_down_at_start_recovers_once_redis_is_back(make_service, redis_server):
    redis_server.stop()
    service = make_service(breaker_failure_threshold=2, breaker_recovery_timeout_seconds=0.5)
    for _query in range(5):
        assert service.answer("Quel est le taux de TVA ?").source == "keyword_fallback"
    assert service.breaker_states()["redis"] == "open"
    redis_server.start()
    recovered = time.monotonic()
    wait_until(lambda: service.answer("Quel est le taux de TVA ?").source == "rag", timeout=5, what="rag again")
    assert time.monotonic() - recovered < 0.5 + 1.0  # recovery timeout + slack
    assert service.breaker_states()["redis"] == "closed"
    assert service.check_vector().ok


def test_pooled_connections_survive_a_redis_restart(make_service, redis_server):
    service = make_service()
    pool = service._redis.connection_pool
    connections = [pool.get_connection() for _connection in range(4)]
    for connection in connections:
        connection.send_command("PING")
        connection.read_response()
        pool.release(connection)
    redis_server.restart()
    # Each pooled connection is broken; using one must reconnect, not fail the call.
    assert all(service.check_db().ok for _check in range(4))
    assert service.breaker_states()["redis"] == "closed"
