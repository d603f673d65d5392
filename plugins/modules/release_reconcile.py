#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: release_reconcile
short_description: Compare the release record with what nginx serves and what the containers run, and close an
  interrupted attempt
version_added: 0.3.0
description:
  - Every release run and every status report starts here. It compares three views of the host
    - the release record in O(path) (C(state.json), with the journal of an open attempt, and the deploy lock);
    - the color nginx serves, from its admin API on O(admin_socket);
    - the version label and state of each color's container, from the Docker Engine API on O(docker_socket).
  - RV(verdict) is V(consistent) when nginx serves the recorded live deployment (or a release in progress moves
    traffic), V(unverified) when it serves a color or version that never completed a release (a deploy killed after
    its switch, a switch made by hand), V(no_record) before the first release, and V(unknown) when nginx's admin API
    does not answer.
  - An open attempt is V(running) while the run that opened it holds the deploy lock, else V(interrupted).
  - With O(close=true) (a release run that holds the lock, O(lock_id)), an interrupted attempt is closed in the
    history as outcome V(interrupted), with its last phase, what was found and the resolution, in one locked write.
    When it had done everything but its final record (phase V(analysed), or V(switched) when no analysis was due)
    and its target serves, the same write commits it - its target becomes the live deployment and its origin the
    previous one - instead of undoing it.
  - Unreadable lines of C(history.jsonl) are named by number in RV(drift). With O(close=true) a copy of the file is
    kept (C(history.jsonl.corrupt-<time>)) and the lines are removed from it.
  - A damaged C(state.json) fails with the file, the place of the damage and a copy of it kept
    (C(state.json.corrupt-<time>)); nothing is changed.
  - It never moves traffic. RV(repair) says what must serve again; the release role does that with a health-gated
    blue/green switch.
author: ragops.platform maintainers (@ragops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports the verdict and predicts the closing entry, and writes nothing.
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  path:
    description: The release folder.
    type: path
    default: /opt/ragops/release
  admin_socket:
    description: The unix socket of nginx's admin API.
    type: path
    default: /opt/ragops/nginx/run/admin.sock
  docker_socket:
    description: The Docker Engine API socket.
    type: path
    default: /var/run/docker.sock
  close:
    description:
      - Close an interrupted attempt (and commit one that had finished). Requires O(lock_id), the deploy lock held by
        this run, so that only one run ever closes an attempt.
      - False for a read-only report.
    type: bool
    default: false
  lock_id:
    description: The deploy lock this run holds; an attempt opened under another lock id is not this run's.
    type: str
  live_color_file:
    description: nginx's persisted live color, compared with what its admin API says; omit to skip.
    type: path
  container_prefix:
    description: The name of a color's container is this prefix followed by the color.
    type: str
    default: ragops-app-
  version_label:
    description: The container label that holds the version it runs.
    type: str
    default: io.ragops.version
  hosts:
    description:
      - A fleet's app hosts, each with what C(community.docker.docker_container_info) found for each color there,
        by host name then color (V(blue) and V(green), each a container or null); only C(State), C(Config.Labels)
        and C(Image) are read. Given, the Docker socket is not read, and a color counts as running a version only
        when every app host runs it; the hosts that differ are named in RV(drift).
      - Omit on one host.
    type: dict
  timeout:
    description: Seconds allowed for each call to nginx and Docker.
    type: float
    default: 5
"""

EXAMPLES = r"""
- name: Reconcile the record with nginx and the containers, closing an interrupted attempt
  ragops.platform.release_reconcile:
    path: /opt/ragops/release
    admin_socket: /opt/ragops/nginx/run/admin.sock
    close: true
    lock_id: "{{ deploy_lock.lock_id }}"
  register: reconcile

- name: Say what must serve again
  ansible.builtin.debug:
    msg: "{{ reconcile.message }}; repair: {{ reconcile.repair }}"
  when: reconcile.verdict == 'unverified'
"""

RETURN = r"""
verdict:
  description: V(consistent), V(unverified), V(no_record) or V(unknown).
  returned: always
  type: str
  sample: unverified
message:
  description: One line on what was found.
  returned: always
  type: str
  sample: traffic is on blue 1.1.0, which never passed its release; the known good is green 1.0.0
serving:
  description: What nginx serves (color, version its container runs, image_id, running), or null when unknown.
  returned: always
  type: dict
known_good:
  description: The last deployment that completed a release (color, version, image_id), or null.
  returned: always
  type: dict
record_live:
  description: The live deployment of the record as it was read.
  returned: always
  type: dict
record_previous:
  description: The previous deployment of the record as it was read.
  returned: always
  type: dict
attempt:
  description: The open attempt that was found (its journal), or null.
  returned: always
  type: dict
attempt_state:
  description: V(none), V(running) (its run still holds the lock) or V(interrupted).
  returned: always
  type: str
roll_forward:
  description: The finished attempt's target committed by O(close=true) (or that would be), else null.
  returned: always
  type: dict
repair:
  description: With RV(verdict=unverified), the known good to make live again (color, version, image_id) and what
    serves now (from_color, from_version); else null.
  returned: always
  type: dict
drift:
  description: Each disagreement found, one line each (empty when the three views agree).
  returned: always
  type: list
  elements: str
containers:
  description: "One line per color, for example C(blue: 1.1.0 running (healthy))."
  returned: always
  type: list
  elements: str
closed:
  description: The history entry that closed the interrupted attempt (that would, in check mode), else null.
  returned: always
  type: dict
history_problems:
  description: The unreadable lines of C(history.jsonl) (line, reason); a line torn by a crash is one.
  returned: always
  type: list
  elements: dict
history_backup:
  description: With O(close=true), the copy of C(history.jsonl) kept before its unreadable lines were removed.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ragops.platform.plugins.module_utils._atomic_file import (
    CorruptFileError,
    DirectoryLockTimeout,
    ensure_directory,
    locked_directory,
)
from ansible_collections.ragops.platform.plugins.module_utils._deploy_lock import DeployLock
from ansible_collections.ragops.platform.plugins.module_utils._docker_engine import (
    DEFAULT_SOCKET,
    DockerEngine,
    DockerEngineError,
)
from ansible_collections.ragops.platform.plugins.module_utils._nginx_admin import AdminError, NginxAdmin
from ansible_collections.ragops.platform.plugins.module_utils._platform import ADMIN_SOCKET, COLORS
from ansible_collections.ragops.platform.plugins.module_utils._reconcile import (
    assess,
    container_line,
    interrupted_entry_fields,
)
from ansible_collections.ragops.platform.plugins.module_utils._release_record import (
    DEFAULT_PATH,
    NewerSchemaError,
    ReleaseRecord,
    comparable,
    corrupt_file_failure,
    make_entry,
    plan_close,
    plan_live,
    plan_previous,
)
from ansible_collections.ragops.platform.plugins.module_utils._utc_time import format_time, parse_time, utc_now


def argument_spec():
    return dict(
        path=dict(type="path", default=DEFAULT_PATH),
        admin_socket=dict(type="path", default=ADMIN_SOCKET),
        docker_socket=dict(type="path", default=DEFAULT_SOCKET),
        close=dict(type="bool", default=False),
        lock_id=dict(type="str"),
        live_color_file=dict(type="path"),
        container_prefix=dict(type="str", default="ragops-app-"),
        version_label=dict(type="str", default="io.ragops.version"),
        hosts=dict(type="dict"),
        timeout=dict(type="float", default=5),
    )


def invalid_parameters(params):
    """Texts naming each bad parameter; empty when all are usable."""
    problems = []
    if params["close"] and not params["lock_id"]:
        problems.append("close needs lock_id, the deploy lock this run holds: only the lock holder closes an attempt")
    if params["timeout"] <= 0:
        problems.append("timeout must be more than 0, not %s" % params["timeout"])
    for host, found in sorted((params.get("hosts") or {}).items()):
        if not isinstance(found, dict) or any(color not in COLORS for color in found):
            problems.append("hosts.%s must map blue and green to a container (or null), not %r" % (host, found))
    return problems


def container_view(inspected, version_label):
    """The part of a container's inspect document the reconcile reads."""
    if inspected is None:
        return {"exists": False}
    state = inspected.get("State") or {}
    labels = (inspected.get("Config") or {}).get("Labels") or {}
    return {"exists": True, "running": bool(state.get("Running")), "status": state.get("Status"),
            "health": (state.get("Health") or {}).get("Status"), "version": labels.get(version_label),
            "image_id": inspected.get("Image")}


def fleet_view(hosts, version_label):
    """Each color over a fleet's app hosts as one container view, its lines per host, and where the hosts differ.

    A color runs a version only when every app host runs it: a host without it, or stopped, makes it not running;
    hosts with different versions make its version unknown (None)."""
    merged, lines, drift = {}, [], []
    for color in COLORS:
        views = [(host, container_view((found or {}).get(color), version_label))
                 for host, found in sorted(hosts.items())]
        lines.extend("%s %s" % (host, container_line(color, view)) for host, view in views)
        present = [view for _host, view in views if view["exists"]]
        if not present:
            merged[color] = {"exists": False}
            continue
        versions = sorted({str(view.get("version")) for view in present})
        images = {view.get("image_id") for view in present}
        idle_hosts = [host for host, view in views if not (view["exists"] and view["running"])]
        merged[color] = {
            "exists": True, "running": not idle_hosts,
            "status": "running" if not idle_hosts else "not running on %s" % ", ".join(idle_hosts),
            "health": present[0].get("health") if len({view.get("health") for view in present}) == 1 else None,
            "version": present[0].get("version") if len(versions) == 1 else None,
            "image_id": present[0].get("image_id") if len(images) == 1 else None,
        }
        if len(versions) > 1:
            drift.append("the app hosts run different versions on %s: %s" % (color, "; ".join(
                "%s %s" % (host, view.get("version") if view["exists"] else "none") for host, view in views)))
    return merged, lines, drift


def read_views(params, nginx_live, inspect):
    """nginx's live color (or the error), each color's container, and nginx's persisted color."""
    nginx_color, nginx_error = None, None
    try:
        nginx_color = nginx_live()
    except AdminError as exc:
        nginx_error = str(exc)
    containers = {}
    for color in () if params.get("hosts") else COLORS:
        try:
            containers[color] = container_view(inspect(params["container_prefix"] + color), params["version_label"])
        except DockerEngineError as exc:
            containers[color] = {"exists": False, "status": "unknown: %s" % exc}
    persisted = None
    if params["live_color_file"]:
        try:
            with open(params["live_color_file"]) as handle:
                persisted = handle.read().strip() or None
        except (IOError, OSError):
            persisted = None
    return nginx_color, nginx_error, containers, persisted


def closing_entry(found, now):
    attempt = found["interrupted"]
    reason, extra = interrupted_entry_fields(found)
    started = parse_time(attempt["started_at"]) if attempt.get("started_at") else None
    to = attempt.get("to") or {}
    return make_entry(attempt.get("action") or "deploy", "interrupted", to.get("version"), now, color=to.get("color"),
                      reason=reason, started=started, extra=extra, entry_id=attempt["id"])


def plan_closing(record, found, now_text):
    """The record once the interrupted attempt is closed (and its target committed, for a roll forward)."""
    updated = record
    forward = found["roll_forward"]
    if forward:
        updated = plan_live(updated, forward["color"], forward["version"], forward["image_id"], now_text)[0]
        origin = forward.get("previous") or {}
        if origin.get("color") in COLORS and origin.get("version") \
                and (origin["color"], origin["version"]) != (forward["color"], forward["version"]):
            updated = plan_previous(updated, origin["color"], origin["version"], None, now_text)[0]
    return plan_close(updated, found["interrupted"]["id"], now_text)[0]


def run_release_reconcile(params, nginx_live, inspect, check_mode=False, now=utc_now):
    """Assesses the host and, with params["close"], closes an interrupted attempt; returns the module result,
    ``failed`` set (with ``msg``) when the module must fail. ``nginx_live()`` returns the color nginx serves (or
    raises AdminError); ``inspect(name)`` returns a container's inspect document or None."""
    record = ReleaseRecord(params["path"])
    try:
        found = _assess(params, record, nginx_live, inspect, now)
        result = dict(found, changed=False, closed=None, history_problems=[], history_backup=None)
        if found["interrupted"] and params["close"]:
            result.update(_close(params, record, found, check_mode, now))
        checked = _check_history(params, record, check_mode, now)
        result["drift"] = result["drift"] + checked.pop("drift", [])
        result["changed"] = result["changed"] or checked.pop("changed", False)
        result.update(checked)
        return result
    except CorruptFileError as exc:
        return corrupt_file_failure(exc, now())
    except (NewerSchemaError, DirectoryLockTimeout) as exc:
        return {"failed": True, "msg": "release reconcile in %s: %s" % (params["path"], exc)}
    except (IOError, OSError) as exc:
        return {"failed": True, "msg": "release reconcile in %s: %s" % (params["path"], exc), "errno": exc.errno}


def _assess(params, record, nginx_live, inspect, now):
    nginx_color, nginx_error, containers, persisted = read_views(params, nginx_live, inspect)
    lines, drift = None, []
    if params.get("hosts"):
        containers, lines, drift = fleet_view(params["hosts"], params["version_label"])
    lock = DeployLock(params["path"], now=now).describe()
    found = assess(record.load(), lock, nginx_color, nginx_error, containers, persisted_color=persisted,
                   our_lock_id=params["lock_id"])
    if lines is not None:
        found = dict(found, containers=lines, drift=found["drift"] + drift)
    return found


def _close(params, record, found, check_mode, now):
    moment = now()
    if check_mode:
        current = record.load()
        updated = plan_closing(current, found, format_time(moment))
        return {"changed": True, "closed": closing_entry(found, moment),
                "diff": {"before": comparable(current), "after": comparable(updated)}}
    ensure_directory(params["path"])
    with locked_directory(params["path"]):
        current = record.load()
        if (current.get("attempt") or {}).get("id") != found["interrupted"]["id"]:
            return {}  # closed meanwhile by another run: nothing left to do
        updated = plan_closing(current, found, format_time(moment))
        entry = closing_entry(found, moment)
        record.save(updated)
        record.append(entry)
    return {"changed": True, "closed": entry, "diff": {"before": comparable(current), "after": comparable(updated)}}


def _check_history(params, record, check_mode, now):
    """Unreadable history lines are named; a release run (close) sets them aside in a copy of the file."""
    problems = record.history_problems()
    if not problems:
        return {}
    listed = [{"line": number, "reason": reason} for number, reason in problems]
    where = ", ".join("line %d: %s" % (number, reason) for number, reason in problems[:5])
    result = {"history_problems": listed}
    if params["close"] and not check_mode:
        with locked_directory(params["path"]):
            result["history_backup"] = record.set_aside_history_lines(problems, now())
        result["changed"] = True
        action = "the file is kept as %s and the lines were removed from the history" % result["history_backup"]
    else:
        action = "the next deploy or rollback keeps a copy of the file and removes them"
    result["drift"] = ["%s has %d unreadable line(s) (%s); %s" % (record.history_path, len(problems), where, action)]
    return result


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    problems = invalid_parameters(module.params)
    if problems:
        module.fail_json(msg="; ".join(problems))
    params = module.params
    admin = NginxAdmin(params["admin_socket"], params["timeout"])
    docker = DockerEngine(params["docker_socket"], params["timeout"])
    result = run_release_reconcile(params, lambda: admin.live()["color"], docker.inspect,
                                   check_mode=module.check_mode)
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
