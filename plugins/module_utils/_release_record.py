# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The deployment record in the release folder: state.json (live and previous) and history.jsonl (one line per attempt)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pwd
import socket

from ansible_collections.ragops.platform.plugins.module_utils._atomic_file import (
    CorruptFileError,
    append_json_line,
    atomic_write_json,
    read_json,
    read_json_lines,
)
from ansible_collections.ragops.platform.plugins.module_utils._platform import DATA_DIR

SCHEMA = 1
STATE_FILE = "state.json"
HISTORY_FILE = "history.jsonl"
LOCK_FILE = "deploy.lock"
DEFAULT_PATH = DATA_DIR + "/release"
OUTCOMES = ("success", "failed", "rolled_back", "noop", "aborted")
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
    return {"schema": SCHEMA, "live": None, "previous": None, "updated_at": None}


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


def plan_live(record, color, version, image_id, now):
    """The record after making color/version live, and whether it differs.

    The current live deployment moves to ``previous`` when the color or the version changes. The same color and
    version with a new image id (a rebuilt tag) updates the live image id in place.
    """
    live = record.get("live")
    if slot_matches(live, color, version):
        if image_id is None or live.get("image_id") == image_id:
            return record, False
        updated = dict(record, live=dict(live, image_id=image_id), updated_at=now)
        return updated, True
    previous = dict(live, until=now) if live else record.get("previous")
    updated = dict(record, live={"color": color, "version": version, "image_id": image_id, "since": now},
                   previous=previous, updated_at=now)
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
    return {"live": record.get("live"), "previous": record.get("previous")}
