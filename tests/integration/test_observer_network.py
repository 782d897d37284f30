"""The observer over three real sites in a line, as a user runs it (`skupper-observer`):
20 connections with their exact octets and the middle site in their trace, then the
middle site killed: its links go down in the API and in the metrics within 5 s.

    a ---- b ---- c     listener "hash" at a, connector "hash" at c (a HashServer)

Two transports: the observer reads every node's management socket, or it attaches over
AMQP to site a, the only site with an AMQP endpoint, and gets b's and c's records (and
c's co-records, merged at a) as multicast messages across the VAN.
"""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest
from harness import wait_until
from observers import observed_network
from prometheus_client.parser import text_string_to_metric_families
from servers import transfer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def links_by_status(metrics_url: str) -> dict[str, float]:
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "skupper_site_links_total":
                status = sample.labels.get("status", "?")
                found[status] = found.get(status, 0.0) + sample.value
    return found


@pytest.mark.parametrize("transport", ["management", "amqp"])
@pytest.mark.parametrize("b_dials_c", [False, True], ids=["c-dials-b", "b-dials-c"])
def test_twenty_connections_then_the_middle_site_killed(
    tmp_path, b_dials_c: bool, transport: str
) -> None:
    """A link's record is kept by the router that dialled it: when b dialled c, the
    link's own record dies with b, and the observer must still say it is down."""
    links = [("a", "b"), ("b", "c") if b_dials_c else ("c", "b")]
    with observed_network(tmp_path, ["a", "b", "c"], links, transport) as net:
        metrics = f"{net.base}metrics"

        def up_links() -> int:
            try:
                return len(net.results("routerlinks", "status=up"))
            except OSError:
                return 0

        wait_until(lambda: up_links() == 2, 30, interval=0.5, what="2 links up")
        # when b dialled c, both links are known from a's and b's records: c's own
        # records may come a beacon later (over AMQP the observer finds c by its beacon)
        wait_until(
            lambda: sorted(s["name"] for s in net.results("sites")) == ["a", "b", "c"],
            30,
            interval=0.5,
            what="3 sites",
        )

        sizes = [(100 * n, 1000 * n + 1) for n in range(20)]
        for send, back in sizes:
            assert transfer(net.port, send, back, seed=send) == (True, True, None)

        def ended() -> list[dict]:
            found = net.results("connections", "state=terminated&routingKey=hash")
            return [c for c in found if c["latencyReverse"]]  # both sides' last word

        wait_until(lambda: len(ended()) == 20, 30, interval=0.5, what="20 ended connections")
        conns = sorted(ended(), key=lambda c: c["octetCount"])
        # the hash protocol: 8 bytes of header, then the payload; back: a 32-byte digest
        assert [(c["octetCount"], c["octetReverseCount"]) for c in conns] == [
            (8 + send, 32 + back) for send, back in sizes
        ]
        for conn in conns:
            assert conn["latency"] > 0
            assert conn["traceSites"] == ["a", "b", "c"]
            assert (conn["sourceSiteName"], conn["destSiteName"]) == ("a", "c")
        [service] = net.results("services", "name=hash")
        assert (service["listenerCount"], service["connectorCount"]) == (1, 1)
        assert links_by_status(metrics).get("up") == 2

        net.mesh["b"].kill()
        killed = time.monotonic()
        wait_until(
            lambda: len(net.results("routerlinks", "status=down")) == 2,
            5,
            interval=0.2,
            what="both links down in the API",
        )
        wait_until(
            lambda: links_by_status(metrics).get("down") == 2,
            5 - (time.monotonic() - killed) + 0.5,
            interval=0.2,
            what="both links down in the metrics",
        )
        if transport == "amqp":
            # b is gone and c is cut off from a: both fall silent over the VAN, and the
            # observer forgets a silent source after 30 s, with its records
            wait_until(
                lambda: [s["name"] for s in net.results("sites")] == ["a"],
                45,
                interval=1,
                what="b and c forgotten",
            )
            assert len(net.results("connections", "state=terminated&routingKey=hash")) == 20


def test_the_observer_killed_and_started_again_never_disturbs_the_routers(tmp_path) -> None:
    """Traffic runs while the observer (over AMQP) is killed with SIGKILL and started
    again: every transfer completes intact, the nodes stay up, and the new observer
    sees both sites and the connections made after it attached."""
    with observed_network(tmp_path, ["a", "b"], [("a", "b")], "amqp") as net:
        wait_until(
            lambda: len(net.results("sites")) == 2, 30, interval=0.5, what="both sites seen"
        )
        results: list[tuple[bool, bool, object]] = []
        stop = threading.Event()

        def traffic() -> None:
            seed = 0
            while not stop.is_set():
                seed += 1
                results.append(transfer(net.port, 5000, 5000, seed=seed))

        thread = threading.Thread(target=traffic, daemon=True)
        thread.start()
        try:
            wait_until(lambda: len(results) >= 20, 20, what="traffic before the kill")
            net.observer.kill()
            net.observer.wait(10)
            before = len(results)
            wait_until(lambda: len(results) >= before + 50, 30, what="traffic after the kill")
            net.start_observer()
            wait_until(
                lambda: len(net.results("sites")) == 2, 30, interval=0.5, what="sites seen again"
            )
            restarted = len(results)
            wait_until(lambda: len(results) >= restarted + 20, 30, what="traffic after it")

            def counted() -> int:
                found = net.results("connections", "state=all&routingKey=hash")
                return len(found)

            wait_until(lambda: counted() >= 10, 20, interval=0.5, what="new connections seen")
        finally:
            stop.set()
            thread.join(30)
        assert all(r == (True, True, None) for r in results), [r for r in results if r[2]][:3]
        assert all(node.alive for node in net.mesh.nodes.values())
