"""ragops-alert-sink: the default Alertmanager webhook receiver, readable by tests.

POST /alerts   an Alertmanager webhook payload; each alert becomes one JSON line in the store
GET  /alerts   every stored alert as a JSON list; ?alertname=X&status=firing&receiver=Y filter it
POST /events   any JSON object (the release engine's outcome notifications), stored as one line
GET  /events   every stored event as a JSON list; ?action=deploy&outcome=success filter it
GET  /health   {"status": "ok"} once the store is writable

Standard library only. The store is a JSON-lines file in a bind-mounted folder, so it survives a
container restart and can also be read on the host.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STORE = os.environ.get("ALERT_SINK_STORE", "/data/alerts.jsonl")
EVENTS = os.environ.get("ALERT_SINK_EVENTS", os.path.join(os.path.dirname(STORE) or ".", "events.jsonl"))
LISTEN = os.environ.get("ALERT_SINK_LISTEN", "0.0.0.0")
PORT = int(os.environ.get("ALERT_SINK_PORT", "9099"))
MAX_BODY = int(os.environ.get("ALERT_SINK_MAX_BODY_BYTES", str(1024 * 1024)))
LOCK = threading.Lock()


def read_lines(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as store:
            return [json.loads(line) for line in store if line.strip()]
    except FileNotFoundError:
        return []


def append_lines(path: str, lines: list[str]) -> None:
    with LOCK, open(path, "a", encoding="utf-8") as store:
        store.writelines(lines)
        store.flush()
        os.fsync(store.fileno())


def append_event(event: dict) -> int:
    record = dict(event)
    record["receivedAt"] = datetime.now(timezone.utc).isoformat()
    append_lines(EVENTS, [json.dumps(record, sort_keys=True) + "\n"])
    return 1


def append_alerts(payload: dict) -> int:
    received_at = datetime.now(timezone.utc).isoformat()
    lines = []
    for alert in payload.get("alerts", []):
        record = dict(alert)
        record["receiver"] = payload.get("receiver", "")
        record["groupKey"] = payload.get("groupKey", "")
        record["receivedAt"] = received_at
        record["alertname"] = alert.get("labels", {}).get("alertname", "")
        lines.append(json.dumps(record, sort_keys=True) + "\n")
    append_lines(STORE, lines)
    return len(lines)


class Handler(BaseHTTPRequestHandler):
    server_version = "ragops-alert-sink/1"

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        url = urlsplit(self.path)
        if url.path == "/health":
            writable = os.access(os.path.dirname(STORE) or ".", os.W_OK)
            self._reply(200 if writable else 503, {"status": "ok" if writable else "store not writable"})
        elif url.path in ("/alerts", "/events"):
            filters = {key: values[-1] for key, values in parse_qs(url.query).items()}
            records = [
                record for record in read_lines(STORE if url.path == "/alerts" else EVENTS)
                if all(str(record.get(key, record.get("labels", {}).get(key, ""))) == value
                       for key, value in filters.items())
            ]
            self._reply(200, records)
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if path not in ("/alerts", "/events"):
            self._reply(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            self._reply(413 if length > MAX_BODY else 400, {"error": "body missing or too large"})
            return
        try:
            payload = json.loads(self.rfile.read(length))
            if not isinstance(payload, dict):
                raise ValueError("not a JSON object")
            if path == "/alerts" and not isinstance(payload.get("alerts"), list):
                raise ValueError("no alerts list")
        except ValueError as error:
            self._reply(400, {"error": f"invalid webhook payload: {error}"})
            return
        self._reply(200, {"stored": append_alerts(payload) if path == "/alerts" else append_event(payload)})

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (BaseHTTPRequestHandler API)
        if not self.path.startswith("/health"):
            sys.stderr.write("%s %s\n" % (self.address_string(), format % args))


def main() -> None:
    server = ThreadingHTTPServer((LISTEN, PORT), Handler)
    server.daemon_threads = True
    sys.stderr.write(f"ragops-alert-sink listening on {LISTEN}:{PORT}, store {STORE}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
