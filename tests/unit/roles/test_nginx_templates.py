# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The nginx role's templates, rendered with Ansible's own templar from the role's defaults and vars.

The public routes come from nginx_routes (one location each, the method rule, the retry rule, the bearer
token check), the traffic metrics from nginx_traffic_metrics_enabled; the tokens go to their own file only.
The rendered nginx.conf is parsed into blocks, so the checks look at directives, not at text fragments.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

import pytest
import yaml

from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

from ansible_collections.ragops.platform.tests.unit.plugins.test_support import luajit
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_nginx import LBMetrics

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ROLE = os.path.join(ROOT, "roles", "nginx")
ADMIN_TOKEN = "admin-T0ken.value~+/="
OTHER_TOKEN = "other-token-0123456789"
REFERENCE_ROUTES = [
    {"path": "/api/query", "match": "exact", "methods": ["POST"]},
    {"path": "/api/documents", "match": "exact", "methods": ["POST"], "token": "ragops_admin_token"},
    {"path": "/health", "match": "exact", "methods": ["GET", "HEAD"]},
]
BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"]

# The stack-wide values the role's defaults map (roles/ragops), given here so that these tests only read the nginx role.
STACK = {
    "ragops_network_name": "ragops",
    "ragops_network_subnet": "172.30.57.0/24",
    "ragops_data_dir": "/opt/ragops",
    "ragops_image_registry": "registry.example.invalid",
    "ragops_base_image": "ragops/debian-base:bookworm",
    "ragops_app_blue_address": "172.30.57.10",
    "ragops_app_green_address": "172.30.57.11",
    "ragops_public_bind_address": "0.0.0.0",
    "ragops_public_http_port": 80,
    "ragops_tls_enabled": False,
    "ragops_public_tls_port": 443,
    "ragops_log_max_size": "10m",
    "ragops_metrics_publish_address": "",
    "ragops_lb_metrics_host_port": 8081,
    "ragops_monitoring_host": "host1",
    "inventory_hostname": "host1",
    "hostvars": {"host1": {}},
    "ansible_managed": "Ansible managed",
    "ragops_admin_token": ADMIN_TOKEN,
    "other_token": OTHER_TOKEN,
}


@pytest.fixture(scope="module", autouse=True)
def plugins():
    init_plugin_loader([])


def render(name, routes=None, **overrides):
    loader = DataLoader()
    variables = {}
    for part in ("defaults", "vars"):
        variables.update(loader.load_from_file(os.path.join(ROLE, part, "main.yml"), trusted_as_template=True))
    variables.update(STACK)
    variables["ragops_app"] = {"port": 8000, "routes": REFERENCE_ROUTES if routes is None else routes}
    variables.update(overrides)
    templar = Templar(loader=loader, variables=variables).copy_with_new_env(searchpath=[os.path.join(ROLE, "templates")])
    with open(os.path.join(ROLE, "templates", name), encoding="utf-8") as fh:
        return templar.template(trust_as_template(fh.read()), escape_backslashes=False)


class Block(object):
    def __init__(self, name, args, children=None, body=None):
        self.name, self.args, self.children, self.body = name, args, children or [], body

    def find(self, name, *args):
        return [child for child in self.children if child.name == name and tuple(child.args[:len(args)]) == args]

    def one(self, name, *args):
        found = self.find(name, *args)
        assert len(found) == 1, (name, args, [(c.name, c.args) for c in self.children])
        return found[0]

    def directives(self):
        return [(child.name, tuple(child.args)) for child in self.children]


def _lua_body(text, start):
    """Index of the brace closing the Lua block opened before start (Lua strings and -- comments skipped)."""
    depth, i = 1, start
    while True:
        char = text[i]
        if text.startswith("--", i):
            i = text.index("\n", i)
        elif char in "'\"":
            i += 1
            while text[i] != char:
                i += 2 if text[i] == "\\" else 1
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1


def parse(text):
    """nginx.conf as nested Blocks; *_by_lua_block bodies are kept as text."""
    root = Block("", [])
    stack, words, i = [root], [], 0
    token = re.compile(r"""\s+|#[^\n]*|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|[{};]|[^\s{};'"#]+""")
    while i < len(text):
        match = token.match(text, i)
        value, i = match.group(0), match.end()
        if value.isspace() or value.startswith("#"):
            continue
        if value == ";":
            stack[-1].children.append(Block(words[0], words[1:]))
            words = []
        elif value == "{":
            if words[0].endswith("_by_lua_block"):
                end = _lua_body(text, i)
                stack[-1].children.append(Block(words[0], words[1:], body=text[i:end]))
                words, i = [], end + 1
                continue
            block = Block(words[0], words[1:])
            stack[-1].children.append(block)
            stack.append(block)
            words = []
        elif value == "}":
            stack.pop()
        else:
            words.append(value[1:-1] if value[0] in "'\"" else value)
    assert len(stack) == 1 and not words, "unbalanced configuration"
    return root


def config(routes=None, **overrides):
    text = render("nginx.conf.j2", routes, **overrides)
    return text, parse(text).one("http")


def servers(http):
    public, status, admin = [], None, None
    for server in http.find("server"):
        listen = server.one("listen").args[0]
        if listen.startswith("unix:"):
            admin = server
        elif listen == "8081":
            status = server
        else:
            public.append(server)
    return public, status, admin


def route_locations(server):
    return [loc for loc in server.find("location") if not loc.args[0].startswith("@")]


def method_guard(location):
    guard = location.one("if")
    assert guard.args[:2] == ["($request_method", "!~"] and guard.args[3:] == [")"], guard.args
    methods = re.match(r"^\^\((.*)\)\$$", guard.args[2]).group(1).split("|")
    assert guard.one("return").args[0] == "405"
    return methods, guard.one("add_header", "Allow").args[1], guard


def test_reference_routes_render_one_location_each():
    _text, http = config()
    public, _status, _admin = servers(http)
    assert len(public) == 1
    locations = {tuple(loc.args): loc for loc in route_locations(public[0])}
    assert sorted(locations) == [("/",), ("=", "/api/documents"), ("=", "/api/query"), ("=", "/health")]

    query = locations[("=", "/api/query")]
    methods, allow, _guard = method_guard(query)
    assert (methods, allow) == (["POST"], "POST")
    assert query.one("proxy_pass").args == ["http://app_live"]
    # A POST goes to another peer only when its connection failed before anything was sent (nginx's own rule).
    assert query.one("proxy_next_upstream").args == ["error", "timeout"]
    assert query.find("access_by_lua_block") == []

    health = locations[("=", "/health")]
    methods, allow, _guard = method_guard(health)
    assert (methods, allow) == (["GET", "HEAD"], "GET, HEAD")
    assert health.one("proxy_next_upstream").args == ["error", "timeout"]

    catch_all = locations[("/",)]
    assert catch_all.directives() == [("return", ("404",))]


def log_calls(server):
    return [line.strip() for line in server.one("log_by_lua_block").body.strip().splitlines()]


def test_the_reference_workload_routes_render():
    with open(os.path.join(ROOT, "roles", "ragops", "defaults", "main.yml"), encoding="utf-8") as fh:
        routes = yaml.safe_load(fh)["ragops_app_reference"]["routes"]
    _text, http = config(routes)
    public = servers(http)[0][0]
    for route in routes:
        key = ("=", route["path"]) if route.get("match") == "exact" else (route["path"],)
        location = public.one("location", *key)
        assert method_guard(location)[0] == route.get("methods", ["GET", "HEAD"])
        assert bool(location.find("access_by_lua_block")) == bool(route.get("token"))


def test_route_defaults_and_the_retry_rule():
    routes = [
        {"path": "/v1/"},
        {"path": "/read", "match": "exact", "methods": ["GET", "OPTIONS"]},
        {"path": "/write/", "match": "prefix", "methods": ["GET", "DELETE"]},
        {"path": "/put", "match": "exact", "methods": ["PUT"]},
        {"path": "/post", "match": "exact", "methods": ["POST", "GET"]},
    ]
    _text, http = config(routes)
    locations = {tuple(loc.args): loc for loc in route_locations(servers(http)[0][0])}
    assert sorted(locations) == [("/",), ("/v1/",), ("/write/",), ("=", "/post"), ("=", "/put"), ("=", "/read")]
    expected = {
        ("/v1/",): (["GET", "HEAD"], "GET, HEAD", ["error", "timeout"]),
        ("=", "/read"): (["GET", "OPTIONS"], "GET, OPTIONS", ["error", "timeout"]),
        ("/write/",): (["GET", "DELETE"], "GET, DELETE", ["off"]),
        ("=", "/put"): (["PUT"], "PUT", ["off"]),
        ("=", "/post"): (["POST", "GET"], "POST, GET", ["error", "timeout"]),
    }
    for key, (methods, allow, retry) in expected.items():
        got_methods, got_allow, _guard = method_guard(locations[key])
        assert (got_methods, got_allow, locations[key].one("proxy_next_upstream").args) == (methods, allow, retry), key


def test_a_prefix_route_on_slash_replaces_the_catch_all():
    _text, http = config([{"path": "/"}, {"path": "/", "match": "exact", "methods": ["GET"]}])
    locations = route_locations(servers(http)[0][0])
    assert sorted(tuple(loc.args) for loc in locations) == [("/",), ("=", "/")]
    slash = [loc for loc in locations if loc.args == ["/"]][0]
    assert slash.one("proxy_pass").args == ["http://app_live"]


def test_no_routes_answer_404_everywhere():
    _text, http = config([])
    locations = route_locations(servers(http)[0][0])
    assert [loc.args for loc in locations] == [["/"]]


def test_the_405_answer_keeps_the_security_headers_and_is_json():
    _text, http = config()
    _methods, _allow, guard = method_guard(servers(http)[0][0].one("location", "=", "/api/query"))
    headers = {child.args[0]: child.args[1] for child in guard.find("add_header")}
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["X-Request-ID"] == "$ragops_request_id" and "Strict-Transport-Security" not in headers
    assert all(child.args[-1] == "always" for child in guard.find("add_header"))
    body = guard.one("return").args[1]
    assert body.startswith('{"error":"method not allowed","request_id":"$ragops_request_id"}')


def test_token_routes_check_the_bearer_token_and_never_hold_it():
    routes = REFERENCE_ROUTES + [{"path": "/admin/", "methods": ["GET", "POST"], "token": "other_token"},
                                 {"path": "/admin2/", "token": "other_token"}]
    text, http = config(routes)
    assert ADMIN_TOKEN not in text and OTHER_TOKEN not in text
    public = servers(http)[0][0]
    documents = public.one("location", "=", "/api/documents")
    (check,) = documents.find("access_by_lua_block")
    assert check.body.strip() == 'require("ragops.auth").bearer("ragops_admin_token")'
    assert documents.one("proxy_next_upstream").args == ["error", "timeout"]
    assert 'require("ragops.auth").bearer("other_token")' in public.one("location", "/admin/").one("access_by_lua_block").body
    # The Lua module refuses to load without every token the routes name, each once.
    init = http.one("init_by_lua_block").body
    assert re.search(r'local REQUIRED = \{ "ragops_admin_token", "other_token", \}', init), init
    assert 'local FILE = "/etc/ragops-nginx/route_tokens"' in init

    tokens = render("route_tokens.j2", routes)
    lines = [line for line in tokens.splitlines() if line and not line.startswith("#")]
    assert lines == ["ragops_admin_token " + ADMIN_TOKEN, "other_token " + OTHER_TOKEN]


def test_without_token_routes_the_token_file_is_empty_and_not_read():
    routes = [{"path": "/api/query", "match": "exact", "methods": ["POST"]}]
    text, http = config(routes)
    assert "ragops.auth\").bearer" not in text
    assert "local REQUIRED = { }" in http.one("init_by_lua_block").body
    assert [line for line in render("route_tokens.j2", routes).splitlines() if line and not line.startswith("#")] == []


def test_refusals_are_json_with_a_bearer_challenge():
    _text, http = config()
    public = servers(http)[0][0]
    pages = {child.args[0]: child.args[1] for child in public.find("error_page")}
    assert pages["401"] == "@ragops_401" and pages["403"] == "@ragops_403" and pages["404"] == "@ragops_404"
    unauthorized = public.one("location", "@ragops_401")
    headers = {child.args[0]: child.args[1] for child in unauthorized.find("add_header")}
    assert headers["WWW-Authenticate"] == "Bearer" and headers["X-Frame-Options"] == "DENY"
    assert unauthorized.one("return").args[0] == "401"
    assert unauthorized.one("return").args[1].startswith('{"error":"authorization required"')
    assert public.one("location", "@ragops_403").one("return").args[1].startswith('{"error":"forbidden"')


def test_tls_server_gets_the_same_routes_and_counting():
    _text, http = config(nginx_tls_enabled=True)
    public, _status, _admin = servers(http)
    assert len(public) == 2
    plain, tls = public
    assert [loc.args for loc in route_locations(plain)] == [loc.args for loc in route_locations(tls)]
    for server in public:
        assert log_calls(server) == ['require("ragops.live").observe()', 'require("ragops.traffic").log()']
    headers = [child.args[0] for child in method_guard(tls.one("location", "=", "/health"))[2].find("add_header")]
    assert "Strict-Transport-Security" in headers


def test_traffic_metrics_enabled():
    _text, http = config(nginx_traffic_metrics_dict_size="2m")
    assert http.one("lua_shared_dict", "ragops_traffic").args == ["ragops_traffic", "2m"]
    init = http.one("init_by_lua_block").body
    assert 'package.loaded["ragops.traffic"] = M' in init
    assert re.search(r"local LE = \{ (.*) \}", init).group(1) == ", ".join('"%s"' % le for le in BUCKETS)
    assert 'local COLORS = { "blue", "green", "none" }' in init
    assert 'local CLASSES = { "1xx", "2xx", "3xx", "4xx", "5xx" }' in init
    assert "dict:incr(key, value, 0)" in init
    public, status, admin = servers(http)
    assert log_calls(public[0]) == ['require("ragops.live").observe()', 'require("ragops.traffic").log()']
    for server in (status, admin):
        metrics = server.one("location", "=", "/metrics")
        assert metrics.one("content_by_lua_block").body.strip() == 'require("ragops.traffic").metrics()'
    # The status listener's allow list covers /metrics as it covers /stub_status.
    assert [c.args for c in status.children if c.name in ("allow", "deny")] == [["127.0.0.1"], ["172.30.57.0/24"], ["all"]]
    assert status.one("location", "=", "/stub_status").directives() == [("stub_status", ())]


def test_traffic_metrics_disabled():
    text, http = config(nginx_traffic_metrics_enabled=False)
    assert "ragops_traffic" not in text and "ragops.traffic" not in text
    # The log phase still counts a peer's failed connections (passive health), and nothing else.
    assert log_calls(servers(http)[0][0]) == ['require("ragops.live").observe()']
    public, status, admin = servers(http)
    for server in (status, admin):
        assert server.find("location", "=", "/metrics") == []
        assert server.one("location", "/").one("return").args[0] == "404"
    # The string "false" of -e nginx_traffic_metrics_enabled=false disables it too.
    assert "ragops.traffic" not in config(nginx_traffic_metrics_enabled="false")[0]


def test_the_lua_modules_are_kept_apart():
    _text, http = config()
    init = http.one("init_by_lua_block").body
    modules = re.findall(r'package\.loaded\["(ragops\.[a-z]+)"\] = M', init)
    assert modules == ["ragops.live", "ragops.traffic", "ragops.auth"]
    assert len(re.findall(r"^        do$", init, re.M)) == len(re.findall(r"^        end$", init, re.M)) == 3


def test_nginx_routes_maps_the_workload_and_is_documented():
    with open(os.path.join(ROLE, "defaults", "main.yml"), encoding="utf-8") as fh:
        defaults = yaml.safe_load(fh)
    assert defaults["nginx_routes"] == "{{ ragops_app.routes | default([]) }}"
    assert defaults["nginx_traffic_metrics_enabled"] is True and defaults["nginx_traffic_metrics_dict_size"] == "8m"
    with open(os.path.join(ROLE, "meta", "argument_specs.yml"), encoding="utf-8") as fh:
        options = yaml.safe_load(fh)["argument_specs"]["main"]["options"]
    spec = options["nginx_routes"]
    assert (spec["type"], spec["elements"]) == ("list", "dict")
    assert spec["options"]["path"]["required"] is True
    assert spec["options"]["match"]["choices"] == ["prefix", "exact"] and spec["options"]["match"]["default"] == "prefix"
    assert spec["options"]["methods"]["default"] == ["GET", "HEAD"]
    assert spec["options"]["token"]["type"] == "str"


# The Lua modules themselves, run in LuaJIT against a fake ngx (test_support/luajit.py): nginx -t does not compile
# init_by_lua, so this is where a Lua mistake shows before a deploy.

needs_luajit = pytest.mark.skipif(not luajit.available(), reason="libluajit-5.1 is not installed")


def _size_bytes(size):
    number, unit = re.match(r"^([0-9]+)([kmg]?)$", str(size).lower()).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[unit]


def test_the_traffic_dict_holds_a_full_fleet_of_peers():
    with open(os.path.join(ROLE, "defaults", "main.yml"), encoding="utf-8") as fh:
        defaults = yaml.safe_load(fh)
    # Each key is a 128-byte slab (rbtree node 32 + dict node 36 + key <= 36 + number 8); a 4 KiB page holds 32 of
    # them plus a 24-byte page descriptor. Per peer and color: 5 classes, 12 buckets, 1 sum.
    keys = defaults["nginx_max_peers_per_color"] * 2 * (5 + len(BUCKETS) + 1 + 1) + 3 * (5 + len(BUCKETS) + 1 + 1)
    slots = _size_bytes(defaults["nginx_traffic_metrics_dict_size"]) // (4096 + 24) * 32
    assert slots >= 1.5 * keys, (slots, keys)


@pytest.fixture
def lua():
    if not luajit.available():
        pytest.skip("libluajit-5.1 is not installed")
    state = luajit.LuaState()
    yield state
    state.close()


def load_live(lua, peers):
    """ragops.live as rendered, with ``peers`` ({color: [host:port]}) in its dict as PUT /peers leaves them."""
    lua.run(render("nginx.conf.d/live.lua.j2"), "live.lua")
    set_peers(lua, peers)


def set_peers(lua, peers):
    text = "".join("%s %s\n" % (color, addr) for color in ("blue", "green") for addr in peers.get(color, []))
    lua.run('ngx.shared.ragops:set("peers", %s) ngx.shared.ragops:incr("peers_generation", 1, 0)'
            % luajit.lua_string(text))


def load_traffic(lua):
    lua.run(render("nginx.conf.d/traffic.lua.j2"), "traffic.lua")


def request(lua, color, status, seconds, upstream_addr):
    """One request through ragops.traffic's log phase."""
    lua.run("ngx.var.ragops_routed_color = %s ngx.var.status = %s ngx.var.request_time = %s "
            "ngx.var.upstream_addr = %s require('ragops.traffic').log()" % (
                luajit.lua_string(color), luajit.lua_string(str(status)), luajit.lua_string(repr(seconds)),
                "nil" if upstream_addr is None else luajit.lua_string(upstream_addr)))


def scrape(lua):
    lua.run("ngx_test.out = nil require('ragops.traffic').metrics()")
    return lua.run("return ngx_test.out")


def sample_lines(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@needs_luajit
def test_the_lua_modules_compile(lua):
    for name in ("live.lua.j2", "traffic.lua.j2", "auth.lua.j2"):
        assert lua.compile_error(render("nginx.conf.d/" + name), name) is None


# (routed color, status, request_time, $upstream_addr, the peer that answered)
TRAFFIC = [
    ("green", 200, 0.003, "172.31.240.21:8002", "172.31.240.21:8002"),
    ("green", 502, 0.25, "172.31.240.21:8002, 172.31.240.22:8002", "172.31.240.22:8002"),
    ("green", 200, 0.5, "172.31.240.22:8002", "172.31.240.22:8002"),
    ("green", 404, 12.0, "172.31.240.22:8002", "172.31.240.22:8002"),
    ("blue", 500, 3.0, "172.31.240.21:8001", "172.31.240.21:8001"),
    ("green", 200, 0.02, "172.31.240.99:8002", "172.31.240.99:8002"),  # answered, but no longer configured
    ("", 404, 0.001, None, None),  # nginx answered itself: color none, no peer
    ("", 429, 0.001, "", None),
    ("green", 502, 0.001, None, None),  # no peer could be tried: the color only
]
PEERS = {"blue": ["172.31.240.21:8001"], "green": ["172.31.240.21:8002", "172.31.240.22:8002", "172.31.240.23:8002"]}


def expected_metrics():
    """The tests' fake nginx metrics after TRAFFIC, with PEERS configured."""
    metrics = LBMetrics(peers=PEERS)
    for color, status, seconds, dummy, peer in TRAFFIC:
        metrics.observe(color or "none", status, seconds, 1, peer=peer)
    return metrics


@needs_luajit
def test_traffic_counts_the_peer_that_answered_and_exports_the_configured_peers(lua):
    load_live(lua, PEERS)
    load_traffic(lua)
    for color, status, seconds, upstream_addr, dummy in TRAFFIC:
        request(lua, color, status, seconds, upstream_addr)
    text = scrape(lua)
    # The same samples as the tests' fake nginx (test_support/fake_nginx.py), fleet-wide and per peer.
    assert sample_lines(text) == sample_lines(expected_metrics().render())
    lines = text.splitlines()
    assert 'ragops_lb_peer_requests_total{color="green",peer="172.31.240.22:8002",status_class="5xx"} 1' in lines
    assert 'ragops_lb_peer_requests_total{color="green",peer="172.31.240.23:8002",status_class="2xx"} 0' in lines
    assert 'ragops_lb_peer_request_duration_seconds_count{color="green",peer="172.31.240.22:8002"} 3' in lines
    assert 'ragops_lb_peer_request_duration_seconds_sum{color="blue",peer="172.31.240.21:8001"} 3.000000' in lines
    assert "172.31.240.99:8002" not in text, "a peer nginx no longer routes to is not exported"
    # The fleet-wide families come first, as before the per-peer ones existed.
    assert lines.index("# TYPE ragops_lb_requests_total counter") < \
        lines.index("# TYPE ragops_lb_request_duration_seconds histogram") < \
        lines.index("# TYPE ragops_lb_peer_requests_total counter") < \
        lines.index("# TYPE ragops_lb_peer_request_duration_seconds histogram")
    assert lua.run("return table.concat(ngx_test.logs, '|')").count("not counted") == 0


@needs_luajit
def test_the_fleet_wide_series_are_those_of_before(lua):
    load_live(lua, PEERS)
    load_traffic(lua)
    request(lua, "green", 503, 0.07, "172.31.240.21:8002")
    lines = scrape(lua).splitlines()
    fleet = lines[:lines.index("# HELP ragops_lb_peer_requests_total Requests answered on nginx's public listener, by "
                               "the peer that answered (the last try), its color and the status class the client got.")]
    assert fleet[:2] == [
        "# HELP ragops_lb_requests_total Requests answered on nginx's public listener, by the color nginx routed them"
        " to (none: nginx answered itself) and the status class the client got.",
        "# TYPE ragops_lb_requests_total counter"]
    assert 'ragops_lb_requests_total{color="green",status_class="5xx"} 1' in fleet
    assert 'ragops_lb_request_duration_seconds_bucket{color="green",le="0.05"} 0' in fleet
    assert 'ragops_lb_request_duration_seconds_bucket{color="green",le="0.1"} 1' in fleet
    assert 'ragops_lb_request_duration_seconds_sum{color="green"} 0.070000' in fleet
    assert len(fleet) == 2 + 3 * 5 + 2 + 3 * (12 + 2)


@needs_luajit
def test_a_removed_peer_disappears_and_comes_back_with_its_counts(lua):
    load_live(lua, PEERS)
    load_traffic(lua)
    request(lua, "green", 200, 0.01, "172.31.240.23:8002")
    assert 'peer="172.31.240.23:8002",status_class="2xx"} 1' in scrape(lua)
    set_peers(lua, {"blue": PEERS["blue"], "green": PEERS["green"][:2]})
    assert "172.31.240.23:8002" not in scrape(lua)
    set_peers(lua, PEERS)
    assert 'peer="172.31.240.23:8002",status_class="2xx"} 1' in scrape(lua)


@needs_luajit
def test_traffic_finds_the_live_module_loaded_after_it_or_none(lua):
    load_traffic(lua)
    request(lua, "green", 200, 0.01, "172.31.240.21:8002")
    alone = scrape(lua)
    assert "ragops_lb_peer_" not in alone and 'ragops_lb_requests_total{color="green",status_class="2xx"} 1' in alone
    load_live(lua, PEERS)
    assert 'ragops_lb_peer_requests_total{color="green",peer="172.31.240.21:8002",status_class="2xx"} 1' in scrape(lua)


@needs_luajit
def test_peer_keys_fit_a_128_byte_slab(lua):
    load_traffic(lua)
    request(lua, "green", 200, 20.0, "10.0.0.1:8001, 255.255.255.255:65535")
    keys = lua.run("local t = {} for key in pairs(ngx.shared.ragops_traffic.data) do "
                   "if key:sub(1, 5) == 'peer:' then t[#t + 1] = key end end table.sort(t) return table.concat(t, ' ')")
    assert keys.split() == ["peer:green:255.255.255.255:65535:2xx", "peer:green:255.255.255.255:65535:b12",
                            "peer:green:255.255.255.255:65535:sum"]
    assert max(len(key) for key in keys.split()) <= 36
