# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

import pytest

from ansible_collections.ragops.platform.plugins.module_utils._traffic_prober import Prober, no_probes
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_app import FakeApp
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_nginx import FakeAdmin, FakeLB
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import closed_port_url


def answer(status=200, color=None, error=None):
    headers = {} if color is None else {"x-ragops-color": color}
    return {"status": status, "headers": headers, "error": error}


@pytest.mark.parametrize("outcome, counted", [
    (answer(200, "green"), {"answered": 1}),
    (answer(503, "green"), {"answered": 1, "answered_errors": 1, "failures": 1, "last_error": "HTTP 503"}),
    (answer(400, "green"), {"answered": 1, "failures": 1, "last_error": "HTTP 400"}),
    (answer(502), {"unanswered_errors": 1, "failures": 1, "last_error": "HTTP 502"}),
    (answer(None, error="connection failed: refused"),
     {"unanswered_errors": 1, "failures": 1, "last_error": "connection failed: refused"}),
    (answer(429), {"others": 1, "failures": 1, "last_error": "HTTP 429"}),
    (answer(200, "blue"), {"others": 1}),
    (answer(500, "blue"), {"others": 1, "failures": 1, "last_error": "HTTP 500"}),
    (answer(200), {"others": 1}),
])
def test_each_answer_counts_for_the_color_its_header_names(outcome, counted):
    prober = Prober("http://127.0.0.1:9/", "green", "X-Ragops-Color")
    stats = no_probes()
    prober.record(stats, outcome)
    assert stats == dict(no_probes(), **counted)


def test_the_color_header_is_an_option():
    prober = Prober("http://127.0.0.1:9/", "green", "X-App-Color")
    stats = no_probes()
    prober.record(stats, {"status": 200, "headers": {"x-app-color": "green", "x-ragops-color": "blue"}, "error": None})
    assert stats["answered"] == 1


@pytest.fixture
def stack(tmp_path):
    admin = FakeAdmin(tmp_path, color="green")
    green, blue = FakeApp(color="green"), FakeApp(color="blue", version="1.0.0")
    balancer = FakeLB(admin, backends={"green": green.base_url, "blue": blue.base_url})
    yield admin, balancer, green, blue
    for server in (balancer, green, blue, admin):
        server.close()


def test_paced_probes_through_the_lb(stack):
    admin, balancer, green, dummy = stack
    prober = Prober(balancer.base_url + "/api/query", "green", "X-Ragops-Color", body='{"query": "q"}', rate=100,
                    timeout=2)
    started = time.monotonic()
    stats = prober.run(started + 0.3)
    assert time.monotonic() - started >= 0.3
    assert 20 <= stats["sent"] <= 31 and stats["answered"] == stats["sent"] == green.queries
    assert admin.metrics.count("green", "2xx") == stats["sent"] and stats["failures"] == 0


def test_probes_answered_by_the_old_color_are_others(stack):
    admin, balancer, green, blue = stack
    balancer.lag = 5
    admin.color = "blue"  # a switch to blue, whose first 5 requests green still answers
    prober = Prober(balancer.base_url + "/api/query", "blue", "X-Ragops-Color", body='{"query": "q"}', rate=100,
                    timeout=2)
    stats = prober.run(time.monotonic() + 0.3)
    assert stats["others"] == green.queries == 5 and stats["answered"] == blue.queries == stats["sent"] - 5


def test_unreachable_target():
    prober = Prober(closed_port_url("/api/query"), "green", "X-Ragops-Color", rate=50, timeout=1)
    stats = prober.run(time.monotonic() + 0.1)
    assert stats["sent"] == stats["failures"] == stats["unanswered_errors"] >= 3
    assert stats["last_error"].startswith("connection failed")
