"""Offline stand-in for the get-pip.py script that `ansible-test sanity` downloads.

ansible-test runs it as `python get_pip.py [pip options] pip==X ...` in a fresh virtualenv. This
bootstraps pip from the interpreter's bundled ensurepip, then installs what was asked from the
configured package index, so sanity runs on hosts that reach PyPI but not ansible-test's file host.
"""

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args])
