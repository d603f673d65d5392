# -*- coding: utf-8 -*-
"""The workload filters: placeholders in a workload definition, and the path that verifies a switch."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ragops.platform.plugins.filter.workload_substitute import workload_substitute
from ansible_collections.ragops.platform.plugins.filter.workload_verify_path import workload_verify_path

REFERENCE_ROUTES = [
    {"path": "/api/query", "match": "exact", "methods": ["POST"]},
    {"path": "/api/documents", "match": "exact", "methods": ["POST"], "token": "ragops_admin_token"},
    {"path": "/health", "match": "exact", "methods": ["GET", "HEAD"]},
]


def test_placeholders_are_replaced_in_nested_strings_only():
    checks = [{"path": "/health", "json": [{"path": "version", "value": "${version}"},
                                           {"path": "color", "value": "${color}"},
                                           {"path": "count", "op": "gt", "value": 0}],
               "status": [200]}]
    got = workload_substitute(checks, {"version": "1.2.0", "color": "green"})
    assert got[0]["json"][0]["value"] == "1.2.0"
    assert got[0]["json"][1]["value"] == "green"
    assert got[0]["json"][2]["value"] == 0
    assert got[0]["status"] == [200]
    assert checks[0]["json"][0]["value"] == "${version}", "the input is not changed"


def test_a_placeholder_without_a_value_is_kept_and_text_around_it_stays():
    got = workload_substitute({"q": "rate{color=\"${color}\",v=\"${version}\"} $notone ${ unknown}"}, {"color": "blue"})
    assert got == {"q": "rate{color=\"blue\",v=\"${version}\"} $notone ${ unknown}"}


def test_values_must_be_a_dict():
    with pytest.raises(AnsibleFilterError, match="values must be a dict"):
        workload_substitute("x", ["version"])


def test_the_reference_service_verifies_on_its_public_health_path():
    checks = [{"path": "/health"}, {"path": "/health/db"}]
    assert workload_verify_path(REFERENCE_ROUTES, checks) == "/health"


def test_a_health_path_behind_a_prefix_route_counts():
    routes = [{"path": "/", "methods": ["GET"]}]
    assert workload_verify_path(routes, [{"path": "/healthz"}]) == "/healthz"


def test_without_a_public_health_path_the_first_open_get_route_is_used():
    routes = [{"path": "/admin", "methods": ["GET"], "token": "t"},
              {"path": "/write", "methods": ["POST"]},
              {"path": "/notes", "match": "exact"}]
    assert workload_verify_path(routes, [{"path": "/internal/health"}]) == "/notes"


def test_nothing_public_to_get_gives_an_empty_path():
    assert workload_verify_path([{"path": "/x", "methods": ["POST"]}], [{"path": "/x"}]) == ""
    assert workload_verify_path([], [{"path": "/health"}]) == ""
