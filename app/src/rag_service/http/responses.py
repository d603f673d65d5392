"""JSON responses serialised once, straight to bytes (no response-model validation pass)."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import Response


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # "replace": a lone surrogate that slipped into stored data must not turn a response into a 500.
    content = json.dumps(body, ensure_ascii=False, allow_nan=False, default=_plain).encode("utf-8", "replace")
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalar
    if callable(item):
        return item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def finite(value: float) -> float:
    """A JSON-safe float (core values may be numpy scalars, or NaN from a degenerate vector)."""
    number = float(value)
    return number if math.isfinite(number) else 0.0
