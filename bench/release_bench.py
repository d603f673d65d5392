"""Benchmark the release engine on a running stack (make up): prints figures, asserts nothing.

- the app container's start-to-healthy time (the floor under a deploy), over a few runs;
- deploy.yml end to end, with the phases from the history record, alternating two versions;
- a no-op re-run of the live version;
- the time from the rollback decision until traffic is on the old color (a release made to fail its
  analysis with RAG_CHAOS=error_rate:0.5);
- failed requests per N switches under keep-alive POST load (traffic_switch, no nginx reload).

Both versions' images must be present (make image VERSION=...). Loopback only; every run is bounded.
    .venv/bin/python bench/release_bench.py --versions 1.0.0 1.1.0 --deploys 3 --switches 1000
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "release"))
sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.ragops.platform.plugins.module_utils._nginx_admin import (  # noqa: E402
    NginxAdmin,
    switch_live,
)
from release_harness import DATA_DIR, history, live_color, load, read_state, recap, run_playbook, tail  # noqa: E402

PROBE_NAME = "ragops-bench-start-probe"
PARTS = ["start", "deploy", "noop", "abort", "switches"]


def docker(*args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True).stdout.strip()


def start_to_healthy(version: str) -> float:
    """Seconds from `docker run` of the app image until GET /health answers 200 healthy at the container."""
    docker("rm", "-f", PROBE_NAME, check=False)
    redis_url = json.loads(docker("inspect", "-f", "{{json .Config.Env}}", "ragops-app-" + live_color()))
    env = [e for e in redis_url if e.startswith("RAG_REDIS_URL=")]
    started = time.monotonic()
    docker("run", "-d", "--name", PROBE_NAME, "--network", "ragops", "-e", env[0], "-e", "RAG_COLOR=blue",
           "-e", "RAG_LOAD_SAMPLE_CORPUS=false", f"ragops/rag-service:{version}")
    address = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", PROBE_NAME)
    deadline = started + 120
    try:
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{address}:8000/health", timeout=1) as resp:
                    if resp.status == 200:
                        return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.02)
        raise SystemExit(f"bench: {version} not healthy within 120 s")
    finally:
        docker("rm", "-f", PROBE_NAME, check=False)


def get(address: str, path: str) -> http.client.HTTPResponse | None:
    # http.client, not urllib: once ansible's module_utils made a unix-socket request, urllib's default opener
    # may keep sending to that socket.
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response
    except OSError:
        return None
    finally:
        conn.close()


def served_by() -> str | None:
    response = get("127.0.0.1:8080", "/health")
    return response.getheader("X-Ragops-Color") if response is not None and response.status == 200 else None


def switch_directly(count: int) -> None:
    """The admin API calls traffic_switch makes (compare-and-set PUT), then 3 answers from the new color."""
    admin = NginxAdmin(str(DATA_DIR / "nginx/run/admin.sock"), 5)
    peers = admin.peers()["peers"]
    color = admin.live()["color"]
    for _switch in range(count):
        target = "green" if color == "blue" else "blue"
        precheck = get(peers[target], "/health")  # as traffic_switch's precheck_url
        if precheck is None or precheck.status != 200:
            raise SystemExit(f"bench: {target} is not serving at {peers[target]}; nothing switched")
        status, body = switch_live(admin, target, color, 10)
        if status != 200:
            raise SystemExit(f"bench: switch {color} -> {target} refused: HTTP {status} {body}")
        deadline = time.monotonic() + 10
        streak = 0
        while streak < 3:
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {target} did not serve 3 requests in a row within 10 s")
            streak = streak + 1 if served_by() == target else 0
        color = target


def fmt(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--versions", nargs=2, default=["1.0.0", "1.1.0"])
    parser.add_argument("--deploys", type=int, default=3)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--switches", type=int, default=1000)
    parser.add_argument("--switch-driver", choices=["direct", "playbook"], default="direct",
                        help="direct: the admin API calls of traffic_switch in this process (about 20 switches/s); "
                             "playbook: the traffic_switch module in an Ansible loop (seconds per switch)")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--only", nargs="+", choices=PARTS, default=PARTS, help="run only these measurements")
    args = parser.parse_args()
    if "start" in args.only:
        measure_start(args)
    if "deploy" in args.only:
        measure_deploys(args)
    if "noop" in args.only:
        measure_noop()
    if "abort" in args.only:
        measure_abort(args)
    if "switches" in args.only:
        measure_switches(args)
    return 0


def measure_start(args) -> None:
    starts = [start_to_healthy(args.versions[0]) for _run in range(args.starts)]
    print(f"app start-to-healthy: {fmt(starts)}")


def measure_deploys(args) -> None:
    walls, phases = [], []
    for _deploy in range(args.deploys * 2):
        current = read_state().get("live", {}).get("version")
        target = args.versions[1] if current != args.versions[1] else args.versions[0]
        result = run_playbook("deploy.yml", "-e", f"version={target}")
        if result.returncode != 0:
            raise SystemExit(f"bench: deploy {target} failed:\n{tail(result)}")
        walls.append(result.seconds)
        phases.append(history()[-1].get("phases", {}))
    print(f"deploy.yml end to end: {fmt(walls)}")
    for phase in phases[0]:
        print(f"  phase {phase}: {fmt([p.get(phase, 0.0) for p in phases])}")
    analysis = [p.get("analysis", 0.0) for p in phases]
    print(f"  deploy without the analysis window: {fmt([w - a for w, a in zip(walls, analysis)])}")


def measure_noop() -> None:
    noops = []
    for _run in range(3):
        result = run_playbook("deploy.yml", "-e", f"version={read_state()['live']['version']}")
        assert result.returncode == 0 and recap(result.stdout)["changed"] == 0, tail(result)
        noops.append(result.seconds)
    print(f"no-op re-run: {fmt(noops)}")


def measure_abort(args) -> None:
    good = read_state()["live"]["version"]
    bad = args.versions[0] if good == args.versions[1] else args.versions[1]
    with load(args.rate, duration=300) as run:
        result = run_playbook("deploy.yml", "-e", f"version={bad}",
                              extra={"ragops_app_env": {"RAG_CHAOS": "error_rate:0.5"}, "release_smoke_enabled": False,
                                     "release_quality_enabled": False})
    summary = run.stop()
    entry = history()[-1]
    extra = entry.get("extra", {})
    print(f"rollback after a failed analysis: outcome {entry['outcome']}, decision -> traffic restored "
          f"{extra.get('restore_seconds')} s; client failures during the analysis window: {summary['failed']} "
          f"of {summary['sent']}; checks {[(c['requests'], c['error_rate'], c['judged_on']) for c in extra.get('analysis', [])]}")


def measure_switches(args) -> None:
    # Both colors must serve: a successful deploy of the other version leaves the previous one warm.
    live = read_state().get("live", {}).get("version")
    other = args.versions[0] if live == args.versions[1] else args.versions[1]
    result = run_playbook("deploy.yml", "-e", f"version={other}")
    if result.returncode != 0:
        raise SystemExit(f"bench: deploy {other} before the switches failed:\n{tail(result)}")
    started = time.monotonic()
    with load(args.rate, duration=3600, connections=8) as run:
        if args.switch_driver == "playbook":
            result = run_playbook("tests/release/switch_back_and_forth.yml", "-e", f"switches={args.switches}",
                                  timeout=3600)
            if result.returncode != 0:
                raise SystemExit(f"bench: switching failed:\n{tail(result)}")
        else:
            switch_directly(args.switches)
    summary = run.stop()
    seconds = time.monotonic() - started
    print(f"switches under load ({args.switch_driver}): {args.switches} in {seconds:.0f} s at "
          f"{summary['achieved_rate']} req/s "
          f"({summary['sent']} requests): {summary['failed']} failed "
          f"= {1000 * summary['failed'] / args.switches:.2f} per 1,000 switches")


if __name__ == "__main__":
    sys.exit(main())
