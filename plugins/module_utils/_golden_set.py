# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Scores of a golden set (recall@k, answer contains) and their comparison between two colors. Pure: no I/O.

A case result, the input of `summarise` and `regressed_cases`, is a dict with ``recall`` (float or None when the
case has no expected sources), ``contains`` (bool or None when it has no words), ``latency_ms`` (a list, one per
request), ``requests``, ``errors``, and for the reports ``name``, ``question``, ``source_ids`` and ``error``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import unicodedata

# Float slack for the limits: 0.8 - 0.1 is 0.7000000000000001, and 0.7 at that limit is not a regression.
EPSILON = 1e-9

RELATIVE_CHECKS = ("recall_at_k", "answer_contains_rate", "p95_ms")


def recall_at_k(expected_ids, returned_ids, k):
    """Share of the expected ids found among the first ``k`` returned ids; None when nothing is expected."""
    expected = set(expected_ids)
    if not expected:
        return None
    found = expected.intersection(returned_ids[:k])
    return len(found) / float(len(expected))


def _folded(text):
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def contains_all(answer, words):
    """Whether ``answer`` contains every one of ``words``, ignoring case and accents; None when there are no words."""
    if not words:
        return None
    haystack = _folded(answer)
    return all(_folded(word) in haystack for word in words)


def percentile(values, q):
    """Nearest-rank percentile ``q`` (0 to 100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = int(math.ceil(q * len(ordered) / 100.0))
    return ordered[max(rank, 1) - 1]


def _mean(values):
    return sum(values) / float(len(values)) if values else None


def _rounded(value, digits):
    return None if value is None else round(value, digits)


def summarise(case_results):
    """The scores of one color over its case results."""
    recalls = [case["recall"] for case in case_results if case["recall"] is not None]
    contains = [case["contains"] for case in case_results if case["contains"] is not None]
    latencies = [latency for case in case_results for latency in case["latency_ms"]]
    requests = sum(case["requests"] for case in case_results)
    errors = sum(case["errors"] for case in case_results)
    return dict(
        recall_at_k=_rounded(_mean(recalls), 4),
        answer_contains_rate=_rounded(_mean([1.0 if hit else 0.0 for hit in contains]), 4),
        p50_ms=_rounded(percentile(latencies, 50), 1),
        p95_ms=_rounded(percentile(latencies, 95), 1),
        requests=requests,
        errors=errors,
        error_rate=round(errors / float(requests), 4) if requests else 0.0,
    )


def _regression(check, live, candidate, limit, msg):
    return dict(check=check, live=live, candidate=candidate, limit=limit, msg=msg)


def compare(live, candidate, tolerances, k=None):
    """Regressions of the ``candidate`` summary: against ``live`` (None: no live color, only the floors and the
    error rate apply), the floors, and the error rate of either color. Each is {check, live, candidate, limit, msg}."""
    recall_label = "recall@%s" % (k if k is not None else "k")
    found = []
    live = live or {}

    for key, label, drop_key in (("recall_at_k", recall_label, "max_recall_drop"),
                                 ("answer_contains_rate", "answer-contains", "max_answer_rate_drop")):
        theirs, ours = live.get(key), candidate[key]
        if theirs is not None and ours is not None:
            limit = theirs - tolerances[drop_key]
            if ours < limit - EPSILON:
                found.append(_regression(key, theirs, ours, round(limit, 4), "%s %.2f (live %.2f, allowed drop %.2f)" % (
                    label, ours, theirs, tolerances[drop_key])))

    theirs, ours = live.get("p95_ms"), candidate["p95_ms"]
    if theirs is not None and ours is not None:
        # Both bounds must be passed: a ratio alone flags 2 ms -> 5 ms, an increase alone flags a slow live color.
        limit = max(theirs * tolerances["max_p95_ratio"], theirs + tolerances["max_p95_increase_ms"])
        if ours > limit + EPSILON:
            found.append(_regression("p95_ms", theirs, ours, round(limit, 1), "p95 %.1f ms (live %.1f ms, allowed x%g and +%g ms)" % (
                ours, theirs, tolerances["max_p95_ratio"], tolerances["max_p95_increase_ms"])))

    for key, label, floor_key in (("recall_at_k", recall_label, "min_recall"),
                                  ("answer_contains_rate", "answer-contains", "min_answer_rate")):
        floor, ours = tolerances.get(floor_key), candidate[key]
        if floor is not None and ours is not None and ours < floor - EPSILON:
            found.append(_regression(floor_key, live.get(key), ours, floor, "%s %.2f below the floor %s %.2f" % (
                label, ours, floor_key, floor)))

    allowed = tolerances["max_error_rate"]
    for check, color, summary in (("error_rate", "candidate", candidate), ("live_error_rate", "live", live)):
        if summary and summary["error_rate"] > allowed + EPSILON:
            found.append(_regression(check, live.get("error_rate"), candidate["error_rate"], allowed,
                                     "%s: %d of %d request(s) failed (%.0f %%, allowed %.0f %%)" % (
                                         color, summary["errors"], summary["requests"], summary["error_rate"] * 100,
                                         allowed * 100)))
    return found


def regressed_cases(live_cases, candidate_cases):
    """The cases, in order, where the candidate's recall or contains is worse than the live color's."""
    worse = []
    for theirs, ours in zip(live_cases, candidate_cases):
        recall_worse = theirs["recall"] is not None and ours["recall"] is not None and ours["recall"] < theirs["recall"] - EPSILON
        contains_worse = theirs["contains"] is True and ours["contains"] is False
        if recall_worse or contains_worse:
            worse.append(dict(
                name=ours["name"],
                question=ours["question"],
                live_recall=theirs["recall"],
                candidate_recall=ours["recall"],
                live_contains=theirs["contains"],
                candidate_contains=ours["contains"],
                live_source_ids=theirs["source_ids"],
                candidate_source_ids=ours["source_ids"],
                candidate_error=ours["error"],
            ))
    return worse
