"""Prometheus metrics of the service. Labels stay bounded: no client id or query text."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "rag_requests_total", "HTTP requests served", ["endpoint", "method", "status"]
)
REQUEST_DURATION = Histogram(
    "rag_request_duration_seconds",
    "HTTP request duration",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
DEGRADED_RESPONSES = Counter(
    "rag_degraded_responses_total", "Query answers served by a degradation layer", ["layer"]
)
CIRCUIT_BREAKER_STATE = Gauge(
    "rag_circuit_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open", ["dependency"]
)
DEPENDENCY_FAILURES = Counter(
    "rag_dependency_failures_total", "Failed calls to a dependency (each attempt)", ["dependency"]
)
CACHE_REQUESTS = Counter(
    "rag_cache_requests_total", "Answer cache lookups", ["result"]
)
CORPUS_CHUNKS = Gauge("rag_corpus_chunks", "Chunks in the in-process search index")
SPACE_DOCUMENTS_BEHIND = Gauge(
    "rag_space_documents_behind", "Documents of the corpus that this process's embedding space does not hold yet"
)
REINDEX_PROGRESS = Gauge(
    "rag_reindex_progress_ratio", "Share of the documents that the last re-index of this process's space has done"
)
BUILD_INFO = Gauge("rag_build_info", "Version and color of this process (always 1)", ["version", "color"])
INFLIGHT_REQUESTS = Gauge("rag_inflight_requests", "Requests being processed")
DRAINING = Gauge("rag_draining", "1 while the process drains before exit")

DEPENDENCIES = ("redis", "embedder", "generator")
CACHE_RESULTS = ("hit", "miss", "error")
DEGRADATION_LAYERS = ("cache", "keyword_fallback", "error_handler")


def initialise(version: str, color: str) -> None:
    """Create every bounded label set at zero so dashboards and alerts see series from the start."""
    BUILD_INFO.labels(version=version, color=color).set(1)
    for dependency in DEPENDENCIES:
        CIRCUIT_BREAKER_STATE.labels(dependency=dependency).set(0)
        DEPENDENCY_FAILURES.labels(dependency=dependency)
    for result in CACHE_RESULTS:
        CACHE_REQUESTS.labels(result=result)
    for layer in DEGRADATION_LAYERS:
        DEGRADED_RESPONSES.labels(layer=layer)
