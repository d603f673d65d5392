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
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "release"))

from release_harness import history, live_color, load, recap, run_playbook, tail  # noqa: E402

PROBE_NAME = "ragops-bench-start-probe"


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


def fmt(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--versions", nargs=2, default=["1.0.0", "1.1.0"])
    parser.add_argument("--deploys", type=int, default=3)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--switches", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200)
    args = parser.parse_args()

    starts = [start_to_healthy(args.versions[0]) for _run in range(args.starts)]
    print(f"app start-to-healthy: {fmt(starts)}")

    walls, phases = [], []
    for _deploy in range(args.deploys * 2):
        current = history()[-1]["version"] if history() else None
        target = args.versions[1] if current != args.versions[1] else args.versions[0]
        result = run_playbook("deploy.yml", "-e", f"version={target}")
        if result.returncode != 0:
            raise SystemExit(f"bench: deploy {target} failed:\n{tail(result)}")
        walls.append(result.seconds)
        phases.append(history()[-1].get("phases", {}))
    print(f"deploy.yml end to end: {fmt(walls)}")
    for phase in phases[0]:
        print(f"  phase {phase}: {fmt([p.get(phase, 0.0) for p in phases])}")
    print(f"  deploy minus start-to-healthy (median): {statistics.median(walls) - statistics.median(starts):.2f} s")

    noops = []
    for _run in range(3):
        result = run_playbook("deploy.yml", "-e", f"version={history()[-1]['version']}")
        assert result.returncode == 0 and recap(result.stdout)["changed"] == 0, tail(result)
        noops.append(result.seconds)
    print(f"no-op re-run: {fmt(noops)}")

    good = history()[-1]["version"]
    bad = args.versions[0] if good == args.versions[1] else args.versions[1]
    with load(args.rate, duration=300) as run:
        result = run_playbook("deploy.yml", "-e", f"version={bad}",
                              extra={"ragops_app_env": {"RAG_CHAOS": "error_rate:0.5"}})
    summary = run.stop()
    entry = history()[-1]
    extra = entry.get("extra", {})
    print(f"rollback after a failed analysis: outcome {entry['outcome']}, decision -> traffic restored "
          f"{extra.get('restore_seconds')} s; client failures during the analysis window: {summary['failed']} "
          f"of {summary['sent']}")

    with load(args.rate, duration=3600, connections=8) as run:
        result = run_playbook("molecule/bluegreen/switch_back_and_forth.yml", "-e", f"switches={args.switches}",
                              timeout=3600)
    summary = run.stop()
    if result.returncode != 0:
        raise SystemExit(f"bench: switching failed:\n{tail(result)}")
    print(f"switches under load: {args.switches} in {result.seconds:.0f} s at {summary['achieved_rate']} req/s "
          f"({summary['sent']} requests): {summary['failed']} failed "
          f"= {1000 * summary['failed'] / args.switches:.2f} per 1,000 switches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
