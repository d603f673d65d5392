# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The fleet's derived stack-wide values (roles/ragops/defaults): what the load balancers route to and how the colors
reach Redis, for one host (the local inventory) and for a fleet; and the peers file nginx reads, in the very format
its admin API writes back (live.lua peers_text), so that a re-run of site.yml changes nothing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
STACK_DEFAULTS = os.path.join(ROOT, "roles", "ragops", "defaults", "main.yml")
NGINX_TEMPLATES = os.path.join(ROOT, "roles", "nginx", "templates")


@pytest.fixture(scope="module", autouse=True)
def plugins():
    init_plugin_loader([])


def stack(groups, hostvars, host):
    loader = DataLoader()
    variables = dict(loader.load_from_file(STACK_DEFAULTS, trusted_as_template=True))
    variables.update({"groups": groups, "hostvars": hostvars, "inventory_hostname": host})
    variables.update(hostvars.get(host, {}))
    return Templar(loader=loader, variables=variables)


def value(templar, name):
    return templar.template(trust_as_template("{{ %s }}" % name))


ONE_HOST = {"ragops_lb": ["localhost"], "ragops_app": ["localhost"], "ragops_data": ["localhost"],
            "ragops_monitoring": ["localhost"]}
FLEET = {"ragops_lb": ["lb1"], "ragops_app": ["app1", "app2"], "ragops_data": ["lb1"], "ragops_monitoring": ["lb1"]}
FLEET_VARS = {"lb1": {"ragops_private_address": "10.9.0.10"}, "app1": {"ragops_private_address": "10.9.0.21"},
              "app2": {"ragops_private_address": "10.9.0.22"}}


def test_one_host_routes_to_the_fixed_addresses_on_the_docker_network():
    templar = stack(ONE_HOST, {"localhost": {}}, "localhost")
    assert value(templar, "ragops_app_peers") == {"blue": ["172.30.57.10:8000"], "green": ["172.30.57.11:8000"]}
    assert value(templar, "ragops_release_host") == "localhost"
    assert (value(templar, "ragops_redis_address"), int(value(templar, "ragops_redis_port"))) == ("ragops-redis", 6379)


def test_a_fleet_routes_each_color_to_every_app_host_on_its_private_address():
    templar = stack(FLEET, FLEET_VARS, "lb1")
    assert value(templar, "ragops_app_peers") == {"blue": ["10.9.0.21:8001", "10.9.0.22:8001"],
                                                  "green": ["10.9.0.21:8002", "10.9.0.22:8002"]}
    assert value(templar, "ragops_release_host") == "lb1"


def test_app_hosts_reach_redis_at_the_data_hosts_private_address_and_the_data_host_by_name():
    on_app = stack(FLEET, FLEET_VARS, "app1")
    assert (value(on_app, "ragops_redis_address"), int(value(on_app, "ragops_redis_port"))) == ("10.9.0.10", 6379)
    on_data = stack(FLEET, FLEET_VARS, "lb1")
    assert value(on_data, "ragops_redis_address") == "ragops-redis"


def test_host_ports_follow_the_setting():
    hostvars = {host: dict(values, ragops_app_host_ports={"blue": 9101, "green": 9102})
                for host, values in FLEET_VARS.items()}
    templar = stack(FLEET, hostvars, "lb1")
    assert value(templar, "ragops_app_peers")["green"] == ["10.9.0.21:9102", "10.9.0.22:9102"]


def render_peers(peers):
    loader = DataLoader()
    templar = Templar(loader=loader, variables={"nginx_app_peers": peers}).copy_with_new_env(searchpath=[NGINX_TEMPLATES])
    with open(os.path.join(NGINX_TEMPLATES, "peers.j2"), encoding="utf-8") as fh:
        return templar.template(trust_as_template(fh.read()), escape_backslashes=False)


def test_the_peers_file_is_what_nginx_writes_back():
    # live.lua peers_text: blue then green, one "color host:port" line each, a final newline.
    peers = {"blue": ["10.9.0.21:8001", "10.9.0.22:8001"], "green": ["10.9.0.21:8002", "10.9.0.22:8002"]}
    assert render_peers(peers) == ("blue 10.9.0.21:8001\nblue 10.9.0.22:8001\n"
                                   "green 10.9.0.21:8002\ngreen 10.9.0.22:8002\n")
