# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The deploy lock: one JSON file, ``deploy.lock``, in the release folder.

Protocol (every step is safe against concurrent processes and against a crash at any point):
- Creating a free lock is an atomic create-if-absent: the holder JSON is written and fsynced to a temporary file,
  then hard-linked to ``deploy.lock``; link() fails with EEXIST when the lock exists, exactly like
  open(O_CREAT|O_EXCL), but a reader can never see a half-written lock. Where hard links are not supported,
  open(O_CREAT|O_EXCL) followed by write and fsync is used instead.
- Taking over a stale lock, renewing and releasing are read-check-write sequences. They run under an exclusive
  flock of the release folder (see locked_directory), so two takers cannot both see the same stale lock: the
  second one re-reads the lock the first one wrote and finds it live. The kernel drops that flock when its holder
  dies, so it never goes stale itself; it is held for milliseconds, never while waiting for the deploy lock.
- A taken-over lock is replaced by rename (atomic), never deleted first, so no third process can slip in.
- A lock is stale past its expires_at, or at once when it records a local ansible process (pid, start time and
  command line digest) of which nothing runs any more (see orphan_of).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import datetime
import errno
import hashlib
import os
import tempfile
import time
import uuid

from ansible_collections.ragops.platform.plugins.module_utils._atomic_file import (
    CorruptFileError,
    atomic_write_json,
    dumps_json,
    ensure_directory,
    fsync_directory,
    locked_directory,
    read_json,
    write_all,
)
from ansible_collections.ragops.platform.plugins.module_utils._backoff import Backoff
from ansible_collections.ragops.platform.plugins.module_utils._release_record import LOCK_FILE, default_host
from ansible_collections.ragops.platform.plugins.module_utils._utc_time import format_time, parse_time, utc_now

ANSIBLE_CLIS = ("ansible-playbook", "ansible", "ansible-console", "ansible-pull")
EXPIRED = "expired"
HOLDER_EXITED = "holder_exited"
UNREADABLE = "unreadable"


class LockHeld(Exception):
    def __init__(self, holder, message):
        super(LockHeld, self).__init__(message)
        self.holder = holder
        self.message = message


class LockNotOwned(Exception):
    def __init__(self, holder, message):
        super(LockNotOwned, self).__init__(message)
        self.holder = holder
        self.message = message


def _proc_stat(pid):
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards), or None when there is no such process."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            raw = handle.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return None
    return raw[raw.rindex(")") + 2:].split()


def process_start_time(pid):
    """The start time of a process in clock ticks since boot, which with the pid identifies it despite pid reuse."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def process_alive(pid, start_time):
    if not os.path.isdir("/proc/self"):
        return True  # cannot tell: never call a holder dead on a guess
    return process_start_time(pid) == start_time


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def cmdline_digest(cmdline):
    return hashlib.sha256(cmdline).hexdigest()[:16]


def _ancestors():
    chain, pid = [], os.getpid()
    while pid > 1 and pid not in chain:
        chain.append(pid)
        fields = _proc_stat(pid)
        if not fields:
            break
        pid = int(fields[1])
    return chain


def find_ansible_process():
    """(pid, start time, command line digest) of the outermost ansible CLI process among this process's ancestors.

    Modules run in a child of a child of ansible-playbook when the controller is the managed host (local
    connection); over SSH the chain ends at sshd and (None, None, None) is returned.
    """
    found = (None, None, None)
    for pid in _ancestors()[1:]:
        cmdline = _cmdline(pid)
        if cmdline is None:
            break
        names = [os.path.basename(arg.decode("utf-8", "replace")) for arg in cmdline.split(b"\0")[:2]]
        if any(name in ANSIBLE_CLIS for name in names):
            found = (pid, process_start_time(pid), cmdline_digest(cmdline))
    return found


def orphan_of(holder):
    """The pid of a process still running for a holder whose main ansible process has exited, else None.

    ansible-playbook runs each task in a forked worker with the same command line, in its own session. When the
    main process is killed (SIGKILL, SIGHUP), the worker in flight runs on as an orphan until its task ends. Any
    process with that command line started since the main one, other than our own ancestors, counts; a concurrent
    run of the very same command counts too, which errs on the safe side.
    """
    digest = holder.get("pid_cmd")
    if not digest or not os.path.isdir("/proc/self"):
        return None
    ours = set(_ancestors())
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in ours:
            continue
        cmdline = _cmdline(int(name))
        if cmdline and cmdline_digest(cmdline) == digest:
            started = process_start_time(int(name))
            if started is not None and started >= holder["pid_start"]:
                return int(name)
    return None


def holder_exited(holder):
    """True only when the lock records a local ansible process (pid and start time) and nothing of it runs any more."""
    if holder.get("pid") is None or holder.get("pid_start") is None or holder.get("pid_host") != default_host():
        return False
    return not process_alive(int(holder["pid"]), holder["pid_start"]) and orphan_of(holder) is None


def describe_holder(holder):
    """``alice@host1 (pid 4242, 'deploy 1.2.0')``."""
    if holder.get(UNREADABLE):
        return "an unreadable lock file (%s)" % holder[UNREADABLE]
    who = "%s@%s" % (holder.get("user") or "?", holder.get("host") or "?")
    details = []
    if holder.get("pid") is not None:
        details.append("pid %s" % holder["pid"])
    if holder.get("holder"):
        details.append("'%s'" % holder["holder"])
    return who + (" (%s)" % ", ".join(details) if details else "")


def seconds_until(moment_text, now):
    try:
        return (parse_time(moment_text) - now).total_seconds()
    except (TypeError, ValueError):
        return None


class DeployLock:
    def __init__(self, directory, name=LOCK_FILE, now=utc_now):
        self.directory = directory
        self.path = os.path.join(directory, name)
        self._now = now

    # -- reading -----------------------------------------------------------------------------------------------
    def read(self):
        """The holder record, None when the lock is free, or a stand-in record for an unreadable lock file."""
        try:
            holder = read_json(self.path)
            reason = None if isinstance(holder, dict) or holder is None else "not a JSON object"
        except CorruptFileError as exc:
            holder, reason = None, exc.reason
        if reason is None:
            return holder
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            return None  # released while we looked
        return {UNREADABLE: reason, "acquired_at": format_time(parse_time(mtime)), "expires_at": None}

    def stale_reason(self, holder, now, ttl_for_unreadable):
        """Why ``holder`` may be taken over (expired, holder_exited), or None while it is valid."""
        expires_at = holder.get("expires_at")
        if holder.get(UNREADABLE):  # judged by the file's age against the requested TTL
            expires_at = format_time(parse_time(holder["acquired_at"]) + datetime.timedelta(seconds=ttl_for_unreadable))
        remaining = seconds_until(expires_at, now)
        if remaining is None or remaining <= 0:
            return EXPIRED
        if holder_exited(holder):
            return HOLDER_EXITED
        return None

    def describe(self):
        """What a status report shows: held, holder, expires_in, stale."""
        holder = self.read()
        if holder is None:
            return {"held": False, "holder": None, "expires_in": None, "stale": None, "summary": "free"}
        now = self._now()
        stale = self.stale_reason(holder, now, 0)
        expires_in = seconds_until(holder.get("expires_at"), now)
        summary = "held by %s since %s" % (describe_holder(holder), holder.get("acquired_at"))
        if stale:
            summary += " (stale: %s; the next deploy takes it over)" % stale
        elif expires_in is not None:
            summary += ", expires in %d s" % expires_in
        return {"held": True, "holder": holder, "expires_in": expires_in, "stale": stale, "summary": summary}

    def held_message(self, holder):
        now = self._now()
        message = "deploy lock held by %s since %s" % (describe_holder(holder), holder.get("acquired_at"))
        remaining = seconds_until(holder.get("expires_at"), now)
        if remaining is not None:
            message += ", expires in %d s" % max(0, int(remaining))
        if (holder.get("pid_start") is not None and holder.get("pid_host") == default_host()
                and not process_alive(int(holder["pid"]), holder["pid_start"])):
            orphan = orphan_of(holder)
            if orphan is not None:
                message += " (pid %s has exited, but its worker pid %d is still finishing a task)" % (holder["pid"], orphan)
        return message

    # -- writing -----------------------------------------------------------------------------------------------
    def _create(self, holder):
        """Create the lock file with ``holder`` if it does not exist; False when it exists."""
        data = dumps_json(holder, pretty=True).encode("utf-8")
        fd, tmp_path = tempfile.mkstemp(dir=self.directory, prefix="." + os.path.basename(self.path) + ".",
                                        suffix=".tmp")
        try:
            try:
                write_all(fd, data)
                os.fchmod(fd, 0o644)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp_path, self.path)
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    return False
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                return self._create_exclusive(data)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp_path)
        fsync_directory(self.directory)
        return True

    def _create_exclusive(self, data):
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                return False
            raise
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def _new_holder(self, identity, ttl, lock_id, now, current=None):
        holder = {
            "lock_id": lock_id,
            "holder": identity.get("holder") or "",
            "user": identity.get("user"),
            "host": identity.get("host"),
            "pid": identity.get("pid"),
            "pid_start": identity.get("pid_start"),
            "pid_host": identity.get("pid_host"),
            "pid_cmd": identity.get("pid_cmd"),
            "acquired_at": format_time(now),
            "expires_at": format_time(now + datetime.timedelta(seconds=ttl)),
            "ttl": ttl,
        }
        if current is not None:  # a renewal keeps the original acquisition time
            holder["acquired_at"] = current.get("acquired_at", holder["acquired_at"])
            holder["renewed_at"] = format_time(now)
        return holder

    def try_acquire(self, identity, ttl, lock_id=None, dry_run=False):
        """Acquire once without waiting; raises LockHeld.

        Returns a dict: lock_id, holder (the record now in the lock), action (acquired, renewed, taken_over),
        before (the record replaced, or None), taken_over (the same, for a takeover only) and stale_reason.
        """
        if dry_run:
            return self._decide(identity, ttl, lock_id, dry_run=True)
        ensure_directory(self.directory)
        with locked_directory(self.directory):
            return self._decide(identity, ttl, lock_id, dry_run=False)

    def _decide(self, identity, ttl, lock_id, dry_run):
        now = self._now()
        current = self.read()
        requested_id = lock_id
        lock_id = lock_id or uuid.uuid4().hex
        result = {"lock_id": lock_id, "taken_over": None, "stale_reason": None, "before": current}
        if current is None:
            holder = self._new_holder(identity, ttl, lock_id, now)
            if not dry_run and not self._create(holder):
                current = self.read() or {}
                raise LockHeld(current, self.held_message(current))
            result.update(action="acquired", holder=holder)
            return result
        if requested_id and current.get("lock_id") == requested_id:
            holder = self._new_holder(identity, ttl, lock_id, now, current=current)
            result.update(action="renewed", holder=holder)
        else:
            reason = self.stale_reason(current, now, ttl)
            if reason is None:
                raise LockHeld(current, self.held_message(current))
            holder = self._new_holder(identity, ttl, lock_id, now)
            result.update(action="taken_over", holder=holder, taken_over=current, stale_reason=reason)
        if not dry_run:
            atomic_write_json(self.path, holder, mode=0o644)
        return result

    def acquire(self, identity, ttl, wait=0.0, lock_id=None, dry_run=False, poll_max_interval=2.0,
                sleep=time.sleep, monotonic=time.monotonic):
        """try_acquire, polling with capped exponential backoff and full jitter for up to ``wait`` seconds.

        The result has ``waited`` (seconds); LockHeld carries ``waited`` too.
        """
        started = monotonic()
        deadline = started + max(0.0, wait)
        backoff = Backoff(initial=min(0.05, poll_max_interval), cap=poll_max_interval)
        while True:
            try:
                result = self.try_acquire(identity, ttl, lock_id=lock_id, dry_run=dry_run)
            except LockHeld as held:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    held.waited = monotonic() - started
                    raise
                sleep(max(backoff.next_delay(remaining), min(0.01, remaining)))  # a floor, so jitter never spins
                continue
            result["waited"] = monotonic() - started
            return result

    def release(self, lock_id=None, force=False, dry_run=False):
        """Remove the lock if ``lock_id`` holds it (any holder with ``force``); raises LockNotOwned.

        Returns {"released": bool, "holder": the record that was removed, or None when the lock was already free}.
        """
        if dry_run or not os.path.isdir(self.directory):
            return self._release(lock_id, force, dry_run=True)
        with locked_directory(self.directory):
            return self._release(lock_id, force, dry_run=False)

    def _release(self, lock_id, force, dry_run):
        current = self.read()
        if current is None:
            return {"released": False, "holder": None}
        if not force and (lock_id is None or current.get("lock_id") != lock_id):
            raise LockNotOwned(current, "refusing to release the deploy lock: it is %s, not by lock_id %s "
                                        "(force: true releases any holder)" % (
                                            self.held_message(current).replace("deploy lock ", "", 1), lock_id))
        if not dry_run:
            try:
                os.unlink(self.path)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                return {"released": False, "holder": None}
            fsync_directory(self.directory)
        return {"released": True, "holder": current}
