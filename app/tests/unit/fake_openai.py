"""A scripted OpenAI-compatible HTTP server on loopback, for provider and retry tests."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes; None: a valid answer for the path
    delay: float = 0.0  # seconds to wait before answering (longer than the client timeout: a hang)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    json: Any
    at: float = field(default_factory=time.monotonic)


def embeddings_body(payload: dict[str, Any], dim: int) -> dict[str, Any]:
    vectors = []
    for n, text in enumerate(payload["input"]):
        vector = [0.0] * dim
        vector[len(text) % dim] = 3.0
        vector[n % dim] += 4.0
        vectors.append({"object": "embedding", "index": n, "embedding": vector})
    return {"object": "list", "data": list(reversed(vectors)), "model": payload["model"]}


def chat_body(content: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


class FakeOpenAI:
    """Answers scripted replies in order, then `default` (None: a valid answer for the path)."""

    def __init__(self, dim: int = 384, chat_answer: str = "Réponse du modèle de test.") -> None:
        self.dim = dim
        self.chat_answer = chat_answer
        self.script: deque[Reply] = deque()
        self.default = Reply()
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                payload = json.loads(raw) if raw else None
                with fake._lock:
                    fake.requests.append(Request(self.path, dict(self.headers), payload))
                    reply = fake.script.popleft() if fake.script else fake.default
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body
                if body is None:
                    if self.path.endswith("/embeddings"):
                        body = embeddings_body(payload, fake.dim)
                    else:
                        body = chat_body(fake.chat_answer)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def reply(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def paths(self) -> list[str]:
        with self._lock:
            return [request.path for request in self.requests]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
