# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Crash-safe files: atomic replace, append-only JSON lines, and a directory lock.

A reader of a file written here sees either the complete old content or the complete new content, never a mix:
the new content goes to a temporary file in the same folder, is flushed and fsynced, then renamed over the target,
and the folder is fsynced so the rename itself survives a power loss.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import fcntl
import grp
import json
import os
import pwd
import tempfile
import time

_READ_BLOCK = 64 * 1024


class CorruptFileError(ValueError):
    """A file exists but does not hold what it should; the message names the file."""

    def __init__(self, path, reason):
        self.path = path
        self.reason = reason
        super(CorruptFileError, self).__init__("%s is corrupt: %s" % (path, reason))


class DirectoryLockTimeout(RuntimeError):
    pass


def _resolve_uid(owner):
    if owner is None:
        return -1
    try:
        return int(owner)
    except ValueError:
        return pwd.getpwnam(owner).pw_uid


def _resolve_gid(group):
    if group is None:
        return -1
    try:
        return int(group)
    except ValueError:
        return grp.getgrnam(group).gr_gid


def _apply_attributes(fd, mode, owner, group):
    if mode is not None:
        os.fchmod(fd, mode)
    uid, gid = _resolve_uid(owner), _resolve_gid(group)
    if uid != -1 or gid != -1:
        os.fchown(fd, uid, gid)


def fsync_directory(path):
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def atomic_write(path, data, mode=None, owner=None, group=None):
    """Replace ``path`` with ``data`` (bytes) atomically.

    ``mode`` defaults to the mode of the file being replaced, or 0o644 for a new file. ``owner`` and ``group`` are
    names or numeric ids; None keeps the writer's.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if mode is None:
        try:
            mode = os.stat(path).st_mode & 0o7777
        except OSError:
            mode = 0o644
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
            _apply_attributes(fd, mode, owner, group)
        finally:
            os.close(fd)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise
    fsync_directory(directory)


def dumps_json(obj, pretty=False):
    if pretty:
        return json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    return json.dumps(obj, separators=(",", ":"), sort_keys=False, ensure_ascii=False)


def atomic_write_json(path, obj, mode=None, owner=None, group=None):
    atomic_write(path, dumps_json(obj, pretty=True).encode("utf-8"), mode=mode, owner=owner, group=group)


def read_json(path, default=None):
    """The JSON document in ``path``; ``default`` when it does not exist; CorruptFileError when it is not JSON."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return default
        raise
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CorruptFileError(path, "not UTF-8 (%s)" % exc)
    except ValueError as exc:
        raise CorruptFileError(path, "not valid JSON (%s)" % exc)


def append_json_line(path, obj, mode=0o644, owner=None, group=None):
    """Append ``obj`` as one JSON line to ``path``; returns the line written (without its newline).

    The whole line goes out in a single write() on an O_APPEND descriptor, under an exclusive flock of the file, and
    is fsynced. If the file does not end with a newline (a torn line left by a crash), a newline is written first so
    the torn fragment stays on a line of its own, which readers skip, and the new line stays valid.
    """
    line = dumps_json(obj)
    if "\n" in line:
        raise ValueError("a JSON line cannot contain a newline")
    created = not os.path.exists(path)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        payload = (line + "\n").encode("utf-8")
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            payload = b"\n" + payload
        written = os.write(fd, payload)
        if written != len(payload):
            # A short write on a regular file means the disk is full: end the partial line so the next append is clean.
            os.write(fd, b"\n")
            raise IOError(errno.ENOSPC, "short write appending to %s (%d of %d bytes)" % (path, written, len(payload)))
        os.fsync(fd)
        if created:
            _apply_attributes(fd, mode, owner, group)
    finally:
        os.close(fd)
    if created:
        fsync_directory(os.path.dirname(os.path.abspath(path)))
    return line


def _lines_backwards(path):
    """Yield the lines of ``path`` from the last to the first, reading blocks from the end of the file."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        position = handle.tell()
        pending = b""
        while position > 0:
            step = min(_READ_BLOCK, position)
            position -= step
            handle.seek(position)
            pieces = (handle.read(step) + pending).split(b"\n")
            pending = pieces[0]  # may continue in the previous block
            yield from reversed(pieces[1:])
        yield pending


def _parse_line(raw):
    try:
        entry = json.loads(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return None
    return entry if isinstance(entry, dict) else None


def read_json_lines(path, limit=None):
    """Entries (JSON objects) of a JSON-lines file, oldest first, and the number of lines skipped as unreadable.

    ``limit`` keeps only the last N entries and reads the file from its end, so a long history costs no more than
    its tail. A missing file has no entries. Blank lines are ignored; a torn or otherwise invalid line is skipped and
    counted (only among the lines read).
    """
    if limit is not None and limit <= 0:
        return [], 0
    entries, skipped = [], 0
    lines = _lines_backwards(path)
    try:
        for raw in lines:
            if not raw.strip():
                continue
            entry = _parse_line(raw)
            if entry is None:
                skipped += 1
                continue
            entries.append(entry)
            if limit is not None and len(entries) >= limit:
                break
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return [], 0
        raise
    finally:
        lines.close()
    entries.reverse()
    return entries, skipped


@contextlib.contextmanager
def locked_directory(path, timeout=10.0):
    """Hold an exclusive flock on the folder ``path`` itself, for read-modify-write sections.

    flock is tied to the open file description, so it also excludes other threads of the same process, and the
    kernel drops it when the holder dies: a crash never leaves it behind. Waits at most ``timeout`` seconds.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                raise DirectoryLockTimeout("could not lock folder %s within %.1f s" % (path, timeout))
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.1)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def backup_copy(path, stamp):
    """Copy ``path`` to ``<path>.corrupt-<stamp>`` (atomically, same mode) and return the copy's path. A copy with the
    same content made earlier is reused, so a damaged file read by every run is kept once."""
    with open(path, "rb") as handle:
        data = handle.read()
    directory, name = os.path.split(os.path.abspath(path))
    prefix = name + ".corrupt-"
    for existing in sorted(os.listdir(directory)):
        if existing.startswith(prefix) and not existing.endswith(".tmp"):
            candidate = os.path.join(directory, existing)
            with contextlib.suppress(IOError, OSError):
                with open(candidate, "rb") as handle:
                    if handle.read() == data:
                        return candidate
    target = os.path.join(directory, prefix + stamp)
    atomic_write(target, data, mode=os.stat(path).st_mode & 0o7777)
    return target


def scan_json_lines(path):
    """(number of entries, [(line number, reason)] of every line that is not a JSON object) of a JSON-lines file,
    read from the start; blank lines are neither."""
    count, bad = 0, []
    try:
        handle = open(path, "rb")
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return 0, []
        raise
    with handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw.decode("utf-8"))
            except ValueError as exc:  # UnicodeDecodeError is a ValueError too
                bad.append((number, "not valid JSON (%s)" % exc))
                continue
            if isinstance(entry, dict):
                count += 1
            else:
                bad.append((number, "a JSON %s, not an object" % type(entry).__name__))
    return count, bad


def rewrite_without_lines(path, numbers):
    """Replace ``path`` atomically with its content less the lines ``numbers`` (1-based)."""
    drop = set(numbers)
    with open(path, "rb") as handle:
        kept = [raw if raw.endswith(b"\n") else raw + b"\n"
                for number, raw in enumerate(handle, 1) if number not in drop]
    atomic_write(path, b"".join(kept))


def ensure_directory(path, mode=0o755):
    os.makedirs(path, mode, exist_ok=True)  # exist_ok: concurrent first writers race to create it
