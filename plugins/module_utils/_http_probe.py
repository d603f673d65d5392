# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""One HTTP request with a bounded time, for probes: never raises for an HTTP status or a connection error."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.client
import json
import re
import socket
import threading
import time
import urllib.error

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.urls import Request, make_context
from ansible_collections.ragops.platform.plugins.module_utils._json_expect import evaluate_all, show

MAX_BODY_BYTES = 1024 * 1024
EXCERPT_BYTES = 2048
_CHUNK = 65536


def connection_argument_spec():
    """Options shared by the modules that probe one target."""
    return dict(
        base_url=dict(type="str", required=True),
        unix_socket=dict(type="path"),
        validate_certs=dict(type="bool", default=True),
        use_proxy=dict(type="bool", default=False),
    )


def build_url(base_url, url):
    """``url`` when it is absolute, else ``url`` joined to ``base_url``."""
    if "://" in url:
        return url
    return base_url.rstrip("/") + "/" + url.lstrip("/")


def encode_body(body, headers):
    """Request bytes for ``body`` (a dict or list is sent as JSON, a string as it is) and the headers to send."""
    headers = dict(headers or {})
    if body is None:
        return None, headers
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    if isinstance(body, (bytes, str)):
        return body if isinstance(body, bytes) else body.encode("utf-8"), headers
    return json.dumps(body).encode("utf-8"), headers


_TLS_CONTEXTS = {}
_TLS_CONTEXTS_LOCK = threading.Lock()


def _tls_context(validate_certs):
    # Building a context loads the CA store (tens of ms); once per process keeps it out of the measured latency.
    # The lock makes concurrent first probes (the prober's threads) build it once, not once each.
    with _TLS_CONTEXTS_LOCK:
        if validate_certs not in _TLS_CONTEXTS:
            _TLS_CONTEXTS[validate_certs] = make_context(validate_certs=validate_certs)
        return _TLS_CONTEXTS[validate_certs]


def prepare_tls(validate_certs=True):
    """Build the TLS context now (about 0.2 s of CPU), so that it is not in the first probes' measured latency."""
    _tls_context(validate_certs)


class _BodyTimeout(Exception):
    pass


def _read_body(response, started, timeout, max_body):
    chunks, size = [], 0
    # read1 returns after one socket read, so a body that trickles in is checked against the timeout as it comes.
    read = getattr(response, "read1", response.read)
    while size <= max_body:
        chunk = read(_CHUNK)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if time.monotonic() - started > timeout:
            raise _BodyTimeout()
    return b"".join(chunks)[:max_body]


def probe(method, url, headers=None, body=None, timeout=2.0, unix_socket=None, validate_certs=True,
          use_proxy=False, max_body=MAX_BODY_BYTES, http_agent="ragops.platform"):
    """Sends one request and returns a dict.

    Keys: ``url``, ``method``, ``status`` (int, None when no response), ``headers`` (lower-case names),
    ``body`` (text, at most ``max_body`` bytes read), ``json`` (parsed body or None), ``is_json``,
    ``latency_ms`` (until the body is read) and ``error`` (None, or why no usable response came back).

    Redirects are not followed: a probe reports what the target itself answers. ``timeout`` bounds the
    connection, each read, and the reading of the body as a whole.
    """
    data, headers = encode_body(body, headers)
    context = _tls_context(validate_certs)
    result = dict(url=url, method=method.upper(), status=None, headers={}, body="", json=None, is_json=False,
                  latency_ms=None, error=None)
    started = time.monotonic()
    response = None
    try:
        try:
            response = Request().open(method, url, data=data, headers=headers, timeout=timeout,
                                      unix_socket=unix_socket, validate_certs=validate_certs, context=context, use_proxy=use_proxy,
                                      follow_redirects="none", http_agent=http_agent, use_netrc=False)
        except urllib.error.HTTPError as exc:
            response = exc
        result["status"] = int(response.getcode())
        result["headers"] = dict((name.lower(), value) for name, value in (response.headers or {}).items())
        raw = _read_body(response, started, timeout, max_body) if response.fp is not None else b""
    except _BodyTimeout:
        result["error"] = "timed out after %.1f s reading the body" % timeout
        raw = None
    except (socket.timeout, TimeoutError):
        result["error"] = "timed out after %.1f s" % timeout
        raw = None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            result["error"] = "timed out after %.1f s" % timeout
        else:
            result["error"] = "connection failed: %s" % to_text(reason)
        raw = None
    except (http.client.HTTPException, OSError, ValueError) as exc:
        result["error"] = "connection failed: %s: %s" % (type(exc).__name__, to_text(exc))
        raw = None
    finally:
        if response is not None:
            try:
                response.close()
            except (OSError, http.client.HTTPException):
                pass
    result["latency_ms"] = round((time.monotonic() - started) * 1000.0, 1)
    if raw is not None:
        result["body"] = raw.decode("utf-8", "replace")
        if result["body"].strip():
            try:
                result["json"] = json.loads(result["body"])
                result["is_json"] = True
            except ValueError:
                pass
    return result


def excerpt(result, limit=EXCERPT_BYTES):
    """The response for a report: the parsed JSON when it fits in ``limit`` bytes, else text cut to ``limit``."""
    if result.get("is_json"):
        text = json.dumps(result["json"], sort_keys=True)
        if len(text.encode("utf-8")) <= limit:
            return result["json"]
    else:
        text = result.get("body") or ""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    marker = "... (truncated)"
    return data[:limit - len(marker)].decode("utf-8", "ignore") + marker


def _expected_status(statuses):
    if len(statuses) == 1:
        return "%d" % statuses[0]
    return "in [%s]" % ", ".join("%d" % code for code in statuses)


def body_failures(body, contains=None, regex=None):
    """Why a text body misses ``contains`` (a substring) or ``regex`` (searched in it): a list of texts, empty when it meets them."""
    failures = []
    if contains is not None and contains not in body:
        failures.append("body: expected to contain %s, got %s" % (show(contains), _body_start(body)))
    if regex is not None and re.search(regex, body) is None:
        failures.append("body: expected to match regex %s, got %s" % (show(regex), _body_start(body)))
    return failures


def _body_start(body):
    return show(body, limit=80) if body else "an empty body"


def response_failures(result, statuses=None, expectations=None, body_contains=None, body_regex=None):
    """Why a probe result misses its expected status, JSON expectations and body text: a list of texts, empty when it passed."""
    if result["error"]:
        return ["request failed: %s" % result["error"]]
    failures = []
    if statuses and result["status"] not in statuses:
        failures.append("expected status %s, got %d" % (_expected_status(statuses), result["status"]))
    if expectations:
        if result["is_json"]:
            failures.extend(evaluate_all(result["json"], expectations))
        else:
            failures.append("body is not JSON: %s" % show(result["body"], limit=80))
    failures.extend(body_failures(result.get("body") or "", body_contains, body_regex))
    return failures
