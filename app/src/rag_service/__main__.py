"""Entry point: `python -m rag_service` or `rag-service` serves; `python -m rag_service reindex` builds this
version's embedding space (rag_service/reindex.py, its own exit statuses).

Exit status: 0 after a clean drain; 1 when the drain cut requests short; 2 on invalid configuration;
3 when the process fails to start (including the crash_on_start drill, and a port already in use).
"""

from __future__ import annotations

import logging
import sys

from rag_service.config import ConfigError, load_settings

EXIT_CONFIG = 2
EXIT_STARTUP = 3


def main() -> int:
    if sys.argv[1:2] == ["reindex"]:
        from rag_service.reindex import main as reindex

        return reindex()
    try:
        settings = load_settings()
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"rag-service: invalid configuration: {line}", file=sys.stderr)
        return EXIT_CONFIG

    from rag_service.http.drills import Drills
    from rag_service.http.server import serve
    from rag_service.logging_setup import configure_logging

    configure_logging(settings.log_level, settings.version, settings.color)
    log = logging.getLogger("rag_service")
    Drills(settings.chaos_mode).announce(settings.chaos)
    if settings.chaos_mode.crash_on_start:
        log.critical("drill crash_on_start: exiting on purpose before serving (RAG_CHAOS=%s)", settings.chaos)
        return EXIT_STARTUP
    log.info("starting rag-service %s (%s) on %s:%d", settings.version, settings.color, settings.host, settings.port)
    if settings.admin_token is None:
        log.warning("RAG_ADMIN_TOKEN is not set: POST /api/documents is refused (403) until it is")
    try:
        return serve(settings)
    except Exception:  # uvicorn handles request errors; what escapes is a failure to start
        log.critical("cannot start", exc_info=True)
        return EXIT_STARTUP


if __name__ == "__main__":
    sys.exit(main())
