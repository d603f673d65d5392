# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Names the whole stack agrees on: the two app colors, and where the nginx admin API listens on the host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

COLORS = ("blue", "green")
# The nginx role creates it (roles/nginx); the release modules that switch traffic talk to it.
ADMIN_SOCKET = "/opt/ragops/nginx/run/admin.sock"
