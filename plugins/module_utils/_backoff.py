# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Exponential backoff with full jitter, capped, aware of a deadline.

The n-th delay (n = 0, 1, ...) since the last reset is uniform in [0, min(cap, initial * factor ** n)].
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random


class Backoff:
    def __init__(self, initial, factor=2.0, cap=30.0, rng=random.random):
        if initial <= 0:
            raise ValueError("initial must be greater than 0, got %r" % (initial,))
        if factor < 1:
            raise ValueError("factor must be at least 1, got %r" % (factor,))
        if cap < initial:
            raise ValueError("cap (%r) must be at least initial (%r)" % (cap, initial))
        self.initial = float(initial)
        self.factor = float(factor)
        self.cap = float(cap)
        self._rng = rng
        self.reset()

    def reset(self):
        self._ceiling = self.initial

    def next_delay(self, remaining=None):
        """The next delay in seconds; never more than ``remaining`` (time left before a deadline) when given."""
        delay = self._rng() * self._ceiling
        # Grown multiplicatively and capped at once, so a long run never overflows factor ** n.
        self._ceiling = min(self.cap, self._ceiling * self.factor)
        if remaining is not None:
            delay = min(delay, max(0.0, remaining))
        return delay
