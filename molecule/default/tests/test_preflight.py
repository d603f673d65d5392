"""Bad variables fail in preflight with a message naming them, and the running stack is left untouched."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())


def stack_fingerprint(host) -> dict:
    names = host.check_output("docker ps -a --format '{{.Names}}' --filter name=^ragops-").split()
    return {
        name: json.loads(host.check_output(f"docker inspect -f '{{{{json .State.StartedAt}}}} ' {name}"))
        for name in sorted(names)
    }


def run_site(*extra: str) -> subprocess.CompletedProcess:
    # As a user runs it from a checkout: the project's ansible.cfg and inventory, not Molecule's.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "MOLECULE_"))}
    env["ANSIBLE_CONFIG"] = os.path.join(PROJECT, "ansible.cfg")
    return subprocess.run(
        ["ansible-playbook", "site.yml", *extra],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # The ragops role's argument specs catch it first, before any task.
        ({"ragops_image_source": "ftp"}, "value of ragops_image_source must be one of: build, registry, got: ftp"),
        ({"ragops_app_version": "1.0;rm -rf /"}, "is not a valid"),
        ({"ragops_app_version": "../x"}, "is not a valid"),
        ({"ragops_app_version": "v" * 200}, "is not a valid"),
    ],
    ids=["image-source", "version-injection", "version-traversal", "version-too-long"],
)
def test_bad_variable_fails_in_preflight_and_changes_nothing(host, extra, message):
    before = stack_fingerprint(host)
    result = run_site("-e", json.dumps(extra))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert message in output, output[-2000:]
    assert "changed=0" in output, output[-2000:]
    assert stack_fingerprint(host) == before


def test_port_in_use_fails_in_preflight_and_changes_nothing(host, busy_port):
    before = stack_fingerprint(host)
    result = run_site("-e", json.dumps({"ragops_prometheus_port": busy_port}))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert f"127.0.0.1:{busy_port}" in output and "in use" in output, output[-2000:]
    assert "changed=0" in output, output[-2000:]
    assert stack_fingerprint(host) == before
