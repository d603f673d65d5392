"""Drill switches (RAG_CHAOS): make a release misbehave on purpose to exercise the platform's safety nets."""

from __future__ import annotations

from dataclasses import dataclass

MODES_HELP = (
    "one of: crash_on_start, unhealthy, slow:<ms>, error_rate:<0..1>, bad_contract, truncate_retrieval:<1..20> (or empty)"
)


@dataclass(frozen=True)
class ChaosMode:
    crash_on_start: bool = False
    unhealthy: bool = False
    slow_ms: int = 0
    error_rate: float = 0.0
    bad_contract: bool = False
    # A release that retrieves worse but still answers: only the best n chunks are kept (a quality-gate drill).
    truncate_retrieval: int = 0

    @property
    def active(self) -> bool:
        return self != ChaosMode()


def parse_chaos(value: str) -> ChaosMode:
    value = (value or "").strip()
    if not value:
        return ChaosMode()
    name, _colon, arg = value.partition(":")
    if name in ("crash_on_start", "unhealthy", "bad_contract") and not arg:
        return ChaosMode(**{name: True})
    if name == "slow" and arg.isdigit() and 0 < int(arg) <= 600_000:
        return ChaosMode(slow_ms=int(arg))
    if name == "truncate_retrieval" and arg.isdigit() and 1 <= int(arg) <= 20:
        return ChaosMode(truncate_retrieval=int(arg))
    if name == "error_rate":
        try:
            rate = float(arg)
        except ValueError:
            rate = -1.0
        if 0.0 <= rate <= 1.0:
            return ChaosMode(error_rate=rate)
    raise ValueError(f"unknown drill mode {value!r}: expected {MODES_HELP}")
