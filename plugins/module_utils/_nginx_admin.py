# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Client of the nginx admin API (roles/nginx/README.md) on its unix socket: GET /live, PUT /live, GET /peers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.client
import json
import time
from urllib.error import HTTPError, URLError

from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.module_utils.urls import Request
from ansible_collections.ragops.platform.plugins.module_utils._backoff import Backoff
from ansible_collections.ragops.platform.plugins.module_utils._platform import COLORS

# Retry pacing of a switch (and of its verification): fast at first, capped so that a long wait still polls.
BACKOFF_INITIAL = 0.05
BACKOFF_CAP = 1.0


class AdminError(Exception):
    def __init__(self, message, status=None, body=None):
        super(AdminError, self).__init__(message)
        self.status = status
        self.body = body or {}


class NginxAdmin(object):
    def __init__(self, socket_path, timeout):
        self.socket_path = socket_path
        self.timeout = timeout

    def call(self, method, path, data=None):
        """(status, JSON body) of one call; a non-2xx answer is returned, not raised."""
        request = Request(unix_socket=self.socket_path, use_proxy=False, follow_redirects="none")
        try:
            response = request.open(
                method, "http://admin" + path, data=None if data is None else to_bytes(data),
                timeout=self.timeout, headers={"Content-Type": "text/plain"} if data is not None else None,
            )
            status, raw = response.getcode(), response.read()
        except HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (URLError, OSError, http.client.HTTPException) as exc:
            raise AdminError("cannot reach the nginx admin API on %s: %s" % (self.socket_path, _reason(exc)))
        try:
            body = json.loads(to_native(raw))
        except ValueError:
            raise AdminError("the nginx admin API answered %s %s with HTTP %s and no JSON: %r"
                             % (method, path, status, to_native(raw)[:200]), status=status)
        if not isinstance(body, dict):
            raise AdminError("the nginx admin API answered %s %s with unexpected JSON" % (method, path), status=status)
        return status, body

    def live(self):
        """GET /live, checked: the answer must name a known color."""
        status, body = self.call("GET", "/live")
        if status != 200 or body.get("color") not in COLORS:
            raise AdminError("GET /live on %s answered HTTP %s: %s"
                             % (self.socket_path, status, body.get("error") or body), status=status, body=body)
        return body

    def put_live(self, color, expect=None):
        """PUT /live (compare-and-set with ?expect=). Returns (status, body): 200 switched or already live,
        409 expect mismatch or another switch in progress, 400/500 refused."""
        path = "/live" if expect is None else "/live?expect=" + expect
        return self.call("PUT", path, data=color)

    def peers(self):
        status, body = self.call("GET", "/peers")
        if status != 200:
            raise AdminError("GET /peers answered HTTP %s" % status, status=status, body=body)
        return body


def is_busy(status, body):
    """A 409 because another PUT holds nginx' 5 s switch lock (retryable), not an expect mismatch."""
    return status == 409 and "color" not in body


def switch_live(admin, color, expect, switch_timeout, initial=BACKOFF_INITIAL, cap=BACKOFF_CAP):
    """PUT /live (compare-and-set from ``expect``), retried with capped backoff while another switch holds
    nginx' lock, for up to ``switch_timeout`` seconds. Returns (status, body) of the last answer."""
    deadline = time.monotonic() + switch_timeout
    backoff = Backoff(initial, cap=cap)
    while True:
        status, body = admin.put_live(color, expect=expect)
        remaining = deadline - time.monotonic()
        if not is_busy(status, body) or remaining <= 0:
            return status, body
        time.sleep(backoff.next_delay(remaining))


def _reason(exc):
    return to_native(getattr(exc, "reason", None) or exc)
