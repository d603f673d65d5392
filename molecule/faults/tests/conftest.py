"""The release scenarios' helpers live in tests/release (shared with molecule/faults)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
sys.path.insert(0, str(PROJECT / "tests" / "release"))
