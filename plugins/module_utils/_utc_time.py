# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""UTC times as the release records and results show them: ISO 8601 with milliseconds and a Z,
``2026-11-25T12:42:35.402Z``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

_UTC = datetime.timezone.utc
_FRACTION = re.compile(r"\.(\d+)")


def utc_now():
    return datetime.datetime.now(_UTC)


def format_time(moment):
    """``moment`` (a timezone-aware datetime) in UTC, to the millisecond (cut, not rounded), with a Z."""
    return moment.astimezone(_UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value):
    """A timezone-aware datetime from ISO 8601 text (Z, offset or naive = UTC), epoch seconds, or a datetime."""
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = datetime.datetime.fromtimestamp(value, _UTC)
    else:
        text = str(value).strip()
        try:
            return datetime.datetime.fromtimestamp(float(text), _UTC)
        except ValueError:
            pass
        text = text.replace(" ", "T", 1) if "T" not in text else text
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        # fromisoformat before Python 3.11 takes only 3 or 6 fraction digits.
        text = _FRACTION.sub(lambda match: "." + (match.group(1) + "000000")[:6], text, count=1)
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("%r is not an ISO 8601 time or epoch seconds" % (value,))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_UTC)
    return moment
