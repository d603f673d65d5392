# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Clocks for the pure run_* functions of the modules: one that moves only when the code under test sleeps, and
a fixed UTC ``now``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime


class FakeTime:
    """A clock that moves only when the code under test sleeps; records every delay."""

    def __init__(self, now=0.0):
        self.now = now
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


T0 = datetime.datetime(2026, 1, 5, 10, 0, 0, tzinfo=datetime.timezone.utc)


def utc_clock(seconds=0, start=T0):
    """A ``now`` for the code under test that always answers ``start`` plus ``seconds``."""
    moment = start + datetime.timedelta(seconds=seconds)
    return lambda: moment
