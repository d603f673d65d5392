#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ragops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: traffic_switch
short_description: Make an app color live on the ragops nginx load balancer, without a reload
version_added: 0.1.0
author: ragops.platform maintainers (@ragops)
description:
  - Reads the live color from the nginx admin API (C(GET /live) on its unix socket) and, when it differs from O(color),
    switches it with C(PUT /live?expect=<observed color>). nginx writes the new color to its state file atomically before
    it routes to it, so the switch survives an nginx restart, and the balancer picks the color on the next request.
  - nginx is never reloaded. A reload makes old workers close idle keep-alive client connections and fails requests
    (see the nginx role README); the admin API switch closes no connection.
  - The switch is a compare-and-set against the color observed just before. If the live color changes in between, or
    differs from O(expect_current), nothing is switched and the module fails.
  - If the color is already live but nginx reports that its state file holds something else (C(persisted) in the
    C(GET /live) answer), the module rewrites it with a C(PUT) of the same color, so that a restart can't come back on the wrong color. That is
    reported as changed, with RV(switched=false).
  - With O(verify_url), it then sends GET requests through the load balancer until O(verify_requests) in a row were
    answered 2xx with the color header (O(color_header), which the stack's nginx adds itself) equal to O(color).
    An answer of another color, a non-2xx answer or a failed request resets the streak. Verification is read-only,
    so it also runs when the color was already live (the module then confirms the current state). If it does not
    succeed within O(verify_timeout), the module fails with RV(switched=true) and RV(verified=false), and leaves the
    decision to switch back to the playbook.
  - HTTP proxy environment variables are ignored; every URL is reached directly.
options:
  color:
    description: The color to make live.
    type: str
    required: true
    choices: [blue, green]
  admin_socket:
    description: Path of the nginx admin API's unix socket on the host.
    type: path
    default: /opt/ragops/nginx/run/admin.sock
  expect_current:
    description:
      - Switch only if this color is live now. When another color (neither this one nor O(color)) is live, the module
        fails and changes nothing.
      - When O(color) is already live, the module reports no change whatever this option says.
    type: str
    choices: [blue, green]
  precheck_url:
    description:
      - A URL of the color O(color) itself, not through the load balancer, for example
        V(http://172.30.57.11:8000/health). When the module is about to switch, it first sends one GET there; an answer
        other than 2xx, or none, fails the module and nothing is switched, so traffic never goes to a color that is not
        serving. It is also sent in check mode, so the prediction fails the same way.
      - Without it, the target is not checked before the switch.
    type: str
  verify_url:
    description:
      - A public URL through the load balancer, for example V(http://127.0.0.1:8080/health), used to confirm which
        color serves requests. Without it, nothing is verified and RV(verified) is null.
    type: str
  color_header:
    description:
      - Response header naming the color that served a verification request. The stack's nginx adds
        C(X-Ragops-Color) to every answer it proxied, from the peer it picked, so no app header is needed.
    type: str
    default: X-Ragops-Color
  verify_requests:
    description: How many requests in a row must be served by O(color).
    type: int
    default: 10
  verify_timeout:
    description: Seconds allowed for the verification streak.
    type: float
    default: 10
  request_timeout:
    description: Timeout in seconds of each admin API call and of each verification request.
    type: float
    default: 5
  switch_timeout:
    description:
      - Seconds to keep retrying the C(PUT) while nginx answers that another switch is in progress (nginx holds a 5 s
        lock during a switch), with capped exponential backoff and full jitter.
    type: float
    default: 10
  state_file:
    description:
      - Host path of nginx's persisted live color (V(<ragops_data_dir>/nginx/state/live_color)). When given, it is read
        after the switch and must hold O(color), or the module fails.
    type: path
attributes:
  check_mode:
    description: Reads the live color and predicts C(changed); sends no C(PUT) and no verification request.
    support: full
  diff_mode:
    description: Returns the live (and persisted) color before and after.
    support: full
notes:
  - Run it on the Docker host (the admin socket is only there), for example with C(delegate_to) the nginx host.
  - To switch back after a failed analysis, call it again with the old color and O(expect_current) set to the new one.
    Keep that task first in the C(rescue) block, so that traffic is restored before anything is recorded.
seealso:
  - module: ragops.platform.metric_analysis
"""

EXAMPLES = r"""
- name: Make green live (only if blue is live now) and confirm 10 requests in a row served by green
  ragops.platform.traffic_switch:
    color: green
    expect_current: blue
    precheck_url: http://172.30.57.11:8000/health
    verify_url: http://127.0.0.1:8080/health
    verify_requests: 10
    verify_timeout: 10
    state_file: /opt/ragops/nginx/state/live_color
  register: switch

- name: Switch back fast after a failed analysis (in the rescue block)
  ragops.platform.traffic_switch:
    color: "{{ switch.previous_color }}"
    expect_current: green
    verify_url: http://127.0.0.1:8080/health
    verify_requests: 5
  register: switch_back
"""

RETURN = r"""
color:
  description: The color requested (O(color)).
  returned: always
  type: str
  sample: green
precheck:
  description: The check of O(precheck_url) before the switch (C(url), C(status), C(error)).
  returned: when O(precheck_url) is set and a switch was needed
  type: dict
  sample: {"url": "http://172.30.57.11:8000/health", "status": 200, "error": null}
previous_color:
  description: The live color observed before the module acted.
  returned: when the admin API answered
  type: str
  sample: blue
switched:
  description: Whether this run changed the live color. Always false in check mode.
  returned: always
  type: bool
  sample: true
switch_ms:
  description: Duration of the C(PUT /live) call (retries included), in milliseconds; null when nothing was sent.
  returned: always
  type: float
  sample: 1.8
switched_at:
  description: Epoch seconds when nginx answered the C(PUT), to measure the time from a decision to restored traffic.
  returned: when a PUT was sent
  type: float
  sample: 1795609012.482
generation:
  description: nginx's count of live color changes since its shared memory was created, after the run.
  returned: when the admin API answered
  type: int
  sample: 3
persisted:
  description:
    - Whether the persisted live color holds O(color) after the run, as nginx reports it (and as O(state_file) reads,
      when given). In check mode, the current state.
  returned: when the admin API answered
  type: bool
  sample: true
verified:
  description: Whether the verification streak succeeded; null when O(verify_url) is not set or in check mode.
  returned: always
  type: bool
  sample: true
verification:
  description: What the verification saw; null when nothing was verified.
  returned: always
  type: dict
  contains:
    url:
      description: O(verify_url).
      type: str
      sample: http://127.0.0.1:8080/health
    required:
      description: O(verify_requests).
      type: int
      sample: 10
    requests:
      description: Requests sent.
      type: int
      sample: 10
    streak:
      description: Requests in a row served by O(color) at the end.
      type: int
      sample: 10
    served_by:
      description: Answers per value of the color header (any status); V(none) for answers without it.
      type: dict
      sample: {"green": 10}
    failures:
      description: Requests that failed (no answer, or a non-2xx status).
      type: int
      sample: 0
    last_error:
      description: The last failure or wrong color seen, if any.
      type: str
      sample: served by blue
    elapsed_ms:
      description: Duration of the verification in milliseconds.
      type: float
      sample: 14.2
diff:
  description: The live color (and nginx's persisted color) before and after.
  returned: when the admin API answered
  type: dict
  sample: {"before": {"color": "blue", "persisted": "blue"}, "after": {"color": "green", "persisted": "green"}}
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.ragops.platform.plugins.module_utils._backoff import Backoff
from ansible_collections.ragops.platform.plugins.module_utils._http_probe import probe
from ansible_collections.ragops.platform.plugins.module_utils._nginx_admin import (
    BACKOFF_CAP,
    BACKOFF_INITIAL,
    AdminError,
    NginxAdmin,
    switch_live,
)
from ansible_collections.ragops.platform.plugins.module_utils._platform import ADMIN_SOCKET, COLOR_HEADER, COLORS


def argument_spec():
    return dict(
        color=dict(type="str", required=True, choices=list(COLORS)),
        admin_socket=dict(type="path", default=ADMIN_SOCKET),
        expect_current=dict(type="str", choices=list(COLORS)),
        precheck_url=dict(type="str"),
        verify_url=dict(type="str"),
        color_header=dict(type="str", default=COLOR_HEADER),
        verify_requests=dict(type="int", default=10),
        verify_timeout=dict(type="float", default=10),
        request_timeout=dict(type="float", default=5),
        switch_timeout=dict(type="float", default=10),
        state_file=dict(type="path"),
    )


def invalid_parameters(params):
    """Texts naming each bad parameter; empty when all are usable."""
    problems = []
    if params["verify_requests"] < 1:
        problems.append("verify_requests must be at least 1, got %s" % params["verify_requests"])
    for name in ("verify_timeout", "request_timeout", "switch_timeout"):
        if params[name] <= 0:
            problems.append("%s must be positive, got %s" % (name, params[name]))
    return problems


def initial_result(params):
    """What the module returns when it stops before reading the live color."""
    return {
        "changed": False,
        "color": params["color"],
        "switched": False,
        "switch_ms": None,
        "verified": None,
        "verification": None,
    }


def verify(url, color, required, timeout, request_timeout, color_header=COLOR_HEADER,
           prober=probe, clock=time.monotonic, sleep=time.sleep):
    started = clock()
    deadline = started + timeout
    backoff = Backoff(BACKOFF_INITIAL, cap=BACKOFF_CAP)
    counts, requests, failures, streak, last_error = {}, 0, 0, 0, None
    while streak < required:
        remaining = deadline - clock()
        if remaining <= 0:
            break
        requests += 1
        answer = prober("GET", url, timeout=min(request_timeout, remaining))
        status, header = answer["status"], answer["headers"].get(color_header.lower())
        ok = answer["error"] is None and 200 <= status < 300
        if status is not None:
            label = header or "none"
            counts[label] = counts.get(label, 0) + 1
        if ok and header == color:
            streak += 1
            backoff.reset()
            continue
        streak = 0
        if not ok:
            failures += 1
            last_error = answer["error"] or "HTTP %s" % status
        else:
            last_error = "served by %s" % (header or "an answer without %s" % color_header)
        sleep(backoff.next_delay(deadline - clock()))
    return {
        "url": url,
        "required": required,
        "requests": requests,
        "streak": streak,
        "served_by": counts,
        "failures": failures,
        "last_error": last_error,
        "elapsed_ms": round((clock() - started) * 1000, 1),
    }


def read_state_file(path):
    try:
        with open(path) as handle:
            return handle.read(64).strip(), None
    except (IOError, OSError) as exc:
        return None, to_native(exc)


def failed(result, msg):
    result.update(failed=True, msg=msg)
    return result


def unknown_outcome(admin, result, current, exc):
    """The PUT got no usable answer (a timeout, a reset): it may have been applied, so report what is live now."""
    color = result["color"]
    try:
        now = admin.live()["color"]
    except AdminError as again:
        now = "unknown (%s)" % to_native(again)
    result["switched"] = result["changed"] = now == color and current != color
    if now != color:
        result.pop("diff", None)
    return failed(result, "switch %s -> %s: no answer to PUT /live (%s); the live color is now %s"
                          % (current, color, to_native(exc), now))


def run_traffic_switch(params, admin, check_mode=False, prober=probe, clock=time.monotonic, sleep=time.sleep,
                       wall_clock=time.time):
    """Makes params["color"] live through ``admin`` (an NginxAdmin); returns the module result, ``failed`` set
    (with ``msg``) when the module must fail. ``prober`` sends the precheck and verification requests."""
    color = params["color"]
    result = initial_result(params)
    try:
        live = admin.live()
    except AdminError as exc:
        return failed(result, to_native(exc))
    current = live["color"]
    persisted_now = live.get("persisted")
    result.update(previous_color=current, generation=live.get("generation"),
                  persisted=persisted_now == color)

    expect = params["expect_current"]
    if expect and current not in (expect, color):
        return failed(result, "live color is %s, not the expected %s: nothing switched" % (current, expect))

    needs_switch = current != color
    needs_repair = not needs_switch and persisted_now != color
    result["changed"] = needs_switch or needs_repair
    result["diff"] = {
        "before": {"color": current, "persisted": persisted_now},
        "after": {"color": color, "persisted": color if result["changed"] else persisted_now},
    }
    if needs_switch and params["precheck_url"]:
        answer = prober("GET", params["precheck_url"], timeout=params["request_timeout"])
        result["precheck"] = {"url": params["precheck_url"], "status": answer["status"], "error": answer["error"]}
        if answer["error"] is not None or not 200 <= answer["status"] < 300:
            result["changed"] = False
            result.pop("diff")
            return failed(result, "%s is not serving (%s from %s): nothing switched, %s stays live" % (
                color, answer["error"] or "HTTP %s" % answer["status"], params["precheck_url"], current))
    if check_mode:
        return result

    if result["changed"]:
        started = clock()
        try:
            status, body = switch_live(admin, color, current, params["switch_timeout"])
        except AdminError as exc:
            return unknown_outcome(admin, result, current, exc)
        result["switch_ms"] = round((clock() - started) * 1000, 1)
        result["switched_at"] = wall_clock()
        if status != 200:
            result["changed"] = False
            result.pop("diff")
            if status == 409 and "color" in body:
                reason = "the live color changed to %s meanwhile" % body.get("color")
            else:
                reason = "nginx answered HTTP %s: %s" % (status, body.get("error") or body)
            return failed(result, "switch %s -> %s refused, live color unchanged: %s" % (current, color, reason))
        result["switched"] = bool(body.get("changed", needs_switch))
        result["persisted"] = body.get("persisted") is True and body.get("color") == color
        result["generation"] = body.get("generation", result["generation"])
        if not result["persisted"]:
            return failed(result, "nginx switched to %s but did not confirm persisting it: %s" % (color, body))

    if params["state_file"]:
        on_disk, error = read_state_file(params["state_file"])
        if on_disk != color:
            result["persisted"] = False
            return failed(result, "%s is live but %s holds %s" % (
                color, params["state_file"], repr(on_disk) if error is None else "nothing readable: " + error))

    if params["verify_url"]:
        verification = verify(params["verify_url"], color, params["verify_requests"], params["verify_timeout"],
                              params["request_timeout"], params["color_header"], prober=prober, clock=clock, sleep=sleep)
        result["verification"] = verification
        result["verified"] = verification["streak"] >= params["verify_requests"]
        if not result["verified"]:
            seen = ", ".join("%s=%d" % item for item in sorted(verification["served_by"].items())) or "no answer"
            return failed(
                result,
                "%s but verification failed: %d of %d requests in a row to %s served by %s within %gs "
                "(%d sent; served by %s; %d failed; last: %s)" % (
                    "switched %s -> %s" % (current, color) if result["switched"] else "%s is live" % color,
                    verification["streak"], params["verify_requests"], params["verify_url"], color,
                    params["verify_timeout"], verification["requests"], seen, verification["failures"],
                    verification["last_error"]))
    return result


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    problems = invalid_parameters(module.params)
    if problems:
        module.fail_json(msg="; ".join(problems), **initial_result(module.params))
    admin = NginxAdmin(module.params["admin_socket"], module.params["request_timeout"])
    result = run_traffic_switch(module.params, admin, check_mode=module.check_mode)
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
