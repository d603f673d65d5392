# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.ragops.platform.plugins.module_utils._reconcile import assess, interrupted_entry_fields
from ansible_collections.ragops.platform.plugins.module_utils._release_record import empty_record
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_release_host import journal

BLUE_LIVE = {"color": "blue", "version": "1.0.0", "image_id": "sha256:b1", "since": "2026-01-04T08:00:00.000Z"}
FREE = {"held": False, "holder": None, "stale": None}


def held_by(lock_id, stale=None):
    """The deploy lock as DeployLock.describe() reports it."""
    return {"held": True, "holder": {"lock_id": lock_id, "user": "alice", "host": "host1"}, "stale": stale}


def container(version, running=True, status=None, health="healthy", image_id=None):
    """One color's container as release_reconcile.container_view reads it."""
    return {"exists": True, "running": running, "status": status or ("running" if running else "exited"),
            "health": health, "version": version, "image_id": image_id or "sha256:" + version}


_BLUE = object()  # the default live deployment; None means none


def record(live=_BLUE, attempt=None, phase="started"):
    found = dict(empty_record(), live=dict(BLUE_LIVE) if live is _BLUE else live)
    if attempt:
        found["attempt"] = dict(attempt, phase=phase)
    return found


# blue runs the known good 1.0.0, green the new 1.1.0.
BOTH = {"blue": container("1.0.0", image_id="sha256:b1"), "green": container("1.1.0", image_id="sha256:g2")}


# -- verdicts ---------------------------------------------------------------------------------------------------------

def test_consistent_when_nginx_serves_the_recorded_live_deployment():
    found = assess(record(), FREE, "blue", None, BOTH)
    assert found["verdict"] == "consistent"
    assert found["serving"] == {"color": "blue", "version": "1.0.0", "image_id": "sha256:b1", "running": True}
    assert found["known_good"] == found["record_live"] == {"color": "blue", "version": "1.0.0", "image_id": "sha256:b1"}
    assert (found["drift"], found["repair"], found["attempt_state"]) == ([], None, "none")
    assert found["containers"] == ["blue: 1.0.0 running (healthy)", "green: 1.1.0 running (healthy)"]
    assert found["message"] == "nginx serves the recorded live deployment blue 1.0.0"


def test_no_record_before_the_first_release():
    found = assess(empty_record(), FREE, "blue", None, {"blue": container("1.0.0")})
    assert found["verdict"] == "no_record"
    assert (found["known_good"], found["repair"], found["drift"]) == (None, None, [])
    assert found["containers"] == ["blue: 1.0.0 running (healthy)", "green: no container"]
    assert found["message"] == "no release was ever recorded; blue 1.0.0 serves"


@pytest.mark.parametrize("nginx_color, containers, repair, drift", [
    # A switch to green that never completed its release: the known good goes back on blue.
    ("green", BOTH,
     {"color": "blue", "version": "1.0.0", "image_id": "sha256:b1", "from_color": "green", "from_version": "1.1.0"},
     "nginx serves green 1.1.0, but the last release that completed made blue 1.0.0 live"),
    # blue, the live color, now runs another version: the known good goes on green, the color that does not serve.
    ("blue", {"blue": container("1.1.0"), "green": None},
     {"color": "green", "version": "1.0.0", "image_id": "sha256:b1", "from_color": "blue", "from_version": "1.1.0"},
     "nginx serves blue 1.1.0, but the last release that completed made blue 1.0.0 live"),
    # nginx serves a color that has no container at all.
    ("green", {"blue": container("1.0.0", image_id="sha256:b1"), "green": None},
     {"color": "blue", "version": "1.0.0", "image_id": "sha256:b1", "from_color": "green", "from_version": None},
     "nginx serves green (no container or no version label), but the last release that completed made blue 1.0.0 live"),
], ids=["switched_to_the_idle_color", "live_color_replaced", "serving_color_has_no_container"])
def test_unverified_repairs_on_the_color_that_does_not_serve(nginx_color, containers, repair, drift):
    found = assess(record(), FREE, nginx_color, None, containers)
    assert found["verdict"] == "unverified"
    assert found["repair"] == repair
    assert found["repair"]["color"] != nginx_color
    assert found["drift"] == [drift]
    assert found["known_good"] == {"color": "blue", "version": "1.0.0", "image_id": "sha256:b1"}


def test_unverified_message_names_what_serves_and_the_known_good():
    found = assess(record(), FREE, "green", None, BOTH)
    assert found["message"] == ("traffic is on green 1.1.0, which never passed its release; "
                                "the known good is blue 1.0.0")


def test_unknown_when_nginx_does_not_answer():
    found = assess(record(), FREE, None, "connection refused", BOTH)
    assert found["verdict"] == "unknown"
    assert (found["serving"], found["repair"]) == (None, None)
    assert found["drift"] == ["nginx: connection refused"]
    assert found["message"] == "cannot tell what nginx serves: nginx: connection refused"


def test_unknown_wins_over_a_color_given_with_the_error():
    found = assess(empty_record(), FREE, "blue", "HTTP 500", BOTH)
    assert (found["verdict"], found["serving"]) == ("unknown", None)


# -- the open attempt: running or interrupted -------------------------------------------------------------------------

@pytest.mark.parametrize("lock, our_lock_id, state", [
    (held_by("L1"), None, "running"),
    (held_by("L1"), "OURS", "running"),
    (held_by("L1", stale="expired"), None, "interrupted"),
    (held_by("L1", stale="holder_exited"), "OURS", "interrupted"),
    (FREE, None, "interrupted"),
    (held_by("L2"), None, "interrupted"),  # the lock is another run's
    (held_by("L1"), "L1", "interrupted"),  # our own lock id: the attempt is not someone else's release in progress
], ids=["held", "held_while_we_look", "stale", "holder_exited", "free", "other_holder", "our_own_lock_id"])
def test_attempt_state(lock, our_lock_id, state):
    found = assess(record(attempt=journal(), phase="gated"), lock, "blue", None, BOTH, our_lock_id=our_lock_id)
    assert found["attempt_state"] == state
    assert found["attempt"]["id"] == "a1"
    assert found["interrupted"] == (found["attempt"] if state == "interrupted" else None)


def test_an_attempt_without_a_lock_id_is_never_running():
    found = assess(record(attempt=journal(lock_id=None)), held_by(None), "blue", None, BOTH)
    assert found["attempt_state"] == "interrupted"


def test_a_running_release_moves_traffic_on_purpose():
    found = assess(record(attempt=journal(), phase="switched"), held_by("L1"), "green", None, BOTH)
    assert (found["verdict"], found["repair"], found["roll_forward"]) == ("consistent", None, None)
    assert found["drift"] == []
    assert found["message"] == "a deploy is in progress (phase switched)"


def test_an_interrupted_attempt_leads_the_drift():
    found = assess(record(attempt=journal(), phase="gated"), FREE, "blue", None, BOTH)
    assert found["verdict"] == "consistent" and found["roll_forward"] is None
    assert found["drift"] == ["deploy 1.1.0 was interrupted in phase gated (started 2026-01-05T09:59:00.000Z by "
                              "alice@host1; the run ended without closing it)"]


# -- roll forward -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("phase, needs_analysis", [("analysed", True), ("switched", False)])
def test_roll_forward_when_the_attempt_was_done_and_its_target_serves(phase, needs_analysis):
    attempt = journal(needs_analysis=needs_analysis)
    found = assess(record(attempt=attempt, phase=phase), FREE, "green", None, BOTH)
    assert found["roll_forward"] == {"color": "green", "version": "1.1.0", "image_id": "sha256:g2",
                                     "previous": {"color": "blue", "version": "1.0.0"}}
    assert found["known_good"] == {"color": "green", "version": "1.1.0", "image_id": "sha256:g2"}
    assert (found["verdict"], found["repair"]) == ("consistent", None)
    assert found["record_live"]["color"] == "blue"  # the record as read, before the commit
    assert found["message"] == "green 1.1.0 serves and had passed its analysis; its record is completed"


@pytest.mark.parametrize("phase, needs_analysis, nginx_color, containers, lock, verdict", [
    ("switched", True, "green", BOTH, FREE, "unverified"),  # its analysis was due and never passed
    ("gated", False, "green", BOTH, FREE, "unverified"),  # never got to its switch
    ("analysed", True, "blue", BOTH, FREE, "consistent"),  # traffic is back on the origin
    ("analysed", True, "green", {"blue": BOTH["blue"], "green": container("1.2.0")}, FREE, "unverified"),
    ("analysed", True, None, BOTH, FREE, "unknown"),  # cannot tell what serves
    ("analysed", True, "green", BOTH, held_by("L1"), "consistent"),  # still running: its run records it
], ids=["switched_analysis_due", "gated", "target_not_serving", "target_color_runs_another_version",
        "nginx_unknown", "running"])
def test_no_roll_forward(phase, needs_analysis, nginx_color, containers, lock, verdict):
    error = "refused" if nginx_color is None else None
    found = assess(record(attempt=journal(needs_analysis=needs_analysis), phase=phase), lock, nginx_color, error,
                   containers)
    assert found["roll_forward"] is None
    assert found["verdict"] == verdict
    assert found["known_good"] == {"color": "blue", "version": "1.0.0", "image_id": "sha256:b1"}


def test_roll_forward_of_the_first_release_has_a_known_good_without_a_record():
    found = assess(record(live=None, attempt=journal(origin=None), phase="analysed"), FREE, "green", None, BOTH)
    assert found["verdict"] == "consistent"
    assert found["roll_forward"]["previous"] == {"color": None, "version": None}
    assert found["known_good"]["version"] == "1.1.0"


# -- drift ------------------------------------------------------------------------------------------------------------

def test_drift_when_the_live_container_is_not_running():
    containers = dict(BOTH, blue=container("1.0.0", running=False, health=None, image_id="sha256:b1"))
    found = assess(record(), FREE, "blue", None, containers)
    assert found["verdict"] == "consistent"
    assert found["serving"]["running"] is False
    assert found["drift"] == ["the live color blue's container is not running (blue: 1.0.0 exited)"]


@pytest.mark.parametrize("persisted, drift", [
    ("green", ["nginx's persisted live color file says green while nginx serves blue"]),
    ("blue", []),
    (None, []),
])
def test_drift_when_the_persisted_live_color_differs(persisted, drift):
    assert assess(record(), FREE, "blue", None, BOTH, persisted_color=persisted)["drift"] == drift


def test_no_persisted_color_drift_while_nginx_is_unknown():
    found = assess(record(), FREE, None, "refused", BOTH, persisted_color="green")
    assert found["drift"] == ["nginx: refused"]


# -- the history line that closes an interrupted attempt ----------------------------------------------------------------

def test_entry_fields_of_an_attempt_rolled_forward():
    found = assess(record(attempt=journal(), phase="analysed"), FREE, "green", None, BOTH)
    reason, extra = interrupted_entry_fields(found)
    assert reason == ("deploy 1.1.0 was interrupted in phase analysed (started 2026-01-05T09:59:00.000Z by "
                      "alice@host1; the run ended without closing it); found: nginx serves green 1.1.0; containers "
                      "blue: 1.0.0 running (healthy), green: 1.1.0 running (healthy); committed: its target serves "
                      "and had passed all it had to")
    assert extra["resolution"] == "committed: its target serves and had passed all it had to"
    assert extra["last_phase"] == "analysed"
    assert extra["attempt"] == found["attempt"]
    assert extra["found"] == {"nginx_serves": found["serving"], "containers": found["containers"],
                              "record_live": {"color": "blue", "version": "1.0.0", "image_id": "sha256:b1"}}


@pytest.mark.parametrize("phase, nginx_color, error, resolution", [
    ("switched", "green", None, "its target serves unverified; the known good blue 1.0.0 must serve again"),
    ("gated", "blue", None, "traffic never left (or is back on) the known good blue 1.0.0"),
    ("switched", None, "refused", "cannot tell what nginx serves: nginx: refused"),
], ids=["unverified", "consistent", "unknown"])
def test_entry_fields_name_the_phase_and_the_resolution(phase, nginx_color, error, resolution):
    found = assess(record(attempt=journal(), phase=phase), FREE, nginx_color, error, BOTH)
    reason, extra = interrupted_entry_fields(found)
    assert extra["resolution"] == resolution and extra["last_phase"] == phase
    assert reason.startswith("deploy 1.1.0 was interrupted in phase %s " % phase)
    assert reason.endswith("; " + resolution)


def test_entry_fields_before_the_first_release():
    found = assess(record(live=None, attempt=journal(origin=None)), FREE, "blue", None, {"blue": container("1.0.0")})
    reason, extra = interrupted_entry_fields(found)
    assert extra["resolution"] == "no release was ever recorded; blue 1.0.0 serves"
    assert extra["last_phase"] == "started" and extra["found"]["record_live"] is None


def test_first_release_after_site_yml_killed_after_its_switch_restores_what_served_before():
    # site.yml's first version was never recorded: the known good is the attempt's origin.
    found = assess(record(live=None, attempt=journal(), phase="switched"), FREE, "green", None, BOTH)
    assert found["verdict"] == "unverified"
    assert found["known_good"] == {"color": "blue", "version": "1.0.0", "image_id": None}
    assert found["repair"] == {"color": "blue", "version": "1.0.0", "image_id": None, "from_color": "green",
                               "from_version": "1.1.0"}


def test_first_release_after_site_yml_killed_before_its_switch_is_consistent():
    found = assess(record(live=None, attempt=journal(), phase="gated"), FREE, "blue", None, BOTH)
    assert (found["verdict"], found["repair"]) == ("consistent", None)
