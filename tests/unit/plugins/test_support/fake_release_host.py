# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The three views release_reconcile reads, without nginx or Docker: a release folder whose state.json is written
through _release_record, an ``nginx_live`` callable and an ``inspect`` callable."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.ragops.platform.plugins.module_utils._atomic_file import ensure_directory
from ansible_collections.ragops.platform.plugins.module_utils._nginx_admin import AdminError
from ansible_collections.ragops.platform.plugins.module_utils._release_record import (
    PHASES,
    ReleaseRecord,
    empty_record,
    plan_begin,
    plan_live,
    plan_phase,
)

STARTED_AT = "2026-01-05T09:59:00.000Z"


def journal(attempt_id="a1", to=("green", "1.1.0"), origin=("blue", "1.0.0"), lock_id="L1", needs_analysis=True,
            action="deploy", user="alice", host="host1", started_at=STARTED_AT):
    """The attempt release_state begin opens (see build_attempt), before plan_begin sets its phase."""
    return {"id": attempt_id, "action": action, "lock_id": lock_id,
            "from": {"color": origin[0], "version": origin[1]} if origin else {"color": None, "version": None},
            "to": {"color": to[0], "version": to[1]}, "needs_analysis": needs_analysis, "user": user, "host": host,
            "started_at": started_at}


def write_record(folder, live=None, previous=None, attempt=None, phase=PHASES[0], now=STARTED_AT):
    """Writes state.json with ``previous`` then ``live`` made live ((color, version, image_id) each) and ``attempt``
    (a `journal`) opened and moved to ``phase``; returns the record written."""
    record = empty_record()
    for slot in (previous, live):
        if slot:
            record = plan_live(record, slot[0], slot[1], slot[2], now)[0]
    if attempt:
        record = plan_begin(record, attempt, now)
        record = plan_phase(record, attempt["id"], phase, now)[0]
    ensure_directory(str(folder))
    ReleaseRecord(str(folder)).save(record)
    return record


def inspect_document(version, running=True, status=None, health="healthy", image_id=None, label="io.ragops.version"):
    """The part of a Docker inspect document the reconcile reads."""
    state = {"Running": running, "Status": status or ("running" if running else "exited")}
    if health:
        state["Health"] = {"Status": health}
    return {"State": state, "Config": {"Labels": {label: version}}, "Image": image_id or "sha256:" + version}


class FakeInspect:
    """``inspect(name)``: the document given for each color (None: no such container; an exception is raised);
    ``names`` records every name asked for."""

    def __init__(self, blue=None, green=None, prefix="ragops-app-"):
        self.documents = {prefix + "blue": blue, prefix + "green": green}
        self.names = []

    def __call__(self, name):
        self.names.append(name)
        found = self.documents.get(name)
        if isinstance(found, Exception):
            raise found
        return found


def nginx_serves(color):
    """``nginx_live()`` of an nginx whose admin API says ``color`` is live."""
    return lambda: color


def nginx_unreachable(message="GET /live on /run/admin.sock: [Errno 111] Connection refused"):
    """``nginx_live()`` of an nginx whose admin API does not answer."""
    def live():
        raise AdminError(message)
    return live
