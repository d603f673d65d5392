"""Re-index throughput and memory of the reference service: a corpus of CHUNKS chunks in the default space (384
dimensions), then `python -m rag_service reindex` into another dimension, as the pre-switch job of a deploy runs it,
while a live color (old space) and the candidate color (new space) serve from the same Redis.

Prints the re-index's wall time and chunks/s, its peak memory, and the peak memory of both colors during it.
Runs on this host against a private redis-server (no Docker): `make bench-reindex` or
`python bench/reindex_bench.py --chunks 10000`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import redis

from rag_service.models import Document
from rag_service.retrieval.document_store import DocumentStore
from rag_service.retrieval.documents import prepare
from rag_service.retrieval.hashing_embedder import HashingEmbedder
from rag_service.retrieval.space import EmbeddingSpace, SpaceStore
from rag_service.retrieval.space_sync import sync_space


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def corpus(chunks: int) -> list[Document]:
    """Documents of one chunk each (about 400 characters, under the default chunk size of 500)."""
    words = [f"w{n:05d}" for n in range(20000)]
    return [
        Document(
            id=f"bench-{n:06d}",
            title=f"Bench document {n}",
            text=" ".join(" ".join(words[(n * 7 + s * 13 + w) % len(words)] for w in range(10)) + "." for s in range(6)),
        )
        for n in range(chunks)
    ]


def serve(env: dict[str, str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "rag_service"], env={**env, "RAG_PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("a color did not start within 60 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10000)
    parser.add_argument("--dim", type=int, default=768, help="the new space's dimension")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (scripts/host/install-host-packages.sh)")

    workdir = tempfile.mkdtemp(prefix="ragops-reindex-bench-")
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL)
    colors: list[subprocess.Popen] = []
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        documents = DocumentStore(client, "rag:")
        documents.put([prepare(document) for document in corpus(args.chunks)])
        live_space = SpaceStore(client, "rag:", EmbeddingSpace("hashing", "feature-hash-1", 384, 500, 100))
        embedder = HashingEmbedder(384)
        built = sync_space(documents, live_space, embedder.embed, batch_documents=1000)
        print(f"corpus: {documents.count()} documents, {built.chunks} chunks in the live space (384 dimensions)")

        env = {**os.environ, "RAG_REDIS_URL": f"redis://127.0.0.1:{port}/0", "RAG_LOAD_SAMPLE_CORPUS": "false",
               "RAG_LOG_LEVEL": "WARNING"}
        new_env = {**env, "RAG_EMBEDDING_DIM": str(args.dim), "RAG_VERSION": "2.0.0"}
        ports = [free_port(), free_port()]
        colors = [serve({**env, "RAG_VERSION": "1.0.0", "RAG_COLOR": "blue"}, ports[0]),
                  serve({**new_env, "RAG_COLOR": "green"}, ports[1])]
        peaks = {"live color (old space)": 0.0, "candidate color (new space)": 0.0}
        stop = threading.Event()

        def watch() -> None:
            # /health/vector as the health gate and nginx's active checks poll it: each poll may reload the index.
            while not stop.wait(0.1):
                for name, proc, port in zip(peaks, colors, ports):
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/vector", timeout=5):
                            pass
                    except OSError:
                        pass
                    peaks[name] = max(peaks[name], rss_mib(proc.pid))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        started = time.monotonic()
        job = subprocess.Popen([sys.executable, "-m", "rag_service", "reindex"], env=new_env, stdout=subprocess.PIPE,
                               text=True)
        output = job.communicate(timeout=1800)[0]
        seconds = time.monotonic() - started
        # The candidate loads the complete space on its next check: keep watching until it has.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}/health/vector", timeout=5) as response:
                if json.loads(response.read()).get("space_complete"):
                    break
            time.sleep(0.2)
        time.sleep(0.5)
        stop.set()
        watcher.join()
        if job.returncode != 0:
            print(output)
            raise SystemExit(f"the re-index failed with exit status {job.returncode}")
        job_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        done = next(line for line in output.splitlines() if line.startswith("reindex: done:"))
        new_space = SpaceStore(client, "rag:", EmbeddingSpace("hashing", "feature-hash-1", args.dim, 500, 100))
        chunks = len(new_space.load(lambda ids: {}).chunk_ids)
        print(done)
        print(f"re-index of {chunks} chunks into {args.dim} dimensions: {seconds:.1f} s wall time with the process start,"
              f" {chunks / seconds:.0f} chunks/s")
        print(f"peak memory: re-index process {job_peak:.0f} MiB (largest child of this run); "
              + "; ".join(f"{name} {mib:.0f} MiB" for name, mib in peaks.items()))
    finally:
        for proc in colors:
            proc.terminate()
        for proc in colors:
            proc.wait(timeout=30)
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
