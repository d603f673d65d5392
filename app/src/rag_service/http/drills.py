"""Drill switches (RAG_CHAOS) applied at the HTTP layer: a release that misbehaves on purpose, so that the
platform's safety nets (health gating, canary analysis, rollback) can be exercised. Off by default.

crash_on_start is applied by the entry point, before the server starts.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from rag_service.chaos import ChaosMode
from rag_service.http.errors import DrillFailure

log = logging.getLogger("rag_service.drills")

UNHEALTHY_REASON = "drill: unhealthy"


class Drills:
    def __init__(self, mode: ChaosMode, rng: Callable[[], float] = random.random) -> None:
        self.mode = mode
        self._rng = rng
        self._delay = mode.slow_ms / 1000

    @property
    def unhealthy(self) -> bool:
        return self.mode.unhealthy

    @property
    def bad_contract(self) -> bool:
        return self.mode.bad_contract

    @property
    def affects_queries(self) -> bool:
        return bool(self._delay or self.mode.error_rate)

    async def before_query(self) -> None:
        """Apply slow:<ms> and error_rate:<r> to one /api/query request."""
        if self._delay:
            await asyncio.sleep(self._delay)
        # random() is in [0, 1): a rate of 1 always fails, a rate of 0 never does.
        if self.mode.error_rate and self._rng() < self.mode.error_rate:
            raise DrillFailure(f"injected error (error_rate={self.mode.error_rate})")

    def announce(self, raw: str) -> None:
        if self.mode.active:
            log.warning("drill active: RAG_CHAOS=%s; this process misbehaves on purpose", raw, extra={"chaos": raw})
