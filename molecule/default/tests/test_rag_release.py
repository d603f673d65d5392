"""RAG-aware releases of the reference service (issue 12), after test_bluegreen.py on the same stack (conftest.py:
RELEASE_SUITES): a new embedding space built by the pre-switch re-index over a corpus of more than 1,000 documents,
writes during it reaching both spaces, a rollback that needs no re-index, the quality gate refusing a candidate
that retrieves worse, and a re-index killed halfway that the next deploy resumes.

The load is keep-alive POSTs to /api/query through nginx at 200 requests/s, never retried.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import PUBLIC, http, poll
from release_harness import (
    assert_no_failures,
    describe,
    ensure_image,
    history,
    live_color,
    load,
    read_state,
    run_playbook,
    start_playbook,
    tail,
)

RATE = 200
COLORS = {"blue": "http://172.30.57.10:8000", "green": "http://172.30.57.11:8000"}
SECRETS = Path(os.environ.get("HOME", "/root")) / ".local/share/ragops/secrets"
IMPORTED = 1000
NEW_DIM = "768"  # more dimensions than the default 384: fewer hash collisions, so the quality gate lets it through


def token() -> str:
    return (SECRETS / "admin_token").read_text().strip()


def ingest(documents: list[dict]) -> None:
    status, _headers, body = http("POST", f"{PUBLIC}/api/documents", {"documents": documents}, timeout=60,
                                  headers={"Authorization": f"Bearer {token()}"})
    assert status == 200, body


def vector(color: str) -> dict:
    status, _headers, body = http("GET", f"{COLORS[color]}/health/vector")
    assert status == 200, body
    return body


def sources(url: str, question: str) -> list[str]:
    status, _headers, body = http("POST", f"{url}/api/query", {"query": question, "client_id": "rag-test"})
    assert status == 200, body
    return [source["id"] for source in body["sources"]]


def redis(*command: str) -> str:
    password = (SECRETS / "redis_password").read_text().strip()
    return subprocess.run(["docker", "exec", "-e", f"REDISCLI_AUTH={password}", "ragops-redis", "redis-cli", "--raw",
                           *command], capture_output=True, text=True, check=True, timeout=30).stdout.strip()


def job_running(color: str) -> bool:
    found = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", f"ragops-job-{color}"],
                           capture_output=True, text=True, check=False)
    return found.stdout.strip() == "true"


def synthetic(count: int, prefix: str) -> list[dict]:
    """Documents of made-up words: a corpus to re-index that the golden questions do not ask about."""
    rng = random.Random(prefix)
    syllables = ["ka", "zu", "mor", "vel", "tri", "qua", "sno", "pli", "dra", "fen", "lox", "gri", "bup", "wex"]

    def word() -> str:
        return "".join(rng.choice(syllables) for _syllable in range(3))

    def sentence() -> str:
        return " ".join(word() for _word in range(12)) + "."

    return [{"id": f"{prefix}-{n:04d}", "title": word().title(),
             "text": " ".join(sentence() for _sentence in range(4))} for n in range(count)]


class MemoryWatch:
    """The peak memory (docker stats) of the app colors and the job container while it runs."""

    def __init__(self) -> None:
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            names = ["ragops-app-blue", "ragops-app-green"] + [f"ragops-job-{c}" for c in COLORS if job_running(c)]
            out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", *names],
                                 capture_output=True, text=True, check=False).stdout
            for line in out.splitlines():
                name, usage = line.split(" ", 1)
                used = usage.split("/")[0].strip()
                number, unit = float(used.rstrip("KMGiB")), used.lstrip("0123456789.")
                mib = number * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "B": 1 / 1024 / 1024}.get(unit, 1)
                self.peak[name] = max(self.peak.get(name, 0.0), mib)


@pytest.fixture(scope="module", autouse=True)
def corpus():
    ensure_image("1.2.0")
    assert live_color() == "green" and read_state()["live"]["version"] == "1.1.0"
    documents = synthetic(IMPORTED, "import")
    for start in range(0, IMPORTED, 250):
        ingest(documents[start:start + 250])
    for color in COLORS:  # both colors share the 384-dimension space: each sees the whole corpus
        poll(lambda c=color: vector(c)["space_complete"] and vector(c)["document_count"] > IMPORTED, 60,
             f"{color} answering from the imported corpus")


def test_a_new_embedding_dimension_is_reindexed_before_the_switch_under_load():
    before = vector("green")
    ingested: list[str] = []

    def ingest_during_the_reindex() -> None:
        # Documents posted (to the live color, through nginx) while the new color's re-index runs.
        deadline = time.monotonic() + 300
        while not job_running("blue"):
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        number = 0
        while job_running("blue") and number < 20:
            document = {"id": f"during-reindex-{number}", "title": "Reindex drill",
                        "text": f"The plumbobulator {number} valve is calibrated by the glimmerwick team."}
            ingest([document])
            ingested.append(document["id"])
            number += 1

    writer = threading.Thread(target=ingest_during_the_reindex, daemon=True)
    writer.start()
    with MemoryWatch() as memory, load(RATE) as run:
        result = run_playbook("deploy.yml", "-e", "version=1.2.0", extra={
            # Paced, so that the re-index lasts long enough to be written to during it.
            "ragops_app_env": {"RAG_EMBEDDING_DIM": NEW_DIM, "RAG_REINDEX_MAX_CHUNKS_PER_SECOND": "400"}})
    summary = run.stop()
    writer.join(timeout=30)
    assert result.returncode == 0, tail(result)
    assert_no_failures(summary, RATE)
    assert live_color() == "blue"
    assert set(summary["served"]) == {"green 1.1.0", "blue 1.2.0"}, describe(summary)

    entry = history()[-1]
    assert (entry["action"], entry["outcome"], entry["version"]) == ("deploy", "success", "1.2.0"), entry
    output = "\n".join(entry["extra"]["pre_switch"]["output"])
    done = [line for line in entry["extra"]["pre_switch"]["output"] if line.startswith("reindex: done:")]
    assert done and f"/{NEW_DIM}/" in done[0], output
    embedded = int(done[0].split(" documents embedded")[0].rsplit(" ", 1)[1])
    assert embedded >= IMPORTED + 35, output  # every document, re-chunked and re-embedded into the new space
    quality = entry["extra"]["quality"]
    assert quality["passed"] and quality["compared"], quality
    print(f"RAG re-index: {done[0]}")
    print(f"RAG quality gate (dimension {NEW_DIM}): live {json.dumps(quality['live'])}; candidate "
          f"{json.dumps(quality['candidate'])}; gate {entry['phases'].get('quality')} s, re-index job "
          f"{entry['phases'].get('pre_switch')} s, deploy {entry['duration']} s")
    print("RAG memory peak during the deploy (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(memory.peak.items())))

    # The new color answers from its own, complete space; the old one from its own, untouched.
    new, old = vector("blue"), vector("green")
    assert f"/{NEW_DIM}/" in new["space"] and new["space_complete"] and new["space"] != old["space"] == before["space"]
    poll(lambda: vector("blue")["document_count"] == vector("green")["document_count"] >= IMPORTED + 35 + len(ingested),
         10, "both colors holding every document")
    # Answers through nginx come from the new space: the same question scores differently than in the old one.
    question = {"query": "Quel est le taux de TVA ?", "client_id": "t"}
    status, headers, answer = http("POST", f"{PUBLIC}/api/query", question)
    status_old, _h, answer_old = http("POST", f"{COLORS['green']}/api/query", question)
    assert status == status_old == 200 and headers["X-App-Color"] == "blue"
    assert answer["sources"][0]["id"] == answer_old["sources"][0]["id"] == "billing-tva"
    assert answer["sources"][0]["score"] != answer_old["sources"][0]["score"]

    # Written during the re-index, found by both colors.
    assert ingested, "no document was written while the re-index ran"
    for color, url in COLORS.items():
        poll(lambda u=url: "during-reindex-0" in sources(u, "plumbobulator 0 valve glimmerwick"), 10,
             f"{color} finding a document written during the re-index")
        assert f"during-reindex-{len(ingested) - 1}" in sources(url, f"plumbobulator {len(ingested) - 1} valve")


def test_rollback_restores_the_old_space_at_once_without_a_reindex():
    with load(RATE) as run:
        result = run_playbook("rollback.yml")
    summary = run.stop()
    assert result.returncode == 0, tail(result)
    assert_no_failures(summary, RATE)
    assert live_color() == "green"
    entry = history()[-1]
    assert (entry["action"], entry["outcome"], entry["version"]) == ("rollback", "success", "1.1.0"), entry
    assert entry["extra"].get("pre_switch") is None and "pre_switch" not in entry["phases"], entry
    green = vector("green")
    assert "/384/" in green["space"] and green["space_complete"], green
    # The new space is kept for a deploy back (retention); the rollback removed nothing.
    assert f"/{NEW_DIM}/" in vector("blue")["space"] and vector("blue")["space_complete"]
    print(f"RAG rollback to the 384-dimension space: {entry['duration']} s, {summary['failed']} failed of "
          f"{summary['sent']}")


def test_a_candidate_that_retrieves_worse_is_refused_by_the_quality_gate():
    with load(RATE) as run:
        result = run_playbook("deploy.yml", "-e", "version=1.2.0",
                              extra={"ragops_app_env": {"RAG_CHAOS": "truncate_retrieval:1"}})
    summary = run.stop()
    assert result.returncode != 0
    assert_no_failures(summary, RATE)
    assert live_color() == "green"
    entry = history()[-1]
    assert (entry["action"], entry["outcome"]) == ("deploy", "failed"), entry
    assert "Quality gate" in entry["reason"] and "recall@4" in entry["reason"], entry["reason"]
    quality = entry["extra"]["quality"]
    assert not quality["passed"] and quality["candidate"]["recall_at_k"] < quality["live"]["recall_at_k"], quality
    assert "support-hours-channels" in json.dumps(quality["regressed_cases"]), quality
    print(f"RAG quality gate refusal: {entry['reason'][:600]}")


def test_a_reindex_killed_halfway_resumes_on_the_next_deploy():
    dim = "512"
    env = {"RAG_EMBEDDING_DIM": dim}
    proc = start_playbook("deploy.yml", "-e", "version=1.2.0",
                          extra={"ragops_app_env": {**env, "RAG_REINDEX_MAX_CHUNKS_PER_SECOND": "300"}})
    poll(lambda: job_running("blue"), 180, "the re-index job of blue")
    space = poll(lambda: vector("blue").get("space_id") if f"/{dim}/" in vector("blue")["space"] else None, 60,
                 "blue on the 512-dimension space")
    key = f"rag:space:{space}:progress"

    def halfway():
        total, done = (int(redis("HGET", key, field) or 0) for field in ("total", "done"))
        return (done, total) if total and done >= total * 0.3 else None

    done, total = poll(halfway, 120, "the re-index 30% done")
    subprocess.run(["docker", "kill", "ragops-job-blue"], check=True, capture_output=True, timeout=30)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode != 0, out[-3000:]
    killed = history()[-1]
    assert killed["outcome"] == "failed" and "exited with code 137" in killed["reason"], killed
    assert live_color() == "green"

    with load(RATE) as run:
        result = run_playbook("deploy.yml", "-e", "version=1.2.0", extra={"ragops_app_env": env})
    summary = run.stop()
    assert result.returncode == 0, tail(result)
    assert_no_failures(summary, RATE)
    entry = history()[-1]
    output = "\n".join(entry["extra"]["pre_switch"]["output"])
    assert "resuming: the last re-index of this space stopped at" in output, output
    resumed = int(output.split(" already in the space", maxsplit=1)[0].rsplit("; ", 1)[1])
    assert resumed >= done, output  # what the killed run committed was not embedded again
    print(f"RAG re-index killed at {done}/{total} documents; the next deploy found {resumed} already in the space")
    assert live_color() == "blue" and f"/{dim}/" in vector("blue")["space"]
