"""Which embedding spaces may go: the re-index removes, after building its own, the spaces nothing needs any more.

A space is kept while any of these holds: it is the space just built; a version the deploy names (the candidate,
the live and the previous one) uses it; it is among the `keep_recent` most recently used; a process used it less
than `retention_seconds` ago. So a rollback to the previous version never needs a re-index.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from rag_service.retrieval.space import delete_space


@dataclass(frozen=True)
class Verdict:
    space_id: str
    name: str
    last_used: float | None
    versions: list[str]
    kept_because: str | None  # None: removed


def prune_spaces(
    client: redis.Redis,
    prefix: str,
    own_id: str,
    keep_versions: Iterable[str],
    keep_recent: int,
    retention_seconds: float,
    now: float | None = None,
) -> list[Verdict]:
    now = time.time() if now is None else now
    keep = {version for version in keep_versions if version}
    registry = {sid.decode(): name.decode() for sid, name in client.hgetall(f"{prefix}spaces").items()}
    used = {sid.decode(): score for sid, score in client.zrange(f"{prefix}spaces:used", 0, -1, withscores=True)}
    recent = set(sorted(registry, key=lambda sid: used.get(sid, 0.0), reverse=True)[:keep_recent])
    verdicts = []
    for sid in sorted(registry):
        versions = sorted(v.decode() for v in client.smembers(f"{prefix}space:{sid}:versions"))
        last_used = used.get(sid)
        if sid == own_id:
            reason = "built now"
        elif keep & set(versions):
            reason = "used by " + ", ".join(sorted(keep & set(versions)))
        elif sid in recent:
            reason = f"among the {keep_recent} most recently used"
        elif last_used is not None and now - last_used < retention_seconds:
            reason = f"used {now - last_used:.0f} s ago, within the retention of {retention_seconds:.0f} s"
        else:
            reason = None
            delete_space(client, prefix, sid)
        verdicts.append(Verdict(sid, registry[sid], last_used, versions, reason))
    return verdicts
