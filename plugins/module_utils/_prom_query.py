# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Instant queries against the Prometheus HTTP API (/api/v1/query), with ansible.module_utils.urls."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.client
import json
import math
import re

from urllib.error import HTTPError, URLError
from urllib.parse import urlencode

from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import Request


class PrometheusError(Exception):
    pass


class PrometheusUnavailable(PrometheusError):
    """Prometheus could not answer (unreachable, a 5xx, not its API), as opposed to an answer that refuses the query."""


def _quote(value):
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def selector(equal=None, regex=None):
    """A PromQL label selector, for example {color="green",status=~"5.."}; values are escaped."""
    parts = ["%s=%s" % (name, _quote(value)) for name, value in sorted((equal or {}).items())]
    parts += ["%s=~%s" % (name, _quote(value)) for name, value in sorted((regex or {}).items())]
    return "{%s}" % ",".join(parts)


_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def placeholders(template):
    """The names of the ${name} placeholders in a query template, in order of first use."""
    names = []
    for name in _PLACEHOLDER.findall(template):
        if name not in names:
            names.append(name)
    return names


def substitute(template, values):
    """The template with each ${name} replaced by values[name], as it is; unknown names are left as written."""
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), template)


class PrometheusClient(object):
    def __init__(self, base_url, timeout, validate_certs=True):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.validate_certs = validate_certs

    def query(self, promql):
        """An instant query. Returns a list of (labels, value) pairs; a scalar answer is one pair with
        empty labels. Raises PrometheusError with Prometheus' own error text."""
        url = "%s/api/v1/query?%s" % (self.base_url, urlencode({"query": promql}))
        try:
            response = Request().open(
                "GET", url, timeout=self.timeout, validate_certs=self.validate_certs, use_proxy=False,
                headers={"Accept": "application/json"},
            )
            raw = response.read()
        except HTTPError as exc:
            raw = exc.read()
            detail = _error_text(raw) or "HTTP %s" % exc.code
            error = PrometheusUnavailable if exc.code >= 500 else PrometheusError
            raise error("Prometheus at %s rejected %r: %s" % (self.base_url, promql, detail))
        except (URLError, OSError, ValueError, http.client.HTTPException) as exc:
            raise PrometheusUnavailable("Prometheus at %s is unreachable: %s"
                                        % (self.base_url, to_native(getattr(exc, "reason", None) or exc)))
        try:
            answer = json.loads(to_native(raw))
        except ValueError:
            raise PrometheusUnavailable("Prometheus at %s answered something other than JSON" % self.base_url)
        if answer.get("status") != "success":
            raise PrometheusError("Prometheus at %s failed %r: %s" % (self.base_url, promql, answer.get("error")))
        data = answer.get("data") or {}
        kind, result = data.get("resultType"), data.get("result")
        if kind == "vector":
            return [(item.get("metric", {}), float(item["value"][1])) for item in result or []]
        if kind == "scalar":
            return [({}, float(result[1]))]
        raise PrometheusError("Prometheus answered a %s to %r; an instant vector was expected" % (kind, promql))

    def value(self, promql):
        """The single value of a query that aggregates to one series; None for an empty answer or NaN."""
        values = [value for _labels, value in self.query(promql) if not math.isnan(value)]
        if not values:
            return None
        return float(sum(values))

    def single(self, promql):
        """The value of a query that answers a scalar or one series; None for an empty answer or NaN. Raises
        PrometheusError when it answers several series, since which one to judge is then unclear."""
        answer = self.query(promql)
        if len(answer) > 1:
            raise PrometheusError("%r answered %d series, not one: aggregate it (sum, max, ...)" % (promql, len(answer)))
        if not answer or math.isnan(answer[0][1]):
            return None
        return answer[0][1]


def _error_text(raw):
    try:
        return json.loads(to_native(raw)).get("error")
    except (ValueError, AttributeError):
        return None
