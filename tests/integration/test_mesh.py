"""Real skupper-node processes on 127.0.0.1: a square with a diagonal, over mutual TLS.

a ---- b        links a-b, b-c, c-d, d-a (cost 1) and the diagonal a-c (cost 1);
|    / |        the a-c link goes through a LinkProxy so that the test can cut it.
|  /   |
d ---- c
"""

from __future__ import annotations

import signal
import time

import pytest
from harness import LinkProxy, Mesh, expected_routes, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SITES = ["a", "b", "c", "d"]
SQUARE = {("a", "b"): 1, ("b", "c"): 1, ("c", "d"): 1, ("d", "a"): 1}
DIAGONAL = {("a", "c"): 1}


@pytest.fixture
def square(tmp_path):
    mesh = Mesh(tmp_path, SITES)
    proxy = LinkProxy(mesh["c"].port)
    mesh.link("a", "b")
    mesh.link("b", "c")
    mesh.link("c", "d")
    mesh.link("d", "a")
    mesh.link("a", "c", port=proxy.port)
    for site in SITES:
        mesh.serve(site, f"svc-{site}")
    mesh.start()
    yield mesh, proxy
    proxy.close()
    mesh.close()


def test_square_with_diagonal_converges_cuts_and_recovers(square, record_property) -> None:
    mesh, proxy = square
    full = {**SQUARE, **DIAGONAL}
    mesh.wait_converged(expected_routes(SITES, full))
    # equal-cost alternatives: b reaches d through a and through c
    assert mesh["b"].routes()["d"] == (2, ("a", "c"))
    status = mesh["a"].status()
    assert status.router.tls is True
    assert {link.peer for link in status.links if link.state == "up"} == {"b", "c", "d"}
    # every router also advertises its flow-record addresses (sfe.<id>, vfcr.<id>)
    services = [a for a in status.addresses if not a.address.startswith("_skupper/amqp/")]
    addresses = {a.address: a.routers for a in services}
    assert addresses == {f"svc-{s}": (s,) for s in SITES}
    assert {a.address for a in services if a.local} == {"svc-a"}
    flow_records = {a.routers for a in status.addresses if a not in services}
    assert flow_records == {(s,) for s in SITES}  # two addresses per router
    # the network view: every router's links (from link state) and services, seen from b
    network = {view.router: view for view in mesh["b"].status().network}
    assert set(network) == set(SITES) and all(v.reachable for v in network.values())
    assert {(x.peer, x.cost) for x in network["a"].links} == {("b", 1), ("c", 1), ("d", 1)}
    assert network["d"].connectors == ("svc-d",)

    # cut the diagonal: both ends see the socket close and reconverge at once
    cut_at = time.monotonic()
    proxy.cut()
    mesh.wait_converged(expected_routes(SITES, SQUARE), timeout=10)
    reconverged = time.monotonic() - cut_at
    record_property("reconvergence_after_cut_s", round(reconverged, 3))
    print(f"reconvergence after cutting a-c: {reconverged:.3f} s")
    assert reconverged < 3.0  # noticed on socket close, not by HELLO max age
    link = next(x for x in mesh["a"].status().links if x.name == "to-c")
    assert link.state in ("backing-off", "connecting", "down", "handshaking")
    assert link.last_error

    # restore it: the outgoing link reconnects by itself (back-off is capped at 5 s)
    proxy.open()
    mesh.wait_converged(expected_routes(SITES, full), timeout=15)


def test_sigkill_node_is_dropped_and_rejoins_with_its_addresses(square, record_property) -> None:
    mesh, _ = square
    full = {**SQUARE, **DIAGONAL}
    mesh.wait_converged(expected_routes(SITES, full))
    killed_at = time.monotonic()
    mesh["d"].kill()
    others = ["a", "b", "c"]
    without_d = {k: v for k, v in full.items() if "d" not in k}
    mesh.wait_converged({s: r for s, r in expected_routes(others, without_d).items()}, timeout=3.5)
    dropped = time.monotonic() - killed_at
    record_property("drop_after_sigkill_s", round(dropped, 3))
    print(f"routers dropped d {dropped:.3f} s after SIGKILL")
    for site in others:
        assert "svc-d" not in {a.address for a in mesh[site].status().addresses}

    old_instance = None
    for event in mesh["d"].log_events():
        if event.get("event") == "node_ready":
            old_instance = event["instance"]
    mesh["d"].start()
    assert mesh["d"].status().router.instance != old_instance
    mesh.wait_converged(expected_routes(SITES, full), timeout=15)
    wait_until(
        lambda: all(
            {a.address: a.routers for a in mesh[s].status().addresses}.get("svc-d") == ("d",)
            for s in others
        ),
        10,
        what="svc-d to be re-learned",
    )


def test_silent_node_is_dropped_within_hello_max_age(square, record_property) -> None:
    mesh, _ = square
    full = {**SQUARE, **DIAGONAL}
    mesh.wait_converged(expected_routes(SITES, full))
    stopped_at = time.monotonic()
    mesh["b"].signal(signal.SIGSTOP)
    try:
        others = ["a", "c", "d"]
        without_b = {k: v for k, v in full.items() if "b" not in k}
        mesh.wait_converged(expected_routes(others, without_b), timeout=3.0 + 2.0)
        dropped = time.monotonic() - stopped_at
        record_property("drop_after_sigstop_s", round(dropped, 3))
        print(f"routers dropped silent b {dropped:.3f} s after SIGSTOP (max age 3 s)")
        assert dropped >= 2.0  # it was the HELLO max age, not a socket close
        events = [e for e in mesh["a"].log_events() if e.get("event") == "neighbour_lost"]
        assert any(e.get("reason") == "hello-timeout" for e in events), events
    finally:
        mesh["b"].signal(signal.SIGCONT)
    mesh.wait_converged(expected_routes(SITES, full), timeout=20)


def test_node_reexecutes_with_fast_copies_on_cpus_that_need_it(tmp_path):
    """The real process, same pid: the tunable is in its environment iff this CPU needs it."""
    import platform

    from skupper_actors.memtuning import MARK, NO_REP_MOVSB, slow_rep_movsb

    with open("/proc/cpuinfo") as file:
        needed = slow_rep_movsb(file.read()) and platform.machine() == "x86_64"
    mesh = Mesh(tmp_path, ["a"])
    try:
        node = mesh["a"].start()
        assert node.proc is not None
        with open(f"/proc/{node.proc.pid}/environ", "rb") as file:
            environ = dict(item.split(b"=", 1) for item in file.read().split(b"\0") if b"=" in item)
        events = [e["event"] for e in node.log_events()]
        if needed:
            assert environ.get(b"GLIBC_TUNABLES") == NO_REP_MOVSB.encode()
            assert "memcpy_tuned" in events
        else:
            assert MARK.encode() not in environ
            assert "memcpy_tuned" not in events
    finally:
        mesh.close()
