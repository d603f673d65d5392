"""What the release scenarios (molecule/default, molecule/faults, molecule/anyapp, molecule/fleet) share: run the playbooks as a user runs
them from a checkout, hold a keep-alive load on nginx while they run, and read the host's release record."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[2]))
DATA_DIR = Path(os.environ.get("RAGOPS_DATA_DIR", "/opt/ragops"))
RELEASE_DIR = DATA_DIR / "release"
LIVE_COLOR_FILE = DATA_DIR / "nginx/state/live_color"
LOADGEN = PROJECT / "tests/load/keepalive_load.py"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def playbook_env() -> dict[str, str]:
    # The project's ansible.cfg and inventory, not Molecule's generated ones.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env["ANSIBLE_CONFIG"] = str(PROJECT / "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    return env


def scenario_vars() -> list[str]:
    """The scenario's own inventory (RAGOPS_INVENTORY, e.g. the fleet's) and extra vars (RAGOPS_EXTRA_VARS_FILE,
    e.g. another workload definition), as ansible-playbook arguments."""
    inventory, path = os.environ.get("RAGOPS_INVENTORY"), os.environ.get("RAGOPS_EXTRA_VARS_FILE")
    return (["-i", inventory] if inventory else []) + (["-e", f"@{path}"] if path else [])


def run_playbook(name: str, *args: str, extra: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = ["ansible-playbook", name, *scenario_vars(), *args]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=PROJECT, env=playbook_env(), capture_output=True, text=True,
                            timeout=timeout, check=False)
    result.seconds = time.monotonic() - started  # type: ignore[attr-defined]
    return result


def start_playbook(name: str, *args: str, extra: dict | None = None, new_session: bool = False) -> subprocess.Popen:
    """A running playbook, its output on stdout; with new_session its own process group, to kill as a lost SSH
    session or a killed CI job would."""
    cmd = ["ansible-playbook", name, *scenario_vars(), *args]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    return subprocess.Popen(cmd, cwd=PROJECT, env=playbook_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=new_session)


def kill_group_at(proc: subprocess.Popen, marker: str, delay: float = 0.0, timeout: float = 300) -> str:
    """SIGKILL the process group of ``proc`` (see start_playbook) ``delay`` s after a line containing ``marker``
    appears in its output; returns the output read so far. Fails when the playbook ends or ``timeout`` passes first."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout] + [lines.put(None)], daemon=True).start()
    seen, deadline = [], time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            raise AssertionError(f"{marker!r} never appeared:\n{''.join(seen)[-3000:]}")
        seen.append(line)
        if marker in line:
            break
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return "".join(seen)


def wait_for_orphans(timeout: float = 90) -> float:
    """Wait until no ansible-playbook process (an orphaned task worker of a killed run) is left; returns the wait."""
    started = time.monotonic()
    while subprocess.run(["pgrep", "-f", "ansible-playbook"], capture_output=True, check=False).returncode == 0:
        assert time.monotonic() - started < timeout, "an orphaned worker of the killed run is still running"
        time.sleep(0.2)
    return time.monotonic() - started


def recap(output: str) -> dict[str, int]:
    match = RECAP.search(output)
    assert match, f"no PLAY RECAP in the output:\n{output[-3000:]}"
    return {"ok": int(match[2]), "changed": int(match[3]), "unreachable": int(match[4]), "failed": int(match[5])}


def tail(result: subprocess.CompletedProcess, chars: int = 4000) -> str:
    return (result.stdout + result.stderr)[-chars:]


def live_color() -> str:
    return LIVE_COLOR_FILE.read_text(encoding="utf-8").strip()


def read_state() -> dict:
    path = RELEASE_DIR / "state.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def history() -> list[dict]:
    path = RELEASE_DIR / "history.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def nginx_live_color() -> str:
    """What nginx serves, from its admin API on the unix socket (not the persisted file)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(DATA_DIR / "nginx/run/admin.sock"))
        conn.sendall(b"GET /live HTTP/1.0\r\nHost: admin\r\n\r\n")
        raw = b"".join(iter(lambda: conn.recv(65536), b""))
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])["color"]


def lock_held() -> bool:
    return (RELEASE_DIR / "deploy.lock").exists()


def release_files_snapshot() -> dict[str, bytes]:
    """The bytes of every file of the release record and of nginx's persisted color: equal means unchanged."""
    files = [LIVE_COLOR_FILE, *sorted(RELEASE_DIR.glob("*"))] if RELEASE_DIR.exists() else [LIVE_COLOR_FILE]
    return {str(p): p.read_bytes() for p in files if p.is_file()}


def containers_snapshot() -> dict[str, str]:
    """Id, state and start time of every ragops-app-* container."""
    out = subprocess.run(["docker", "ps", "-a", "--filter", "name=^ragops-app-", "--format", "{{.Names}}"],
                         capture_output=True, text=True, check=True).stdout.split()
    snap = {}
    for name in sorted(out):
        snap[name] = subprocess.run(
            ["docker", "inspect", "-f", "{{.Id}} {{.State.Status}} {{.State.StartedAt}} {{.Config.Image}}", name],
            capture_output=True, text=True, check=True).stdout.strip()
    return snap


def ensure_image(version: str) -> None:
    subprocess.run([str(PROJECT / "scripts/host/build-app-image.sh"), version, *scenario_vars()], check=True,
                   capture_output=True, timeout=900)


class Load:
    """A running keepalive_load.py; stop() ends it and returns its JSON summary."""

    def __init__(self, rate: float, duration: float, connections: int = 8, url: str | None = None,
                 body: dict | None = None, client: str = "harsh") -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="ragops-load-"))
        self.out = self.workdir / "summary.json"
        ready = self.workdir / "ready"
        target = (["--url", url] if url else []) + (["--body", json.dumps(body)] if body is not None else [])
        self.proc = subprocess.Popen(
            [sys.executable, str(LOADGEN), "--rate", str(rate), "--duration", str(duration),
             "--connections", str(connections), "--client", client, "--out", str(self.out),
             "--ready-file", str(ready), *target],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 15
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"the load driver did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
            time.sleep(0.05)
        self.summary: dict | None = None

    def stop(self) -> dict:
        if self.summary is None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
            self.summary = json.loads(self.out.read_text(encoding="utf-8"))
        return self.summary


@contextmanager
def load(rate: float = 200, duration: float = 300, connections: int = 8, url: str | None = None,
         body: dict | None = None, client: str = "harsh"):
    run = Load(rate, duration, connections, url, body, client)
    try:
        yield run
    finally:
        run.stop()


def assert_no_failures(summary: dict, rate: float) -> None:
    """No request failed, and the load kept to at least 90 % of its rate (a stalled driver proves nothing)."""
    assert summary["failed"] == 0, describe(summary)
    assert summary["achieved_rate"] >= rate * 0.9, describe(summary)


def describe(summary: dict) -> str:
    brief = {k: summary[k] for k in ("sent", "ok", "failed", "achieved_rate", "served", "latency_ms")}
    return f"{json.dumps(brief)} first failures: {summary['failures'][:5]}"
