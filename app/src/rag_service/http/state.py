"""Process lifecycle shared by the server (signals) and the app (health, middleware)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from rag_service.config import Settings
from rag_service.http.drills import Drills
from rag_service.models import Answer, CheckResult, Document, IngestResult


class Lifecycle:
    def __init__(self) -> None:
        self.started_at = time.monotonic()
        self.drain_started_at: float | None = None
        # When the last request other than /health* and /metrics arrived: the traffic a load balancer sends.
        self.last_traffic_at: float | None = None
        self.inflight = 0
        # Requests cancelled because the drain timeout (or a forced exit) cut them short.
        self.cut_requests = 0

    @property
    def draining(self) -> bool:
        return self.drain_started_at is not None

    def uptime(self) -> float:
        return time.monotonic() - self.started_at

    def begin_drain(self) -> bool:
        """Enter draining; False when already draining. Safe in a signal handler: one assignment, no locks
        (the rag_draining gauge is set by the server's next tick)."""
        if self.drain_started_at is not None:
            return False
        self.drain_started_at = time.monotonic()
        return True

    def drain_elapsed(self) -> float:
        return 0.0 if self.drain_started_at is None else time.monotonic() - self.drain_started_at

    def idle_before_drain(self, seconds: float) -> bool:
        """True when no traffic arrived in the `seconds` before the drain began (or ever): no load balancer is
        sending requests here, so there is nobody to wait for."""
        if self.drain_started_at is None:
            return False
        return self.last_traffic_at is None or self.drain_started_at - self.last_traffic_at >= seconds


class Service(Protocol):
    """The service core's facade (rag_service.service.RagService), as the HTTP layer uses it.

    The HTTP layer also uses `answer_or_defer(query, top_k) -> Answer | Callable[[], Answer]` when the
    service has it: the answer when it needs no I/O, else a blocking function returning it (never raising),
    for a worker thread. Without it, answer() runs in a worker thread.
    """

    def start(self) -> None: ...
    def close(self) -> None: ...
    def answer(self, query: str, top_k: int | None = None) -> Answer: ...
    def ingest(self, documents: list[Document]) -> IngestResult: ...
    def check_db(self) -> CheckResult: ...
    def check_vector(self) -> CheckResult: ...
    def check_ai(self) -> CheckResult: ...
    def breaker_states(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    service: Service
    lifecycle: Lifecycle
    drills: Drills
