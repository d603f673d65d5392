# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The deployment record in the release folder: state.json (live and previous) and history.jsonl (one line per attempt)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pwd
import socket
import uuid

from ansible_collections.ragops.platform.plugins.module_utils._atomic_file import (
    CorruptFileError,
    append_json_line,
    atomic_write_json,
    backup_copy,
    read_json,
    read_json_lines,
    rewrite_without_lines,
    scan_json_lines,
)
from ansible_collections.ragops.platform.plugins.module_utils._platform import COLORS, DATA_DIR
from ansible_collections.ragops.platform.plugins.module_utils._utc_time import format_time

SCHEMA = 1
STATE_FILE = "state.json"
HISTORY_FILE = "history.jsonl"
LOCK_FILE = "deploy.lock"
DEFAULT_PATH = DATA_DIR + "/release"
OUTCOMES = ("success", "failed", "rolled_back", "noop", "aborted", "interrupted", "taken_over")
# The journal of an attempt (state.json "attempt"), in order: opened before the idle color is touched, gated before
# the switch, switched once traffic moved, analysed once the analysis passed; the final record closes it.
PHASES = ("started", "gated", "switched", "analysed")
SLOT_KEYS = ("color", "version", "image_id")


def default_user():
    """Who is deploying: the sudo caller when become is used, else the login name, else the uid's name."""
    for name in ("SUDO_USER", "USER", "LOGNAME"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def default_host():
    return socket.gethostname()


def release_folder_argument_spec():
    """Options of the modules that work in the release folder: the folder, who acts and from where."""
    return dict(path=dict(type="path", default=DEFAULT_PATH), user=dict(type="str"), host=dict(type="str"))


def user_and_host(params):
    """The ``user`` and ``host`` options, defaulted to who runs the module and where."""
    return params["user"] or default_user(), params["host"] or default_host()


def empty_record():
    return {"schema": SCHEMA, "live": None, "previous": None, "attempt": None, "updated_at": None}


def make_entry(action, outcome, version, now, color=None, image_id=None, reason=None, user=None, host=None,
               started=None, duration=None, phases=None, extra=None, entry_id=None):
    """One history line. ``now`` is the finish time; ``started`` defaults to it, ``duration`` to their difference."""
    user = user or default_user()
    host = host or default_host()
    if duration is None:
        duration = (now - started).total_seconds() if started is not None else sum((phases or {}).values())
    return {
        "id": entry_id or uuid.uuid4().hex[:16],
        "action": action,
        "version": version,
        "color": color,
        "image_id": image_id,
        "outcome": outcome,
        "reason": reason,
        "user": user,
        "host": host,
        "started_at": format_time(started if started is not None else now),
        "finished_at": format_time(now),
        "duration": round(float(duration), 3),
        "phases": phases or {},
        "extra": extra or {},
    }


def slot_matches(slot, color, version, image_id=None):
    """True when ``slot`` is that color and version (and that image id, when one is given)."""
    if not slot or slot.get("color") != color or slot.get("version") != version:
        return False
    return image_id is None or slot.get("image_id") == image_id


def _check_slot(path, name, slot):
    if slot is None:
        return
    if not isinstance(slot, dict) or not slot.get("color") or not slot.get("version"):
        raise CorruptFileError(path, "%r must be null or an object with color and version, not %r" % (name, slot))


def _check_attempt(path, attempt):
    if attempt is None:
        return
    if not isinstance(attempt, dict) or not attempt.get("id") or attempt.get("phase") not in PHASES \
            or not isinstance(attempt.get("to"), dict) or attempt["to"].get("color") not in COLORS:
        raise CorruptFileError(path, "'attempt' must be null or an object with id, phase and to.color, not %r"
                               % (attempt,))


class NewerSchemaError(ValueError):
    pass


class ReleaseRecord:
    """The files of one release folder. Callers hold locked_directory(path) around read-modify-write."""

    def __init__(self, path):
        self.path = path
        self.state_path = os.path.join(path, STATE_FILE)
        self.history_path = os.path.join(path, HISTORY_FILE)

    def load(self):
        record = read_json(self.state_path)
        if record is None:
            return empty_record()
        if not isinstance(record, dict):
            raise CorruptFileError(self.state_path, "expected a JSON object, found %s" % type(record).__name__)
        schema = record.get("schema")
        if not isinstance(schema, int):
            raise CorruptFileError(self.state_path, "no integer 'schema' field")
        if schema > SCHEMA:
            raise NewerSchemaError(
                "%s has schema %d; this module understands schema %d or older: upgrade ragops.platform"
                % (self.state_path, schema, SCHEMA))
        for name in ("live", "previous"):
            _check_slot(self.state_path, name, record.get(name))
        _check_attempt(self.state_path, record.get("attempt"))
        merged = empty_record()
        merged.update(record)
        merged["schema"] = SCHEMA
        return merged

    def save(self, record, mode=None):
        atomic_write_json(self.state_path, record, mode=mode)

    def history(self, limit):
        return read_json_lines(self.history_path, limit)

    def append(self, entry, mode=0o644):
        return append_json_line(self.history_path, entry, mode=mode)

    def history_problems(self):
        """[(line number, reason)] of the unreadable lines of history.jsonl."""
        return scan_json_lines(self.history_path)[1]

    def set_aside_history_lines(self, problems, now):
        """Keep a copy of history.jsonl, then remove its unreadable lines; returns the copy's path."""
        backup = backup_copy(self.history_path, stamp(now))
        rewrite_without_lines(self.history_path, [problem[0] for problem in problems])
        return backup


def stamp(now):
    """A file name suffix for the moment ``now``: 20260105T101203.410Z."""
    return format_time(now).replace("-", "").replace(":", "")


def corrupt_file_failure(exc, now):
    """The module failure for a damaged record file: the file and where it is damaged, the copy kept, what to do."""
    try:
        backup = backup_copy(exc.path, stamp(now))
        kept = "a copy is kept at %s" % backup
    except (IOError, OSError) as copy_error:
        kept = "no copy could be made (%s)" % copy_error
    return {"failed": True, "file": exc.path, "backup": kept,
            "msg": "%s; %s; nothing was changed. It was not written whole by ragops.platform (its writes are atomic): "
                   "mend it from the copy, or move it aside, and the next deploy records the live deployment again "
                   "from what nginx serves (history.jsonl keeps every attempt)." % (exc, kept)}


def plan_live(record, color, version, image_id, now, hosts=None):
    """The record after making color/version live, and whether it differs.

    The current live deployment moves to ``previous`` when the color or the version changes. The same color and
    version with a new image id (a rebuilt tag), or with another per-host view (``hosts``: a fleet's app hosts, each
    with its color and version, or behind), updates the live slot in place.
    """
    live = record.get("live")
    if slot_matches(live, color, version):
        changes = {}
        if image_id is not None and live.get("image_id") != image_id:
            changes["image_id"] = image_id
        if hosts is not None and live.get("hosts") != hosts:
            changes["hosts"] = hosts
        if not changes:
            return record, False
        return dict(record, live=dict(live, **changes), updated_at=now), True
    previous = dict(live, until=now) if live else record.get("previous")
    slot = {"color": color, "version": version, "image_id": image_id, "since": now}
    if hosts is not None:
        slot["hosts"] = hosts
    updated = dict(record, live=slot, previous=previous, updated_at=now)
    return updated, True


def plan_previous(record, color, version, image_id, now):
    """The record with ``previous`` set to color/version, and whether it differs."""
    current = record.get("previous")
    if slot_matches(current, color, version, image_id):
        return record, False
    previous = {"color": color, "version": version, "image_id": image_id, "since": None, "until": None}
    if slot_matches(current, color, version):
        previous = dict(current, image_id=image_id)
    return dict(record, previous=previous, updated_at=now), True


def comparable(record):
    """The part of a record a diff shows (updated_at would always differ)."""
    return {"live": record.get("live"), "previous": record.get("previous"), "attempt": record.get("attempt")}


def plan_begin(record, attempt, now):
    """The record with ``attempt`` opened in phase started; ValueError when another attempt is still open."""
    current = record.get("attempt")
    if current and current.get("id") != attempt["id"]:
        raise ValueError("attempt %s (%s, phase %s) is still open: reconcile closes it first"
                         % (current["id"], current.get("action"), current.get("phase")))
    opened = dict(attempt, phase=PHASES[0], phases_at={PHASES[0]: now}, started_at=attempt.get("started_at") or now,
                  updated_at=now)
    return dict(record, attempt=opened, updated_at=now)


def plan_phase(record, attempt_id, phase, now):
    """The record with the open attempt ``attempt_id`` moved to ``phase``; ValueError when it is not open."""
    current = record.get("attempt")
    if not current or current.get("id") != attempt_id:
        raise ValueError("attempt %s is not open (open: %s)" % (attempt_id, current and current.get("id")))
    if current["phase"] == phase:
        return record, False
    attempt = dict(current, phase=phase, phases_at=dict(current.get("phases_at") or {}, **{phase: now}),
                   updated_at=now)
    return dict(record, attempt=attempt, updated_at=now), True


def plan_close(record, attempt_id, now):
    """The record without the open attempt ``attempt_id`` (unchanged when another one, or none, is open)."""
    current = record.get("attempt")
    if not current or current.get("id") != attempt_id:
        return record, False
    return dict(record, attempt=None, updated_at=now), True
