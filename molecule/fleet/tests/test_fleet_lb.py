"""The fleet's load balancing on real hosts (molecule/fleet): after site.yml, each app host runs the live color on
its private address only, the load balancer spreads keep-alive POSTs over both app hosts, and an app host that dies
or is cut off from the load balancer leaves the rotation within a measured bound, with the failed requests counted
and reported, and comes back when it answers again. Figures are printed (pytest -s, or the verifier's output)."""

from __future__ import annotations

import json
import time

import pytest
from fleet_harness import (APPS, HOST_PORTS, LB, PUBLIC_URL, access_log, address, admin, container, inspect,
                           kill_host, on_host, partition, peer, served_by, start_host, tries_to, wait_for_engine,
                           wait_for_peer)
from release_harness import describe, load

# Out of rotation: the active check runs every second with a 1 s timeout (nginx_peer_check_*), so a peer that stops
# answering is marked down within about 2 s; 5 s leaves room for a loaded 2-core machine.
OUT_OF_ROTATION_BOUND = 5.0
# Once out, no new request may be tried on it.
RATE = 100


def live_color() -> str:
    return admin("/live")["color"]


def test_each_app_host_runs_the_live_color_on_its_private_address_only():
    color = live_color()
    for app in APPS:
        found = inspect(app, f"ragops-app-{color}")
        assert found and found["State"]["Running"], f"{app} does not run ragops-app-{color}"
        bindings = found["HostConfig"]["PortBindings"]
        assert [(b["HostIp"], b["HostPort"]) for ports in bindings.values() for b in ports] == [
            (address(app), str(HOST_PORTS[color]))], bindings
        # The colors only: nginx and Redis live on the load balancer host.
        assert inspect(app, "ragops-nginx") is None and inspect(app, "ragops-redis") is None
    assert inspect(LB, f"ragops-app-{color}") is None
    redis = inspect(LB, "ragops-redis")
    assert [(b["HostIp"]) for ports in redis["HostConfig"]["PortBindings"].values() for b in ports] == [address(LB)]


def test_the_load_balancer_knows_every_app_host_and_both_are_healthy():
    peers = admin("/peers")["peers"]
    for color in ("blue", "green"):
        assert [p["address"] for p in peers[color]] == [f"{address(app)}:{HOST_PORTS[color]}" for app in APPS]
    for app in APPS:
        assert peer(live_color(), app)["healthy"], admin("/peers")


def scraped() -> dict[tuple[str, str], str]:
    """(job, "host color") -> health of each active target of the monitoring host's Prometheus (lb1, on its own
    loopback, where it listens)."""
    out = on_host(LB, "curl", "-sS", "--max-time", "5", "http://127.0.0.1:9090/api/v1/targets?state=active").stdout
    targets = json.loads(out)["data"]["activeTargets"]
    return {(t["labels"]["job"], t["labels"].get("host", "") + " " + t["labels"].get("color", "")): t["health"]
            for t in targets}


def test_the_monitoring_host_scrapes_every_host_of_the_fleet():
    color = live_color()
    wanted = {("node", container(host) + " ") for host in (LB, *APPS)}
    wanted |= {("ragops-lb", container(LB) + " "), ("nginx", container(LB) + " "), ("redis", container(LB) + " ")}
    wanted |= {("rag-app", f"{container(app)} {color}") for app in APPS}
    deadline = time.monotonic() + 60
    while True:
        found = scraped()
        missing = {target: found.get(target, "absent") for target in wanted if found.get(target) != "up"}
        if not missing:
            break
        assert time.monotonic() < deadline, f"not scraped (or not up) after 60 s: {missing}; all: {found}"
        time.sleep(1)
    print("scraped and up:", sorted(wanted))


def test_keep_alive_posts_are_spread_over_both_app_hosts():
    since = time.time()
    with load(rate=RATE, duration=8, url=PUBLIC_URL + "/api/query") as run:
        time.sleep(6)
    summary = run.stop()
    print("spread:", describe(summary))
    assert summary["failed"] == 0 and summary["ok"] > 300, describe(summary)
    entries = access_log(since)
    shares = {app: len(served_by(entries, app)) for app in APPS}
    print("requests served per app host:", shares)
    assert all(share > 0.3 * sum(shares.values()) for share in shares.values()), shares


def fault_drill(name: str, app: str, cause, heal, ready_again) -> None:
    """Load, the fault at t0, the time until the LB marks the app host's live peer down and the last try on it; then
    the heal and the time until it is healthy and served again. Prints and asserts the bounds."""
    color = live_color()
    with load(rate=RATE, duration=60, url=PUBLIC_URL + "/api/query") as run:
        time.sleep(3)
        since = time.time()
        t0 = time.time()
        cause()
        out_at = wait_for_peer(color, app, healthy=False, timeout=30)
        time.sleep(4)
    summary = run.stop()
    entries = access_log(since)
    # When each request reached nginx (msec is when it ended: a request that hung on the dead host ends late).
    started = [e["msec"] - e["request_time"] for e in tries_to(entries, app)]
    last_try = max((at for at in started if at >= t0), default=t0)
    out_s, last_s = out_at - t0, last_try - t0
    failed = summary["failed"]
    print(f"{name}: out of rotation {out_s:.2f} s after the fault, last try on it {last_s:.2f} s after; "
          f"{failed} failed of {summary['sent']} requests ({describe(summary)})")
    assert out_s <= OUT_OF_ROTATION_BOUND, f"{name}: {app} still in rotation {out_s:.2f} s after the fault"
    assert last_s <= OUT_OF_ROTATION_BOUND + 1, f"{name}: a request was still tried on {app} {last_s:.2f} s after"
    # What failed is what was on its way to the host when it went: at most the requests of the bound.
    assert failed <= RATE * OUT_OF_ROTATION_BOUND, describe(summary)

    healed_at = time.time()
    heal()
    ready_again()
    back_at = wait_for_peer(color, app, healthy=True, timeout=120)
    since = time.time()
    with load(rate=RATE, duration=5, url=PUBLIC_URL + "/api/query") as run:
        time.sleep(4)
    again = run.stop()
    print(f"{name}: healthy again {back_at - healed_at:.2f} s after the heal; then {describe(again)}")
    assert again["failed"] == 0, describe(again)
    assert served_by(access_log(since), app), f"{name}: {app} gets no traffic after it came back"


@pytest.mark.parametrize("app", ["app2"])
def test_an_app_host_killed_under_load_leaves_the_rotation_and_comes_back(app):
    fault_drill(f"{app} killed", app, cause=lambda: kill_host(app), heal=lambda: start_host(app),
                ready_again=lambda: wait_for_engine(app))


@pytest.mark.parametrize("app", ["app1"])
def test_an_app_host_cut_off_from_the_load_balancer_leaves_the_rotation_and_comes_back(app):
    try:
        fault_drill(f"{LB} cut off from {app}", app, cause=lambda: partition(LB, app, cut=True),
                    heal=lambda: partition(LB, app, cut=False), ready_again=lambda: None)
    finally:
        partition(LB, app, cut=False, check=False)  # healed already unless the drill failed
