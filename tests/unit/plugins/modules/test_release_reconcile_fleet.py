# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""release_reconcile over a fleet's app hosts (option hosts): what each host runs, merged per color."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.ragops.platform.plugins.modules import release_reconcile
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_release_host import (
    FakeInspect,
    inspect_document,
    nginx_serves,
    write_record,
)
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_time import utc_clock

BLUE = ("blue", "1.0.0", "sha256:1.0.0")


def params_for(**args):
    with patch_module_args(args):
        return AnsibleModule(argument_spec=release_reconcile.argument_spec(), supports_check_mode=True).params


def host(blue="1.0.0", green=None, blue_running=True):
    return {"blue": inspect_document(blue, running=blue_running) if blue else None,
            "green": inspect_document(green) if green else None}


def reconcile(folder, hosts, nginx="blue"):
    inspect = FakeInspect()
    result = release_reconcile.run_release_reconcile(params_for(path=str(folder), hosts=hosts), nginx_serves(nginx),
                                                     inspect, now=utc_clock(60))
    assert inspect.names == [], "the Docker socket is not read when the hosts are given"
    return result


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "release"


def test_a_fleet_that_runs_the_known_good_everywhere_is_consistent(folder):
    write_record(folder, live=BLUE)
    result = reconcile(folder, {"app1": host(), "app2": host(green="1.1.0")})
    assert result["verdict"] == "consistent" and result["drift"] == []
    assert result["serving"] == {"color": "blue", "version": "1.0.0", "image_id": "sha256:1.0.0", "running": True}
    assert result["containers"] == ["app1 blue: 1.0.0 running (healthy)", "app2 blue: 1.0.0 running (healthy)",
                                    "app1 green: no container", "app2 green: 1.1.0 running (healthy)"]


def test_a_host_whose_live_color_is_stopped_is_named(folder):
    write_record(folder, live=BLUE)
    result = reconcile(folder, {"app1": host(), "app2": host(blue_running=False)})
    assert result["verdict"] == "consistent"
    assert result["serving"]["running"] is False
    assert result["drift"] == ["the live color blue's container is not running (blue: 1.0.0 not running on app2 "
                               "(healthy))"]


def test_hosts_with_different_versions_on_the_live_color_are_unverified(folder):
    write_record(folder, live=BLUE)
    result = reconcile(folder, {"app1": host(), "app2": host(blue="0.9.0")})
    assert result["verdict"] == "unverified"
    assert result["serving"]["version"] is None
    assert result["repair"]["color"] == "green" and result["repair"]["version"] == "1.0.0"
    assert "the app hosts run different versions on blue: app1 1.0.0; app2 0.9.0" in result["drift"]


def test_a_host_without_the_live_color_makes_it_not_running(folder):
    write_record(folder, live=BLUE)
    result = reconcile(folder, {"app1": host(), "app2": host(blue=None)})
    assert result["verdict"] == "consistent"
    assert result["serving"] == {"color": "blue", "version": "1.0.0", "image_id": "sha256:1.0.0", "running": False}


@pytest.mark.parametrize("hosts", [{"app1": {"red": None}}, {"app1": "blue"}])
def test_bad_hosts_are_named(folder, hosts):
    problems = release_reconcile.invalid_parameters(params_for(path=str(folder), hosts=hosts))
    assert problems == ["hosts.app1 must map blue and green to a container (or null), not %r" % (hosts["app1"],)]
