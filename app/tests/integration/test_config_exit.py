"""Invalid configuration: exit status 2 and one line on stderr per bad variable, naming it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def run_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return subprocess.run(
        [sys.executable, "-m", "rag_service"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"RAG_PORT": "not-a-port"}, "RAG_PORT"),
        ({"RAG_PORT": "70000"}, "RAG_PORT"),
        ({"RAG_CHAOS": "explode"}, "RAG_CHAOS"),
        ({"RAG_CHAOS": "error_rate:1.5"}, "RAG_CHAOS"),
        ({"RAG_CHAOS": "slow:abc"}, "RAG_CHAOS"),
        ({"RAG_REDIS_URL": "http://localhost"}, "RAG_REDIS_URL"),
        ({"RAG_DRAIN_TIMEOUT_SECONDS": "-1"}, "RAG_DRAIN_TIMEOUT_SECONDS"),
        ({"RAG_DRAIN_GRACE_SECONDS": "5", "RAG_DRAIN_TIMEOUT_SECONDS": "2"}, "RAG_DRAIN_GRACE_SECONDS"),
    ],
)
def test_bad_value_exits_2_naming_the_variable(env: dict[str, str], variable: str) -> None:
    result = run_with(env)
    assert result.returncode == 2, result
    assert variable in result.stderr
    assert "Traceback" not in result.stderr


def test_every_bad_variable_is_reported() -> None:
    result = run_with({"RAG_PORT": "x", "RAG_CHAOS": "nope", "RAG_COLOR": "Not A Color"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3
    for variable in ("RAG_PORT", "RAG_COLOR", "RAG_CHAOS"):
        assert len([line for line in lines if variable in line]) == 1, (variable, lines)


def test_bad_admin_token_exits_2_without_echoing_it() -> None:
    token = "short-secret"
    result = run_with({"RAG_ADMIN_TOKEN": token})
    assert result.returncode == 2, result
    assert "RAG_ADMIN_TOKEN" in result.stderr
    assert token not in result.stderr and token not in result.stdout
