# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible.errors import AnsibleLookupError
from ansible_collections.ragops.platform.plugins.lookup.context_digest import LookupModule, context_digest


@pytest.fixture
def context(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print('hi')\n")
    return tmp_path


def test_same_content_same_digest(context, tmp_path_factory):
    other = tmp_path_factory.mktemp("copy")
    (other / "Dockerfile").write_text("FROM scratch\n")
    (other / "src").mkdir()
    (other / "src" / "app.py").write_text("print('hi')\n")
    assert context_digest(str(context)) == context_digest(str(other))


def test_content_change_changes_digest(context):
    before = context_digest(str(context))
    (context / "src" / "app.py").write_text("print('bye')\n")
    assert context_digest(str(context)) != before


def test_rename_changes_digest(context):
    before = context_digest(str(context))
    os.rename(str(context / "src" / "app.py"), str(context / "src" / "main.py"))
    assert context_digest(str(context)) != before


def test_executable_bit_changes_digest(context):
    before = context_digest(str(context))
    os.chmod(str(context / "src" / "app.py"), 0o755)
    assert context_digest(str(context)) != before


def test_excluded_names_are_ignored_at_any_depth(context):
    before = context_digest(str(context), exclude=["__pycache__", "*.pyc"])
    (context / "src" / "__pycache__").mkdir()
    (context / "src" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0\1")
    (context / "stray.pyc").write_bytes(b"\0")
    assert context_digest(str(context), exclude=["__pycache__", "*.pyc"]) == before
    assert context_digest(str(context)) != before


def test_extra_changes_digest(context):
    assert context_digest(str(context), extra="a") != context_digest(str(context), extra="b")


def test_missing_folder_fails(tmp_path):
    with pytest.raises(AnsibleLookupError, match="is not a folder"):
        context_digest(str(tmp_path / "missing"))


def test_lookup_returns_one_digest_per_term(context, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    (other / "Dockerfile").write_text("FROM scratch\n")
    lookup = LookupModule()
    options = {"exclude": ["*.pyc"], "extra": "x"}
    lookup.set_options = lambda var_options=None, direct=None: None
    lookup.get_option = options.get
    result = lookup.run([str(context), str(other)], variables={})
    assert result == [
        context_digest(str(context), ["*.pyc"], "x"),
        context_digest(str(other), ["*.pyc"], "x"),
    ]


def test_a_linked_folder_counts_by_what_it_holds(context, tmp_path_factory):
    shared = tmp_path_factory.mktemp("shared")
    (shared / "lib.py").write_text("VALUE = 1\n")
    os.symlink(str(shared), str(context / "lib"))
    copy = tmp_path_factory.mktemp("copy")
    (copy / "Dockerfile").write_text("FROM scratch\n")
    (copy / "src").mkdir()
    (copy / "src" / "app.py").write_text("print('hi')\n")
    (copy / "lib").mkdir()
    (copy / "lib" / "lib.py").write_text("VALUE = 1\n")
    assert context_digest(str(context)) == context_digest(str(copy))
    before = context_digest(str(context))
    (shared / "lib.py").write_text("VALUE = 2\n")
    assert context_digest(str(context)) != before


def test_a_link_loop_counts_as_a_link_and_ends(context):
    before = context_digest(str(context))
    os.symlink("..", str(context / "src" / "up"))
    looped = context_digest(str(context))
    assert looped != before
    os.remove(str(context / "src" / "up"))
    os.symlink(".", str(context / "src" / "up"))
    assert context_digest(str(context)) not in (before, looped)
