"""Control work stays off the data path (issue 13, item 3).

A site with 1,000 Connector resources learns 30,000 remote addresses from a peer (in
updates of 1,000, as a big site's routers would send them). The node measures its own
event loop (management's ``loop_stalls``); its longest stall while the addresses arrive
and afterwards stays short, no HELLO is missed, the Site status lists a bounded part of
the network, and a steady node rewrites no status file.
"""

from __future__ import annotations

import time

import pytest
from harness import wait_until
from peer import RoguePeer
from sites import SiteProcess

from skupper_actors.security import CertificateAuthority, issue_client_cert
from skupper_actors.security.sitecerts import SITE_CA

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

RESOURCES = 1_000
REMOTE_ADDRESSES = 30_000
#: the behaviour bound is 50 ms; asserted generously on the time the loop's own thread
#: was busy (the wall-clock stall also counts other processes of a shared machine)
STALL_BOUND_MS = 100.0


def routers(site: SiteProcess) -> set[str]:
    return {r.router for r in site.client.request("routers").routers}


def test_1000_resources_and_30000_remote_addresses_never_stall_the_loop(
    tmp_path, record_property
) -> None:
    site = SiteProcess(tmp_path, "west", link_access=True)
    for n in range(RESOURCES):
        site.write("Connector", f"svc-{n:04d}", {"routingKey": f"svc-{n:04d}", "port": 9})
    site.nofile = 1024
    site.start()
    rogue = None
    try:
        site.wait_condition("Connector", f"svc-{RESOURCES - 1:04d}", "Configured", timeout=120)
        ca = CertificateAuthority.load(site.ns.runtime_certs_dir / SITE_CA)
        assert site.port is not None
        rogue = RoguePeer(site.port, issue_client_cert(ca, "east-via-load"), "east")
        rogue.become_neighbour()
        wait_until(lambda: "east" in routers(site), 15, what="east routed at west")

        started = time.time()
        for first in range(0, REMOTE_ADDRESSES, 1_000):
            rogue.add_addresses([f"remote-{n:05d}" for n in range(first, first + 1_000)])
            time.sleep(0.05)

        def network_listed():
            status = site.status_of("Site", "west").status
            east = [s for s in status.network if s.id == "east"]
            if east and len(east[0].services) == 100 and status.services_omitted >= 29_900:
                return status
            return None

        status = wait_until(network_listed, 60, what="the Site status to list east's services")
        assert status.sites_in_network == 2

        # steady state: nothing to rewrite
        time.sleep(1)
        files = sorted(site.ns.status_dir.glob("Connector-*.yaml"))
        assert len(files) == RESOURCES
        before = {f: f.stat().st_mtime_ns for f in files}
        time.sleep(5)  # more than two status intervals
        assert {f: f.stat().st_mtime_ns for f in files} == before

        info = site.client.request("links").health
        window = [(stall, busy) for second, stall, busy in info.loop_stalls
                  if second >= int(started)]  # fmt: skip
        assert len(window) >= 8  # the monitor ran through the whole window
        worst = max(stall for stall, _ in window)
        busiest = max(busy for _, busy in window)
        record_property("loop_stall_max_ms", worst)
        record_property("loop_busy_max_ms", busiest)
        print(f"while 30,000 addresses arrived and after: longest stall {worst:.1f} ms "
              f"(wall), {busiest:.1f} ms of it busy on the loop's thread; longest garbage "
              f"collection since start {info.gc_pause_max_ms:.1f} ms")  # fmt: skip
        assert busiest < STALL_BOUND_MS, sorted(window)[-5:]

        assert not rogue.ended.is_set(), rogue.closed
        assert "east" in routers(site)
        timeouts = [e for e in site.log_events("neighbour_lost") if e["reason"] != "link-closed"]
        assert timeouts == []
        assert site.log_events("routing_limit_exceeded") == []
    finally:
        if rogue is not None:
            rogue.close()
        site.stop()
