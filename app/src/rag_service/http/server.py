"""uvicorn with a draining shutdown.

On SIGTERM/SIGINT uvicorn would close its listener at once, so a load balancer would see connection
refused rather than "draining". Here the first signal only marks the process draining (/health answers
503 "draining", responses carry Connection: close) and keeps serving for RAG_DRAIN_GRACE_SECONDS;
then uvicorn's own graceful shutdown closes the listener and waits for in-flight requests, for the
rest of RAG_DRAIN_TIMEOUT_SECONDS. A second signal forces the exit.

A process that got no traffic (anything but /health and /metrics) during the grace length before the
signal skips the grace: no load balancer sends it requests (the idle color of a blue/green pair), so
waiting would only slow down its replacement.

Exit status: 0 when every request completed, 1 when the drain timeout or a forced exit cut requests.
"""

from __future__ import annotations

import logging
from types import FrameType

import uvicorn

from rag_service import metrics
from rag_service.config import Settings
from rag_service.http.app import create_app
from rag_service.http.state import Lifecycle

log = logging.getLogger("rag_service.server")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, grace: float, drain_timeout: float) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.grace = grace
        self.drain_timeout = drain_timeout
        self.signals: list[int] = []
        self.announced = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Runs in a signal handler: set flags only (no logging, no metric locks); on_tick does the rest.
        # Not recorded in uvicorn's _captured_signals: uvicorn would re-raise it after serving, and the
        # default SIGTERM action would turn a clean drain into a "killed by signal" exit.
        self.signals.append(sig)
        if not self.lifecycle.begin_drain():
            self.should_exit = True
            self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self.lifecycle.draining and not self.announced:
            self.announced = True
            metrics.DRAINING.set(1)
            skipped = self.grace > 0 and self.lifecycle.idle_before_drain(self.grace)
            if skipped:
                self.grace = 0.0
            log.info(
                "signal %d: draining (grace %.1fs%s, drain timeout %.1fs)",
                self.signals[0],
                self.grace,
                ", skipped: no traffic before the signal" if skipped else "",
                self.drain_timeout,
                extra={"signal": self.signals[0]},
            )
        if self.lifecycle.draining and not self.should_exit:
            elapsed = self.lifecycle.drain_elapsed()
            if elapsed >= self.grace:
                # uvicorn closes the listener, closes idle connections, waits for the busy ones.
                self.config.timeout_graceful_shutdown = max(self.drain_timeout - elapsed, 0.1)
                log.info("grace over: closing the listener, waiting for %d request(s)", self.lifecycle.inflight)
                self.should_exit = True
        return await super().on_tick(counter)


def serve(settings: Settings) -> int:
    lifecycle = Lifecycle()
    app = create_app(settings, lifecycle=lifecycle)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_keep_alive=int(settings.keep_alive_timeout_seconds),
        timeout_graceful_shutdown=settings.drain_timeout_seconds,  # type: ignore[arg-type]
    )
    server = DrainingServer(
        config,
        lifecycle,
        grace=settings.drain_grace_seconds,
        drain_timeout=settings.drain_timeout_seconds,
    )
    server.run()
    if server.force_exit:
        log.warning("signal %d during the drain: forced exit", server.signals[-1])
    if lifecycle.cut_requests:
        log.error("exiting with %d request(s) cut short by the drain", lifecycle.cut_requests)
        return 1
    log.info("drained, exiting")
    return 0
