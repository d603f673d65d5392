# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Each role's interface, read from its files: what a user may set is documented, and everything else is internal.

- every default is an option of the role's argument specs, and the README lists it or links to the specs;
- vars/main.yml holds internal names only (``_<role>_``), so nothing there looks like a setting;
- a task registers or sets internal names, or a name the README lists under "Outputs";
- task-level vars are internal, or options of the role the task includes;
- stack-wide ``ragops_*`` values are defaulted once, in the ragops role.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ROLES_DIR = os.path.join(ROOT, "roles")
ROLES = sorted(name for name in os.listdir(ROLES_DIR) if os.path.isdir(os.path.join(ROLES_DIR, name)))
INCLUDES = ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role")
BLOCK_KEYS = ("block", "rescue", "always")


def _load(path, empty=None):
    if not os.path.exists(path):
        return empty
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or empty


def _options(role):
    specs = _load(os.path.join(ROLES_DIR, role, "meta", "argument_specs.yml"), {}).get("argument_specs", {})
    names = set()
    for entry_point in specs.values():
        names.update((entry_point.get("options") or {}).keys())
    return names


def _readme(role):
    path = os.path.join(ROLES_DIR, role, "README.md")
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _outputs(role):
    """Names in backticks in the README's "Outputs" section (up to the next heading of the same or a higher level)."""
    match = re.search(r"^(#+) Outputs\s*$(.*?)(?=^#{1,%d} |\Z)" % 6, _readme(role), re.M | re.S)
    if not match:
        return set()
    level = len(match.group(1))
    body = re.split(r"^#{1,%d} " % level, match.group(2), flags=re.M)[0]
    return set(re.findall(r"`([a-z_][a-z0-9_]*)`", body))


def _tasks(role):
    """(file, task) for every task of tasks/ and handlers/, blocks walked."""
    found = []
    for sub in ("tasks", "handlers"):
        folder = os.path.join(ROLES_DIR, role, sub)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.endswith(".yml"):
                stack = list(_load(os.path.join(folder, name), []))
                while stack:
                    task = stack.pop()
                    found.append(("%s/%s" % (sub, name), task))
                    for key in BLOCK_KEYS:
                        stack.extend(task.get(key) or [])
    return found


def _internal(role, name):
    return name.startswith("_%s_" % role)


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_documented(role):
    defaults = _load(os.path.join(ROLES_DIR, role, "defaults", "main.yml"), {})
    options = _options(role)
    assert sorted(set(defaults) - options) == [], "defaults missing from meta/argument_specs.yml"
    readme = _readme(role)
    if "meta/argument_specs.yml" not in readme:
        unlisted = [name for name in defaults if not re.search(r"(?<![\w])%s(?![\w])" % re.escape(name), readme)]
        assert unlisted == [], "README neither lists these nor links to meta/argument_specs.yml"


@pytest.mark.parametrize("role", ROLES)
def test_vars_hold_internal_names_only(role):
    values = _load(os.path.join(ROLES_DIR, role, "vars", "main.yml"), {})
    assert [name for name in values if not _internal(role, name)] == []


@pytest.mark.parametrize("role", ROLES)
def test_tasks_set_internal_names_or_documented_outputs(role):
    outputs = _outputs(role)
    bad = []
    for where, task in _tasks(role):
        names = []
        if isinstance(task.get("register"), str):
            names.append(task["register"])
        for key in ("ansible.builtin.set_fact", "set_fact"):
            if isinstance(task.get(key), dict):
                names.extend(name for name in task[key] if name != "cacheable")
        bad.extend("%s: %s" % (where, name) for name in names if not _internal(role, name) and name not in outputs)
    assert bad == [], "set a name starting with _%s_, or list it under '## Outputs' in the README" % role


@pytest.mark.parametrize("role", ROLES)
def test_task_vars_are_internal_or_options_of_the_included_role(role):
    bad = []
    for where, task in _tasks(role):
        included = next((task[key] for key in INCLUDES if key in task), None)
        allowed = set()
        if included:
            target = included["name"].split(".")[-1]
            allowed = _options(target) | set(_load(os.path.join(ROLES_DIR, target, "defaults", "main.yml"), {}))
        for name in task.get("vars") or {}:
            if not _internal(role, name) and name not in allowed:
                bad.append("%s: %s" % (where, name))
    assert bad == []


def test_stack_wide_defaults_have_one_home():
    stack = set(_load(os.path.join(ROLES_DIR, "ragops", "defaults", "main.yml"), {}))
    offenders = []
    for folder, _dirs, files in os.walk(ROLES_DIR):
        for name in files:
            if name.endswith((".yml", ".j2")):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as fh:
                    for number, line in enumerate(fh, 1):
                        for match in re.finditer(r"\b(ragops_[a-z_]+) \| default\(", line):
                            if match.group(1) in stack:
                                offenders.append("%s:%d %s" % (os.path.relpath(path, ROOT), number, match.group(1)))
    assert offenders == [], "default these in roles/ragops only"


@pytest.mark.parametrize("role", [role for role in ROLES if role != "ragops"])
def test_every_role_depends_on_the_ragops_role(role):
    meta = _load(os.path.join(ROLES_DIR, role, "meta", "main.yml"), {})
    names = [dep["role"] if isinstance(dep, dict) else dep for dep in meta.get("dependencies") or []]
    assert "ragops.platform.ragops" in names
