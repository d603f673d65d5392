"""Keep-alive POST load on the load balancer, with no client retries: the proof that a switch fails nothing.

Each worker holds one HTTP/1.1 connection and, by default (--client harsh), writes its next request on it
without first checking whether the server closed it (the harshest client for a load balancer that drops
idle connections). --client pooled first drops a pooled connection that the server has closed, as
urllib3 and most HTTP client pools do, and opens a new one. An https URL is TLS (any certificate: the
target is loopback and the test is of the load balancer, not of the PKI). A
request that gets no response, or a status other than 2xx, is a failure; it is never retried, and the
next request opens a new connection. Every answer's color (nginx's X-Ragops-Color, for any app) and
version header (the reference service's X-App-Version, when the app sends one) are counted, so a run
also tells which color served when.

Bounded and loopback only: the target must be a 127.0.0.0/8 address; the run stops at --duration
seconds, at --max-requests, or on SIGTERM/SIGINT, whichever comes first, then writes its summary (JSON)
to --out and to stdout.

    python tests/load/keepalive_load.py --rate 200 --duration 60 --out /tmp/load.json
    python tests/load/keepalive_load.py --url http://127.0.0.1:8080/notes --body '{"text": "load"}'
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import select
import signal
import ssl
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

QUERY = {"query": "Quel est le taux de TVA ?", "client_id": "loadgen"}


@dataclass
class Tally:
    """What the workers saw; one lock guards it (a few hundred updates a second)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    ok: int = 0
    failures: list[dict] = field(default_factory=list)
    served: Counter = field(default_factory=Counter)
    # Per served color: epoch of the first and last 200 it gave.
    first_seen: dict = field(default_factory=dict)
    last_seen: dict = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    def record_ok(self, color: str, version: str, at: float, latency_ms: float) -> None:
        key = f"{color} {version}"
        with self.lock:
            self.ok += 1
            self.served[key] += 1
            self.first_seen.setdefault(key, at)
            self.last_seen[key] = at
            self.latencies_ms.append(latency_ms)

    def record_failure(self, at: float, what: str, color: str = "", version: str = "") -> None:
        with self.lock:
            self.failures.append({"at": round(at, 3), "error": what, "color": color, "version": version})


def loopback_target(url: str) -> tuple[str, int, str, bool]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError
    except ValueError:
        raise SystemExit(f"keepalive_load: --url host {host!r} is not a loopback address; load stays on 127.0.0.0/8")
    tls = parts.scheme == "https"
    return host, parts.port or (443 if tls else 80), parts.path or "/api/query", tls


def server_closed(conn: http.client.HTTPConnection) -> bool:
    """True when an idle pooled connection is readable: the server closed it (or sent what it should not), which is
    how urllib3 decides to drop it before a request."""
    if conn.sock is None:
        return True
    return bool(select.select([conn.sock], [], [], 0)[0])


class Worker(threading.Thread):
    def __init__(self, target: tuple[str, int, str, bool], period: float, offset: float, stop: threading.Event,
                 tally: Tally, budget: threading.Semaphore, timeout: float, body: bytes,
                 headers: tuple[str, str], pooled: bool) -> None:
        super().__init__(daemon=True)
        self.host, self.port, self.path, self.tls = target
        self.pooled = pooled
        self.period, self.offset = period, offset
        self.stop, self.tally, self.budget, self.timeout = stop, tally, budget, timeout
        self.body = body
        self.color_header, self.version_header = headers
        self.conn: http.client.HTTPConnection | None = None

    def run(self) -> None:
        next_at = time.monotonic() + self.offset
        while not self.stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                break
            next_at += self.period
            if not self.budget.acquire(blocking=False):
                break
            self.one_request()
        if self.conn is not None:
            self.conn.close()

    def connect(self) -> http.client.HTTPConnection:
        if not self.tls:
            return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=context)

    def one_request(self) -> None:
        if self.conn is not None and self.pooled and server_closed(self.conn):
            self.conn.close()
            self.conn = None
        if self.conn is None:
            self.conn = self.connect()
        with self.tally.lock:
            self.tally.sent += 1
        started = time.monotonic()
        try:
            self.conn.request("POST", self.path, body=self.body,
                              headers={"Content-Type": "application/json", "Connection": "keep-alive"})
            response = self.conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.tally.record_failure(time.time(), f"{type(exc).__name__}: {exc}")
            self.conn.close()
            self.conn = None
            return
        now = time.time()
        color = response.getheader(self.color_header, "")
        version = response.getheader(self.version_header, "")
        if not 200 <= response.status < 300:
            self.tally.record_failure(now, f"HTTP {response.status}: {payload[:120]!r}", color, version)
        else:
            self.tally.record_ok(color, version, now, (time.monotonic() - started) * 1000)
        if response.will_close:
            self.conn.close()
            self.conn = None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def summary(tally: Tally, started: float, finished: float, rate: float, connections: int) -> dict:
    elapsed = finished - started
    return {
        "started_at": round(started, 3),
        "finished_at": round(finished, 3),
        "seconds": round(elapsed, 2),
        "target_rate": rate,
        "connections": connections,
        "sent": tally.sent,
        "ok": tally.ok,
        "failed": len(tally.failures),
        "achieved_rate": round(tally.sent / elapsed, 1) if elapsed > 0 else 0.0,
        "served": dict(tally.served),
        "first_seen": {k: round(v, 3) for k, v in tally.first_seen.items()},
        "last_seen": {k: round(v, 3) for k, v in tally.last_seen.items()},
        "latency_ms": {"p50": percentile(tally.latencies_ms, 0.5), "p95": percentile(tally.latencies_ms, 0.95),
                       "p99": percentile(tally.latencies_ms, 0.99)},
        # The span of the failures (an outage's length) even when only the first 200 are listed.
        "first_failure_at": tally.failures[0]["at"] if tally.failures else None,
        "last_failure_at": max(f["at"] for f in tally.failures) if tally.failures else None,
        "failures": tally.failures[:200],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080/api/query")
    parser.add_argument("--body", default=json.dumps(QUERY), help="JSON body of every POST")
    parser.add_argument("--color-header", default="X-Ragops-Color", help="response header naming the color")
    parser.add_argument("--version-header", default="X-App-Version", help="response header naming the version, if any")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second, all connections together")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--client", choices=["harsh", "pooled"], default="harsh",
                        help="harsh writes on a kept connection unchecked; pooled first drops one the server closed")
    parser.add_argument("--duration", type=float, default=120.0, help="hard upper bound of the run, seconds")
    parser.add_argument("--max-requests", type=int, default=200_000, help="hard upper bound of requests")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, seconds")
    parser.add_argument("--ready-file", help="written once the first request has been answered")
    parser.add_argument("--out", help="where to write the JSON summary")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.connections < 1 or args.duration <= 0 or args.max_requests < 1:
        parser.error("--rate, --connections, --duration and --max-requests must be positive")
    target = loopback_target(args.url)
    try:
        body = json.dumps(json.loads(args.body)).encode()
    except ValueError as exc:
        parser.error(f"--body is not JSON: {exc}")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    tally, budget = Tally(), threading.Semaphore(args.max_requests)
    period = args.connections / args.rate
    workers = [Worker(target, period, period * i / args.connections, stop, tally, budget, args.timeout,
                      body, (args.color_header, args.version_header), args.client == "pooled")
               for i in range(args.connections)]
    started = time.time()
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + args.duration
    ready_written = False
    while not stop.is_set() and time.monotonic() < deadline and any(w.is_alive() for w in workers):
        if args.ready_file and not ready_written and tally.ok + len(tally.failures) > 0:
            with open(args.ready_file, "w", encoding="utf-8") as fh:
                fh.write(str(time.time()))
            ready_written = True
        stop.wait(0.05)
    stop.set()
    for worker in workers:
        worker.join(args.timeout + 1)
    result = summary(tally, started, time.time(), args.rate, args.connections)
    result["client"] = args.client
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    print(text if len(text) < 20000 else json.dumps({k: v for k, v in result.items() if k != "failures"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
