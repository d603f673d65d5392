# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random

import pytest

from ansible_collections.ragops.platform.plugins.module_utils._backoff import Backoff


def test_ceilings_grow_exponentially_then_cap():
    backoff = Backoff(0.5, factor=2, cap=5, rng=lambda: 1.0)
    assert [backoff.next_delay() for dummy in range(7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_full_jitter_stays_within_zero_and_the_ceiling():
    rng = random.Random(42)
    initial, factor, cap = 0.1, 3.0, 4.0
    backoff = Backoff(initial, factor=factor, cap=cap, rng=rng.random)
    ceilings = Backoff(initial, factor=factor, cap=cap, rng=lambda: 1.0)  # its delays are the ceilings
    for attempt in range(12):
        bound = min(cap, initial * factor ** attempt)
        assert ceilings.next_delay() == pytest.approx(bound)
        assert 0.0 <= backoff.next_delay() <= bound


def test_jitter_spans_the_whole_range():
    rng = random.Random(7)
    delays = []
    for dummy in range(2000):
        backoff = Backoff(1.0, factor=2, cap=8, rng=rng.random)
        backoff.next_delay()
        backoff.next_delay()
        delays.append(backoff.next_delay())
    assert min(delays) < 0.1
    assert max(delays) > 3.9
    assert max(delays) <= 4.0
    assert 1.8 < sum(delays) / len(delays) < 2.2


def test_reset_starts_over():
    backoff = Backoff(0.25, factor=2, cap=10, rng=lambda: 1.0)
    for dummy in range(5):
        backoff.next_delay()
    backoff.reset()
    fresh = Backoff(0.25, factor=2, cap=10, rng=lambda: 1.0)
    assert [backoff.next_delay() for dummy in range(8)] == [fresh.next_delay() for dummy in range(8)]
    backoff.reset()
    assert backoff.next_delay() == 0.25
    assert backoff.next_delay() == 0.5


def test_delay_never_exceeds_the_time_left():
    backoff = Backoff(1.0, factor=2, cap=10, rng=lambda: 1.0)
    assert backoff.next_delay(remaining=0.3) == 0.3
    assert backoff.next_delay(remaining=-1.0) == 0.0
    assert backoff.next_delay(remaining=100) == 4.0


def test_long_runs_do_not_overflow():
    backoff = Backoff(0.1, factor=10, cap=2, rng=lambda: 1.0)
    for dummy in range(5000):
        assert backoff.next_delay() <= 2


def test_factor_one_is_constant():
    backoff = Backoff(0.5, factor=1, cap=0.5, rng=lambda: 1.0)
    assert {backoff.next_delay() for dummy in range(10)} == {0.5}


@pytest.mark.parametrize("kwargs", [
    dict(initial=0), dict(initial=-1), dict(initial=1, factor=0.5), dict(initial=2, cap=1),
])
def test_invalid_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        Backoff(**kwargs)
