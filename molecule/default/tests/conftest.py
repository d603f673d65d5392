"""Helpers for verifying the converged stack on this Docker host, and the order of the suites on it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

PROMETHEUS = "http://127.0.0.1:9090"
# The releases change the live version and restart nginx: they run last, on the stack the other suites checked as
# site.yml left it; the RAG releases (a new embedding space, the quality gate) after the blue/green ones.
RELEASE_SUITES = ("test_bluegreen.py", "test_rag_release.py")
PUBLIC = "http://127.0.0.1:8080"


def poll(predicate, timeout: float, what: str):
    """Return the first truthy result of predicate(), or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def http(method: str, url: str, body: dict | None = None, timeout: float = 10, headers: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, _decode(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers, _decode(err.read())


def _decode(raw: bytes):
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")


def prometheus_query(expr: str) -> list:
    from urllib.parse import quote

    status, _headers, body = http("GET", f"{PROMETHEUS}/api/v1/query?query={quote(expr)}")
    assert status == 200 and body["status"] == "success", body
    return body["data"]["result"]


@pytest.fixture
def docker_inspect(host):
    def inspect(name: str) -> dict:
        return json.loads(host.check_output(f"docker inspect {name}"))[0]

    return inspect


def pytest_collection_modifyitems(items):
    # Stable: each suite keeps its own order; the release suites last, in the order of RELEASE_SUITES.
    items.sort(key=lambda item: RELEASE_SUITES.index(item.path.name) + 1 if item.path.name in RELEASE_SUITES else 0)
