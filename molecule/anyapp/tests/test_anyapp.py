"""Another workload, end to end: notes-api (examples/notes-api) ships with the same release engine.

The tests run in order on one converged stack (notes-api 1.0.0 live on blue). The load is keep-alive POSTs of
JSON notes to /notes through nginx at 200 requests/s, never retried; a failed request is one that got no answer or
a status other than 2xx. The platform reads nothing of the app but its port and /healthz: which color served comes
from nginx's own X-Ragops-Color header, the release analysis from nginx's per-color metrics.
"""

from __future__ import annotations

import copy
import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from release_harness import (
    assert_no_failures,
    PROJECT,
    containers_snapshot,
    describe,
    ensure_image,
    history,
    live_color,
    load,
    read_state,
    release_files_snapshot,
    run_playbook,
    tail,
)

RATE = 200
PUBLIC = "http://127.0.0.1:8080"
LOAD = {"url": f"{PUBLIC}/notes", "body": {"text": "a note under load"}}
WORKLOAD = yaml.safe_load((PROJECT / "examples/notes-api/workload.yml").read_text())["ragops_app"]
EVENTS = Path("/opt/ragops/alertmanager/sink/events.jsonl")
FIGURES = Path("/tmp/ragops-anyapp-figures.jsonl")
REGISTRY_REPOSITORY = "127.0.0.1:5000/ragops-example/notes-api"


def report(case: str, **figures) -> None:
    line = json.dumps({"case": case, **figures})
    print(f"FIGURES {line}")
    with FIGURES.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def get(path: str) -> tuple[int, dict, str]:
    try:
        with urllib.request.urlopen(f"{PUBLIC}{path}", timeout=5) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def serving() -> tuple[str, str]:
    """(color, version) that answers GET / through nginx: the color from nginx, the version from the app's text."""
    status, headers, body = get("/")
    assert status == 200, (status, body)
    return headers["X-Ragops-Color"], body.split()[-1]


def sink_url() -> str:
    address = subprocess.run(
        ["docker", "inspect", "-f", "{{ (index .NetworkSettings.Networks \"ragops\").IPAddress }}", "ragops-alert-sink"],
        check=True, capture_output=True, text=True).stdout.strip()
    return f"http://{address}:9099/events"


def events() -> list[dict]:
    if not EVENTS.exists():
        return []
    return [json.loads(line) for line in EVENTS.read_text(encoding="utf-8").splitlines() if line.strip()]


def with_webhook(**extra) -> dict:
    return {"release_notify_webhooks": [sink_url()], **extra}


def workload(**changes) -> dict:
    definition = copy.deepcopy(WORKLOAD)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = definition
        for key in parents:
            target = target.setdefault(key, {})
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return definition


@pytest.fixture(scope="module", autouse=True)
def images():
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        ensure_image(version)


def test_the_workload_runs_as_defined(host):
    inspected = json.loads(host.check_output("docker inspect ragops-app-blue"))[0]
    assert inspected["Config"]["Image"] == "ragops-example/notes-api:1.0.0"
    assert inspected["Config"]["User"] == "20000:20000"
    assert inspected["HostConfig"]["ReadonlyRootfs"] is True
    env = dict(item.split("=", 1) for item in inspected["Config"]["Env"])
    assert env["NOTES_VERSION"] == "1.0.0" and env["NOTES_PORT"] == "9000"
    assert not [name for name in env if name.startswith("RAG_")], env
    status, headers, body = get("/")
    assert (status, body.strip()) == (200, "notes-api 1.0.0")
    assert headers["X-Ragops-Color"] == "blue"
    assert not [name for name in headers if name.lower().startswith("x-app-")], headers
    assert get("/healthz")[2].strip() == "ok"
    assert get("/metrics")[0] == 404
    assert get("/api/query")[0] == 404


@pytest.mark.parametrize(("changes", "field"), [
    ({"image": None}, "missing required arguments: image found in ragops_app"),
    ({"port": 70000}, "ragops_app.port=70000 must be a port number from 1 to 65535"),
    ({"health__checks": [{"name": "no-path", "body_contains": "ok"}]},
     "missing required arguments: path found in ragops_app -> health -> checks"),
    ({"routes": [{"methods": ["GET"]}]}, "missing required arguments: path found in ragops_app -> routes"),
], ids=["missing-image", "bad-port", "health-check-without-path", "route-without-path"])
def test_a_bad_workload_definition_fails_before_anything_changes(changes, field):
    files, containers = release_files_snapshot(), containers_snapshot()
    result = run_playbook("deploy.yml", "-e", "version=1.1.0", extra={"ragops_app": workload(**changes)})
    assert result.returncode != 0, tail(result)
    assert field in result.stdout + result.stderr, tail(result)
    assert release_files_snapshot() == files
    assert containers_snapshot() == containers


def test_a_deploy_under_load_runs_the_pre_switch_job_and_fails_no_request():
    sent_events = len(events())
    with load(RATE, **LOAD) as run:
        result = run_playbook("deploy.yml", "-e", "version=1.1.0", extra=with_webhook())
    summary = run.stop()
    assert result.returncode == 0, tail(result)
    assert_no_failures(summary, RATE)
    entry = history()[-1]
    assert (entry["action"], entry["outcome"], entry["version"]) == ("deploy", "success", "1.1.0"), entry
    assert "pre_switch" in entry["phases"], entry
    job = entry["extra"]["pre_switch"]
    assert job["passed"] is True and job["exit_code"] == 0 and "migrate: done" in " ".join(job["output"]), job
    assert serving() == ("green", "1.1.0")
    assert set(summary["served"]) >= {"blue ", "green "}, describe(summary)
    received = events()[sent_events:]
    assert [(e["action"], e["version"], e["outcome"]) for e in received] == [("deploy", "1.1.0", "success")], received
    assert received[0]["workload"] == "notes-api" and received[0]["phases"]["pre_switch"] > 0
    report("deploy", failed=summary["failed"], sent=summary["sent"], deploy_seconds=round(result.seconds, 1),
           phases=entry["phases"])


def test_twenty_switches_under_load_fail_no_request():
    with load(RATE, **LOAD) as run:
        result = run_playbook("tests/release/switch_back_and_forth.yml", "-e", "switches=20")
    summary = run.stop()
    assert result.returncode == 0, tail(result)
    assert result.stdout.count("changed: [localhost] => (item=switch ") == 20, tail(result)
    assert_no_failures(summary, RATE)
    assert live_color() == "green"
    report("20 switches", failed=summary["failed"], sent=summary["sent"])


def test_a_failing_pre_switch_job_stops_the_deploy_before_the_switch():
    sent_events, files_live = len(events()), read_state()["live"]
    with load(RATE, **LOAD) as run:
        result = run_playbook("deploy.yml", "-e", "version=1.2.0",
                              extra=with_webhook(ragops_app_env={"NOTES_MIGRATE_FAIL": "1"}))
    summary = run.stop()
    out = result.stdout + result.stderr
    assert result.returncode != 0, tail(result)
    assert "FAILED before the switch" in out and "exited with code 3" in out, tail(result)
    entry = history()[-1]
    assert (entry["outcome"], entry["version"]) == ("failed", "1.2.0"), entry
    job = entry["extra"]["pre_switch"]
    assert job["passed"] is False and job["exit_code"] == 3 and job["output"], job
    assert read_state()["live"] == files_live
    assert serving() == ("green", "1.1.0")
    assert_no_failures(summary, RATE)
    received = events()[sent_events:]
    assert [(e["version"], e["outcome"]) for e in received] == [("1.2.0", "failed")], received
    assert "pre-switch" in received[0]["reason"] or "job" in received[0]["reason"], received[0]


def test_a_bad_build_answering_500s_is_rolled_back_by_the_nginx_side_analysis():
    sent_events = len(events())
    # An extra PromQL check of the workload rides along (the color's series exist from nginx's start, so it has
    # data and passes): the verdict stays nginx's error rate, and the check's result is in the record.
    lb_rate = {"name": "lb-traffic", "query": 'sum(increase(ragops_lb_requests_total{color="${color}"}[5s]))',
               "min": 0, "must_have_data": True}
    bad = workload(image__build__args={"FAIL_RATE": "1.0"}, analysis__queries=[lb_rate])
    with load(RATE, **LOAD) as run:
        result = run_playbook("deploy.yml", "-e", "version=1.3.0",
                              extra=with_webhook(ragops_app=bad, release_smoke_enabled=False))
    summary = run.stop()
    out = result.stdout + result.stderr
    assert result.returncode != 0, tail(result)
    assert "ROLLED BACK after the switch" in out and "error rate" in out, tail(result)
    entry = history()[-1]
    assert (entry["outcome"], entry["version"]) == ("rolled_back", "1.3.0"), entry
    restore = entry["extra"]["restore_seconds"]
    assert restore is not None and restore <= 5, entry
    decision = entry["extra"]["decision_epoch"]
    bad_answers = [f["at"] for f in summary["failures"] if f["color"] == "blue"]
    bad_last = max([summary["last_seen"].get("blue ", 0), *bad_answers])
    assert bad_last <= decision + 5, (bad_last, decision)
    assert serving() == ("green", "1.1.0")
    checks = entry["extra"]["analysis"]
    assert checks and checks[-1]["error_rate"] > 0.05, checks
    assert [(q["name"], q["ok"]) for q in checks[-1]["queries"]] == [("lb-traffic", True)], checks[-1]
    assert checks[-1]["queries"][0]["value"] >= 0, checks[-1]
    received = events()[sent_events:]
    assert [(e["version"], e["outcome"]) for e in received] == [("1.3.0", "rolled_back")], received
    report("bad build (500s)", failed_during_analysis=summary["failed"], sent=summary["sent"],
           restore_seconds=restore, requests_judged=checks[-1]["requests"], error_rate=checks[-1]["error_rate"],
           deploy_seconds=round(result.seconds, 1))


def test_registry_mode_deploys_from_the_local_registry():
    pushed = run_playbook("molecule/anyapp/registry.yml", extra={
        "registry_push_images": [{"source": "ragops-example/notes-api:1.2.0", "target": f"{REGISTRY_REPOSITORY}:2.0.0"}]})
    assert pushed.returncode == 0, tail(pushed)
    from_registry = workload(image={"source": "registry", "repository": REGISTRY_REPOSITORY})
    with load(RATE, **LOAD) as run:
        result = run_playbook("deploy.yml", "-e", "version=2.0.0", extra={"ragops_app": from_registry})
    summary = run.stop()
    assert result.returncode == 0, tail(result)
    assert_no_failures(summary, RATE)
    assert serving() == ("blue", "2.0.0")
    image = subprocess.run(["docker", "inspect", "-f", "{{ .Config.Image }}", "ragops-app-blue"], check=True,
                           capture_output=True, text=True).stdout.strip()
    assert image == f"{REGISTRY_REPOSITORY}:2.0.0"
    report("registry deploy", failed=summary["failed"], sent=summary["sent"], deploy_seconds=round(result.seconds, 1))


def test_a_version_missing_from_the_registry_fails_in_preflight():
    files, containers = release_files_snapshot(), containers_snapshot()
    from_registry = workload(image={"source": "registry", "repository": REGISTRY_REPOSITORY})
    result = run_playbook("deploy.yml", "-e", "version=2.9.9", extra={"ragops_app": from_registry})
    assert result.returncode != 0, tail(result)
    assert "FAILED in preflight; no container was touched" in result.stdout, tail(result)
    assert containers_snapshot() == containers
    assert read_state() == json.loads(files[str(Path("/opt/ragops/release/state.json"))])
    assert history()[-1]["outcome"] == "failed"


def test_rollback_and_status_across_the_workload():
    with load(RATE, **LOAD) as run:
        result = run_playbook("rollback.yml")
    summary = run.stop()
    assert result.returncode == 0, tail(result)
    assert_no_failures(summary, RATE)
    assert serving() == ("green", "1.1.0")
    status = run_playbook("status.yml")
    assert status.returncode == 0, tail(status)
    assert "healthy (1 check" in status.stdout, tail(status)
    report("rollback", failed=summary["failed"], sent=summary["sent"], seconds=round(result.seconds, 1))
