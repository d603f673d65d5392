#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: release_state
short_description: Read and write the blue/green deployment record on the host
version_added: 0.1.0
description:
  - Keeps the deployment record in the release folder O(path) of the Docker host.
  - "C(state.json) holds the live color, version and image id, and the previous ones, as
    C({\"schema\": 1, \"live\": {color, version, image_id, since}, \"previous\": {color, version, image_id, since,
    until} or null, \"updated_at\": ...}). Times are UTC ISO 8601 with milliseconds."
  - C(history.jsonl) is append-only, one JSON object per line and per attempt (deploy, rollback, ...).
  - Every write is crash-safe. C(state.json) is replaced atomically (temporary file in the same folder, fsync,
    rename, fsync of the folder), so it always holds the complete old or the complete new record. A history line is
    appended in one write() on an O_APPEND descriptor and fsynced; a torn last line left by a crash is skipped on
    reading and never spoils the next line.
  - Read-modify-write of C(state.json) and appends run under an exclusive flock of the release folder.
  - O(state=read) also reports the deploy lock (see M(ragops.platform.release_lock)), for status reports.
author: ragops.platform maintainers (@ragops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Predicts C(changed), the diff and the history entry, and writes nothing.
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  path:
    description: The release folder. It is created (mode 0755) on the first write.
    type: path
    default: /opt/ragops/release
  state:
    description:
      - V(read) returns the record, the last O(history_limit) history entries and the deploy lock. Never changed.
      - V(record) appends one history entry. It reports changed, except for O(outcome=noop), which records an attempt
        that changed nothing (so a no-op deploy run ends with C(changed=0)).
      - V(live) makes O(color)/O(version) the live deployment. When the color or the version differs from the live
        one, the live one moves to C(previous). The same color and version with another O(image_id) updates the live
        image id in place. Changed only when the record differs.
      - V(previous) sets the previous deployment without touching the live one, for example to adopt a color that
        was started before the record existed. Changed only when it differs.
      - V(commit) is how a release ends in one crash-safe step. It does what V(live) does, then sets the previous
        deployment from O(previous_color)/O(previous_version)/O(previous_image_id) when they are given (the
        containers' truth wins over a record that is missing or behind), and appends the history entry of
        O(outcome), all under one lock.
      - V(begin) opens the journal of an attempt in C(state.json) (C(attempt) - id, action, lock_id, from and to
        color and version, phase V(started), the time of each phase), before the attempt changes anything. It fails
        while another attempt is open; M(ragops.platform.release_reconcile) closes an interrupted one first.
      - V(phase) moves the open attempt O(attempt_id) to O(phase).
      - V(record) and V(commit) with O(attempt_id) close that attempt in the same write as the history entry, whose
        C(id) is then the attempt id.
    type: str
    choices: [read, record, live, previous, commit, begin, phase]
    default: read
  history_limit:
    description: How many of the latest history entries to return (oldest first); V(0) returns none.
    type: int
    default: 10
  color:
    description:
      - The color. Required with O(state=live), O(state=previous) and O(state=commit).
      - With O(state=record), the color the attempt started or switched to, if it got that far.
    type: str
    choices: [blue, green]
  version:
    description:
      - The app version (image tag). Required with O(state=record), O(state=live), O(state=previous) and
        O(state=commit).
      - Recorded as given, so an attempt with a rejected version is recorded too.
    type: str
  image_id:
    description: The Docker image id of O(version) (C(sha256:...)).
    type: str
  hosts:
    description:
      - With O(state=live) and O(state=commit), each app host of a fleet with what it runs, by host name, each
        C(color) and C(version), or C(behind) true and a C(reason) for a host the release did not reach; kept in the
        live slot as C(hosts).
      - Omit on one host; the same color and version with another view updates the live slot in place.
    type: dict
  outcome:
    description:
      - The outcome of the attempt. Required with O(state=record) and O(state=commit).
      - V(success) the version is live; V(failed) stopped before the switch, traffic untouched; V(rolled_back)
        switched, then switched back; V(noop) already live and healthy, nothing done; V(interrupted) an attempt
        whose run ended without closing it (written by M(ragops.platform.release_reconcile)); V(taken_over) a stale
        deploy lock taken over (written by M(ragops.platform.release_lock)); V(aborted) refused before
        starting (lock held, invalid version, preflight).
    type: str
    choices: [success, failed, rolled_back, noop, aborted, interrupted, taken_over]
  previous_color:
    description:
      - With O(state=commit), the color that was live before this release. Set together with O(previous_version).
      - Ignored when it is the same color and version as the new live one (a redeploy of the live version).
    type: str
    choices: [blue, green]
  previous_version:
    description: With O(state=commit), the version that was live before this release.
    type: str
  previous_image_id:
    description: With O(state=commit), the image id of O(previous_version).
    type: str
  action:
    description: What was attempted, for example V(deploy), V(rollback) or V(bootstrap).
    type: str
    default: deploy
  phases:
    description: "Seconds spent in each phase, for example C({start: 6.2, health_gate: 3.1, switch: 0.4})."
    type: dict
    default: {}
  reason:
    description: Why the attempt failed or was rolled back.
    type: str
  user:
    description: Who ran the attempt. Defaults to C(SUDO_USER), C(USER) or C(LOGNAME), else the name of the uid.
    type: str
  host:
    description: Where the attempt ran from. Defaults to the host name.
    type: str
  started_at:
    description:
      - When the attempt started, ISO 8601 (C(Z), an offset, or none for UTC) or epoch seconds. Defaults to now.
      - Stored as UTC ISO 8601 with milliseconds.
    type: str
  finished_at:
    description: When the attempt finished, in the same formats as O(started_at). Defaults to now.
    type: str
  duration:
    description:
      - Seconds the attempt took. Defaults to O(finished_at) minus O(started_at) when O(started_at) is given,
        else to the sum of O(phases).
    type: float
  extra:
    description: Any other JSON fields to keep with the entry, for example the previous live version.
    type: dict
    default: {}
  attempt_id:
    description:
      - The attempt of the journal. With O(state=begin), its id (default a new one, returned in RV(attempt)).
      - Required with O(state=phase). With O(state=record) or O(state=commit), the attempt to close.
    type: str
  phase:
    description: With O(state=phase), the phase the attempt has reached.
    type: str
    choices: [started, gated, switched, analysed]
  from_color:
    description: With O(state=begin), the color that serves when the attempt opens.
    type: str
    choices: [blue, green]
  from_version:
    description: With O(state=begin), the version that serves when the attempt opens.
    type: str
  lock_id:
    description: With O(state=begin), the deploy lock held by the attempt, so that a report can tell a running
      attempt from an interrupted one.
    type: str
  needs_analysis:
    description:
      - With O(state=begin), whether the attempt is complete only after its analysis (phase V(analysed)).
      - When false, an attempt interrupted in phase V(switched) has done all it had to, and the next run commits it.
    type: bool
    default: true
  mode:
    description: Permissions of C(state.json) and of a new C(history.jsonl), as an octal string.
    type: str
    default: '0644'
"""

EXAMPLES = r"""
- name: Read the record for a status report
  ragops.platform.release_state:
    path: "{{ ragops_data_dir }}/release"
    history_limit: 10
  register: release

- name: Make green 1.1.0 live (the live blue moves to previous)
  ragops.platform.release_state:
    state: live
    color: green
    version: 1.1.0
    image_id: "{{ image.id }}"

- name: End a deploy in one step (live, previous and the history entry)
  ragops.platform.release_state:
    state: commit
    color: green
    version: 1.1.0
    image_id: "{{ new_image_id }}"
    previous_color: blue
    previous_version: 1.0.0
    previous_image_id: "{{ old_image_id }}"
    outcome: success
    started_at: "{{ deploy_started_at }}"
    phases: {start: 1.2, health_gate: 0.9, smoke: 0.4, switch: 0.5, analysis: 8.1}

- name: Open the journal of a deploy before it touches the idle color
  ragops.platform.release_state:
    state: begin
    action: deploy
    color: green
    version: 1.1.0
    from_color: blue
    from_version: 1.0.0
    lock_id: "{{ lock.lock_id }}"
  register: journal

- name: Note that the new color passed its gate
  ragops.platform.release_state:
    state: phase
    attempt_id: "{{ journal.attempt.id }}"
    phase: gated

- name: Record the outcome of the deploy
  ragops.platform.release_state:
    state: record
    action: deploy
    version: 1.1.0
    color: green
    image_id: "{{ image.id }}"
    outcome: rolled_back
    reason: "error rate 0.48 > 0.05 over 30 s (612 requests)"
    started_at: "{{ deploy_started_at }}"
    phases:
      start: 6.1
      health_gate: 2.4
      smoke: 0.8
      switch: 0.3
      analysis: 30.2
    extra:
      from_version: 1.0.0
"""

RETURN = r"""
state:
  description: The record after the operation (predicted in check mode).
  returned: always
  type: dict
  sample:
    schema: 1
    live: {color: green, version: 1.1.0, image_id: "sha256:3f1e...", since: "2026-01-05T10:12:03.410Z"}
    previous:
      color: blue
      version: 1.0.0
      image_id: "sha256:9ab2..."
      since: "2026-01-04T08:00:00.000Z"
      until: "2026-01-05T10:12:03.410Z"
    updated_at: "2026-01-05T10:12:03.410Z"
history:
  description: The last O(history_limit) history entries, oldest first (after the append for O(state=record)).
  returned: always
  type: list
  elements: dict
attempt:
  description: The open attempt after the operation (null when none is open).
  returned: always
  type: dict
  sample:
    id: 6f0c2a1d9e8b4c7a
    action: deploy
    lock_id: 0f3c...
    from: {color: blue, version: 1.0.0}
    to: {color: green, version: 1.1.0}
    phase: gated
    needs_analysis: true
    phases_at: {started: "2026-01-05T10:11:20.000Z", gated: "2026-01-05T10:11:29.500Z"}
history_skipped:
  description: Unreadable history lines (a line torn by a crash) met while reading the returned entries.
  returned: always
  type: int
  sample: 0
entry:
  description: The history entry appended (that would be appended, in check mode).
  returned: when O(state=record) or O(state=commit)
  type: dict
  sample:
    id: 6f0c2a1d9e8b4c7a
    action: deploy
    version: 1.1.0
    color: green
    image_id: "sha256:3f1e..."
    outcome: success
    reason: null
    user: alice
    host: deploy-host
    started_at: "2026-01-05T10:11:20.000Z"
    finished_at: "2026-01-05T10:12:05.120Z"
    duration: 45.12
    phases: {start: 6.1, health_gate: 2.4, smoke: 0.8, switch: 0.3, analysis: 30.2}
    extra: {}
lock:
  description: The deploy lock, for status reports.
  returned: when O(state=read)
  type: dict
  contains:
    held:
      description: Whether C(deploy.lock) exists.
      type: bool
    holder:
      description: The holder record (lock_id, holder, user, host, pid, acquired_at, expires_at, ttl), or null.
      type: dict
    expires_in:
      description: Seconds until the lock expires (negative once expired), or null.
      type: float
    stale:
      description: V(expired) or V(holder_exited) when the next acquirer would take the lock over, else null.
      type: str
    summary:
      description: One line for a report, for example C(held by alice@host1 (pid 4242, 'deploy 1.2.0') since ...).
      type: str
"""

import uuid

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ragops.platform.plugins.module_utils._atomic_file import (
    CorruptFileError,
    DirectoryLockTimeout,
    dumps_json,
    ensure_directory,
    locked_directory,
)
from ansible_collections.ragops.platform.plugins.module_utils._deploy_lock import DeployLock
from ansible_collections.ragops.platform.plugins.module_utils._platform import COLORS
from ansible_collections.ragops.platform.plugins.module_utils._release_record import (
    OUTCOMES,
    PHASES,
    NewerSchemaError,
    ReleaseRecord,
    comparable,
    corrupt_file_failure,
    make_entry,
    plan_begin,
    plan_close,
    plan_live,
    plan_phase,
    plan_previous,
    release_folder_argument_spec,
    user_and_host,
)
from ansible_collections.ragops.platform.plugins.module_utils._utc_time import format_time, parse_time, utc_now


def argument_spec():
    spec = release_folder_argument_spec()
    spec.update(
        state=dict(type="str", choices=["read", "record", "live", "previous", "commit", "begin", "phase"],
                   default="read"),
        history_limit=dict(type="int", default=10),
        color=dict(type="str", choices=list(COLORS)),
        version=dict(type="str"),
        image_id=dict(type="str"),
        outcome=dict(type="str", choices=list(OUTCOMES)),
        previous_color=dict(type="str", choices=list(COLORS)),
        previous_version=dict(type="str"),
        previous_image_id=dict(type="str"),
        action=dict(type="str", default="deploy"),
        phases=dict(type="dict", default={}),
        reason=dict(type="str"),
        started_at=dict(type="str"),
        finished_at=dict(type="str"),
        duration=dict(type="float"),
        extra=dict(type="dict", default={}),
        attempt_id=dict(type="str"),
        phase=dict(type="str", choices=list(PHASES)),
        from_color=dict(type="str", choices=list(COLORS)),
        from_version=dict(type="str"),
        lock_id=dict(type="str"),
        needs_analysis=dict(type="bool", default=True),
        hosts=dict(type="dict"),
        mode=dict(type="str", default="0644"),
    )
    return spec


def _time_errors(params):
    problems = []
    for name in ("finished_at", "started_at"):
        if params[name] is not None:
            try:
                parse_time(params[name])
            except ValueError as exc:
                problems.append("%s: %s" % (name, exc))
    return problems


def invalid_parameters(params):
    """Texts naming each bad parameter; empty when all are usable."""
    problems = []
    try:
        int(params["mode"], 8)
    except ValueError:
        problems.append("mode must be an octal string such as '0644', not %r" % params["mode"])
    if params["history_limit"] < 0:
        problems.append("history_limit must be 0 or more, not %d" % params["history_limit"])
    if params["state"] in ("record", "commit"):  # the options of the history entry
        for phase, seconds in params["phases"].items():
            try:
                float(seconds)
            except (TypeError, ValueError):
                problems.append("phases.%s must be a number of seconds, not %r" % (phase, seconds))
        problems.extend(_time_errors(params))
    return problems


def _time_option(params, name, default):
    value = params[name]
    return default if value is None else parse_time(value)


def build_entry(params, now):
    """The history entry of an attempt; params must have passed invalid_parameters."""
    phases = dict((phase, round(float(seconds), 3)) for phase, seconds in params["phases"].items())
    user, host = user_and_host(params)
    return make_entry(params["action"], params["outcome"], params["version"], _time_option(params, "finished_at", now),
                      color=params["color"], image_id=params["image_id"], reason=params["reason"], user=user,
                      host=host, started=_time_option(params, "started_at", None), duration=params["duration"],
                      phases=phases, extra=params["extra"], entry_id=params["attempt_id"])


def build_attempt(params):
    """The journal of an attempt opened by state=begin."""
    user, host = user_and_host(params)
    started = params["started_at"]
    return {
        "id": params["attempt_id"] or uuid.uuid4().hex[:16],
        "action": params["action"],
        "lock_id": params["lock_id"],
        "from": {"color": params["from_color"], "version": params["from_version"]},
        "to": {"color": params["color"], "version": params["version"]},
        "needs_analysis": params["needs_analysis"],
        "user": user,
        "host": host,
        "started_at": format_time(parse_time(started)) if started is not None else None,
    }


def run_release_state(params, check_mode=False, now=utc_now):
    """Reads or updates the record of params["path"]; returns the module result, ``failed`` set (with ``msg``)
    when the module must fail. params must have passed invalid_parameters; ``now`` gives the UTC time."""
    try:
        return _run(params, check_mode, now)
    except CorruptFileError as exc:
        return corrupt_file_failure(exc, now())
    except (NewerSchemaError, DirectoryLockTimeout, ValueError) as exc:
        return {"failed": True, "msg": "release state in %s: %s" % (params["path"], exc)}
    except (IOError, OSError) as exc:
        return {"failed": True, "msg": "release state in %s: %s" % (params["path"], exc), "errno": exc.errno}


def _run(params, check_mode, now):
    record = ReleaseRecord(params["path"])
    mode = int(params["mode"], 8)
    result = {"changed": False}
    if params["state"] == "read":
        result["state"] = record.load()
        result["lock"] = DeployLock(params["path"], now=now).describe()
    elif check_mode:
        result.update(_mutate(params, record, mode, now(), dry_run=True))
    else:
        ensure_directory(params["path"])
        with locked_directory(params["path"]):
            result.update(_mutate(params, record, mode, now(), dry_run=False))
    result["attempt"] = result["state"].get("attempt")
    result["history"], result["history_skipped"] = record.history(params["history_limit"])
    return result


def _mutate(params, record, mode, now, dry_run):
    current = record.load()
    # The entry is built before anything is written, so an entry that cannot be built changes nothing.
    entry = build_entry(params, now) if params["state"] in ("record", "commit") else None
    updated, changed = _plan(params, current, format_time(now))
    if changed and not dry_run:
        record.save(updated, mode=mode)
    result = {"changed": changed, "state": updated}
    if changed:
        result["diff"] = {"before": comparable(current), "after": comparable(updated)}
    if entry is not None:
        if not dry_run:
            record.append(entry, mode=mode)
        result["entry"] = entry
        # A no-op is recorded but changes nothing, so a no-op run ends with changed=0.
        if params["outcome"] != "noop":
            result["changed"] = True
            if "diff" not in result:
                result["diff"] = {"before": "", "after": dumps_json(entry) + "\n",
                                  "before_header": record.history_path, "after_header": record.history_path}
    return result


def _plan(params, current, now):
    """The record after the request, and whether it differs (ValueError for a journal step out of order)."""
    state, attempt_id = params["state"], params["attempt_id"]
    if state == "begin":
        return plan_begin(current, build_attempt(params), now), True
    if state == "phase":
        return plan_phase(current, attempt_id, params["phase"], now)
    updated, changed = current, False
    if state == "previous":
        updated, changed = plan_previous(current, params["color"], params["version"], params["image_id"], now)
    elif state in ("live", "commit"):
        updated, changed = _plan_live(params, current, now)
    if state in ("record", "commit") and attempt_id:
        updated, closed = plan_close(updated, attempt_id, now)
        changed = changed or closed
    return updated, changed


def _plan_live(params, current, now):
    color, version, image_id = params["color"], params["version"], params["image_id"]
    updated, changed = plan_live(current, color, version, image_id, now, hosts=params["hosts"])
    before_color, before_version = params["previous_color"], params["previous_version"]
    if params["state"] == "commit" and before_version is not None \
            and (before_color, before_version) != (color, version):
        updated, previous_changed = plan_previous(updated, before_color, before_version,
                                                  params["previous_image_id"], now)
        changed = changed or previous_changed
    return updated, changed


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[
            ("state", "record", ["version", "outcome"]),
            ("state", "live", ["color", "version"]),
            ("state", "previous", ["color", "version"]),
            ("state", "commit", ["color", "version", "outcome"]),
            ("state", "begin", ["color", "version"]),
            ("state", "phase", ["attempt_id", "phase"]),
        ],
        required_together=[("previous_color", "previous_version")],
        supports_check_mode=True,
    )
    problems = invalid_parameters(module.params)
    if problems:
        module.fail_json(msg="; ".join(problems))
    result = run_release_state(module.params, check_mode=module.check_mode)
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
