# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Prometheus text exposition format (0.0.4): samples, sums over label selectors, histogram buckets and
a histogram_quantile() that gives the same answer as PromQL's. No prometheus_client needed on the target."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import math
import re

Sample = collections.namedtuple("Sample", ["name", "labels", "value"])

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_LABEL_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_FLOAT = re.compile(r"[+-]?(?:inf|nan|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)$", re.IGNORECASE)


class PromTextError(ValueError):
    pass


def parse_float(text):
    """A sample value as Prometheus writes it: decimals, exponents, NaN, +Inf, -Inf."""
    if not _FLOAT.match(text):
        raise PromTextError("invalid sample value %r" % text)
    return float(text)


def _skip_spaces(line, pos):
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    return pos


def _parse_label_value(line, pos, lineno):
    chars = []
    while pos < len(line):
        char = line[pos]
        if char == '"':
            return "".join(chars), pos + 1
        if char == "\\" and pos + 1 < len(line):
            nxt = line[pos + 1]
            # Unknown escapes are kept as written, like the Go parser's lenient mode.
            chars.append(_LABEL_ESCAPES.get(nxt, "\\" + nxt))
            pos += 2
            continue
        chars.append(char)
        pos += 1
    raise PromTextError("line %d: unterminated label value" % lineno)


def _parse_labels(line, pos, lineno):
    labels = {}
    while True:
        pos = _skip_spaces(line, pos)
        if pos < len(line) and line[pos] == "}":
            return labels, pos + 1
        match = _LABEL_NAME.match(line, pos)
        if not match:
            raise PromTextError("line %d: invalid label name at column %d" % (lineno, pos + 1))
        name = match.group(0)
        pos = _skip_spaces(line, match.end())
        if pos >= len(line) or line[pos] != "=":
            raise PromTextError("line %d: expected '=' after label %s" % (lineno, name))
        pos = _skip_spaces(line, pos + 1)
        if pos >= len(line) or line[pos] != '"':
            raise PromTextError("line %d: expected '\"' to open the value of label %s" % (lineno, name))
        value, pos = _parse_label_value(line, pos + 1, lineno)
        if name in labels:
            raise PromTextError("line %d: duplicate label %s" % (lineno, name))
        labels[name] = value
        pos = _skip_spaces(line, pos)
        if pos < len(line) and line[pos] == ",":
            pos += 1
        elif pos >= len(line) or line[pos] != "}":
            raise PromTextError("line %d: expected ',' or '}' after label %s" % (lineno, name))


# The common line, parsed by two regular expressions: label values without escapes, no spaces inside the braces. A
# scrape of a fleet's per-peer series has tens of thousands of such lines; any other line takes the full parser.
_SIMPLE_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
_SIMPLE_LINE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:%s(?:,%s)*,?)?)\})?[ \t]+([^ \t]+)(?:[ \t]+[^ \t]+)?$"
                          % (_SIMPLE_LABEL, _SIMPLE_LABEL))
_SIMPLE_LABELS = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\\n]*)"')


def _parse_simple_line(line):
    """The Sample of a common line, or None for the full parser (which also words the errors)."""
    match = _SIMPLE_LINE.match(line)
    if not match or not _FLOAT.match(match.group(3)):
        return None
    pairs = _SIMPLE_LABELS.findall(match.group(2) or "")
    labels = dict(pairs)
    if len(labels) != len(pairs):
        return None
    return Sample(match.group(1), labels, float(match.group(3)))


def parse_line(line, lineno=1):
    """One sample line: name, optional {labels}, value, optional timestamp (ignored)."""
    simple = _parse_simple_line(line)
    if simple is not None:
        return simple
    match = _METRIC_NAME.match(line)
    if not match:
        raise PromTextError("line %d: invalid metric name" % lineno)
    labels = {}
    pos = _skip_spaces(line, match.end())
    if pos < len(line) and line[pos] == "{":
        labels, pos = _parse_labels(line, pos + 1, lineno)
    fields = line[pos:].split()
    if len(fields) not in (1, 2):
        raise PromTextError("line %d: expected a value and an optional timestamp" % lineno)
    try:
        value = parse_float(fields[0])
    except PromTextError as exc:
        raise PromTextError("line %d: %s" % (lineno, exc))
    return Sample(match.group(0), labels, value)


def parse(text):
    """Every sample of a scrape, in order. Comments (# HELP, # TYPE) and blank lines are skipped."""
    samples = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        samples.append(parse_line(line, lineno))
    return samples


def labels_match(labels, selector):
    """Each selector value is an exact string, or a compiled regex that must match the whole value
    (PromQL =~). A missing label is the empty string, as in PromQL."""
    for name, wanted in (selector or {}).items():
        have = labels.get(name, "")
        if hasattr(wanted, "fullmatch"):
            if not wanted.fullmatch(have):
                return False
        elif have != wanted:
            return False
    return True


def select(samples, name, selector=None):
    return [sample for sample in samples if sample.name == name and labels_match(sample.labels, selector)]


def sum_values(samples, name, selector=None):
    """sum(name{selector}); 0.0 when no series matches (a labelled counter appears at its first event)."""
    return float(sum(sample.value for sample in select(samples, name, selector)))


def histogram_buckets(samples, name, selector=None):
    """sum by (le) (name_bucket{selector}) as a sorted list of (upper_bound, cumulative_count)."""
    by_le = {}
    for sample in select(samples, name + "_bucket", selector):
        if "le" not in sample.labels:
            continue
        bound = parse_float(sample.labels["le"])
        by_le[bound] = by_le.get(bound, 0.0) + sample.value
    return sorted(by_le.items())


def bucket_increase(before, after):
    """Per-bucket increase between two scrapes. A counter reset (any bucket lower than before) means the
    process restarted: the increase is then everything counted since, as Prometheus' increase() assumes."""
    old = dict(before)
    if any(count < old.get(bound, 0.0) for bound, count in after):
        return list(after)
    return [(bound, count - old.get(bound, 0.0)) for bound, count in after]


def _correct_precision_errors(buckets, tolerance=1e-12):
    prev = buckets[0][1]
    for i in range(1, len(buckets)):
        bound, count = buckets[i]
        delta = abs(count - prev)
        if delta == 0:
            continue
        if count and delta / count <= tolerance:
            buckets[i] = (bound, prev)
        else:
            prev = count


def _ensure_monotonic(buckets):
    highest = buckets[0][1]
    for i in range(1, len(buckets)):
        bound, count = buckets[i]
        if count > highest:
            highest = count
        elif count < highest:
            buckets[i] = (bound, highest)


def histogram_quantile(q, buckets):
    """PromQL histogram_quantile(q, ...) of cumulative (upper_bound, count) buckets (any order).

    Linear interpolation inside the bucket holding the rank; 0 is the lower bound of a first bucket with a
    positive bound; a rank in the +Inf bucket returns the highest finite bound. NaN when there are no
    observations, fewer than two buckets, or no +Inf bucket."""
    if math.isnan(q):
        return float("nan")
    if q < 0:
        return float("-inf")
    if q > 1:
        return float("inf")
    merged = {}
    for bound, count in buckets:
        merged[bound] = merged.get(bound, 0.0) + count
    ordered = sorted(merged.items())
    if not ordered or not math.isinf(ordered[-1][0]) or ordered[-1][0] < 0:
        return float("nan")
    _correct_precision_errors(ordered)
    _ensure_monotonic(ordered)
    if len(ordered) < 2:
        return float("nan")
    observations = ordered[-1][1]
    if observations == 0:
        return float("nan")
    rank = q * observations
    index = len(ordered) - 1
    for i in range(len(ordered) - 1):
        if ordered[i][1] >= rank:
            index = i
            break
    if index == len(ordered) - 1:
        return ordered[-2][0]
    if index == 0 and ordered[0][0] <= 0:
        return ordered[0][0]
    start, end, count = 0.0, ordered[index][0], ordered[index][1]
    if index > 0:
        start = ordered[index - 1][0]
        count -= ordered[index - 1][1]
        rank -= ordered[index - 1][1]
    return start + (end - start) * (rank / count)
