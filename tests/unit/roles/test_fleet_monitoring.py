# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Monitoring across the fleet (docs/fleet.md, Monitoring), rendered from the roles' own defaults and vars with
Ansible's templar: what the monitoring host's Prometheus scrapes (every load balancer's metrics listener and nginx
exporter, the data host's redis exporter, every host's node exporter, every app host's colors through its own
file_sd file), where the other hosts publish those parts (their private address only), and that one host renders
exactly what it always did."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import json
import os

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ROLES = os.path.join(ROOT, "roles")

ONE_HOST = {"ragops_hosts": ["localhost"], "ragops_lb": ["localhost"], "ragops_app": ["localhost"],
            "ragops_data": ["localhost"], "ragops_monitoring": ["localhost"]}
# The layout of molecule/fleet: lb1 is the load balancer, the data host and the monitoring host.
FLEET = {"ragops_hosts": ["lb1", "app1", "app2"], "ragops_lb": ["lb1"], "ragops_app": ["app1", "app2"],
         "ragops_data": ["lb1"], "ragops_monitoring": ["lb1"]}
FLEET_VARS = {"lb1": {"ragops_private_address": "172.31.240.10"},
              "app1": {"ragops_private_address": "172.31.240.21"},
              "app2": {"ragops_private_address": "172.31.240.22"}}
# Monitoring on a host of its own: the load balancer's and the data host's parts are scraped from there too.
APART = {"ragops_hosts": ["lb1", "app1", "app2", "mon1"], "ragops_lb": ["lb1"], "ragops_app": ["app1", "app2"],
         "ragops_data": ["lb1"], "ragops_monitoring": ["mon1"]}
APART_VARS = dict(FLEET_VARS, mon1={"ragops_private_address": "172.31.240.30"})

# What one host's prometheus.yml has always been (the defaults of the local inventory).
ONE_HOST_PROMETHEUS = """# Ansible managed
# Validated with `promtool check config` (rules folder and file_sd folder mounted) before use.
global:
  scrape_interval: 5s
  scrape_timeout: 4s
  evaluation_interval: 5s

rule_files:
  - rules/*.rules.yml

alerting:
  alertmanagers:
    - static_configs:
        - targets: ["ragops-alertmanager:9093"]

scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:9090"]
        labels:
          instance: ragops-prometheus

  # nginx's traffic metrics per color (ragops_lb_*), on its internal status listener: what clients see, for any app.
  - job_name: ragops-lb
    metrics_path: /metrics
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ["ragops-nginx:8081"]

  # Both app colors; the app role rewrites the file (only running colors, labels color and version).
  # The app is the authority on its own color and version: honor_labels keeps rag_build_info's own labels.
  - job_name: rag-app
    honor_labels: true
    metrics_path: "/metrics"
    scrape_interval: 1s
    scrape_timeout: 1s
    file_sd_configs:
      - files: ["/etc/prometheus-file-sd/app.json"]
        refresh_interval: 30s

  - job_name: nginx
    static_configs:
      - targets: ["ragops-nginx-exporter:9113"]

  - job_name: redis
    static_configs:
      - targets: ["ragops-redis-exporter:9121"]

  - job_name: node
    static_configs:
      - targets: ["ragops-node-exporter:9100"]

  - job_name: alertmanager
    static_configs:
      - targets: ["ragops-alertmanager:9093"]
"""


@pytest.fixture(scope="module", autouse=True)
def plugins():
    init_plugin_loader([])


def templar(role, groups, hostvars, host, **extra):
    """The ragops defaults, then the role's defaults and vars, for host of that inventory."""
    loader = DataLoader()
    variables = {}
    for path in (os.path.join(ROLES, "ragops", "defaults", "main.yml"), os.path.join(ROLES, role, "defaults", "main.yml"),
                 os.path.join(ROLES, role, "vars", "main.yml")):
        if os.path.exists(path):
            variables.update(loader.load_from_file(path, trusted_as_template=True))
    variables.update({"groups": groups, "hostvars": hostvars, "inventory_hostname": host,
                      "ansible_managed": "Ansible managed"})
    variables.update(hostvars.get(host, {}))
    variables.update(extra)
    return Templar(loader=loader, variables=variables).copy_with_new_env(
        searchpath=[os.path.join(ROLES, role, "templates")])


def value(templar_, name):
    return templar_.template(trust_as_template("{{ %s }}" % name))


def render(templar_, role, name):
    with open(os.path.join(ROLES, role, "templates", name), encoding="utf-8") as fh:
        return templar_.template(trust_as_template(fh.read()), escape_backslashes=False)


def prometheus(groups, hostvars, host):
    return render(templar("prometheus", groups, hostvars, host), "prometheus", "prometheus.yml.j2")


def jobs(text):
    return {job["job_name"]: job for job in yaml.safe_load(text)["scrape_configs"]}


def targets(job):
    """(target, host label) of every target of a static job."""
    return [(target, group.get("labels", {}).get("host")) for group in job["static_configs"] for target in group["targets"]]


def file_sd(groups, hostvars, host, running=("blue",), version="1.0.0"):
    """The app role's file name and target list for host, with the colors of running up."""
    containers = [{"Names": ["/ragops-app-" + color], "State": "running", "Labels": {"io.ragops.version": version}}
                  for color in running]
    templar_ = templar("app", groups, hostvars, host, _app_colors={"containers": containers}, app_color=running[0],
                       app_state="started", app_version=version, ragops_app={"port": 8000})
    return value(templar_, "app_file_sd_host"), value(templar_, "app_file_sd_file"), \
        json.loads(render(templar_, "app", "file_sd.json.j2"))


# ---- Prometheus --------------------------------------------------------------------------------------------------

def test_one_host_renders_the_configuration_it_always_had():
    assert prometheus(ONE_HOST, {"localhost": {}}, "localhost") == ONE_HOST_PROMETHEUS


def test_the_fleets_prometheus_scrapes_every_part_of_every_host():
    found = jobs(prometheus(FLEET, FLEET_VARS, "lb1"))
    # The monitoring host's own parts by container name, the other hosts' at their private address.
    assert targets(found["ragops-lb"]) == [("ragops-nginx:8081", "lb1")]
    assert targets(found["nginx"]) == [("ragops-nginx-exporter:9113", "lb1")]
    assert targets(found["redis"]) == [("ragops-redis-exporter:9121", "lb1")]
    assert targets(found["node"]) == [("ragops-node-exporter:9100", "lb1"), ("172.31.240.21:9100", "app1"),
                                      ("172.31.240.22:9100", "app2")]
    assert targets(found["alertmanager"]) == [("ragops-alertmanager:9093", None)]
    # Both app hosts' colors: each host's own file, all read through one glob.
    files = found["rag-app"]["file_sd_configs"][0]["files"]
    assert files == ["/etc/prometheus-file-sd/app-*.json"]
    for app in ("app1", "app2"):
        host, name, _groups = file_sd(FLEET, FLEET_VARS, app)
        assert host == "lb1" and name == "app-%s.json" % app
        assert fnmatch.fnmatch("/etc/prometheus-file-sd/" + name, files[0])


def test_a_monitoring_host_of_its_own_scrapes_the_load_balancer_and_redis_at_their_private_address():
    found = jobs(prometheus(APART, APART_VARS, "mon1"))
    assert targets(found["ragops-lb"]) == [("172.31.240.10:8081", "lb1")]
    assert targets(found["nginx"]) == [("172.31.240.10:9113", "lb1")]
    assert targets(found["redis"]) == [("172.31.240.10:9121", "lb1")]
    assert [t for t, _host in targets(found["node"])] == ["172.31.240.10:9100", "172.31.240.21:9100",
                                                          "172.31.240.22:9100", "ragops-node-exporter:9100"]


def test_a_hosts_own_host_port_is_the_one_scraped():
    hostvars = dict(FLEET_VARS, app2=dict(FLEET_VARS["app2"], ragops_node_exporter_host_port=19100))
    found = jobs(prometheus(FLEET, hostvars, "lb1"))
    assert ("172.31.240.22:19100", "app2") in targets(found["node"])


def test_extra_targets_are_kept_without_a_host_label():
    templar_ = templar("prometheus", FLEET, FLEET_VARS, "lb1")
    templar_.available_variables = dict(templar_.available_variables, prometheus_node_exporter_targets=[
        "ragops-node-exporter:9100", "10.0.0.99:9100"])
    found = jobs(render(templar_, "prometheus", "prometheus.yml.j2"))
    assert targets(found["node"]) == [("10.0.0.99:9100", None), ("ragops-node-exporter:9100", "lb1")]


def test_the_app_target_lists_of_hosts_that_left_are_the_ones_removed():
    templar_ = templar("prometheus", FLEET, FLEET_VARS, "lb1")
    assert value(templar_, "_prometheus_app_file_sd_expected") == [
        "/opt/ragops/prometheus/file_sd/app-app1.json", "/opt/ragops/prometheus/file_sd/app-app2.json"]


# ---- the app colors' file_sd lists -----------------------------------------------------------------------------

def test_one_host_lists_its_colors_at_their_container_address_in_app_json():
    host, name, groups = file_sd(ONE_HOST, {"localhost": {}}, "localhost", running=("blue", "green"))
    assert (host, name) == ("localhost", "app.json")
    assert groups == [{"targets": ["172.30.57.10:8000"], "labels": {"color": "blue", "version": "1.0.0"}},
                      {"targets": ["172.30.57.11:8000"], "labels": {"color": "green", "version": "1.0.0"}}]


def test_an_app_host_lists_its_colors_where_the_load_balancers_reach_them():
    host, name, groups = file_sd(FLEET, FLEET_VARS, "app2", running=("green", "blue"), version="1.1.0")
    assert (host, name) == ("lb1", "app-app2.json")
    assert groups == [
        {"targets": ["172.31.240.22:8001"], "labels": {"color": "blue", "version": "1.1.0", "host": "app2"}},
        {"targets": ["172.31.240.22:8002"], "labels": {"color": "green", "version": "1.1.0", "host": "app2"}}]
    peers = value(templar("ragops", FLEET, FLEET_VARS, "lb1"), "ragops_app_peers")
    assert groups[0]["targets"][0] in peers["blue"] and groups[1]["targets"][0] in peers["green"]


def test_the_monitoring_host_lists_its_own_colors_at_their_container_address():
    fleet = dict(FLEET, ragops_app=["lb1", "app1", "app2"])
    _host, name, groups = file_sd(fleet, FLEET_VARS, "lb1")
    assert name == "app-lb1.json"
    assert groups == [{"targets": ["172.30.57.10:8000"], "labels": {"color": "blue", "version": "1.0.0", "host": "lb1"}}]


# ---- what each host publishes ------------------------------------------------------------------------------------

def published(groups, hostvars, host):
    """Every port the exporters, the redis exporter and nginx publish on host."""
    exporters = templar("exporters", groups, hostvars, host)
    redis = templar("redis", groups, hostvars, host)
    nginx = templar("nginx", groups, hostvars, host, ragops_app={"port": 8000, "routes": []})
    return {
        "node exporter": value(exporters, "_exporters_node_exporter_published_ports"),
        "nginx exporter": value(exporters, "_exporters_nginx_exporter_published_ports"),
        "redis exporter": value(redis, "_redis_exporter_published_ports"),
        "nginx": value(nginx, "_nginx_published_ports"),
        "nginx status allowed": value(nginx, "nginx_status_allow_cidrs"),
    }


def test_one_host_publishes_nothing_new():
    assert published(ONE_HOST, {"localhost": {}}, "localhost") == {
        "node exporter": [], "nginx exporter": [], "redis exporter": [], "nginx": ["0.0.0.0:80:8080"],
        "nginx status allowed": ["172.30.57.0/24"]}


def test_the_monitoring_host_publishes_nothing_new():
    assert published(FLEET, FLEET_VARS, "lb1") == published(ONE_HOST, {"localhost": {}}, "localhost")


def test_an_app_host_publishes_its_node_exporter_on_its_private_address_only():
    assert published(FLEET, FLEET_VARS, "app1")["node exporter"] == ["172.31.240.21:9100:9100"]


def test_a_load_balancer_and_data_host_scraped_from_elsewhere_publish_on_their_private_address_only():
    found = published(APART, APART_VARS, "lb1")
    assert found == {
        "node exporter": ["172.31.240.10:9100:9100"],
        "nginx exporter": ["172.31.240.10:9113:9113"],
        "redis exporter": ["172.31.240.10:9121:9121"],
        # The public listener stays where it was; the status listener joins it on the private address only.
        "nginx": ["0.0.0.0:80:8080", "172.31.240.10:8081:8081"],
        # The monitoring host's scrapes arrive from its private address.
        "nginx status allowed": ["172.30.57.0/24", "172.31.240.30/32"],
    }
    assert [p for name, ports in found.items() if name != "nginx" and "allowed" not in name
            for p in ports if not p.startswith("172.31.240.10:")] == []


# ---- preflight -----------------------------------------------------------------------------------------------------

def preflight_ports(groups, hostvars, host):
    ports = value(templar("preflight", groups, hostvars, host), "preflight_ports")
    return [(p["name"], p["variable"], p["address"], int(p["port"])) for p in ports]


def test_the_preflight_checks_the_new_ports_where_they_are_published():
    assert ("node exporter", "ragops_node_exporter_host_port", "172.31.240.21", 9100) in \
        preflight_ports(FLEET, FLEET_VARS, "app1")
    on_lb = preflight_ports(APART, APART_VARS, "lb1")
    for entry in [("node exporter", "ragops_node_exporter_host_port", "172.31.240.10", 9100),
                  ("nginx metrics", "ragops_lb_metrics_host_port", "172.31.240.10", 8081),
                  ("nginx exporter", "ragops_nginx_exporter_host_port", "172.31.240.10", 9113),
                  ("redis exporter", "ragops_redis_exporter_host_port", "172.31.240.10", 9121)]:
        assert entry in on_lb
    names = [p[0] for p in preflight_ports(FLEET, FLEET_VARS, "lb1")]
    assert not {"node exporter", "nginx metrics", "nginx exporter", "redis exporter"} & set(names)
    assert [p[0] for p in preflight_ports(ONE_HOST, {"localhost": {}}, "localhost")] == [
        "nginx HTTP", "Prometheus", "Alertmanager"]


def fleet_problems(groups, hostvars, host, **extra):
    with open(os.path.join(ROLES, "preflight", "tasks", "fleet.yml"), encoding="utf-8") as fh:
        tasks = {task["name"]: task for task in yaml.safe_load(fh)}
    templar_ = templar("preflight", groups, hostvars, host, **extra)
    problems = []
    for name, variable in [("Check the private addresses", "_preflight_address_problems"),
                           ("Check that this host publishes each port once", "_preflight_port_clashes")]:
        task_vars = tasks[name]["vars"]
        templar_.available_variables = dict(templar_.available_variables, **{
            key: trust_as_template(text) if isinstance(text, str) else text for key, text in task_vars.items()})
        problems.extend(value(templar_, variable))
    return problems


def test_the_preflight_passes_the_fleet_and_one_host():
    for host in FLEET["ragops_hosts"]:
        assert fleet_problems(FLEET, FLEET_VARS, host) == []
    assert fleet_problems(ONE_HOST, {"localhost": {}}, "localhost") == []


def test_a_host_the_monitoring_host_scrapes_needs_a_private_address():
    hostvars = dict(APART_VARS, lb1={})
    problems = fleet_problems(APART, hostvars, "lb1")
    assert len(problems) == 1 and "lb1 is reached by other hosts" in problems[0] and "mon1" in problems[0]


def test_a_monitoring_host_of_load_balancers_elsewhere_needs_a_private_address():
    hostvars = dict(APART_VARS, mon1={})
    problems = fleet_problems(APART, hostvars, "mon1")
    assert len(problems) == 1 and "mon1 is the monitoring host" in problems[0]


def test_two_parts_on_one_port_are_refused():
    hostvars = dict(APART_VARS, lb1=dict(APART_VARS["lb1"], ragops_node_exporter_host_port=6379))
    problems = fleet_problems(APART, hostvars, "lb1")
    assert problems == ["Redis (ragops_redis_host_port) and node exporter (ragops_node_exporter_host_port) are both "
                        "published on port 6379"]
