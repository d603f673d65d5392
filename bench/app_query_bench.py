"""Benchmark the app image: load 10,000 chunks, then drive POST /api/query at a fixed rate with hey.

Prints p50/p95/p99 latency, requests/s, the error count and the container's memory.
Loopback only, bounded in time. Run through app_query_bench.sh (which builds the image first), or:
.venv/bin/python bench/app_query_bench.py VERSION [--rate 200] [--duration 30]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import secrets
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NET = "rag-bench"
REDIS = "rag-bench-redis"
APP = "rag-bench-app"
REDIS_IMAGE = "ragops/redis:local"
TOPICS = ["billing", "latency", "storage", "exports", "alerts", "dashboards", "retention", "tokens", "audit", "quotas"]
QUERY = {"query": "How do I configure alert retention for exports?", "client_id": "bench"}


# A throwaway token for the bench's own container (writes need it; reads ignore it).
ADMIN_TOKEN = secrets.token_hex(24)


def docker(*args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True).stdout.strip()


def start_stack(version: str, port: int) -> None:
    stop_stack()
    if not docker("image", "ls", "-q", REDIS_IMAGE):
        docker("build", "-q", "-t", REDIS_IMAGE, str(ROOT / "roles/redis/files/image"))
    docker("network", "create", NET)
    docker("run", "-d", "--name", REDIS, "--network", NET, REDIS_IMAGE,
           "redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no")
    docker("run", "-d", "--name", APP, "--network", NET, "-p", f"127.0.0.1:{port}:8000",
           "-e", f"RAG_REDIS_URL=redis://{REDIS}:6379/0", "-e", "RAG_COLOR=blue", "-e", f"RAG_ADMIN_TOKEN={ADMIN_TOKEN}",
           f"ragops/rag-service:{version}")


def stop_stack() -> None:
    docker("rm", "-f", APP, REDIS, check=False)
    docker("network", "rm", NET, check=False)


def http_json(url: str, body: dict | None = None, timeout: float = 120) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_TOKEN}"}
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def wait_healthy(base: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http_json(f"{base}/health", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    sys.exit(f"bench: app not healthy after {timeout}s:\n{docker('logs', '--tail', '20', APP, check=False)}")


def synthetic_document(i: int) -> dict:
    topic = TOPICS[i % len(TOPICS)]
    text = (
        f"Runbook {i} covers {topic} for workspace {i % 97}. "
        f"Operators tune {topic} thresholds per tenant and review them weekly. "
        f"The {topic} export job {i} writes a report after each cycle, keeping {i % 30 + 1} days of history. "
        f"Escalate {topic} incidents to the on-call engineer when the error budget drops."
    )
    return {"id": f"bench-{i}", "title": f"Runbook {i}: {topic}", "text": text}


def load_corpus(base: str, target_chunks: int, batch: int = 1000) -> int:
    chunks, i = 0, 0
    while chunks < target_chunks:
        docs = [synthetic_document(n) for n in range(i, i + batch)]
        status, body = http_json(f"{base}/api/documents", {"documents": docs})
        if status != 200:
            sys.exit(f"bench: ingest failed with {status}: {body}")
        i += batch
        _status, vector = http_json(f"{base}/health/vector")
        chunks = int(vector.get("chunk_count", 0))
    return chunks


def run_hey(url: str, rate: int, duration: int, workers: int) -> tuple[list[float], int, int]:
    """Returns latencies (s) of 2xx answers, the non-2xx/error count, and the total sent."""
    body = Path("/tmp/ragops-bench-body.json")
    body.write_text(json.dumps(QUERY))
    out = subprocess.run(
        ["hey", "-z", f"{duration}s", "-c", str(workers), "-q", f"{rate / workers:g}", "-m", "POST",
         "-T", "application/json", "-D", str(body), "-t", "10", "-o", "csv", url],
        check=True, capture_output=True, text=True,
    ).stdout
    latencies, errors, total = [], 0, 0
    for row in csv.DictReader(io.StringIO(out)):
        total += 1
        if row["status-code"].startswith("2"):
            latencies.append(float(row["response-time"]))
        else:
            errors += 1
    return latencies, errors, total


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("version")
    parser.add_argument("--rate", type=int, default=200, help="target requests/s (default 200)")
    parser.add_argument("--duration", type=int, default=30, help="seconds of load (default 30)")
    parser.add_argument("--workers", type=int, default=20, help="keep-alive connections (default 20)")
    parser.add_argument("--chunks", type=int, default=10_000, help="chunks to load first (default 10000)")
    parser.add_argument("--port", type=int, default=18000)
    parser.add_argument("--keep", action="store_true", help="leave the containers running")
    args = parser.parse_args()

    base = f"http://127.0.0.1:{args.port}"
    start_stack(args.version, args.port)
    try:
        wait_healthy(base)
        started = time.monotonic()
        chunks = load_corpus(base, args.chunks)
        print(f"corpus: {chunks} chunks loaded in {time.monotonic() - started:.1f} s")
        run_hey(f"{base}/api/query", args.rate, 5, args.workers)  # warm-up, not counted
        latencies, errors, total = run_hey(f"{base}/api/query", args.rate, args.duration, args.workers)
        memory = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", APP)
        if not latencies:
            print(f"requests: {total}, errors: {errors}: no successful answer")
            return 1
        print(f"load: POST /api/query, {args.workers} keep-alive connections, target {args.rate} req/s, {args.duration} s")
        print(f"requests: {total}  ({total / args.duration:.1f} req/s)  errors: {errors}")
        print("latency: p50 {:.1f} ms  p95 {:.1f} ms  p99 {:.1f} ms  max {:.1f} ms".format(
            percentile(latencies, 50) * 1000, percentile(latencies, 95) * 1000,
            percentile(latencies, 99) * 1000, max(latencies) * 1000))
        print(f"container memory: {memory}")
        return 0 if errors == 0 else 1
    finally:
        if not args.keep:
            stop_stack()


if __name__ == "__main__":
    sys.exit(main())
