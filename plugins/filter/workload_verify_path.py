# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: workload_verify_path
short_description: The public path that verifies a traffic switch through nginx
version_added: 0.2.0
author: ragops.platform maintainers (@ragops)
description:
  - After a switch, the release engine GETs a path through nginx until the new color answers it (2xx, with nginx's
    own color header). That path must be public and must not depend on the app's business answers.
  - Returns the first health check path that a route of the workload exposes to GET without a token; else the path of
    the first tokenless route that allows GET; else an empty string (the switch is then not verified through nginx).
positional: health_checks
options:
  _input:
    description: The workload's routes (C(ragops_app.routes)).
    type: list
    elements: dict
    required: true
  health_checks:
    description: The workload's health checks (C(ragops_app.health.checks)).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: The verification path of the workload
  ansible.builtin.set_fact:
    verify_path: "{{ ragops_app.routes | ragops.platform.workload_verify_path(ragops_app.health.checks) }}"
"""

RETURN = r"""
_value:
  description: A path such as V(/health), or an empty string.
  type: str
"""


def route_serves(route, path, method):
    """Whether a public route of the workload passes METHOD PATH to the app."""
    methods = [m.upper() for m in (route.get("methods") or ["GET", "HEAD"])]
    if method.upper() not in methods:
        return False
    if (route.get("match") or "prefix") == "exact":
        return path == route.get("path")
    return path.startswith(route.get("path") or "/")


def workload_verify_path(routes, health_checks):
    open_routes = [route for route in routes or [] if not route.get("token")]
    for check in health_checks or []:
        path = check.get("path") or check.get("url") or ""
        if any(route_serves(route, path, "GET") for route in open_routes):
            return path
    for route in open_routes:
        if route_serves(route, route.get("path") or "/", "GET"):
            return route.get("path")
    return ""


class FilterModule(object):
    def filters(self):
        return {"workload_verify_path": workload_verify_path}
