"""Container HEALTHCHECK: the public listener accepts connections and the admin API answers a live color.

Exit 0 when both hold, 1 otherwise. It does not touch the app: nginx is healthy when it can route,
whichever state the colors are in (the release engine health-gates the colors itself).
"""

import json
import os
import socket
import sys

RUN_DIR = os.environ.get("RAGOPS_NGINX_RUN_DIR", "/run/ragops-nginx")
PORTS = [int(p) for p in os.environ.get("RAGOPS_NGINX_HEALTH_PORTS", "8080").split(",") if p]
TIMEOUT = 2.0


def admin_live() -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(os.path.join(RUN_DIR, "admin.sock"))
        sock.sendall(b"GET /live HTTP/1.0\r\nHost: admin\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    head, _separator, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    color = json.loads(body)["color"]
    if color not in ("blue", "green"):
        raise RuntimeError(f"live color {color!r}")
    return color


def main() -> int:
    try:
        for port in PORTS:
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
        print("live", admin_live())
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", with the reason printed
        print(f"unhealthy: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
