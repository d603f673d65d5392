# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the release record says against what nginx serves and what the containers run.

``assess`` is pure: the module gathers the three views (the record with its open attempt and the lock, nginx's
live color from its admin API, the label and state of each color's container) and this decides.

Verdicts:
- ``consistent``: nginx serves the recorded live deployment.
- ``no_record``: nothing was ever committed; what serves is adopted by the next release.
- ``unverified``: nginx serves a color or version that never completed a release (a deploy killed after its switch,
  a hand-made switch). The known good (the record's live deployment) must serve again: ``repair``.
- ``unknown``: nginx's admin API did not answer, so what serves cannot be told.

An open attempt whose holder is gone (``interrupted``) is closed in history. One that had done everything but its
final record (analysed, or switched when no analysis was due) and whose target serves is committed instead of
undone (``roll_forward``): the next run finishes it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.ragops.platform.plugins.module_utils._platform import COLORS

CONSISTENT = "consistent"
NO_RECORD = "no_record"
UNVERIFIED = "unverified"
UNKNOWN = "unknown"


def other(color):
    return COLORS[1] if color == COLORS[0] else COLORS[0]


def _slot(slot):
    return None if not slot else {"color": slot.get("color"), "version": slot.get("version"),
                                  "image_id": slot.get("image_id")}


def _describe(slot):
    if not slot:
        return "nothing"
    return "%s %s" % (slot["color"], slot["version"] or "(no container or no version label)")


def container_line(color, info):
    if not info or not info.get("exists"):
        return "%s: %s" % (color, info.get("status") if info and info.get("status") else "no container")
    health = (" (%s)" % info["health"]) if info.get("health") else ""
    return "%s: %s %s%s" % (color, info.get("version") or "?", info.get("status") or "?", health)


def serving_slot(nginx_color, containers):
    """What nginx serves: its live color and the version that color's container runs (None when unknown)."""
    if nginx_color not in COLORS:
        return None
    info = containers.get(nginx_color) or {}
    return {"color": nginx_color, "version": info.get("version") if info.get("exists") else None,
            "image_id": info.get("image_id"), "running": bool(info.get("running"))}


def attempt_holder_alive(attempt, lock, our_lock_id):
    """True while the run that opened ``attempt`` still holds the deploy lock (a release in progress)."""
    if not attempt or not lock or not lock.get("held") or lock.get("stale"):
        return False
    holder = lock.get("holder") or {}
    lock_id = attempt.get("lock_id")
    return bool(lock_id) and holder.get("lock_id") == lock_id and lock_id != our_lock_id


def _matches(slot, target):
    return bool(slot and target) and slot.get("color") == target.get("color") \
        and slot.get("version") == target.get("version")


def _finished_but_unrecorded(attempt, serving):
    """The attempt did all it had to and its target serves: only its final record is missing."""
    done = attempt["phase"] == "analysed" or (attempt["phase"] == "switched" and not attempt.get("needs_analysis", True))
    return done and _matches(serving, attempt.get("to"))


def assess(record, lock, nginx_color, nginx_error, containers, persisted_color=None, our_lock_id=None):
    """The verdict, the known good, the drift found and what closes an interrupted attempt (see the module doc)."""
    live = _slot(record.get("live"))
    attempt = record.get("attempt")
    serving = serving_slot(nginx_color, containers) if nginx_error is None else None
    drift = []
    result = {"serving": serving, "record_live": live, "record_previous": _slot(record.get("previous")),
              "attempt": attempt, "attempt_state": "none", "roll_forward": None, "interrupted": None,
              "known_good": live, "drift": drift, "repair": None,
              "containers": [container_line(color, containers.get(color)) for color in COLORS]}

    if attempt:
        if attempt_holder_alive(attempt, lock, our_lock_id):
            result["attempt_state"] = "running"
        else:
            result["attempt_state"] = "interrupted"
            result["interrupted"] = attempt
            origin = attempt.get("from") or {}
            if live is None and origin.get("color") in COLORS and origin.get("version"):
                # Never recorded (the first release after site.yml): what served when the attempt opened.
                result["known_good"] = {"color": origin["color"], "version": origin["version"], "image_id": None}
            if serving is not None and _finished_but_unrecorded(attempt, serving):
                result["roll_forward"] = {"color": attempt["to"]["color"], "version": attempt["to"]["version"],
                                          "image_id": serving.get("image_id"), "previous": attempt.get("from")}
                result["known_good"] = _slot(result["roll_forward"])

    known_good = result["known_good"]
    if nginx_error is not None:
        result["verdict"] = UNKNOWN
        drift.append("nginx: %s" % nginx_error)
    elif known_good is None:
        result["verdict"] = NO_RECORD
    elif _matches(serving, known_good):
        result["verdict"] = CONSISTENT
        if not serving["running"]:
            drift.append("the live color %s's container is not running (%s)"
                         % (serving["color"], container_line(serving["color"], containers.get(serving["color"]))))
    elif result["attempt_state"] == "running":
        result["verdict"] = CONSISTENT  # a release in progress moves traffic on purpose
    else:
        result["verdict"] = UNVERIFIED
        drift.append("nginx serves %s, but the last release that completed made %s live"
                     % (_describe(serving), _describe(known_good)))
        # The known good goes back on the color that does not serve now, so that the switch is blue/green.
        result["repair"] = {"color": other(serving["color"]), "version": known_good["version"],
                            "image_id": known_good.get("image_id"), "from_color": serving["color"],
                            "from_version": serving["version"]}

    if persisted_color and nginx_color in COLORS and persisted_color != nginx_color:
        drift.append("nginx's persisted live color file says %s while nginx serves %s" % (persisted_color, nginx_color))
    if result["attempt_state"] == "interrupted":
        drift.insert(0, interrupted_summary(attempt))
    result["message"] = summary(result)
    return result


def interrupted_summary(attempt):
    return "%s %s was interrupted in phase %s (started %s by %s@%s; the run ended without closing it)" % (
        attempt.get("action"), (attempt.get("to") or {}).get("version"), attempt.get("phase"),
        attempt.get("started_at"), attempt.get("user"), attempt.get("host"))


def summary(result):
    verdict = result["verdict"]
    if verdict == UNKNOWN:
        return "cannot tell what nginx serves: %s" % result["drift"][-1]
    if verdict == NO_RECORD:
        return "no release was ever recorded; %s serves" % _describe(result["serving"])
    if verdict == UNVERIFIED:
        return ("traffic is on %s, which never passed its release; the known good is %s"
                % (_describe(result["serving"]), _describe(result["known_good"])))
    if result["roll_forward"]:
        return "%s serves and had passed its analysis; its record is completed" % _describe(result["known_good"])
    if result["attempt_state"] == "running":
        return "a %s is in progress (phase %s)" % (result["attempt"].get("action"), result["attempt"].get("phase"))
    return "nginx serves the recorded live deployment %s" % _describe(result["known_good"])


def interrupted_entry_fields(result):
    """Reason and extra of the history line that closes an interrupted attempt."""
    attempt = result["interrupted"]
    if result["roll_forward"]:
        resolution = "committed: its target serves and had passed all it had to"
    elif result["verdict"] == UNVERIFIED:
        resolution = "its target serves unverified; the known good %s must serve again" % _describe(result["known_good"])
    elif result["verdict"] == CONSISTENT:
        resolution = "traffic never left (or is back on) the known good %s" % _describe(result["known_good"])
    else:
        resolution = result["message"]
    found = {"nginx_serves": result["serving"], "containers": result["containers"], "record_live": result["record_live"]}
    reason = "%s; found: nginx serves %s; containers %s; %s" % (
        interrupted_summary(attempt), _describe(result["serving"]), ", ".join(result["containers"]), resolution)
    extra = {"attempt": attempt, "last_phase": attempt.get("phase"), "found": found, "resolution": resolution}
    return reason, extra
