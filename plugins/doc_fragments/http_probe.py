# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # How a module reaches its one target: the options of connection_argument_spec() in module_utils/_http_probe.
    # base_url is documented by each module, which says what its relative URLs are (checks, cases).
    DOCUMENTATION = r"""
options:
  unix_socket:
    description: Path of a unix socket to connect to instead of the host and port of the URLs.
    type: path
  validate_certs:
    description: Verify the TLS certificate of HTTPS targets.
    type: bool
    default: true
  use_proxy:
    description: Use the proxy from the environment (C(http_proxy), C(https_proxy)). Off, since targets are direct.
    type: bool
    default: false
"""
