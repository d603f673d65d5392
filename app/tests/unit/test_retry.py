import time

import httpx
import pybreaker
import pytest
import redis
from conftest import metric
from fake_openai import Reply

from rag_service.openai_client import OpenAICompatibleClient
from rag_service.resilience.breakers import DependencyBreaker
from rag_service.resilience.errors import ProviderError, is_dependency_failure, is_transient
from rag_service.resilience.guard import Guard
from rag_service.resilience.retry import RetryPolicy


def status_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://x/v1/embeddings")
    return httpx.HTTPStatusError("error", request=request, response=httpx.Response(status, request=request))


@pytest.mark.parametrize(
    ("exc", "transient", "counts"),
    [
        (redis.exceptions.ConnectionError("refused"), True, True),
        (redis.exceptions.TimeoutError("slow"), True, True),
        (redis.exceptions.AuthenticationError("bad password"), False, True),
        (redis.exceptions.ResponseError("WRONGTYPE"), False, True),
        (httpx.ConnectError("refused"), True, True),
        (httpx.ReadTimeout("slow"), True, True),
        (status_error(429), True, True),
        (status_error(500), True, True),
        (status_error(503), True, True),
        (status_error(400), False, True),
        (status_error(401), False, True),
        (ProviderError("bad json"), False, True),
        (ValueError("our bug"), False, False),
        (pybreaker.CircuitBreakerError("open"), False, False),
    ],
)
def test_error_classification(exc, transient, counts):
    assert is_transient(exc) is transient
    assert is_dependency_failure(exc) is counts


@pytest.fixture
def client(fake_openai):
    http = OpenAICompatibleClient(fake_openai.url, None, timeout_seconds=0.2)
    yield http
    http.close()


def post(client: OpenAICompatibleClient) -> dict:
    return client.post_json("/chat/completions", {"model": "m", "messages": []})


FAST_POLICY = RetryPolicy(max_attempts=4, backoff_initial=0.01, backoff_max=0.05, deadline=5)


def test_transient_statuses_are_retried_until_success(client, fake_openai):
    fake_openai.reply(Reply(503), Reply(429), Reply(500))
    body = FAST_POLICY.call(post, client)
    assert body["choices"][0]["message"]["content"] == fake_openai.chat_answer
    assert len(fake_openai.requests) == 4


def test_attempts_are_bounded(client, fake_openai):
    fake_openai.default = Reply(500)
    with pytest.raises(httpx.HTTPStatusError) as raised:
        FAST_POLICY.call(post, client)
    assert raised.value.response.status_code == 500
    assert len(fake_openai.requests) == 4


@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_are_not_retried(client, fake_openai, status):
    fake_openai.default = Reply(status)
    with pytest.raises(httpx.HTTPStatusError):
        FAST_POLICY.call(post, client)
    assert len(fake_openai.requests) == 1


def test_timeouts_are_retried_within_the_attempt_bound(client, fake_openai):
    fake_openai.default = Reply(delay=1.0)  # hangs past the 0.2 s client timeout
    policy = RetryPolicy(max_attempts=3, backoff_initial=0.01, backoff_max=0.02, deadline=5)
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        policy.call(post, client)
    elapsed = time.monotonic() - started
    assert len(fake_openai.requests) == 3
    assert 3 * 0.2 <= elapsed < 3 * 0.2 + 0.01 + 0.02 + 0.3  # attempts x timeout + max backoff + slack


def test_the_deadline_stops_retries_before_the_attempt_bound(client, fake_openai):
    fake_openai.default = Reply(delay=1.0)
    policy = RetryPolicy(max_attempts=10, backoff_initial=0.01, backoff_max=0.02, deadline=0.3)
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        policy.call(post, client)
    # No attempt starts once the deadline is reached: at most the deadline plus the attempt in flight.
    assert time.monotonic() - started < 0.3 + 0.2 + 0.2
    assert len(fake_openai.requests) == 2


def redis_down() -> None:
    raise redis.exceptions.ConnectionError("down")


def test_backoff_is_exponential_with_full_jitter_within_bounds(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)  # tenacity sleeps through time.sleep
    policy = RetryPolicy(max_attempts=6, backoff_initial=0.1, backoff_max=0.5, deadline=3600)
    bounds = [0.1, 0.2, 0.4, 0.5, 0.5]
    per_attempt: list[list[float]] = [[] for _bound in bounds]
    for _sample in range(200):
        waits.clear()
        with pytest.raises(redis.exceptions.ConnectionError):
            policy.call(redis_down)
        assert len(waits) == 5
        for n, wait in enumerate(waits):
            per_attempt[n].append(wait)
    for bound, observed in zip(bounds, per_attempt):
        assert all(0 <= wait <= bound for wait in observed)
        assert max(observed) > 0.8 * bound and min(observed) < 0.2 * bound  # jitter spans the window


def test_breaker_wraps_each_attempt_and_an_open_circuit_stops_retrying(client, fake_openai):
    fake_openai.default = Reply(503)
    breaker = DependencyBreaker("generator", fail_max=2, reset_timeout=60)
    guard = Guard(breaker, RetryPolicy(max_attempts=5, backoff_initial=0.01, backoff_max=0.02, deadline=5))
    failures = metric("rag_dependency_failures_total", dependency="generator")
    with pytest.raises(pybreaker.CircuitBreakerError):
        guard.call(post, client)
    assert len(fake_openai.requests) == 2  # the second failure opened the circuit: no third attempt
    assert metric("rag_dependency_failures_total", dependency="generator") == failures + 2
    started = time.monotonic()
    with pytest.raises(pybreaker.CircuitBreakerError):
        guard.call(post, client)
    assert time.monotonic() - started < 0.05
    assert len(fake_openai.requests) == 2


def test_provider_error_on_a_body_that_is_not_json(client, fake_openai):
    fake_openai.default = Reply(body=b"<html>gateway</html>")
    with pytest.raises(ProviderError):
        post(client)
