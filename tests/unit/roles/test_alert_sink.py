# -*- coding: utf-8 -*-
"""The local alert sink (roles/alertmanager/files/sink-image/alert_sink.py): Alertmanager payloads and release events."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

SINK = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "alertmanager", "files", "sink-image",
                    "alert_sink.py")


# A private opener: ansible's Request (used by other tests in the same process) installs a global one.
OPENER = urllib.request.build_opener()


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def sink(tmp_path):
    port = _free_port()
    env = dict(os.environ, ALERT_SINK_STORE=str(tmp_path / "alerts.jsonl"), ALERT_SINK_LISTEN="127.0.0.1",
               ALERT_SINK_PORT=str(port))
    process = subprocess.Popen([sys.executable, SINK], env=env, stderr=subprocess.DEVNULL)
    base = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + 10
    while True:
        try:
            OPENER.open(base + "/health", timeout=1).read()
            break
        except OSError:
            assert time.monotonic() < deadline, "the sink did not start"
            time.sleep(0.05)
    yield base, tmp_path
    process.terminate()
    process.wait(5)


def _post(url, payload):
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    try:
        with OPENER.open(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _get(url):
    with OPENER.open(url, timeout=5) as answer:
        return json.loads(answer.read())


def test_release_events_are_stored_and_filtered_apart_from_alerts(sink):
    base, folder = sink
    assert _post(base + "/events", {"action": "deploy", "version": "1.1.0", "outcome": "success"}) == (200, {"stored": 1})
    assert _post(base + "/events", {"action": "deploy", "version": "1.2.0", "outcome": "rolled_back"})[0] == 200
    events = _get(base + "/events?outcome=rolled_back")
    assert [event["version"] for event in events] == ["1.2.0"]
    assert "receivedAt" in events[0]
    assert _get(base + "/alerts") == []
    assert len((folder / "events.jsonl").read_text().splitlines()) == 2


def test_an_event_must_be_a_json_object_and_alerts_keep_their_format(sink):
    base, _folder = sink
    assert _post(base + "/events", ["not", "an", "object"])[0] == 400
    assert _post(base + "/alerts", {"version": "no alerts list"})[0] == 400
    assert _post(base + "/alerts", {"receiver": "r", "alerts": [{"labels": {"alertname": "A"}, "status": "firing"}]}) == \
        (200, {"stored": 1})
    assert [alert["alertname"] for alert in _get(base + "/alerts?status=firing")] == ["A"]
    assert _get(base + "/events") == []
