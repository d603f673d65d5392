# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: workload_substitute
short_description: Replace C(${name}) placeholders in the strings of a workload value
version_added: 0.2.0
author: ragops.platform maintainers (@ragops)
description:
  - Walks dicts and lists and replaces C(${name}) in every string with the value given for C(name). Placeholders
    without a value are kept, so a later step can fill them.
  - The workload definition (C(ragops_app)) uses it for C(${version}) and C(${color}) in health checks and
    analysis queries, where Jinja cannot be used because the definition is validated before a version is known.
positional: values
options:
  _input:
    description: The value (dict, list or string).
    type: raw
    required: true
  values:
    description: Placeholder names and their values.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: The health checks of green 1.1.0
  ansible.builtin.set_fact:
    checks: "{{ ragops_app.health.checks | ragops.platform.workload_substitute({'version': '1.1.0', 'color': 'green'}) }}"
"""

RETURN = r"""
_value:
  description: The value with the placeholders replaced.
  type: raw
"""

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def workload_substitute(value, values):
    if not isinstance(values, dict):
        raise AnsibleFilterError("workload_substitute: values must be a dict, got %s" % type(values).__name__)
    strings = dict((key, "%s" % item) for key, item in values.items())

    def walk(item):
        if isinstance(item, string_types):
            return PLACEHOLDER.sub(lambda match: strings.get(match.group(1), match.group(0)), item)
        if isinstance(item, dict):
            return dict((key, walk(inner)) for key, inner in item.items())
        if is_sequence(item):
            return [walk(inner) for inner in item]
        return item

    return walk(value)


class FilterModule(object):
    def filters(self):
        return {"workload_substitute": workload_substitute}
