"""A deploy killed at any instant leaves the truth on disk, and the next run repairs it (one converged stack).

Each drill runs under the keep-alive POST load with no client retries and asserts the failed count. The figures are
printed and written to $RAGOPS_FIGURES (JSON lines).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request

import pytest
from release_harness import (
    PROJECT,
    RELEASE_DIR,
    containers_snapshot,
    describe,
    ensure_image,
    history,
    kill_group_at,
    load,
    lock_held,
    nginx_live_color,
    read_state,
    run_playbook,
    scenario_vars,
    start_playbook,
    tail,
    wait_for_orphans,
)

RATE = 200
FIGURES = os.environ.get("RAGOPS_FIGURES", "/tmp/ragops-recovery-figures.jsonl")
VERSIONS = ("1.0.0", "1.1.0")


def report(case: str, **figures) -> None:
    line = json.dumps({"case": case, **figures})
    print(f"FIGURES {line}")
    with open(FIGURES, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def epoch(text: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module", autouse=True)
def recorded_stack():
    """Both images, and a record: on a fresh stack, a deploy of the version site.yml started is a no-op that
    records what serves."""
    for version in VERSIONS:
        ensure_image(version)
    if not read_state().get("live"):
        adopted = run_playbook("deploy.yml", "-e", f"version={VERSIONS[0]}")
        assert adopted.returncode == 0, tail(adopted)
        assert "already live" in adopted.stdout and read_state()["live"]["version"] == VERSIONS[0], tail(adopted)


def assert_in_agreement() -> dict:
    """The record, nginx and the lock agree, no attempt is open, and no record file is corrupt: what every drill
    ends with."""
    valid_record_files()
    state = read_state()
    assert state["attempt"] is None, state
    assert nginx_live_color() == state["live"]["color"], state
    assert not lock_held()
    return state


# (phase, the task whose start is the kill point, seconds after it, the run that repairs)
KILLS = [
    ("start", "Run the container of", 0.3, "deploy.yml"),
    ("health_gate", "Health gate of the new color", 0.5, "rollback.yml"),
    ("after_switch", "Note the end of the switch", 0.0, "rollback.yml"),
    ("analysis", "Analyse under traffic", 2.0, "deploy.yml"),
    ("commit", "Record the new live deployment", 0.0, "deploy.yml"),
]


@pytest.mark.parametrize(("phase", "marker", "delay", "repair"), KILLS, ids=[k[0] for k in KILLS])
def test_deploy_killed_is_shown_by_status_and_repaired_by_the_next_run(phase, marker, delay, repair):
    good = assert_in_agreement()["live"]
    new = next(v for v in VERSIONS if v != good["version"])
    entries = len(history())
    with load(RATE) as run:
        killed = start_playbook("deploy.yml", "-e", f"version={new}", new_session=True)
        kill_group_at(killed, marker, delay)
        orphans = wait_for_orphans()
        status = run_playbook("status.yml")
        if phase == "after_switch":
            # With release_repair: refuse, a deploy stops and names the command that repairs.
            refused = run_playbook("deploy.yml", "-e", f"version={new}", extra={"release_repair": "refuse"})
            assert refused.returncode != 0 and "REFUSED" in refused.stdout, tail(refused)
            assert "Run ansible-playbook rollback.yml to make %s live again" % good["version"] in refused.stdout
        repair_started = time.time()
        repaired = run_playbook(repair, *(["-e", f"version={new}"] if repair == "deploy.yml" else []))
    summary = run.stop()
    status_out = status.stdout + status.stderr
    assert status.returncode == 0, tail(status)
    assert status_out.count("stale: ") <= 1, "the lock's staleness is said once"
    assert repaired.returncode == 0, tail(repaired)
    assert summary["failed"] == 0, describe(summary)
    state = assert_in_agreement()
    new_entries = history()[entries:]
    interrupted = [e for e in new_entries if e["outcome"] == "interrupted"]
    if phase == "commit" and not interrupted:
        # The commit's module had started before the kill and finished on its own: nothing was left open.
        assert "CONSISTENT" in status_out, status_out[-3000:]
    else:
        assert "INTERRUPTED" in status_out and "repair:" in status_out, status_out[-3000:]
        assert len(interrupted) == 1, new_entries
        assert interrupted[0]["version"] == new and interrupted[0]["extra"]["last_phase"], interrupted[0]
    assert any(e["action"] == "lock" and e["outcome"] == "taken_over" for e in new_entries), new_entries
    if repair == "deploy.yml":
        assert (state["live"]["version"]) == new, state  # the repair, then the deploy itself
    restored = [e for e in new_entries if e.get("extra", {}).get("repaired_unverified")]
    known_good_after = round(epoch(restored[0]["finished_at"]) - repair_started, 1) if restored else None
    if phase in ("after_switch", "analysis"):
        assert restored and restored[0]["version"] == good["version"], new_entries
    report(f"kill during {phase}", failed=summary["failed"], sent=summary["sent"], orphan_wait_s=round(orphans, 1),
           repair_run=repair, repair_run_s=round(repaired.seconds, 1), known_good_serving_after_s=known_good_after,
           interrupted_phase=interrupted[0]["extra"]["last_phase"] if interrupted else None,
           outcomes=[(e["action"], e["outcome"]) for e in new_entries])


RELEASE = RELEASE_DIR
FAST = {"release_health_timeout": 15}


def other_version() -> str:
    live = read_state()["live"]["version"]
    return next(v for v in VERSIONS if v != live)


def valid_record_files() -> None:
    """state.json is one JSON object and every history line is one."""
    assert isinstance(json.loads((RELEASE / "state.json").read_text(encoding="utf-8")), dict)
    for number, line in enumerate((RELEASE / "history.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            assert isinstance(json.loads(line), dict), (number, line)


def test_corrupt_state_json_is_named_with_its_line_and_kept_as_a_copy():
    state_file = RELEASE / "state.json"
    original = state_file.read_bytes()
    damaged = original[: len(original) // 2]  # a file cut in the middle, as by a failing disk
    before = containers_snapshot()
    try:
        state_file.write_bytes(damaged)
        with load(RATE) as run:
            status = run_playbook("status.yml")
            deploy = run_playbook("deploy.yml", "-e", f"version={other_version_of(original)}")
        summary = run.stop()
        for result in (status, deploy):
            out = result.stdout + result.stderr
            assert result.returncode != 0, tail(result)
            assert f"{state_file} is corrupt" in out and "line " in out and "a copy is kept at" in out, tail(result)
            assert "Traceback" not in out, tail(result)
        assert state_file.read_bytes() == damaged, "nothing was changed"
        copies = sorted(RELEASE.glob("state.json.corrupt-*"))
        assert [c.read_bytes() for c in copies] == [damaged], "one copy of the damaged file, reused by every run"
        assert containers_snapshot() == before
        assert summary["failed"] == 0, describe(summary)
    finally:
        state_file.write_bytes(original)  # the operator mends it from the copy
        for copy in RELEASE.glob("state.json.corrupt-*"):
            copy.unlink()
    assert_in_agreement()
    report("corrupt state.json", failed=summary["failed"], sent=summary["sent"])


def other_version_of(state_bytes: bytes) -> str:
    live = json.loads(state_bytes)["live"]["version"]
    return next(v for v in VERSIONS if v != live)


def test_corrupt_history_line_is_named_then_set_aside_by_the_next_release():
    path = RELEASE / "history.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(lines) >= 3
    garbage = '{"id": "torn", "action": "dep\n'
    path.write_text("".join(lines[:2] + [garbage] + lines[2:]), encoding="utf-8")
    status = run_playbook("status.yml")
    out = status.stdout + status.stderr
    assert status.returncode == 0, tail(status)
    assert "history.jsonl has 1 unreadable line(s) (line 3: not valid JSON" in out, out[-3000:]
    with load(RATE) as run:
        deploy = run_playbook("deploy.yml", "-e", f"version={other_version()}")
    summary = run.stop()
    assert deploy.returncode == 0, tail(deploy)
    assert "unreadable line" in deploy.stdout and "removed from the history" in deploy.stdout, tail(deploy)
    copies = list(RELEASE.glob("history.jsonl.corrupt-*"))
    assert len(copies) == 1 and garbage in copies[0].read_text(encoding="utf-8")
    valid_record_files()
    assert summary["failed"] == 0, describe(summary)
    copies[0].unlink()
    assert_in_agreement()
    report("corrupt history line", failed=summary["failed"], sent=summary["sent"])


def test_full_release_folder_fails_before_the_switch_and_keeps_the_record_valid():
    saved = {p.name: p.read_bytes() for p in RELEASE.iterdir() if p.is_file()}
    color = nginx_live_color()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "ragops-full", str(RELEASE)], check=True)
    try:
        for name, data in saved.items():
            (RELEASE / name).write_bytes(data)
        # Fill all but one page: the lock still fits, the journal of the attempt does not.
        (RELEASE / ".reserve").write_bytes(b"r" * 4096)
        subprocess.run(["dd", "if=/dev/zero", f"of={RELEASE}/.filler", "bs=4k"], capture_output=True, check=False)
        (RELEASE / ".reserve").unlink()
        with load(RATE) as run:
            deploy = run_playbook("deploy.yml", "-e", f"version={other_version()}", extra=FAST)
        summary = run.stop()
        out = deploy.stdout + deploy.stderr
        assert deploy.returncode != 0, tail(deploy)
        assert "No space left on device" in out and "FAILED before the switch" in out, tail(deploy)
        assert "the journal of the attempt could not be written" in out, tail(deploy)
        assert "Traceback" not in out, tail(deploy)
        assert nginx_live_color() == color
        valid_record_files()
        assert (RELEASE / "state.json").read_bytes() == saved["state.json"]
        assert summary["failed"] == 0, describe(summary)
    finally:
        subprocess.run(["umount", str(RELEASE)], check=True)
    assert_in_agreement()
    report("release folder full", failed=summary["failed"], sent=summary["sent"], reason=out[out.find("Reason"):][:200])


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback and the stack network only
        return json.loads(response.read())


def chunk_count(color: str) -> int:
    """The reference service's corpus size, at the color's own address (its /health/vector)."""
    address = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                              "ragops-app-" + color], capture_output=True, text=True, check=True).stdout.strip()
    return get_json(f"http://{address}:8000/health/vector")["chunk_count"]


def wait_serving(run, timeout: float = 120) -> None:
    """Until nginx answers its public health route again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            get_json("http://127.0.0.1:8080/health")
            return
        except OSError:
            assert run.proc.poll() is None and time.monotonic() < deadline, "the stack did not serve again"
            time.sleep(0.2)


def container_health(name: str) -> str:
    return subprocess.run(["docker", "inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                           name], capture_output=True, text=True, check=False).stdout.strip()


def wait_healthy(name: str, timeout: float = 120) -> float:
    started = time.monotonic()
    while container_health(name) != "running healthy":
        assert time.monotonic() - started < timeout, f"{name}: {container_health(name)}"
        time.sleep(0.2)
    return time.monotonic() - started


def test_redis_stopped_fails_the_deploy_before_the_switch_naming_redis():
    color = nginx_live_color()
    entries = len(history())
    subprocess.run(["docker", "stop", "ragops-redis"], check=True, capture_output=True)
    try:
        with load(RATE) as run:
            deploy = run_playbook("deploy.yml", "-e", f"version={other_version()}", extra=FAST)
        summary = run.stop()
    finally:
        subprocess.run(["docker", "start", "ragops-redis"], check=True, capture_output=True)
        wait_healthy("ragops-redis")
    out = deploy.stdout + deploy.stderr
    assert deploy.returncode != 0, tail(deploy)
    assert "FAILED before the switch" in out and "Redis (container ragops-redis) is not running" in out, tail(deploy)
    assert nginx_live_color() == color
    assert [e["outcome"] for e in history()[entries:]] == ["failed"]
    # The live color answers from its in-memory index (or degraded) while Redis is away: never a 5xx.
    assert summary["failed"] == 0, describe(summary)
    assert_in_agreement()
    report("redis stopped", failed=summary["failed"], sent=summary["sent"], deploy_seconds=round(deploy.seconds, 1))


def test_nginx_restarted_during_the_analysis_keeps_the_live_color():
    new = other_version()
    entries = len(history())
    with load(RATE) as run:
        deploy = start_playbook("deploy.yml", "-e", f"version={new}")
        try:
            output = wait_for_line(deploy, "Analyse under traffic")
            time.sleep(2)
            serving = nginx_live_color()
            restart_started = time.time()
            subprocess.run(["docker", "restart", "ragops-nginx"], check=True, capture_output=True)
            after_restart = wait_for_admin_api()
            restart_ended = time.time()
            restart_seconds = restart_ended - restart_started
        finally:
            output = deploy.communicate(timeout=300)[0]
    summary = run.stop()
    assert after_restart == serving, "the live color survives an nginx restart"
    # Requests fail only while nginx restarts, never during the rest of the analysis or after it.
    assert summary["ok"] + summary["failed"] == summary["sent"], describe(summary)
    assert summary["failed"] == 0 or (restart_started <= summary["first_failure_at"]
                                      and summary["last_failure_at"] <= restart_ended + 1), describe(summary)
    entry = history()[entries:][-1]
    state = assert_in_agreement()
    assert (deploy.returncode == 0) == (entry["outcome"] == "success"), output[-3000:]
    assert entry["outcome"] in ("success", "rolled_back"), entry
    assert state["live"]["version"] == (new if entry["outcome"] == "success" else other_than(new))
    report("nginx restarted during the analysis", failed=summary["failed"], sent=summary["sent"],
           restart_seconds=round(restart_seconds, 2), outcome=entry["outcome"],
           analysis=entry["extra"].get("analysis"), reason=(entry["reason"] or "")[:200])


def wait_for_admin_api(timeout: float = 60) -> str:
    """The color nginx serves, once its admin API answers again after a restart."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return nginx_live_color()
        except (OSError, ValueError, KeyError):
            assert time.monotonic() < deadline, "nginx's admin API did not come back"
            time.sleep(0.1)


def other_than(version: str) -> str:
    return next(v for v in VERSIONS if v != version)


def wait_for_line(proc, marker: str, timeout: float = 300) -> str:
    seen, deadline = [], time.monotonic() + timeout
    for line in proc.stdout:
        seen.append(line)
        if marker in line or time.monotonic() > deadline:
            break
    assert marker in "".join(seen), "".join(seen)[-3000:]
    return "".join(seen)


def test_engine_restart_brings_the_stack_back_on_the_recorded_live_color():
    state = assert_in_agreement()
    history_before = (RELEASE / "history.jsonl").read_bytes()
    corpus_before = chunk_count(state["live"]["color"])
    with load(RATE, duration=600) as run:
        outage_started = time.time()
        subprocess.run(["pkill", "-TERM", "-x", "dockerd"], check=True)
        deadline = time.monotonic() + 120
        while subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, check=False).returncode == 0:
            assert time.monotonic() < deadline, "dockerd did not stop"
            time.sleep(0.2)
        subprocess.run([str(PROJECT / "scripts/host/start-docker.sh")], check=True, capture_output=True, timeout=120)
        for name in ("ragops-redis", "ragops-nginx", "ragops-app-" + state["live"]["color"]):
            wait_healthy(name)
        wait_serving(run)
        outage_ended = time.time()
        time.sleep(2)  # the load goes on after the stack serves again: no failure may follow
    summary = run.stop()
    # Every request was answered or counted as failed, and every failure lies within the outage.
    assert summary["ok"] + summary["failed"] == summary["sent"], describe(summary)
    assert summary["failed"] == 0 or (outage_started <= summary["first_failure_at"]
                                      and summary["last_failure_at"] <= outage_ended + 1), describe(summary)
    assert nginx_live_color() == state["live"]["color"]
    assert read_state() == state
    assert (RELEASE / "history.jsonl").read_bytes() == history_before
    assert chunk_count(state["live"]["color"]) == corpus_before, "the corpus survives in Redis's append-only file"
    status = run_playbook("status.yml")
    assert status.returncode == 0 and "CONSISTENT" in status.stdout, tail(status)
    downtime = (summary["last_failure_at"] - summary["first_failure_at"]) if summary["failed"] else 0.0
    report("engine restart", failed=summary["failed"], sent=summary["sent"], unavailable_s=round(downtime, 1),
           corpus_chunks=corpus_before)


HTTPS_QUERY = "https://127.0.0.1:8443/api/query"


def nginx_workers() -> set[str]:
    """The pids of nginx's worker processes: new ones after a reload, the same ones otherwise."""
    out = subprocess.run(["docker", "top", "ragops-nginx", "-o", "pid,cmd"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[0] for line in out.splitlines() if "worker process" in line}


def new_certificate(workdir, name: str) -> dict:
    key, cert = workdir / f"{name}.key", workdir / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
                    "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return {"nginx_tls_certificate": cert.read_text(), "nginx_tls_private_key": key.read_text()}


def served_certificate_subject() -> str:
    out = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:8443"], input="", capture_output=True,
                         text=True, timeout=20, check=False).stdout
    return subprocess.run(["openssl", "x509", "-noout", "-subject"], input=out, capture_output=True, text=True,
                          check=True).stdout.strip()


def nginx_change_under_load(extra: dict) -> tuple[subprocess.CompletedProcess, dict, dict, bool]:
    """site.yml (nginx only) under both clients at once, over TLS; whether nginx's workers were replaced."""
    workers = nginx_workers()
    with load(100, url=HTTPS_QUERY) as harsh, load(100, url=HTTPS_QUERY, client="pooled") as pooled:
        result = run_playbook("site.yml", "--tags", "nginx", extra=extra)
        time.sleep(1)  # let both clients write on their connections once more after the change
    return result, harsh.stop(), pooled.stop(), nginx_workers() != workers


@pytest.mark.parametrize("change", ["tls renewal", "rate-limit change"])
def test_nginx_configuration_changes_under_load(change, tmp_path):
    extra = new_certificate(tmp_path, "renewed") if change == "tls renewal" else {"nginx_rate_limit_burst": 41}
    runs = [nginx_change_under_load(extra)]
    for result, harsh, pooled, reloaded in runs:
        assert result.returncode == 0, tail(result)
        if change == "rate-limit change":
            # A rate limit is nginx configuration: a reload, which closes idle keep-alive connections. A client that
            # writes on one at that instant loses that request: at most one per open connection.
            assert reloaded
            assert harsh["failed"] <= 8 and pooled["failed"] <= 8, (describe(harsh), describe(pooled))
        else:
            # A certificate handed to nginx over its admin API: no reload, no connection closed.
            assert not reloaded and harsh["failed"] == 0 and pooled["failed"] == 0, (describe(harsh), describe(pooled))
    if change == "tls renewal":
        assert served_certificate_subject() == "subject=CN = renewed"
    report(f"nginx {change}", reloads=sum(r[3] for r in runs), harsh_failed=sum(r[1]["failed"] for r in runs),
           harsh_sent=sum(r[1]["sent"] for r in runs), pooled_failed=sum(r[2]["failed"] for r in runs),
           pooled_sent=sum(r[2]["sent"] for r in runs), site_seconds=[round(r[0].seconds, 1) for r in runs])


def test_status_is_readable_with_any_ansible_cfg(tmp_path):
    """Outside the repo (an installed collection, the default callback's JSON results): one line per list item."""
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\ninventory = %s\n" % (PROJECT / "inventories/local/hosts.yml"), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env.update(ANSIBLE_CONFIG=str(config), ANSIBLE_COLLECTIONS_PATH=str(PROJECT / "collections"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run(["ansible-playbook", "ragops.platform.status", *scenario_vars()], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, tail(result)
    assert '"RELEASE STATUS localhost' in result.stdout and '"Reconcile: CONSISTENT' in result.stdout, tail(result)
    assert "\\n" not in result.stdout.split("Show the status", 1)[1], "one escaped string"
