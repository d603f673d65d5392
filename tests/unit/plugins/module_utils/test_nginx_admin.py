# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.ragops.platform.plugins.module_utils._nginx_admin import AdminError, NginxAdmin, is_busy
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.fake_nginx import FakeAdmin
from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import Reply


@pytest.fixture
def fake(tmp_path):
    admin = FakeAdmin(tmp_path, color="blue")
    yield admin
    admin.close()


def test_live_and_peers(fake):
    client = NginxAdmin(fake.socket_path, timeout=2)
    live = client.live()
    assert live["color"] == "blue" and live["persisted"] == "blue" and live["in_sync"] is True
    assert client.peers()["live"] == "blue"


def test_put_switches_with_expect(fake):
    client = NginxAdmin(fake.socket_path, timeout=2)
    status, body = client.put_live("green", expect="blue")
    assert status == 200 and body["changed"] is True and body["previous"] == "blue"
    assert fake.puts == [{"body": "green", "expect": "blue"}] and client.live()["color"] == "green"


def test_expect_mismatch_is_a_409_with_the_color_not_busy(fake):
    status, body = NginxAdmin(fake.socket_path, timeout=2).put_live("green", expect="green")
    assert status == 409 and body["color"] == "blue" and not is_busy(status, body)


def test_busy_is_recognised(fake):
    fake.busy_answers = 1
    status, body = NginxAdmin(fake.socket_path, timeout=2).put_live("green")
    assert status == 409 and is_busy(status, body)


def test_bad_answer_to_get_live_raises(fake):
    fake.color = "purple"
    with pytest.raises(AdminError, match="GET /live .* answered HTTP 200"):
        NginxAdmin(fake.socket_path, timeout=2).live()


def test_non_json_answer_raises(fake):
    fake.handle = lambda method, path, headers, body: Reply(502, body="<html>bad gateway</html>")
    with pytest.raises(AdminError, match="HTTP 502 and no JSON"):
        NginxAdmin(fake.socket_path, timeout=2).live()


def test_missing_socket(tmp_path):
    with pytest.raises(AdminError, match="cannot reach the nginx admin API on .*nope.sock"):
        NginxAdmin(str(tmp_path / "nope.sock"), timeout=1).live()
