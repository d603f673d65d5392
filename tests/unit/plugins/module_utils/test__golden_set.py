# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.ragops.platform.plugins.module_utils._golden_set import (
    compare,
    contains_all,
    percentile,
    recall_at_k,
    regressed_cases,
    summarise,
)

TOLERANCES = dict(max_recall_drop=0.05, max_answer_rate_drop=0.05, max_p95_ratio=2.0, max_p95_increase_ms=100.0,
                  min_recall=None, min_answer_rate=None, max_error_rate=0.0)


def summary(recall=1.0, rate=1.0, p95=10.0, requests=10, errors=0):
    return dict(recall_at_k=recall, answer_contains_rate=rate, p50_ms=p95 / 2, p95_ms=p95, requests=requests,
                errors=errors, error_rate=errors / float(requests))


def tolerances(**overrides):
    return dict(TOLERANCES, **overrides)


def checks(regressions):
    return [regression["check"] for regression in regressions]


def case(recall=None, contains=None, latency_ms=(10.0,), errors=0, name="q", source_ids=()):
    return dict(name=name, question=name + " ?", recall=recall, contains=contains, latency_ms=list(latency_ms),
                requests=len(latency_ms), errors=errors, error=None, source_ids=list(source_ids))


@pytest.mark.parametrize("expected, returned, k, recall", [
    (["a", "b"], ["a", "b", "c"], 4, 1.0),
    (["a", "b"], ["c", "a"], 4, 0.5),
    (["a", "b"], ["c", "d", "e", "a", "b"], 4, 0.5),  # b is fifth: outside the first 4
    (["a"], ["c", "d", "a"], 2, 0.0),
    (["a"], [], 4, 0.0),
    (["a", "a", "b"], ["a"], 4, 0.5),  # an id expected twice counts once
    (["a"], [None, "a"], 2, 1.0),
    (["a"], [None, "a"], 1, 0.0),  # a source without an id still takes its rank
])
def test_recall_at_k(expected, returned, k, recall):
    assert recall_at_k(expected, returned, k) == recall


def test_recall_is_none_without_expected_sources():
    assert recall_at_k([], ["a"], 4) is None


@pytest.mark.parametrize("answer, words, expected", [
    ("Le taux normal de TVA est de 20 %.", ["tva", "20 %"], True),
    ("Le taux normal de TVA est de 20 %.", ["tva", "5,5 %"], False),
    ("Vous êtes remboursé sous 14 jours.", ["REMBOURSE", "etes"], True),  # accents and case ignored
    ("Vous etes rembourse sous 14 jours.", ["remboursé"], True),  # both ways
    ("Die Straße", ["STRASSE"], True),  # casefold, not lower
    ("20\u00a0% de TVA", ["20 %"], True),  # a no-break space is a space after NFKD
    ("", ["tva"], False),
])
def test_contains_all(answer, words, expected):
    assert contains_all(answer, words) is expected


def test_contains_is_none_without_words():
    assert contains_all("anything", []) is None


def test_percentile_nearest_rank():
    values = [float(n) for n in range(1, 21)]  # 1..20
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile(values, 100) == 20.0
    assert percentile(values, 0) == 1.0
    assert percentile(list(reversed(values)), 95) == 19.0  # unsorted input
    assert percentile([7.0], 95) == 7.0
    assert percentile([1.0, 2.0], 50) == 1.0
    assert percentile([1.0, 2.0], 51) == 2.0
    assert percentile([], 95) is None


def test_summarise_skips_cases_without_a_score():
    results = [
        case(recall=1.0, contains=None, latency_ms=[10.0, 30.0]),
        case(recall=0.5, contains=True, latency_ms=[20.0, 40.0], errors=1),
        case(recall=None, contains=False, latency_ms=[50.0, 60.0]),
    ]
    assert summarise(results) == dict(recall_at_k=0.75, answer_contains_rate=0.5, p50_ms=30.0, p95_ms=60.0,
                                      requests=6, errors=1, error_rate=0.1667)


def test_summarise_without_any_scored_case():
    result = summarise([case(recall=None, contains=True)])
    assert result["recall_at_k"] is None and result["answer_contains_rate"] == 1.0


def test_no_regression_when_equal():
    assert compare(summary(), summary(), tolerances()) == []


@pytest.mark.parametrize("live, candidate, drop, regressed", [
    (0.95, 0.90, 0.05, False),  # exactly at the limit
    (0.95, 0.8999, 0.05, True),
    (0.8, 0.7, 0.1, False),  # 0.8 - 0.1 is 0.7000000000000001 in floats
    (0.8, 0.6999, 0.1, True),
    (1.0, 0.0, 1.0, False),
])
def test_recall_drop_at_and_beyond_the_limit(live, candidate, drop, regressed):
    found = compare(summary(recall=live), summary(recall=candidate), tolerances(max_recall_drop=drop), k=4)
    assert checks(found) == (["recall_at_k"] if regressed else [])
    if regressed:
        assert found[0]["live"] == live and found[0]["candidate"] == candidate
        assert found[0]["limit"] == round(live - drop, 4)
        assert found[0]["msg"] == "recall@4 %.2f (live %.2f, allowed drop %.2f)" % (candidate, live, drop)


@pytest.mark.parametrize("candidate, regressed", [(0.85, False), (0.8499, True)])
def test_answer_rate_drop_at_and_beyond_the_limit(candidate, regressed):
    found = compare(summary(rate=0.9), summary(rate=candidate), tolerances(max_answer_rate_drop=0.05))
    assert checks(found) == (["answer_contains_rate"] if regressed else [])
    if regressed:
        assert found[0]["msg"] == "answer-contains 0.85 (live 0.90, allowed drop 0.05)"


def test_the_label_without_k():
    found = compare(summary(recall=1.0), summary(recall=0.0), tolerances())
    assert found[0]["msg"].startswith("recall@k 0.00")


@pytest.mark.parametrize("live, candidate, regressed", [
    (10.0, 110.0, False),  # x11, but only +100 ms: millisecond noise
    (10.0, 110.1, True),  # x11 and +100.1 ms
    (200.0, 400.0, False),  # +200 ms, but only x2
    (200.0, 400.1, True),
    (2.0, 90.0, False),
])
def test_p95_needs_both_the_ratio_and_the_increase(live, candidate, regressed):
    found = compare(summary(p95=live), summary(p95=candidate), tolerances())
    assert checks(found) == (["p95_ms"] if regressed else [])
    if regressed:
        assert found[0]["limit"] == max(live * 2, live + 100)
        assert found[0]["msg"].startswith("p95 %.1f ms (live %.1f ms" % (candidate, live))


@pytest.mark.parametrize("live", [None, summary(recall=0.8, rate=0.5)])
def test_floors_apply_to_the_candidate_with_or_without_a_live_color(live):
    limits = tolerances(min_recall=0.8, min_answer_rate=0.5)
    assert compare(live, summary(recall=0.8, rate=0.5), limits) == []
    # Within the allowed drop from the live color, but under the floors.
    found = compare(live, summary(recall=0.79, rate=0.49), limits, k=3)
    assert checks(found) == ["min_recall", "min_answer_rate"]
    assert found[0]["msg"] == "recall@3 0.79 below the floor min_recall 0.80"
    assert found[0]["limit"] == 0.8 and found[0]["candidate"] == 0.79
    assert found[0]["live"] == (0.8 if live else None)


def test_without_a_live_color_only_floors_and_errors_count():
    assert compare(None, summary(recall=0.0, rate=0.0, p95=5000.0), tolerances()) == []
    found = compare(None, summary(errors=1), tolerances())
    assert checks(found) == ["error_rate"]


def test_scores_a_case_set_does_not_have_are_skipped():
    found = compare(summary(recall=None, rate=None), summary(recall=None, rate=None), tolerances(min_recall=0.9))
    assert found == []


@pytest.mark.parametrize("live_errors, candidate_errors, max_rate, expected", [
    (0, 1, 0.1, []),  # 1 of 10 is exactly 0.1
    (0, 2, 0.1, ["error_rate"]),
    (2, 0, 0.1, ["live_error_rate"]),
    (1, 1, 0.0, ["error_rate", "live_error_rate"]),
])
def test_error_rate_limits_both_colors(live_errors, candidate_errors, max_rate, expected):
    found = compare(summary(errors=live_errors), summary(errors=candidate_errors), tolerances(max_error_rate=max_rate))
    assert checks(found) == expected
    if expected == ["error_rate"]:
        assert found[0]["msg"] == "candidate: 2 of 10 request(s) failed (20 %, allowed 10 %)"


def test_regressed_cases_lists_worse_questions_with_both_sides():
    live = [case(recall=1.0, contains=True, name="a", source_ids=["x"]),
            case(recall=1.0, contains=True, name="b"),
            case(recall=0.5, contains=None, name="c"),
            case(recall=None, contains=True, name="d"),
            case(recall=0.0, contains=False, name="e")]
    candidate = [case(recall=0.0, contains=False, name="a", source_ids=["y"]),
                 case(recall=1.0, contains=True, name="b"),
                 case(recall=1.0, contains=None, name="c"),  # better: not listed
                 case(recall=None, contains=False, name="d"),
                 case(recall=0.0, contains=False, name="e")]  # as bad as live: not listed
    worse = regressed_cases(live, candidate)
    assert [item["name"] for item in worse] == ["a", "d"]
    assert worse[0] == dict(name="a", question="a ?", live_recall=1.0, candidate_recall=0.0, live_contains=True,
                            candidate_contains=False, live_source_ids=["x"], candidate_source_ids=["y"],
                            candidate_error=None)
