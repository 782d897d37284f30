"""A peer with a valid certificate that misbehaves: it is refused or cut off at a limit,
and the node does not notice otherwise (issue 13, item 2).

    rogue --(mTLS, certificate from the mesh CA)--> a <--(link)-- b
                                                     listener "hash" at a, connector at b

Both nodes run under a 1024 open-file limit. During and after each attack a TCP client
sends checked bytes (sha256 both ways) through a to b's server, and a keeps its route
and its addresses from b.
"""

from __future__ import annotations

import threading
import time

import pytest
from harness import Mesh, wait_until
from peer import RoguePeer
from servers import HashServer, transfer
from test_tcp import add_connector, add_listener, wait_matched

from skupper_actors.security import Credentials, issue_client_cert, issue_server_cert

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

MiB_IN_KIB = 1024
LIMIT = "amqp:resource-limit-exceeded"
REFUSED_ID = "skupper:router-id-refused"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    server = HashServer()
    mesh = Mesh(tmp_path_factory.mktemp("hostile-peer"), ["a", "b"])
    mesh.link("b", "a")
    port = add_listener(mesh, "a", "hash")
    add_connector(mesh, "b", "hash", server.port)
    for node in mesh.nodes.values():
        node.nofile = 1024
    # the cap the rogue runs into (below the default, to keep the test short)
    mesh["a"].config["limits"] = {"max_links_per_connection": 4096}
    mesh.start()
    wait_until(lambda: mesh["a"].routes() == {"b": (1, ("b",))}, 15, what="a-b link")
    wait_matched(mesh, "a", "hash")
    yield mesh, port
    mesh.close()
    server.close()


class Traffic:
    """Checked transfers through ``port``, one after another, until stopped."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.results: list = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        seed = 1
        while not self.stopped.is_set():
            self.results.append(transfer(self.port, 256 << 10, 256 << 10, seed=seed, timeout=30))
            seed += 1

    def stop(self) -> list:
        self.stopped.set()
        self.thread.join(60)
        return self.results


def assert_still_routing(mesh: Mesh, port: int) -> None:
    a = mesh["a"]
    assert a.alive, a.log_tail()
    assert a.routes() == {"b": (1, ("b",))}
    links = [x for x in a.status().links if x.peer == "b" and x.state == "up"]
    assert len(links) == 1
    result = transfer(port, 1 << 20, 1 << 20, seed=99)
    assert result.sent_ok and result.received_ok, result


def assert_rss_grew_less_than(a, before_kib: int, bound_mib: int) -> None:
    grown = (a.rss_kib() - before_kib) / MiB_IN_KIB
    print(f"RSS of a grew {grown:.1f} MiB (bound {bound_mib} MiB)")
    assert grown < bound_mib


def assert_traffic_ok(results: list) -> None:
    assert len(results) >= 2
    bad = [r for r in results if not (r.sent_ok and r.received_ok)]
    assert not bad, bad[:3]


def counters(mesh: Mesh) -> dict[str, int]:
    return dict(mesh["a"].client.request("links").health.limits_exceeded)


def events(mesh: Mesh, name: str) -> list[dict]:
    return [e for e in mesh["a"].log_events() if e.get("event") == name]


def grant_style(mesh: Mesh, redeemer: str) -> Credentials:
    """What a grant issues: a client certificate named ``<redeemer>-via-<grant>``."""
    return issue_client_cert(mesh.certs.ca, f"{redeemer}-via-some-grant")


def test_peer_advertising_300000_addresses_in_one_update_is_cut_off(guarded) -> None:
    mesh, port = guarded
    a = mesh["a"]
    rss_before = a.rss_kib()
    traffic = Traffic(port)
    rogue = RoguePeer(a.port, grant_style(mesh, "flood"), "flood")
    try:
        rogue.become_neighbour()
        wait_until(lambda: "flood" in a.routes(), 10, what="the rogue to be a router")
        rogue.set_addresses([f"svc-{n:06d}" for n in range(300_000)])
        assert rogue.ended.wait(30), "the node did not cut the peer off"
        assert rogue.closed is not None and rogue.closed.condition == LIMIT
        assert "300000 entries" in (rogue.closed.description or "")
    finally:
        rogue.close()
    wait_until(lambda: "flood" not in a.routes(), 10, what="the rogue's routes to go")
    [event] = [e for e in events(mesh, "link_limit_exceeded") if e["peer"] == "flood"]
    assert event["limit"] == "max-control-entries"
    assert counters(mesh)["disconnected:max-control-entries"] >= 1
    assert_traffic_ok(traffic.stop())
    assert_still_routing(mesh, port)
    assert_rss_grew_less_than(a, rss_before, 50)


def test_peer_growing_to_300000_addresses_is_cut_off_at_the_cap(guarded) -> None:
    mesh, port = guarded
    a = mesh["a"]
    rss_before = a.rss_kib()
    traffic = Traffic(port)
    rogue = RoguePeer(a.port, grant_style(mesh, "grower"), "grower")
    sent = 0
    try:
        rogue.become_neighbour()
        wait_until(lambda: "grower" in a.routes(), 10, what="the rogue to be a router")
        while sent < 300_000 and not rogue.ended.is_set():
            rogue.add_addresses([f"grow-{n:06d}" for n in range(sent, sent + 10_000)])
            sent += 10_000
            time.sleep(0.2)
        assert rogue.ended.wait(30), "the node did not cut the peer off"
        assert rogue.closed is not None and rogue.closed.condition == LIMIT
    finally:
        rogue.close()
    assert sent <= 100_000  # cut off soon after the 50,000 of max-addresses-per-router
    [event] = [e for e in events(mesh, "routing_limit_exceeded") if e["origin"] == "grower"]
    assert event["limit"] == "max-addresses-per-router" and event["disconnect"] is True
    assert counters(mesh)["max-addresses-per-router"] >= 1
    wait_until(lambda: "grower" not in a.routes(), 10, what="the rogue's routes to go")

    def rogue_addresses() -> int:
        return sum(x.address.startswith("grow-") for x in a.status().addresses)

    # routing forgets an unreachable router's addresses a bounded batch per tick (so that
    # 50,000 of them never hold the loop): they go within a few ticks after its routes
    wait_until(lambda: rogue_addresses() == 0, 10, what="the rogue's addresses to go")
    assert_traffic_ok(traffic.stop())
    assert_still_routing(mesh, port)
    assert_rss_grew_less_than(a, rss_before, 110)


def test_peer_attaching_links_past_the_cap_is_refused(guarded) -> None:
    mesh, port = guarded
    a = mesh["a"]
    rss_before = a.rss_kib()
    traffic = Traffic(port)
    rogue = RoguePeer(a.port, grant_style(mesh, "linker"), "linker")
    attempts, cap = 6_000, 4096
    try:
        rogue.become_neighbour()
        rogue.attach_streams(attempts)
        refused = attempts - (cap - 2)  # the two control links count
        try:
            wait_until(lambda: len(rogue.link_closes) >= refused, 30, what="attaches refused")
        except AssertionError:
            raise AssertionError(
                f"{len(rogue.link_closes)} closes, {counters(mesh)}, ended {rogue.ended.is_set()}"
                f" {rogue.closed}"
            ) from None
        assert {c.condition for c in rogue.link_closes} == {LIMIT}
        assert not rogue.ended.is_set()  # refused links; the connection itself stays
    finally:
        rogue.close()
    [first] = [e for e in events(mesh, "link_attach_refused") if e["peer"] == "linker"][:1]
    assert first["limit"] == cap
    assert counters(mesh)["max-links-per-connection"] >= refused
    wait_until(lambda: "linker" not in a.routes(), 10, what="the rogue's routes to go")
    assert_traffic_ok(traffic.stop())
    assert_still_routing(mesh, port)
    assert_rss_grew_less_than(a, rss_before, 50)


def refused_claim(mesh: Mesh, credentials: Credentials, claim: str) -> str:
    rogue = RoguePeer(mesh["a"].port, credentials, claim)
    try:
        assert rogue.ended.wait(10), f"a connection claiming {claim!r} was not refused"
        assert rogue.closed is not None and rogue.closed.condition == REFUSED_ID
        assert not rogue.opened.is_set() or rogue.remote == "a"
        return rogue.closed.description or ""
    finally:
        rogue.close()


def test_peer_claiming_another_routers_id_is_refused(guarded) -> None:
    mesh, port = guarded
    ca = mesh.certs.ca
    before = counters(mesh).get("router-id-refused", 0)
    # a grant's certificate speaks for its redeemer only
    why = refused_claim(mesh, grant_style(mesh, "mallory"), "b")
    assert "belongs to router 'mallory'" in why
    # a router's own certificate speaks for that router only
    why = refused_claim(mesh, issue_server_cert(ca, "mallory", ["127.0.0.1"]), "b")
    assert "belongs to router 'mallory'" in why
    # a certificate naming no router (as `skupper link generate` issues) cannot take the
    # id of a router with a live link ...
    unbound = issue_client_cert(ca, "link-a")
    why = refused_claim(mesh, unbound, "b")
    assert "already has a live link" in why
    # ... but may be any router that has none
    newcomer = RoguePeer(mesh["a"].port, unbound, "newcomer")
    try:
        newcomer.become_neighbour()
        wait_until(lambda: "newcomer" in mesh["a"].routes(), 10, what="newcomer routed")
    finally:
        newcomer.close()
    refusals = events(mesh, "router_id_refused")
    assert len(refusals) >= 3
    assert all(e["peer_address"].startswith("127.0.0.1:") for e in refusals)
    assert counters(mesh)["router-id-refused"] - before == 3
    wait_until(lambda: "newcomer" not in mesh["a"].routes(), 10, what="newcomer gone")
    assert_still_routing(mesh, port)
