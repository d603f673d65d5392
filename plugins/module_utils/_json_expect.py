# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Dotted-path lookup in parsed JSON and evaluation of field expectations.

An expectation is ``{"path": "checks.db.status", "op": "eq", "value": "ok"}``. Path segments are object keys;
a segment that is an integer indexes a list (``sources.0.id``, ``sources.-1.id``). Failure texts read like
``checks.db.status: expected eq 'ok', got 'error'``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

OPS = ("eq", "ne", "in", "not_in", "exists", "gt", "ge", "lt", "le", "contains", "regex")
ORDER_OPS = {"gt": lambda a, b: a > b, "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b}

_MISSING = object()


def expectation_argument_spec():
    """Suboptions of one expectation, for an ``argument_spec``."""
    return dict(
        path=dict(type="str", required=True),
        op=dict(type="str", default="eq", choices=list(OPS)),
        value=dict(type="raw"),
    )


def show(value, limit=120):
    """Short, readable rendering of a value for failure texts."""
    if isinstance(value, str):
        text = "'%s'" % value.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    else:
        try:
            text = json.dumps(value, sort_keys=True, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return text


def lookup(data, path):
    """Returns ``(True, value)`` for the value at ``path``, or ``(False, None)`` when any segment is missing."""
    current = data
    for segment in path.split("."):
        if isinstance(current, dict):
            current = current.get(segment, _MISSING)
        elif isinstance(current, list):
            try:
                index = int(segment)
            except ValueError:
                return False, None
            if not -len(current) <= index < len(current):
                return False, None
            current = current[index]
        else:
            return False, None
        if current is _MISSING:
            return False, None
    return True, current


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_number(value):
    """The value as a number (numeric strings included), or None."""
    if _is_number(value):
        return value
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def loosely_equal(actual, expected):
    """Equality that tolerates templated values: 35 equals '35', True equals 'true', but 1 never equals True."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        if isinstance(actual, bool) and isinstance(expected, bool):
            return actual == expected
        other, flag = (expected, actual) if isinstance(actual, bool) else (actual, expected)
        return isinstance(other, str) and other.strip().lower() == ("true" if flag else "false")
    if _is_number(actual) and isinstance(expected, str) or _is_number(expected) and isinstance(actual, str):
        left, right = _as_number(actual), _as_number(expected)
        return left is not None and right is not None and left == right
    return actual == expected


def validate(expectation):
    """Returns a text naming what is wrong with an expectation, or None."""
    path = expectation.get("path")
    op = expectation.get("op") or "eq"
    value = expectation.get("value")
    if not isinstance(path, str) or not path or any(segment == "" for segment in path.split(".")):
        return "path %s: must be a dotted path such as checks.db.status" % show(path)
    if op not in OPS:
        return "%s: unknown op %s (one of %s)" % (path, show(op), ", ".join(OPS))
    if op in ("in", "not_in") and not isinstance(value, list):
        return "%s: op %s needs a list value, got %s" % (path, op, show(value))
    if op in ORDER_OPS and _as_number(value) is None:
        return "%s: op %s needs a number value, got %s" % (path, op, show(value))
    if op == "exists" and value is not None and not isinstance(value, bool):
        return "%s: op exists takes true, false or no value, got %s" % (path, show(value))
    if op == "regex":
        if not isinstance(value, str):
            return "%s: op regex needs a string value, got %s" % (path, show(value))
        try:
            re.compile(value)
        except re.error as exc:
            return "%s: invalid regex %s: %s" % (path, show(value), exc)
    return None


def _contains(actual, expected):
    if isinstance(actual, str):
        return str(expected) in actual
    if isinstance(actual, list):
        return any(loosely_equal(item, expected) for item in actual)
    if isinstance(actual, dict):
        return str(expected) in actual
    return None


def evaluate(data, expectation):
    """Returns None when ``data`` meets the expectation, else the failure text."""
    path = expectation["path"]
    op = expectation.get("op") or "eq"
    expected = expectation.get("value")
    found, actual = lookup(data, path)

    if op == "exists":
        want = True if expected is None else expected
        if found == want:
            return None
        return "%s: expected to exist, missing" % path if want else "%s: expected to be absent, got %s" % (path, show(actual))
    if not found:
        return "%s: expected %s %s, missing" % (path, op, show(expected))

    if op == "eq":
        ok = loosely_equal(actual, expected)
    elif op == "ne":
        ok = not loosely_equal(actual, expected)
    elif op == "in":
        ok = any(loosely_equal(actual, item) for item in expected)
    elif op == "not_in":
        ok = not any(loosely_equal(actual, item) for item in expected)
    elif op in ORDER_OPS:
        number = _as_number(actual)
        if number is None:
            return "%s: expected %s %s, got %s (not a number)" % (path, op, show(expected), show(actual))
        ok = ORDER_OPS[op](number, _as_number(expected))
    elif op == "contains":
        ok = _contains(actual, expected)
        if ok is None:
            return "%s: expected contains %s, got %s (not a string, list or object)" % (path, show(expected), show(actual))
    else:
        if isinstance(actual, (dict, list)) or actual is None:
            return "%s: expected regex %s, got %s (not a scalar)" % (path, show(expected), show(actual))
        text = actual if isinstance(actual, str) else json.dumps(actual)
        ok = re.search(expected, text) is not None
    if ok:
        return None
    return "%s: expected %s %s, got %s" % (path, op, show(expected), show(actual))


def evaluate_all(data, expectations):
    """Failure texts of every expectation ``data`` does not meet, in order."""
    failures = []
    for expectation in expectations or []:
        failure = evaluate(data, expectation)
        if failure:
            failures.append(failure)
    return failures
