# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Names the whole stack agrees on: the two app colors, and where the nginx admin API listens on the host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

COLORS = ("blue", "green")
# The response header nginx adds to every answer it proxied: the color of the peer it picked. The platform reads it,
# never an app's own headers, to see which color served a request.
COLOR_HEADER = "X-Ragops-Color"
# The default host folder of the stack (ragops_data_dir); the release role passes the real paths explicitly.
DATA_DIR = "/opt/ragops"
# The nginx role creates it (roles/nginx); the release modules that switch traffic talk to it.
ADMIN_SOCKET = DATA_DIR + "/nginx/run/admin.sock"
