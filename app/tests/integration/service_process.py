"""The real service as a subprocess (`python -m rag_service`) on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from redis_process import free_port

# Test-only admin token (RAG_ADMIN_TOKEN) of every service the tests start, unless their env overrides it.
ADMIN_TOKEN = "test-admin-token-0123456789"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

BASE_ENV = {
    "RAG_HOST": "127.0.0.1",
    "RAG_ADMIN_TOKEN": ADMIN_TOKEN,
    "RAG_LOG_LEVEL": "INFO",
    "RAG_DRAIN_GRACE_SECONDS": "0",
    "RAG_VERSION": "9.9.9-test",
    "RAG_COLOR": "green",
}


class ServiceProcess:
    def __init__(self, env: dict[str, str] | None = None, redis_url: str | None = None) -> None:
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        self.env.update(BASE_ENV)
        self.env["RAG_PORT"] = str(self.port)
        if redis_url:
            self.env["RAG_REDIS_URL"] = redis_url
        self.env.update(env or {})
        self.log_path = Path(tempfile.mkstemp(prefix="rag-service-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.url, timeout=30)

    @property
    def admin_headers(self) -> dict[str, str]:
        """The Authorization header of this process's RAG_ADMIN_TOKEN (none when it is unset)."""
        token = self.env.get("RAG_ADMIN_TOKEN", "")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def post_documents(self, documents: list, **kwargs: Any) -> httpx.Response:
        """POST /api/documents with the admin token."""
        headers = {**self.admin_headers, **kwargs.pop("headers", {})}
        return self.client.post("/api/documents", json={"documents": documents}, headers=headers, **kwargs)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rag_service"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def wait_listening(self, timeout: float = 30.0) -> httpx.Response:
        """Poll /health until the server answers (any status); fail if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.returncode is not None:
                raise AssertionError(f"service exited with {self.returncode} before serving:\n{self.output()}")
            try:
                return httpx.get(f"{self.url}/health", timeout=2)
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"service not listening within {timeout}s:\n{self.output()}")

    def wait_healthy(self, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        response = self.wait_listening(timeout)
        while response.status_code != 200:
            if time.monotonic() > deadline:
                raise AssertionError(f"not healthy within {timeout}s: {response.text}\n{self.output()}")
            time.sleep(0.05)
            response = self.wait_listening(timeout)
        return response.json()

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))
        return records

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample of /metrics, or None when absent."""
        text = self.client.get("/metrics").text
        return parse_metric(text, name, labels)

    def close(self) -> None:
        self.client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log_path.unlink(missing_ok=True)


def send_raw(port: int, request: bytes, timeout: float = 5) -> tuple[bytes, bytes, float]:
    """Write a raw request (e.g. a head announcing a body that never comes) and read the answer up to the end of
    its JSON body. Returns (head, body, seconds until the answer was read)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            response += data
    head, _separator, body = response.partition(b"\r\n\r\n")
    return head, body, time.monotonic() - started


def parse_metric(text: str, name: str, labels: dict[str, str]) -> float | None:
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _space, value = line.rpartition(" ")
        metric, _brace, rest = series.partition("{")
        if metric != name:
            continue
        present = set(rest.rstrip("}").split(",")) if rest else set()
        if wanted <= present:
            return float(value)
    return None


def wait_until(predicate, timeout: float, interval: float = 0.05, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s")
        time.sleep(interval)
