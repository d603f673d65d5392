# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: context_digest
author: ragops.platform maintainers (@ragops)
short_description: SHA-256 digest of a Docker build context on the controller
version_added: 0.1.0
description:
  - Walks a folder on the controller and returns one SHA-256 digest over the relative path, the executable bit and
    the content of every file in it (symbolic links count by their target), in a stable order.
  - A link to a folder is followed, and what it holds counts as if it were there. A link to a file counts by the
    path it points to, and so does a link back to a folder above it, which is not followed (a loop).
  - Files and folders whose name matches one of O(exclude) are left out, at any depth.
  - Used by the role C(ragops.platform.images) to decide whether an image must be rebuilt, without running a module.
options:
  _terms:
    description: Folders to digest; one digest is returned for each.
    required: true
    type: list
    elements: path
  exclude:
    description: Glob patterns (C(fnmatch)) matched against each file or folder name.
    type: list
    elements: str
    default: []
  extra:
    description: Text mixed into the digest, for example the build arguments and the base image id.
    type: str
    default: ''
"""

EXAMPLES = r"""
- name: Digest the nginx build context
  ansible.builtin.debug:
    msg: "{{ lookup('ragops.platform.context_digest', role_path ~ '/files/image', exclude=['__pycache__', '*.pyc']) }}"
"""

RETURN = r"""
_raw:
  description: One hexadecimal SHA-256 digest for each folder.
  type: list
  elements: str
"""

import fnmatch
import hashlib
import os
import stat

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.lookup import LookupBase


def _excluded(name, patterns):
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def context_digest(root, exclude=(), extra=""):
    """Return the SHA-256 hex digest of the folder ``root``."""
    if not os.path.isdir(root):
        raise AnsibleLookupError("context_digest: %s is not a folder on the controller" % root)
    digest = hashlib.sha256()
    # The real paths of the folders from the root down to each folder still to walk: a link to one of them is a loop.
    ancestry = {root: (os.path.realpath(root),)}
    for current, dirs, files in os.walk(root, followlinks=True):
        chain = ancestry.pop(current)
        followed, loops = [], []
        for name in sorted(d for d in dirs if not _excluded(d, exclude)):
            real = os.path.realpath(os.path.join(current, name))
            if real in chain:
                loops.append(name)  # digested as a link, like a link to a file
            else:
                followed.append(name)
                ancestry[os.path.join(current, name)] = chain + (real,)
        dirs[:] = followed
        for name in sorted([f for f in files if not _excluded(f, exclude)] + loops):
            path = os.path.join(current, name)
            relative = os.path.relpath(path, root)
            info = os.lstat(path)
            digest.update(to_bytes(relative) + b"\0")
            if stat.S_ISLNK(info.st_mode):
                digest.update(b"link\0" + to_bytes(os.readlink(path)) + b"\0")
                continue
            digest.update(b"x\0" if info.st_mode & stat.S_IXUSR else b"-\0")
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1024 * 1024), b""):
                    digest.update(block)
            digest.update(b"\0")
    digest.update(b"extra\0" + to_bytes(extra))
    return digest.hexdigest()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        exclude = self.get_option("exclude") or []
        extra = self.get_option("extra") or ""
        results = []
        for term in terms:
            try:
                results.append(context_digest(to_native(term), exclude, extra))
            except OSError as exc:
                raise AnsibleLookupError("context_digest: cannot read %s: %s" % (term, to_native(exc)))
        return results
