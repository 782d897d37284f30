"""Flow records of a real 2-site run, read through management, into the observer's
collector: sites, link, listener, connector, and one connection per TCP connection with
its octets equal to what the clients sent and received.

a ---- b       listener "hash" at a, connector "hash" at b (a HashServer);
               listener "nowhere" at a, connector "nowhere" at b to a closed port.
"""

from __future__ import annotations

import base64
import time

import pytest
import zmq
from harness import Mesh, NodeProcess, free_port, wait_until
from servers import HashServer, transfer
from test_tcp import add_connector, add_listener, wait_matched

from skupper_actors.observer.api import ObserverApp
from skupper_actors.observer.collector import Collector
from skupper_actors.protocol.vanflow import LOG_WARNING, Attr, RecordType

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def drain(node: NodeProcess) -> list[bytes]:
    """What the node's flow records sent since the last read (the first read attaches)."""
    return [base64.b64decode(m) for m in node.client.request("vanflow").vanflow]


def test_two_sites_records_through_the_collector(tmp_path) -> None:
    server = HashServer()
    closed_port = free_port()  # nothing listens there
    mesh = Mesh(tmp_path, ["a", "b"])
    mesh.link("a", "b")
    port = add_listener(mesh, "a", "hash")
    refused_port = add_listener(mesh, "a", "nowhere")
    lonely_port = add_listener(mesh, "a", "lonely")  # no connector anywhere
    add_connector(mesh, "b", "hash", server.port)
    add_connector(mesh, "b", "nowhere", closed_port)
    collector = Collector(now=time.time())

    def pump() -> None:
        for node in (mesh["a"], mesh["b"]):
            for data in drain(node):
                collector.receive_bytes(data, now=time.time())

    try:
        mesh.start()
        wait_matched(mesh, "a", "hash")
        wait_matched(mesh, "a", "nowhere")
        pump()  # the first read: management becomes the records' consumer
        sizes = [(0, 0), (1, 1), (1000, 2000), (70_000, 5), (300_000, 1_000_000)]
        for send, back in sizes:
            assert transfer(port, send, back, seed=send) == (True, True, None)
        assert transfer(refused_port, 10, 10)[2] is not None  # refused: an error
        assert transfer(lonely_port, 10, 10)[2] is not None  # no destination

        app = ObserverApp(collector, clock=time.time)

        def connections() -> list[dict]:
            pump()
            found = app.get("/api/v2alpha1/connections", {"state": "terminated"})["results"]
            return [c for c in found if c["destSiteName"] is not None or c["listenerError"]]

        def settled() -> bool:
            """Seven ended connections, each with both sides' last word (a record goes out
            at most once a second: a co-record's last delta may come a second later)."""
            found = connections()
            complete = [c for c in found if c["latencyReverse"] or c["routingKey"] != "hash"]
            return len(found) >= 7 and len(complete) == len(found)

        wait_until(settled, 20, interval=0.5, what="7 ended connections, both sides' parts")
        found = connections()
        ok = sorted((c for c in found if c["routingKey"] == "hash"), key=lambda c: c["octetCount"])
        # the hash protocol: 8 bytes of header, then the payload; back: a 32-byte digest
        assert [(c["octetCount"], c["octetReverseCount"]) for c in ok] == [
            (8 + send, 32 + back) for send, back in sizes
        ]
        for conn in ok:
            assert conn["sourceSiteName"] == "a" and conn["destSiteName"] == "b"
            assert conn["latency"] > 0 and conn["latencyReverse"] > 0
            assert conn["traceSites"] == ["a", "b"]
            assert conn["listenerError"] is None and conn["connectorError"] is None
            assert conn["proxyHost"] == "127.0.0.1" and conn["destPort"] == str(server.port)
            assert conn["sourceProcessName"].startswith("site-client-127.0.0.1-")
        (refused,) = [c for c in found if c["routingKey"] == "nowhere"]
        assert "skupper:connect-failed" in refused["connectorError"]
        assert "Connection refused" in refused["connectorError"]
        assert refused["listenerError"]
        (lonely,) = [c for c in found if c["listenerId"] and c["routingKey"] == "lonely"]
        assert lonely["listenerError"] == "skupper:no-destination: no destination for lonely"
        assert lonely["connectorId"] is None and lonely["octetCount"] == 0

        sites = app.get("/api/v2alpha1/sites", {})["results"]
        assert sorted(s["name"] for s in sites) == ["a", "b"]

        def links() -> list[dict]:
            pump()
            return app.get("/api/v2alpha1/routerlinks", {"status": "up"})["results"]

        # a loaded machine may drop the link for a moment (HELLO max age 3 s): its record
        # then says so, and says up again once it is
        wait_until(lambda: len(links()) == 1, 15, interval=0.5, what="the link up")
        (link,) = links()
        assert link["cost"] == 1 and link["routerAccessId"].startswith("access:b:")
        assert (link["sourceSiteName"], link["destinationSiteName"]) == ("a", "b")
        services = app.get("/api/v2alpha1/services", {"sortBy": "name"})["results"]
        assert [(s["name"], s["isBound"]) for s in services] == [
            ("hash", True),
            ("lonely", False),
            ("nowhere", True),
        ]
        assert len(collector.by_type[RecordType.LISTENER]) == 3

        def flow_counts() -> dict[str, int]:
            pump()
            counts = {}
            for kind in ("listeners", "connectors"):
                for item in app.get(f"/api/v2alpha1/{kind}", {"name": "hash"})["results"]:
                    counts[kind] = item["flowCount"]
            return counts

        # connections opened (flowCountL4), read from the adaptors' counters
        wait_until(
            lambda: flow_counts() == {"listeners": 5, "connectors": 5}, 5, what="flow counts"
        )

        # a warning at a node (a bad management request) is a LOG record
        with zmq.Context.instance().socket(zmq.REQ) as sock:
            sock.setsockopt(zmq.RCVTIMEO, 5000)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(f"ipc://{mesh['b'].client.path}")
            sock.send(b"not json")
            assert b"invalid management message" in sock.recv()

        def logs() -> list[str]:
            pump()
            return [
                str(r.attrs.get(Attr.LOG_TEXT))
                for r in collector.by_type[RecordType.LOG].values()
                if r.attrs.get(Attr.LOG_SEVERITY) == LOG_WARNING
            ]

        wait_until(
            lambda: any("management_request_invalid" in text for text in logs()), 5, what="LOG"
        )
        assert collector.stats.decode_errors == 0 and collector.stats.problems.counts == {}
    finally:
        mesh.close()
        server.close()


def test_trace_names_the_transit_router(tmp_path) -> None:
    """a ---- b ---- c: a connection from a's listener to c's connector passes b."""
    server = HashServer()
    mesh = Mesh(tmp_path, ["a", "b", "c"])
    mesh.link("a", "b")
    mesh.link("b", "c")
    port = add_listener(mesh, "a", "hash")
    add_connector(mesh, "c", "hash", server.port)
    collector = Collector(now=time.time())

    def ended() -> list[dict]:
        for site in "abc":
            for data in drain(mesh[site]):
                collector.receive_bytes(data, now=time.time())
        app = ObserverApp(collector, clock=time.time)
        found = app.get("/api/v2alpha1/connections", {"state": "terminated"})["results"]
        return [c for c in found if c["destSiteName"] is not None]

    try:
        mesh.start()
        wait_matched(mesh, "a", "hash")
        ended()  # attach
        assert transfer(port, 100, 100) == (True, True, None)
        wait_until(lambda: len(ended()) == 1, 15, interval=0.5, what="the connection's record")
        (conn,) = ended()
        assert conn["traceRouters"] == ["0/a", "0/b", "0/c"]
        assert conn["traceSites"] == ["a", "b", "c"]
        assert (conn["octetCount"], conn["octetReverseCount"]) == (108, 132)
    finally:
        mesh.close()
        server.close()
