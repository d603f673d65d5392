# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Synthetic requests at a steady rate, for an analysis that lacks real traffic. Each answer is attributed to the
color named by the load balancer's color header, so a probe counts for the color that served it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time

from ansible_collections.ragops.platform.plugins.module_utils._http_probe import prepare_tls, probe

PROBES_IN_FLIGHT = 32


def no_probes():
    """The outcome of an interval without probes.

    ``failures``: probes without a 2xx answer. An error is a probe without an answer (refused, timed out) or with a
    5xx, as the error rate counts them. ``answered``: answers whose color header names the analysed color (the
    source counts them too), ``answered_errors`` the errors among them; ``unanswered_errors``: errors that name no
    color (no source counts them for the color); ``others``: answers of another color, and answers that name no
    color and are not errors (a 429 of nginx' rate limit)."""
    return {"sent": 0, "failures": 0, "answered": 0, "answered_errors": 0, "unanswered_errors": 0, "others": 0,
            "last_error": None}


class Prober(object):
    def __init__(self, url, color, color_header, method="POST", body=None, headers=None, rate=10.0, timeout=5.0,
                 clock=time.monotonic, sleep=time.sleep):
        self.url, self.color, self.method, self.rate, self.timeout = url, color, method.upper(), rate, timeout
        self.color_header = color_header.lower()
        self.body = body
        self.headers = dict(headers or {})
        if body is not None and not any(name.lower() == "content-type" for name in self.headers):
            self.headers["Content-Type"] = "application/json"
        self.clock, self.sleep = clock, sleep
        # Every probe needs the TLS context (built once per process); built now, before the first interval starts.
        prepare_tls(True)
        self.slots = threading.BoundedSemaphore(PROBES_IN_FLIGHT)
        self.lock = threading.Lock()
        self.count = 0

    def _probe(self, stats, number):
        try:
            headers = dict({"X-Request-ID": "ragops-probe-%d" % number}, **self.headers)
            answer = probe(self.method, self.url, headers=headers, body=self.body, timeout=self.timeout)
            self.record(stats, answer)
        finally:
            self.slots.release()

    def record(self, stats, answer):
        """Adds one probe's answer (a _http_probe.probe() result) to ``stats``."""
        served_by = answer["headers"].get(self.color_header)
        error = bool(answer["error"]) or answer["status"] >= 500
        with self.lock:
            if error or not 200 <= answer["status"] < 300:
                stats["failures"] += 1
                stats["last_error"] = answer["error"] or "HTTP %s" % answer["status"]
            if served_by == self.color:
                stats["answered"] += 1
                stats["answered_errors"] += int(error)
            elif served_by is None and error:
                stats["unanswered_errors"] += 1
            else:
                stats["others"] += 1

    def run(self, until):
        """Paced probes until the clock reads ``until``, then waits for the probes in flight; returns their stats."""
        stats = no_probes()
        threads, started, tick = [], self.clock(), 0
        while True:
            due = started + tick / self.rate
            if due >= until:
                break
            self.sleep(max(0.0, due - self.clock()))
            tick += 1
            if not self.slots.acquire(False):
                continue
            self.count += 1
            stats["sent"] += 1
            thread = threading.Thread(target=self._probe, args=(stats, self.count))
            thread.daemon = True
            thread.start()
            threads.append(thread)
        self.sleep(max(0.0, until - self.clock()))
        deadline = time.monotonic() + self.timeout + 1
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self.lock:
            return dict(stats)
