#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: job_wait
short_description: Wait, read-only, for a one-off container to finish within a timeout and return its output
version_added: 0.1.0
description:
  - Waits for a one-off job container (a migration, a re-index), already created and started by
    M(community.docker.docker_container), to finish, by polling its state through the Docker Engine API every
    O(interval) seconds until it exits or O(timeout) seconds have passed.
  - It returns the job's exit code and the last O(output_lines) lines of its stdout and stderr, and fails, with
    that output, when the job exits with a code not in O(expected_exit_codes), when the container does not exist,
    or when it is still running at the timeout.
  - "It fails at once, without waiting for the timeout, when the container is restarting (it has a restart
    policy, which a job must not have) or could not start (Docker reports an error and it stays C(created))."
  - It only reads (inspect and logs). It never stops, kills or removes the container, whatever the outcome, so
    it never reports a change. The caller removes the container, in every case, with
    M(community.docker.docker_container) and O(community.docker.docker_container#module:state=absent) (in an
    C(always) section), which also kills a job still running at the timeout.
  - It returns at most one Docker API request (2 seconds at most) after O(timeout).
author: ragops.platform maintainers (@ragops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the job is not started (M(community.docker.docker_container) changes nothing), so there is
        nothing to wait for. The module returns at once, skipped, and does not contact Docker.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  name:
    description: Name or id of the job container.
    type: str
    required: true
  timeout:
    description: Seconds to wait for the job to finish, from the start of the module.
    type: float
    required: true
  docker_socket:
    description: Unix socket of the Docker Engine API.
    type: path
    default: /var/run/docker.sock
  interval:
    description: Seconds between two inspects of the container.
    type: float
    default: 0.5
  output_lines:
    description: How many of the last lines of the job's stdout and stderr, interleaved as Docker keeps them, to return. V(0) reads none.
    type: int
    default: 50
  expected_exit_codes:
    description: Exit codes that count as success.
    type: list
    elements: int
    default: [0]
notes:
  - "Why a module: M(community.docker.docker_container) with O(community.docker.docker_container#module:detach=false)
    waits for the container to exit with no bound of its own (its API O(community.docker.docker_container#module:timeout)
    does not apply to that wait), so a hung job holds the release forever. Bounded with Ansible's C(async), the task
    is killed at the limit and its result is lost, the job's output with it, just when it is needed to understand
    the hang. Starting the job detached and waiting here bounds the wait and always returns the output, on success,
    failure and timeout alike."
  - Start the job without O(community.docker.docker_container#module:auto_remove) (Docker would delete the container,
    its exit code and its logs as soon as it exits, possibly before the first inspect) and with
    O(community.docker.docker_container#module:restart_policy=no).
  - The output needs a logging driver that Docker can read back (C(json-file), C(local), C(journald)). With
    another one, the output is empty and RV(output_error) says why; the exit code still decides.
  - Output lines longer than 1000 characters are cut.
seealso:
  - module: community.docker.docker_container
  - module: ragops.platform.health_gate
"""

EXAMPLES = r"""
- name: Run the pre-switch migration of the new version, then remove its container whatever happened
  block:
    - name: Start the migration
      community.docker.docker_container:
        name: ragops-job-migrate
        image: ragops/rag-service:1.1.0
        command: [python, -m, app.migrate]
        detach: true
        recreate: true
        restart_policy: "no"
        state: started

    - name: Wait for the migration to finish
      ragops.platform.job_wait:
        name: ragops-job-migrate
        timeout: 300
        output_lines: 100
      register: migration
  always:
    - name: Remove the migration container
      community.docker.docker_container:
        name: ragops-job-migrate
        state: absent
        force_kill: true

- name: A re-index that exits 3 when there was nothing to do
  ragops.platform.job_wait:
    name: ragops-job-reindex
    timeout: 600
    interval: 2
    expected_exit_codes: [0, 3]
"""

RETURN = r"""
passed:
  description:
    - Whether the job exited with one of O(expected_exit_codes), the opposite of C(failed).
    - Kept when the task sets C(failed_when), which overwrites C(failed). True in check mode (see RV(skipped)).
  returned: always
  type: bool
  sample: true
exit_code:
  description: The job's exit code; null when it did not finish (timeout, no such container).
  returned: always
  type: int
  sample: 0
timed_out:
  description: Whether the job was still running at the timeout.
  returned: always
  type: bool
  sample: false
duration:
  description: Seconds the module waited, from its start until it saw the job finish (or gave up).
  returned: always
  type: float
  sample: 12.4
run_time:
  description:
    - Seconds the job ran, from Docker's start and finish times of the container, when it finished; else null.
    - It counts the time before the module started too, so it may be above RV(duration).
  returned: always
  type: float
  sample: 12.9
output:
  description: The last O(output_lines) lines of the job's stdout and stderr, oldest first.
  returned: always
  type: list
  elements: str
  sample: ["migrating schema 4 -> 5", "done: 1200 rows"]
output_error:
  description: Why the output could not be read (for example a logging driver that keeps no logs), else null.
  returned: always
  type: str
  sample: null
status:
  description:
    - Docker's last seen state of the container (C(created), C(running), C(exited), C(dead), C(restarting), ...).
    - Null when the container does not exist.
  returned: always
  type: str
  sample: exited
skipped:
  description: True in check mode, where there is nothing to wait for.
  returned: in check mode
  type: bool
  sample: true
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ragops.platform.plugins.module_utils._docker_engine import (
    DEFAULT_SOCKET,
    DockerEngine,
    DockerEngineError,
)
from ansible_collections.ragops.platform.plugins.module_utils._utc_time import parse_time

FINISHED = ("exited", "dead")
MESSAGE_LINES = 5
MESSAGE_LINE_LENGTH = 200


def argument_spec():
    return dict(
        name=dict(type="str", required=True),
        timeout=dict(type="float", required=True),
        docker_socket=dict(type="path", default=DEFAULT_SOCKET),
        interval=dict(type="float", default=0.5),
        output_lines=dict(type="int", default=50),
        expected_exit_codes=dict(type="list", elements="int", default=[0]),
    )


def invalid_parameters(params):
    """Texts naming each bad parameter; empty when all are usable."""
    problems = []
    if not params["name"].strip():
        problems.append("name must not be empty")
    for name in ("timeout", "interval"):
        if params[name] <= 0:
            problems.append("%s must be greater than 0" % name)
    if params["output_lines"] < 0:
        problems.append("output_lines must not be negative")
    codes = params["expected_exit_codes"]
    if not codes or any(not 0 <= code <= 255 for code in codes):
        problems.append("expected_exit_codes must be exit codes between 0 and 255")
    return problems


def run_time(state):
    """Seconds between Docker's StartedAt and FinishedAt, or None when either is unset or unreadable."""
    try:
        started, finished = parse_time(state.get("StartedAt")), parse_time(state.get("FinishedAt"))
    except (TypeError, ValueError):
        return None
    if started.year <= 1 or finished.year <= 1 or finished < started:
        return None
    return round((finished - started).total_seconds(), 3)


def verdict(state):
    """Why the job is over though Docker does not call it finished (restarting, could not start), else None."""
    if state.get("Restarting") or state.get("Status") == "restarting":
        return "is restarting after exit code %s: a job container must have restart_policy no" % state.get("ExitCode")
    if state.get("Status") == "created" and state.get("Error"):
        return "could not start: %s" % state["Error"]
    return None


def output_text(lines):
    if not lines:
        return "no output"
    shown = [line if len(line) <= MESSAGE_LINE_LENGTH else line[:MESSAGE_LINE_LENGTH - 3] + "..."
             for line in lines[-MESSAGE_LINES:]]
    return "last output: %s" % " | ".join(shown)


def run_job_wait(params, engine, clock=time.monotonic, sleep=time.sleep):
    """Waits for the job container; returns the module result, ``failed`` set when the module must fail."""
    result = _wait(params, engine, clock, sleep)
    result["passed"] = not result["failed"]
    return result


def _wait(params, engine, clock, sleep):
    name = params["name"]
    started = clock()
    deadline = started + params["timeout"]
    result = dict(changed=False, failed=False, exit_code=None, timed_out=False, duration=0.0, run_time=None,
                  output=[], output_error=None, status=None)
    seen = False
    inspected, state = None, {}
    try:
        while True:
            inspected = engine.inspect(name)
            if inspected is None:
                break
            seen = True
            state = inspected.get("State") or {}
            result["status"] = state.get("Status")
            if result["status"] in FINISHED or verdict(state):
                result["exit_code"] = state.get("ExitCode")
                break
            now = clock()
            if now >= deadline:
                result["timed_out"] = True
                break
            sleep(min(params["interval"], deadline - now))
    except DockerEngineError as exc:
        result.update(failed=True, duration=round(clock() - started, 3), msg="job %s: %s" % (name, exc))
        return result
    result["duration"] = round(clock() - started, 3)

    if inspected is None:
        result.update(failed=True, status=None)
        if seen:
            result["msg"] = "job %s disappeared after %.1f s of waiting (removed, or started with auto_remove)" % (
                name, result["duration"])
        else:
            result["msg"] = "job %s does not exist: create and start it first (community.docker.docker_container)" % name
        return result

    try:
        result["output"] = engine.logs(name, params["output_lines"])
    except DockerEngineError as exc:
        result["output_error"] = str(exc)
    output = output_text(result["output"])

    if result["timed_out"]:
        result["failed"] = True
        if result["status"] == "created":
            result["msg"] = "job %s was not started within %g s (status created); %s" % (name, params["timeout"], output)
        else:
            result["msg"] = "job %s still %s after %g s; %s" % (name, result["status"], params["timeout"], output)
        return result

    problem = verdict(state)
    if problem:
        result.update(failed=True, msg="job %s %s; %s" % (name, problem, output))
        return result

    result["run_time"] = run_time(state)
    took = result["duration"] if result["run_time"] is None else result["run_time"]
    code = result["exit_code"]
    if result["status"] == "exited" and code in params["expected_exit_codes"]:
        result["msg"] = "job %s exited with code %s after %.1f s" % (name, code, took)
        return result
    detail = ""
    if state.get("OOMKilled"):
        detail = " (killed: out of memory)"
    elif result["status"] == "dead":
        detail = " (the container is dead)"
    expected = ", ".join("%d" % each for each in params["expected_exit_codes"])
    result.update(failed=True, msg="job %s exited with code %s after %.1f s%s, expected %s; %s" % (
        name, code, took, detail, expected, output))
    return result


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    problems = invalid_parameters(module.params)
    if problems:
        module.fail_json(msg="invalid parameters: %s" % "; ".join(problems), changed=False)
    if module.check_mode:
        module.exit_json(changed=False, skipped=True, passed=True, exit_code=None, timed_out=False, duration=0.0, run_time=None,
                         output=[], output_error=None, status=None,
                         msg="check mode: job %s is not started, nothing to wait for" % module.params["name"])
    result = run_job_wait(module.params, DockerEngine(module.params["docker_socket"]))
    if result["failed"]:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
