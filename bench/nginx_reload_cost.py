"""What an nginx configuration change costs clients, on a running stack with TLS (make up, then
site.yml -e ragops_tls_enabled=true): prints figures, asserts nothing.

Two keep-alive clients load nginx over TLS at the same time, each with its own connections: the harsh one writes
on a kept connection without checking it, the pooled one first drops a connection the server closed (as urllib3
does). Against them, one after the other:
- N reloads (nginx -s reload: what a configuration change such as a rate limit does);
- N certificate renewals over the admin API (PUT /tls, what tasks/tls.yml does: no reload);
- N color switches over the admin API (what every release does: no reload).
Each line gives the failed requests of each client and per operation. Loopback only; every run is bounded.
    .venv/bin/python bench/nginx_reload_cost.py --operations 20
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "release"))

from release_harness import DATA_DIR, load  # noqa: E402

URL = "https://127.0.0.1:8443/api/query"
ADMIN = DATA_DIR / "nginx/run/admin.sock"


def admin(method: str, path: str, body: bytes = b"") -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(ADMIN))
        conn.sendall(b"%s %s HTTP/1.0\r\nHost: admin\r\nContent-Length: %d\r\n\r\n%s"
                     % (method.encode(), path.encode(), len(body), body))
        raw = b"".join(iter(lambda: conn.recv(65536), b""))
    head, payload = raw.split(b"\r\n\r\n", 1)
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise SystemExit(f"admin {method} {path}: {head.splitlines()[0]!r} {payload[:200]!r}")
    return json.loads(payload)


def reload_nginx(number: int) -> None:  # noqa: ARG001 - every operation takes its number
    subprocess.run(["docker", "exec", "ragops-nginx", "nginx", "-c", "/etc/ragops-nginx/nginx.conf", "-s", "reload"],
                   check=True, capture_output=True)


def renew_certificate(number: int) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        key, cert = Path(workdir, "key.pem"), Path(workdir, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
                        "-subj", f"/CN=bench-{number}", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
        admin("PUT", "/tls", cert.read_bytes() + key.read_bytes())


def switch_color(number: int) -> None:  # noqa: ARG001 - every operation takes its number
    live = admin("GET", "/live")["color"]
    admin("PUT", "/live", b"green" if live == "blue" else b"blue")


def running(color: str) -> bool:
    state = subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}", "ragops-app-" + color],
                           capture_output=True, text=True, check=False).stdout.strip()
    return state == "healthy"


def measure(name: str, operation, count: int, pause: float, rate: float, connections: int) -> dict:
    with load(rate, url=URL, connections=connections) as harsh, \
            load(rate, url=URL, connections=connections, client="pooled") as pooled:
        for number in range(count):
            operation(number)
            time.sleep(pause)
    figures = {"operation": name, "count": count}
    for client, run in (("harsh", harsh.stop()), ("pooled", pooled.stop())):
        figures[client] = {"sent": run["sent"], "failed": run["failed"],
                           "failed_per_operation": round(run["failed"] / count, 3)}
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--operations", type=int, default=20, help="operations of each kind")
    parser.add_argument("--pause", type=float, default=1.5, help="seconds between two operations")
    parser.add_argument("--rate", type=float, default=150, help="requests per second of each client")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections of each client")
    args = parser.parse_args()
    live = admin("GET", "/live")["color"]
    operations = [("reload", reload_nginx), ("tls renewal (admin API)", renew_certificate)]
    if all(running(color) for color in ("blue", "green")):  # a switch to a color that does not run would fail
        operations.append(("color switch (admin API)", switch_color))
    results = [measure(name, operation, args.operations, args.pause, args.rate, args.connections)
               for name, operation in operations]
    if admin("GET", "/live")["color"] != live:
        switch_color(0)
    for figures in results:
        print("%-26s x%-3d harsh %4d failed of %6d (%.3f per operation)   pooled %4d failed of %6d (%.3f per operation)"
              % (figures["operation"], figures["count"], figures["harsh"]["failed"], figures["harsh"]["sent"],
                 figures["harsh"]["failed_per_operation"], figures["pooled"]["failed"], figures["pooled"]["sent"],
                 figures["pooled"]["failed_per_operation"]))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
