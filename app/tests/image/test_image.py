"""The app image builds offline, runs as non-root with the version baked in, and turns healthy."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from redis_process import free_port

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[3]
VERSION = "0.0.0-imagetest"
IMAGE = f"ragops/rag-service:{VERSION}"


def docker(*args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True).stdout.strip()


def poll(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def image() -> str:
    env = dict(os.environ, FORCE="1")
    subprocess.run([str(ROOT / "scripts/host/build-app-image.sh"), VERSION], check=True, env=env)
    return IMAGE


@pytest.fixture
def running(image):
    suffix = uuid.uuid4().hex[:8]
    net, redis_name, app_name = f"imgtest-{suffix}", f"imgtest-redis-{suffix}", f"imgtest-app-{suffix}"
    port = free_port()
    docker("network", "create", net)
    try:
        redis_image = "ragops/redis:local"
        if not docker("image", "ls", "-q", redis_image):
            docker("build", "-q", "-t", redis_image, str(ROOT / "roles/redis/files/image"))
        docker("run", "-d", "--name", redis_name, "--network", net, redis_image,
               "redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no")
        docker("run", "-d", "--name", app_name, "--network", net, "-p", f"127.0.0.1:{port}:8000",
               "--read-only", "--tmpfs", "/tmp", "-e", f"RAG_REDIS_URL=redis://{redis_name}:6379/0",
               "-e", "RAG_COLOR=green", image)
        yield app_name, f"http://127.0.0.1:{port}"
    finally:
        docker("rm", "-f", app_name, redis_name, check=False)
        docker("network", "rm", net, check=False)


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.headers, json.loads(resp.read())
    except OSError:
        return None


def test_image_metadata(image):
    config = json.loads(docker("image", "inspect", image))[0]["Config"]
    assert config["User"] == "10001:10001"
    assert f"RAG_VERSION={VERSION}" in config["Env"]
    assert config["Labels"]["org.opencontainers.image.version"] == VERSION
    assert "8000/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"][-1] == "rag_service.healthcheck"


def test_container_answers_health_and_turns_healthy(running):
    name, base = running
    result = poll(lambda: (r := get(f"{base}/health")) and r[0] == 200 and r, 90, "/health 200")
    status, headers, body = result
    assert body["status"] == "healthy"
    assert body["version"] == VERSION and body["color"] == "green"
    assert headers["X-App-Version"] == VERSION and headers["X-App-Color"] == "green"
    poll(lambda: docker("inspect", "-f", "{{.State.Health.Status}}", name) == "healthy", 60, "docker health")
    assert docker("exec", name, "id", "-u") == "10001"
