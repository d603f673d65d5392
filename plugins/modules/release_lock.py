#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: release_lock
short_description: Acquire and release the deploy lock on the host
version_added: 0.1.0
description:
  - Guards deploys and rollbacks with one lock file, C(deploy.lock), in the release folder O(path).
  - The lock holds the holder record as JSON - C(lock_id), C(holder) (what is being done), C(user), C(host),
    C(pid), C(acquired_at), C(expires_at) (UTC ISO 8601) and C(ttl); for a holder found on this host also
    C(pid_start), C(pid_host) and C(pid_cmd), which identify its process (see O(pid)).
  - O(state=present) acquires the lock and returns a C(lock_id) token; O(state=absent) with that token releases it.
    Passing the token back with O(state=present) renews the lock (a new C(expires_at)) instead of failing.
  - A held lock fails at once, naming its holder, or is polled for up to O(wait) seconds with capped exponential
    backoff and full jitter.
  - A stale lock is taken over and reported in RV(stale_lock_taken_over) - past its C(expires_at), or held by an
    ansible process on this host that has exited (a deploy interrupted with Ctrl-C or killed, where no C(always)
    block ran). The pid is checked together with the process start time, so a reused pid is not mistaken for the
    holder.
  - Acquiring is atomic across processes. A free lock is created with an atomic create-if-absent (hard link of a
    fully written and fsynced temporary file, which fails like C(open(O_CREAT|O_EXCL)) when the lock exists, and
    never shows a half-written lock; C(O_CREAT|O_EXCL) itself where hard links are unsupported). Takeover, renewal
    and release re-read the lock under an exclusive flock of the release folder and replace it by rename, so of
    several processes racing for a stale lock exactly one wins. The kernel drops the flock when its holder dies.
author: ragops.platform maintainers (@ragops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports whether the lock would be acquired (or fails because it is held, after polling up to O(wait)) or
      released, and writes nothing.
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  path:
    description: The release folder that holds C(deploy.lock). It is created (mode 0755) on the first acquire.
    type: path
    default: /opt/ragops/release
  state:
    description: V(present) acquires (or renews, with O(lock_id)); V(absent) releases.
    type: str
    choices: [present, absent]
    default: present
  lock_id:
    description:
      - The token returned by the acquire. Required with O(state=absent) unless O(force=true).
      - With O(state=present), renews the lock when this token holds it, and otherwise becomes the token of the new lock.
    type: str
  holder:
    description: What the holder is doing, shown to anyone who finds the lock held, for example C(deploy 1.2.0).
    type: str
    default: ''
  user:
    description: Who holds the lock. Defaults to C(SUDO_USER), C(USER) or C(LOGNAME), else the name of the uid.
    type: str
  host:
    description: Where the holder runs. Defaults to the host name.
    type: str
  pid:
    description:
      - The process id of the holder, for example the controller's C(ansible-playbook).
      - When omitted, the outermost ansible CLI process (C(ansible-playbook), C(ansible)) among the module's
        ancestors is recorded, with its start time and a digest of its command line, so that a lock left by an
        exited holder is taken over at once - once no orphaned worker of a killed C(ansible-playbook) (same command
        line, its own session) is still running a task either.
        That process is found when the controller is the managed host (local connection); otherwise the pid is null.
      - So a lock taken by an ad-hoc C(ansible) command is stale as soon as that command ends. To hold the lock by
        hand across commands (maintenance), pass O(pid) - a lock with an explicit pid expires by O(ttl) only.
    type: int
  ttl:
    description: Seconds after which the lock is stale and may be taken over. Renew with O(lock_id) for longer work.
    type: int
    default: 1800
  wait:
    description: Seconds to wait for a held lock; V(0) fails at once.
    type: float
    default: 0
  poll_max_interval:
    description: The cap, in seconds, of the backoff between two polls while waiting.
    type: float
    default: 2.0
  force:
    description: With O(state=absent), release the lock whoever holds it. Not allowed with O(state=present).
    type: bool
    default: false
  record_takeover:
    description:
      - Append a history line (action V(lock), outcome V(taken_over)) to C(history.jsonl) in O(path) when a stale
        lock is taken over, naming the holder that was replaced and why it was stale.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Take the deploy lock, failing fast when another deploy holds it
  ragops.platform.release_lock:
    path: "{{ ragops_data_dir }}/release"
    holder: "deploy {{ version }}"
    ttl: 1800
  register: deploy_lock

- name: Release it (in an always block)
  ragops.platform.release_lock:
    path: "{{ ragops_data_dir }}/release"
    state: absent
    lock_id: "{{ deploy_lock.lock_id }}"
  when: deploy_lock.lock_id is defined

- name: Wait up to 5 minutes for a running deploy to finish
  ragops.platform.release_lock:
    holder: "rollback"
    wait: 300

- name: Break a lock by hand (operator)
  ragops.platform.release_lock:
    state: absent
    force: true
"""

RETURN = r"""
lock_id:
  description: The token of the lock, to pass to the release (in check mode, the token the lock would get).
  returned: when O(state=present) and the lock is (or would be) acquired
  type: str
  sample: 3b8a4f0c2d9e4a1b8c7d6e5f4a3b2c1d
holder:
  description:
    - O(state=present) - the holder record now in the lock, or on failure the record of the holder who has it.
    - O(state=absent) - the record that was released, or null when the lock was already free.
  returned: always
  type: dict
  sample:
    lock_id: 3b8a4f0c2d9e4a1b8c7d6e5f4a3b2c1d
    holder: deploy 1.2.0
    user: alice
    host: host1
    pid: 4242
    pid_start: 881234
    pid_host: host1
    pid_cmd: 5d41402abc4b2a76
    acquired_at: "2026-01-05T10:11:20.000Z"
    expires_at: "2026-01-05T10:41:20.000Z"
    ttl: 1800
acquired:
  description: Whether the lock was acquired, taken over or renewed (would be, in check mode).
  returned: always
  type: bool
renewed:
  description: Whether an existing lock held by O(lock_id) was renewed.
  returned: always
  type: bool
released:
  description: Whether the lock was released (would be, in check mode); false when it was already free.
  returned: always
  type: bool
waited:
  description: Seconds spent waiting for the lock.
  returned: always
  type: float
  sample: 0.0
stale_lock_taken_over:
  description: The holder record of a stale lock that was taken over, else null.
  returned: always
  type: dict
takeover_entry:
  description: The history line that recorded the takeover (that would, in check mode), else null.
  returned: always
  type: dict
stale_reason:
  description: Why the taken-over lock was stale - V(expired) or V(holder_exited); null otherwise.
  returned: always
  type: str
lock_file:
  description: The path of the lock file.
  returned: always
  type: str
  sample: /opt/ragops/release/deploy.lock
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ragops.platform.plugins.module_utils._atomic_file import DirectoryLockTimeout
from ansible_collections.ragops.platform.plugins.module_utils._deploy_lock import (
    DeployLock,
    LockHeld,
    LockNotOwned,
    describe_holder,
    find_ansible_process,
)
from ansible_collections.ragops.platform.plugins.module_utils._release_record import (
    ReleaseRecord,
    default_host,
    make_entry,
    release_folder_argument_spec,
    user_and_host,
)
from ansible_collections.ragops.platform.plugins.module_utils._utc_time import utc_now


def argument_spec():
    spec = release_folder_argument_spec()
    spec.update(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        lock_id=dict(type="str"),
        holder=dict(type="str", default=""),
        pid=dict(type="int"),
        ttl=dict(type="int", default=1800),
        wait=dict(type="float", default=0),
        poll_max_interval=dict(type="float", default=2.0),
        force=dict(type="bool", default=False),
        record_takeover=dict(type="bool", default=True),
    )
    return spec


def invalid_parameters(params):
    """Texts naming each bad parameter; empty when all are usable."""
    problems = []
    if params["ttl"] < 1:
        problems.append("ttl must be at least 1 second, not %d" % params["ttl"])
    if params["wait"] < 0 or params["poll_max_interval"] <= 0:
        problems.append("wait must be 0 or more and poll_max_interval more than 0")
    if params["force"] and params["state"] == "present":
        problems.append("force applies to state=absent only; a held lock is taken over only when stale")
    if params["state"] == "absent" and params["lock_id"] is None and not params["force"]:
        problems.append("state=absent needs the lock_id returned by the acquire (or force: true to release any holder)")
    return problems


def initial_result(lock_file):
    """What the module returns when it stops before touching the lock."""
    return {"changed": False, "acquired": False, "renewed": False, "released": False, "waited": 0.0,
            "holder": None, "stale_lock_taken_over": None, "stale_reason": None, "takeover_entry": None,
            "lock_file": lock_file}


def identity(params, find_process=find_ansible_process):
    user, host = user_and_host(params)
    found = {"holder": params["holder"], "user": user, "host": host,
             "pid": params["pid"], "pid_start": None, "pid_host": None, "pid_cmd": None}
    if params["pid"] is None:
        pid, start, digest = find_process()
        if pid is not None:
            found.update(pid=pid, pid_start=start, pid_host=default_host(), pid_cmd=digest)
    return found


def failed(result, msg, **details):
    result.update(details, failed=True, msg=msg)
    return result


def acquire(params, lock, result, check_mode, find_process, clock, sleep):
    try:
        outcome = lock.acquire(identity(params, find_process), params["ttl"], wait=params["wait"],
                               lock_id=params["lock_id"], dry_run=check_mode,
                               poll_max_interval=params["poll_max_interval"], sleep=sleep, monotonic=clock)
    except LockHeld as held:
        waited = getattr(held, "waited", 0.0)
        msg = held.message + (" (waited %.1f s)" % waited if params["wait"] > 0 else "")
        return failed(result, msg, holder=held.holder, waited=round(waited, 3))
    result.update(changed=True, acquired=True, renewed=outcome["action"] == "renewed", lock_id=outcome["lock_id"],
                  holder=outcome["holder"], waited=round(outcome["waited"], 3),
                  stale_lock_taken_over=outcome["taken_over"], stale_reason=outcome["stale_reason"])
    result["diff"] = {"before": outcome["before"] or {}, "after": outcome["holder"]}
    if outcome["taken_over"] is not None and params["record_takeover"]:
        result["takeover_entry"] = takeover_entry(params, outcome)
        if not check_mode:
            try:
                ReleaseRecord(params["path"]).append(result["takeover_entry"])
            except (IOError, OSError) as exc:  # the lock is held: say so, and let the release go on or fail later
                result["warnings"] = ["the takeover could not be recorded in the history: %s" % exc]
    return result


def takeover_entry(params, outcome):
    """The history line of a stale lock taken over: who held it, since when, why it was stale, who took it."""
    replaced = outcome["taken_over"]
    user, host = user_and_host(params)
    reason = "stale deploy lock (%s) of %s, held since %s, taken over by %s" % (
        outcome["stale_reason"], describe_holder(replaced), replaced.get("acquired_at"), params["holder"] or "?")
    return make_entry("lock", "taken_over", None, utc_now(), reason=reason, user=user, host=host,
                      extra={"replaced": replaced, "stale_reason": outcome["stale_reason"],
                             "new_lock_id": outcome["lock_id"]})


def release(params, lock, result, check_mode):
    try:
        outcome = lock.release(lock_id=params["lock_id"], force=params["force"], dry_run=check_mode)
    except LockNotOwned as refused:
        return failed(result, refused.message, holder=refused.holder)
    result.update(changed=outcome["released"], released=outcome["released"], holder=outcome["holder"])
    if outcome["released"]:
        result["diff"] = {"before": outcome["holder"], "after": {}}
    return result


def run_release_lock(params, lock=None, check_mode=False, find_process=find_ansible_process,
                     clock=time.monotonic, sleep=time.sleep):
    """Acquires, renews or releases ``lock`` (a DeployLock, by default the one of params["path"]); returns the
    module result, ``failed`` set (with ``msg``) when the module must fail.

    ``find_process`` names the holder's ansible process when params["pid"] is unset; ``clock`` and ``sleep`` pace
    the wait for a held lock.
    """
    if lock is None:
        lock = DeployLock(params["path"])
    result = initial_result(lock.path)
    try:
        if params["state"] == "present":
            return acquire(params, lock, result, check_mode, find_process, clock, sleep)
        return release(params, lock, result, check_mode)
    except DirectoryLockTimeout as exc:
        return failed(result, "deploy lock: %s" % exc)
    except (IOError, OSError) as exc:
        return failed(result, "deploy lock %s: %s" % (lock.path, exc), errno=exc.errno)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    problems = invalid_parameters(module.params)
    if problems:
        module.fail_json(msg="; ".join(problems), **initial_result(DeployLock(module.params["path"]).path))
    result = run_release_lock(module.params, check_mode=module.check_mode)
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
