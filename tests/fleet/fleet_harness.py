"""What the fleet scenario's tests share: commands on a fleet host (a Docker-in-Docker container of this machine's
engine), its load balancer's admin API and access log, and faults: a host killed, or cut off from the load balancer
by a firewall rule on the load balancer's host."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[2]
SETTINGS = yaml.safe_load((PROJECT / "tests/fleet/fleet.yml").read_text(encoding="utf-8"))
HOSTS = {host["hostname"]: host for host in SETTINGS["fleet_hosts"]}
LB = "lb1"
APPS = ["app1", "app2"]
PUBLIC_URL = "http://127.0.0.1:18080"
ADMIN_SOCKET = "/opt/ragops/nginx/run/admin.sock"
HOST_PORTS = {"blue": 8001, "green": 8002}


def container(host: str) -> str:
    return HOSTS[host]["name"]


def address(host: str) -> str:
    return HOSTS[host]["address"]


def on_host(host: str, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run argv inside the fleet host (its own engine, filesystem and network)."""
    return subprocess.run(["docker", "exec", container(host), *argv], capture_output=True, text=True,
                          timeout=timeout, check=check)


def inspect(host: str, name: str) -> dict | None:
    """`docker inspect` of a container on the host's own engine, or None when it has none of that name."""
    result = on_host(host, "docker", "inspect", name, check=False)
    return json.loads(result.stdout)[0] if result.returncode == 0 else None


def admin(path: str, method: str = "GET", body: str | None = None, host: str = LB) -> dict:
    argv = ["curl", "-sS", "--max-time", "5", "--unix-socket", ADMIN_SOCKET, "-X", method, f"http://admin{path}"]
    if body is not None:
        argv += ["--data-binary", body]
    return json.loads(on_host(host, *argv).stdout)


def peer(color: str, app: str, host: str = LB) -> dict:
    wanted = f"{address(app)}:{HOST_PORTS[color]}"
    return next(p for p in admin("/peers", host=host)["peers"][color] if p["address"] == wanted)


def wait_for_peer(color: str, app: str, healthy: bool, timeout: float = 60, interval: float = 0.1) -> float:
    """Poll the LB's GET /peers until the peer's health is ``healthy``; returns the epoch when it was seen so."""
    deadline = time.monotonic() + timeout
    while True:
        if peer(color, app)["healthy"] is healthy:
            return time.time()
        assert time.monotonic() < deadline, f"{app}'s {color} peer never became healthy={healthy}"
        time.sleep(interval)


def access_log(since: float, host: str = LB) -> list[dict]:
    """nginx's JSON access log lines on the LB since the epoch ``since`` (public requests only)."""
    out = on_host(host, "docker", "logs", "--since", f"{since:.3f}", "ragops-nginx", timeout=120).stdout
    lines = []
    for line in out.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "upstream_addr" in entry:
            lines.append(entry)
    return lines


def tries_to(entries: list[dict], app: str) -> list[dict]:
    """The log lines of requests nginx tried on ``app`` (any try: upstream_addr lists every try)."""
    return [e for e in entries if address(app) + ":" in e.get("upstream_addr", "")]


def served_by(entries: list[dict], app: str) -> list[dict]:
    """The log lines of requests whose last try, the one that answered, went to ``app``."""
    return [e for e in entries if e.get("upstream_addr", "").rsplit(", ", 1)[-1].startswith(address(app) + ":")]


def kill_host(host: str) -> None:
    subprocess.run(["docker", "kill", container(host)], check=True, capture_output=True)


def start_host(host: str) -> None:
    subprocess.run(["docker", "start", container(host)], check=True, capture_output=True)


PARTITION_RULE = ["DOCKER-USER", "-d", "{address}", "-j", "DROP"]


def partition(lb: str, app: str, cut: bool, check: bool = True) -> None:
    """Cut (or heal) the LB's host from one app host: every packet its containers send there is dropped, as by a
    failed switch between them; the app host itself runs on and still reaches the others."""
    rule = [part.format(address=address(app)) for part in PARTITION_RULE]
    on_host(lb, "iptables", "-I" if cut else "-D", *rule, check=check)


RELEASE_PATH = "/opt/ragops/release"


def release_state() -> dict:
    """The fleet's release record (state.json on the release host, the first load balancer)."""
    return json.loads(on_host(LB, "cat", f"{RELEASE_PATH}/state.json").stdout)


def release_history() -> list[dict]:
    out = on_host(LB, "cat", f"{RELEASE_PATH}/history.jsonl", check=False).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def running_version(host: str, color: str) -> str | None:
    """The version the color's container runs on the host, or None when it does not run."""
    found = inspect(host, f"ragops-app-{color}")
    if not found or not found["State"]["Running"]:
        return None
    return found["Config"]["Labels"].get("io.ragops.version")


def wait_for_engine(host: str, timeout: float = 60) -> None:
    """Poll until the host's own Docker engine answers (after start_host)."""
    deadline = time.monotonic() + timeout
    while on_host(host, "docker", "info", check=False).returncode != 0:
        assert time.monotonic() < deadline, f"{host}'s engine does not answer after its restart"
        time.sleep(0.2)
