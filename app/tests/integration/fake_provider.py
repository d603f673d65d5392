"""A small local OpenAI-compatible embeddings server that a test can break and heal."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rag_service.retrieval.hashing_embedder import HashingEmbedder


class FakeEmbeddings:
    """POST /embeddings with the local hashing embedder's vectors; 503 while `failing` is set."""

    def __init__(self, dim: int = 384) -> None:
        self.failing = False
        self.calls = 0
        embedder = HashingEmbedder(dim)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                fake.calls += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if fake.failing or self.path != "/embeddings":
                    self._reply(503 if fake.failing else 404, {"error": {"message": "unavailable"}})
                    return
                vectors = embedder.embed(body["input"])
                data = [{"object": "embedding", "index": i, "embedding": row.tolist()} for i, row in enumerate(vectors)]
                self._reply(200, {"object": "list", "data": data, "model": body.get("model")})

            def _reply(self, status: int, payload: dict) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
