# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A clock for the pure run_* functions of the modules: it moves only when the code under test sleeps."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


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
