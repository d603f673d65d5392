# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Where metric_analysis gets the numbers of one color: requests, 5xx errors and p95 latency per check.

Two kinds of sampler share one interface (``start()``, then ``measure()`` at the end of every check, which returns
(requests, errors, p95 seconds or NaN)): `PrometheusSampler` asks Prometheus for increase() over a range, and
`ScrapeSampler` scrapes a /metrics text itself at each check and computes the increases. The load balancer's own
metrics (ragops_lb_*, labelled by the color nginx routed to) are the platform's; an app's own metrics are an option.
`QuerySampler` evaluates extra PromQL checks.

nginx also counts per peer (ragops_lb_peer_*, labelled by the color and the ``peer`` that answered, host:port). Their
samplers share one more interface (``start()``, then ``measure()`` after the fleet-wide sampler's, which returns
{peer: (requests, errors, p95 seconds or NaN)} of the peers that have data): `PeerScrapeSampler` reads the scrapes
its fleet-wide `ScrapeSampler` has just made (one scrape, parsed once, for the color and all its peers), and
`PeerPrometheusSampler` asks Prometheus one ``sum by (peer)`` query per number for all the peers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import math
import re

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.ragops.platform.plugins.module_utils import _prom_text as prom_text
from ansible_collections.ragops.platform.plugins.module_utils._http_probe import probe
from ansible_collections.ragops.platform.plugins.module_utils._prom_query import (
    PrometheusError,
    PrometheusUnavailable,
    selector,
    substitute,
)

QUANTILE = 0.95
MAX_SCRAPE_BYTES = 16 * 1024 * 1024

# What a request counter and a latency histogram are called, and which label value marks a server error.
Traffic = collections.namedtuple("Traffic", ["requests", "duration", "error_label", "error_pattern"])

# nginx's own metrics (roles/nginx): every color x status class series exists from the start, at 0.
LB_TRAFFIC = Traffic("ragops_lb_requests_total", "ragops_lb_request_duration_seconds", "status_class", "5xx")
# The same per peer that answered (label ``peer``, host:port): nginx exports them for the peers it routes to now,
# every series of such a peer from the start, at 0.
LB_PEER_TRAFFIC = Traffic("ragops_lb_peer_requests_total", "ragops_lb_peer_request_duration_seconds", "status_class",
                          "5xx")
PEER_LABEL = "peer"
LB_METRICS_PATH = "/metrics"


def app_traffic(requests_metric, duration_metric):
    """An app's metrics in the prometheus_client style: a ``status`` label with the HTTP code."""
    return Traffic(requests_metric, duration_metric, "status", "5..")


class MeasureError(Exception):
    """A check could not be measured. ``failing``: the check fails (the source is broken) rather than being
    inconclusive (the source is not ready yet)."""

    def __init__(self, message, failing):
        super(MeasureError, self).__init__(message)
        self.failing = failing


class IdentityError(Exception):
    """The scraped metrics are not those of the analysed color: nothing they say may judge it."""


class PrometheusSampler(object):
    name = "prometheus"

    def __init__(self, client, traffic, labels, range_seconds):
        window = "[%dms]" % int(round(range_seconds * 1000))
        errors = {traffic.error_label: traffic.error_pattern}
        self.client = client
        self.queries = {
            "total": "sum(increase(%s%s%s))" % (traffic.requests, selector(labels), window),
            "errors": "sum(increase(%s%s%s))" % (traffic.requests, selector(labels, errors), window),
            "p95": "histogram_quantile(%s, sum by (le) (increase(%s_bucket%s%s)))" % (
                QUANTILE, traffic.duration, selector(labels), window),
        }

    def start(self):
        return None

    def measure(self):
        try:
            total = self.client.value(self.queries["total"]) or 0.0
            errors = self.client.value(self.queries["errors"]) or 0.0
            p95 = self.client.value(self.queries["p95"])
        except PrometheusError as exc:
            raise MeasureError(to_native(exc), failing=False)
        return total, errors, float("nan") if p95 is None else p95


def lb_prometheus_sampler(client, job, color, range_seconds):
    """nginx's metrics of ``color`` as Prometheus scraped them from the job ``job``."""
    return PrometheusSampler(client, LB_TRAFFIC, {"color": color, "job": job}, range_seconds)


class BuildInfo(object):
    """The identity check of an app's metrics: its build-info gauge must name the color (and version)."""

    def __init__(self, metric, color, version):
        self.metric, self.color, self.version = metric, color, version

    def check(self, samples, where):
        info = [sample.labels for sample in prom_text.select(samples, self.metric) if sample.value == 1]
        if not info:
            raise IdentityError("%s has no %s: is it the app's metrics URL?" % (where, self.metric))
        if not any(labels.get("color") == self.color and (self.version is None or labels.get("version") == self.version)
                   for labels in info):
            raise IdentityError("%s is served by color %s version %s, not %s%s" % (
                where, info[0].get("color"), info[0].get("version"), self.color,
                "" if self.version is None else " version " + self.version))


def http_fetch(url, where, timeout, unix_socket=None):
    """A function that GETs the metrics text at ``url`` (through ``unix_socket`` when given), or raises a failing
    MeasureError that names ``where``."""

    def fetch():
        answer = probe("GET", url, timeout=timeout, unix_socket=unix_socket, max_body=MAX_SCRAPE_BYTES)
        if answer["error"] or answer["status"] != 200:
            raise MeasureError("cannot scrape %s: %s" % (where, answer["error"] or "HTTP %s" % answer["status"]),
                               failing=True)
        return answer["body"]
    return fetch


def increase(before, current):
    """(requests, errors, p95 seconds or NaN) between two snapshots (requests, errors, cumulative buckets). A lower
    counter than before means the process restarted: everything counted since is the increase, as Prometheus'
    increase() assumes."""
    reset = current[0] < before[0] or current[1] < before[1]
    total = current[0] if reset else current[0] - before[0]
    errors = current[1] if reset else current[1] - before[1]
    buckets = current[2] if reset else prom_text.bucket_increase(before[2], current[2])
    p95 = prom_text.histogram_quantile(QUANTILE, buckets) if buckets else float("nan")
    return total, errors, p95


class BaselineSampler(object):
    """``start()`` takes a baseline snapshot (none when it fails); ``measure()`` the increase since the last one.
    Subclasses give ``_snapshot()``, ``_increase(before, current)``, ``where`` and ``missing_baseline``."""

    baseline = None
    missing_baseline = "baseline scrape of %s missing; measuring from the next check"

    def start(self):
        try:
            self.baseline = self._snapshot()
        except MeasureError:
            self.baseline = None

    def measure(self):
        before, current = self.baseline, None
        try:
            current = self._snapshot()
        finally:
            self.baseline = current
        if before is None:
            raise MeasureError(self.missing_baseline % self.where, failing=False)
        return self._increase(before, current)


class ScrapeSampler(BaselineSampler):
    """Increases between two scrapes of a /metrics text (see `increase`). ``samples`` holds the parsed samples of the
    latest scrape (None when it failed) and ``scrapes`` counts the scrapes tried, for a `PeerScrapeSampler`."""

    def __init__(self, name, fetch, where, traffic, labels, identity=None, require_series=False):
        self.name, self.fetch, self.where, self.traffic = name, fetch, where, traffic
        self.selector = dict(labels)
        self.error_selector = dict(labels, **{traffic.error_label: re.compile(traffic.error_pattern)})
        self.identity = identity
        self.require_series = require_series
        self.baseline = None
        self.samples = None
        self.scrapes = 0

    def _snapshot(self):
        self.samples, self.scrapes = None, self.scrapes + 1
        text = self.fetch()
        try:
            samples = prom_text.parse(text)
        except prom_text.PromTextError as exc:
            raise MeasureError("cannot parse %s: %s" % (self.where, exc), failing=True)
        if self.identity is not None:
            self.identity.check(samples, self.where)
        if self.require_series and not prom_text.select(samples, self.traffic.requests, self.selector):
            raise MeasureError("%s has no %s%s series" % (
                self.where, self.traffic.requests, selector(self.selector)), failing=True)
        self.samples = samples
        return (
            prom_text.sum_values(samples, self.traffic.requests, self.selector),
            prom_text.sum_values(samples, self.traffic.requests, self.error_selector),
            prom_text.histogram_buckets(samples, self.traffic.duration, self.selector),
        )

    def check(self):
        """One scrape that raises what would make the source unusable (MeasureError, IdentityError)."""
        self._snapshot()

    def _increase(self, before, current):
        return increase(before, current)


def lb_scrape_sampler(admin_socket, color, timeout):
    """nginx's metrics of ``color`` from its /metrics on the admin unix socket."""
    where = "nginx %s on %s" % (LB_METRICS_PATH, admin_socket)
    fetch = http_fetch("http://localhost" + LB_METRICS_PATH, where, timeout, unix_socket=admin_socket)
    return ScrapeSampler("lb_metrics", fetch, where, LB_TRAFFIC, {"color": color}, require_series=True)


def peer_snapshots(samples, traffic, labels, peers):
    """{peer: (requests, errors, cumulative buckets)} of the wanted ``peers`` (a set of host:port) whose ``traffic``
    series match ``labels``, in one pass over a scrape's samples: a fleet of peers costs one pass, not one each."""
    bucket_name = traffic.duration + "_bucket"
    error_value = re.compile(traffic.error_pattern)
    requests, errors, buckets = {}, {}, {}
    for sample in samples:
        if sample.name != traffic.requests and sample.name != bucket_name:
            continue
        peer = sample.labels.get(PEER_LABEL)
        if peer not in peers or not prom_text.labels_match(sample.labels, labels):
            continue
        if sample.name == traffic.requests:
            requests[peer] = requests.get(peer, 0.0) + sample.value
            if error_value.fullmatch(sample.labels.get(traffic.error_label, "")):
                errors[peer] = errors.get(peer, 0.0) + sample.value
        elif "le" in sample.labels:
            by_le = buckets.setdefault(peer, {})
            bound = prom_text.parse_float(sample.labels["le"])
            by_le[bound] = by_le.get(bound, 0.0) + sample.value
    return dict((peer, (float(total), errors.get(peer, 0.0), sorted(buckets.get(peer, {}).items())))
                for peer, total in requests.items())


class PeerScrapeSampler(BaselineSampler):
    """The increases of each of ``peers`` between the scrapes of ``fleet``, the color's fleet-wide `ScrapeSampler`:
    ``start()`` right after the fleet's ``start()``, ``measure()`` right after the fleet's ``measure()``. Each peer
    has its own baseline and its own counter-reset rule (see `increase`). A peer that has no series in a scrape (not
    routed to) has no data; one whose series appear for the first time has no data in that check either (its old
    counts would be taken for new ones) and is measured from the next."""

    missing_baseline = "baseline scrape of %s missing; measuring the peers from the next check"

    def __init__(self, fleet, traffic, labels, peers):
        self.fleet, self.traffic = fleet, traffic
        self.labels = dict(labels)
        self.peers = frozenset(peers)
        self.where = fleet.where
        self.baseline = None
        self.seen = None

    def _snapshot(self):
        """The peers' snapshots of the fleet sampler's latest scrape; raises MeasureError when there is none."""
        fresh, self.seen = self.fleet.scrapes != self.seen, self.fleet.scrapes
        if not fresh:
            raise MeasureError("peers not measured: no new scrape of %s" % self.where, failing=False)
        if self.fleet.samples is None:
            raise MeasureError("peers not measured: the scrape of %s failed" % self.where, failing=False)
        try:
            return peer_snapshots(self.fleet.samples, self.traffic, self.labels, self.peers)
        except prom_text.PromTextError as exc:
            raise MeasureError("cannot parse the peers of %s: %s" % (self.where, exc), failing=True)

    def _increase(self, before, current):
        return dict((peer, increase(before[peer], numbers)) for peer, numbers in current.items() if peer in before)


def lb_peer_scrape_sampler(fleet, color, peers):
    """Each of ``peers`` of ``color`` from the scrapes of nginx's /metrics that ``fleet`` (lb_scrape_sampler) makes."""
    return PeerScrapeSampler(fleet, LB_PEER_TRAFFIC, {"color": color}, peers)


class PeerPrometheusSampler(object):
    """Each of ``peers``' increase() over a range, one ``sum by (peer)`` query per number for all of them."""

    name = "prometheus"

    def __init__(self, client, traffic, labels, range_seconds, peers):
        window = "[%dms]" % int(round(range_seconds * 1000))
        errors = {traffic.error_label: traffic.error_pattern}
        self.client = client
        self.peers = frozenset(peers)
        self.queries = {
            "total": "sum by (%s) (increase(%s%s%s))" % (PEER_LABEL, traffic.requests, selector(labels), window),
            "errors": "sum by (%s) (increase(%s%s%s))" % (
                PEER_LABEL, traffic.requests, selector(labels, errors), window),
            "p95": "histogram_quantile(%s, sum by (%s, le) (increase(%s_bucket%s%s)))" % (
                QUANTILE, PEER_LABEL, traffic.duration, selector(labels), window),
        }

    def start(self):
        return None

    def _by_peer(self, name):
        answer = {}
        for labels, value in self.client.query(self.queries[name]):
            peer = labels.get(PEER_LABEL)
            if peer in self.peers and not math.isnan(value):
                answer[peer] = answer.get(peer, 0.0) + value
        return answer

    def measure(self):
        try:
            totals = self._by_peer("total")
            errors = self._by_peer("errors")
            p95 = self._by_peer("p95")
        except PrometheusError as exc:
            raise MeasureError(to_native(exc), failing=False)
        return dict((peer, (total, errors.get(peer, 0.0), p95.get(peer, float("nan"))))
                    for peer, total in totals.items())


def lb_peer_prometheus_sampler(client, job, color, range_seconds, peers):
    """Each of ``peers`` of ``color`` from nginx's per-peer metrics as Prometheus scraped them from the job ``job``."""
    return PeerPrometheusSampler(client, LB_PEER_TRAFFIC, {"color": color, "job": job}, range_seconds, peers)


def app_scrape_sampler(url, traffic, labels, identity, timeout):
    """An app color's own /metrics at ``url``, checked to be the expected color's by ``identity``."""
    return ScrapeSampler("app_metrics", http_fetch(url, url, timeout), url, traffic, labels, identity=identity)


class QuerySampler(object):
    """The values of extra PromQL checks: each spec's query with ``${name}`` replaced from ``values``."""

    def __init__(self, client, specs, values):
        self.client = client
        self.specs = [dict(spec, query=substitute(spec["query"], values)) for spec in specs]

    def evaluate(self):
        """(spec, value, error, broken) of every query. ``value`` is None for an empty or NaN answer, and when
        Prometheus could not answer (``error`` says why); ``broken`` is an answer that refuses the query itself."""
        answers = []
        for spec in self.specs:
            try:
                answers.append((spec, self.client.single(spec["query"]), None, False))
            except PrometheusUnavailable as exc:
                answers.append((spec, None, to_native(exc), False))
            except PrometheusError as exc:
                answers.append((spec, None, to_native(exc), True))
        return answers
