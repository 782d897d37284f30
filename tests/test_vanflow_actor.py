"""The node's VanflowActor in process: typed facts in, vanflow messages out through its
management outbox, read back by the observer's collector."""

from __future__ import annotations

import gevent

from skupper_actors.actors.context import RouterContext
from skupper_actors.actors.vanflow import VanflowActor
from skupper_actors.actors.vanflow_messages import (
    VANFLOW,
    AdaptorStarted,
    BiflowClosed,
    BiflowOpened,
    CoRecordOpened,
    CoRecordsReceived,
    DrainVanflow,
    FirstByteBack,
    FlushRequested,
)
from skupper_actors.kernel import Registry, spawn
from skupper_actors.observer.collector import Collector
from skupper_actors.protocol.vanflow import Attr, Record, RecordType

NOW = 1_700_000_000.0
CLOCK = [NOW]  # the actor's wall clock, moved by the test


def started() -> tuple[RouterContext, object, Collector]:
    CLOCK[0] = NOW
    ctx = RouterContext(
        router_id="west", instance=1, registry=Registry(), server_tls=None, client_tls=None
    )
    ref = spawn(VanflowActor(ctx, clock=lambda: CLOCK[0]), name=VANFLOW.name, registry=ctx.registry)
    return ctx, ref, Collector(now=NOW)


def read(ref, collector: Collector) -> None:
    for data in ref.ask(DrainVanflow()):
        collector.receive_bytes(data, now=NOW)


def test_a_local_connection_and_a_remote_corecord_make_one_record_each(
    no_leaked_greenlets: None,
) -> None:
    ctx, ref, collector = started()
    try:
        read(ref, collector)  # the first read: a consumer exists from now on
        ref.tell(AdaptorStarted(kind="listener", name="web", routing_key="web", host="h", port=1))
        ref.tell(AdaptorStarted(kind="connector", name="web", routing_key="web", host="s", port=2))
        local = ctx.flow_ids.next()
        ref.tell(
            BiflowOpened(
                identity=local,
                listener="web",
                source_host="10.0.0.1",
                source_port=5,
                at=NOW,
                octets=lambda: (3, 4),
            )
        )
        ref.tell(FirstByteBack(identity=local, latency=0.002))
        # the same node's connector: its co-record merges at once
        ref.tell(
            CoRecordOpened(
                identity=local,
                connector="web",
                proxy_host="127.0.0.1",
                proxy_port=40000,
                trace="0/west",
                at=NOW,
            )
        )
        ref.tell(FirstByteBack(identity=local, latency=0.001, connector_side=True))
        ref.tell(BiflowClosed(identity=local, at=NOW + 1, octets=30, octets_reverse=40))
        remote = ctx.flow_ids.next()
        ref.tell(
            BiflowOpened(
                identity=remote,
                listener="web",
                source_host="10.0.0.2",
                source_port=6,
                at=NOW,
                octets=lambda: (0, 0),
            )
        )
        part = Record(
            type=RecordType.BIFLOW_TPORT,
            identity=remote,
            attrs={Attr.CONNECTOR: "east0:4", Attr.PROCESS_LATENCY: 900},
        )
        ref.tell(CoRecordsReceived(records=(part,)))
        gevent.sleep(0.5)  # two ticks
        read(ref, collector)
        flows = collector.by_type[RecordType.BIFLOW_TPORT]
        assert set(flows) == {local, remote}
        merged = flows[local].attrs
        assert merged[Attr.OCTETS] == 30 and merged[Attr.OCTETS_REVERSE] == 40
        assert merged[Attr.LATENCY] == 2000 and merged[Attr.PROCESS_LATENCY] == 1000
        assert merged[Attr.PROXY_PORT] == "40000" and merged[Attr.TRACE] == "0/west"
        (listener,) = collector.by_type[RecordType.LISTENER]
        assert merged[Attr.PARENT] == listener
        assert flows[remote].attrs[Attr.PROCESS_LATENCY] == 900
        assert {s.get_str(Attr.NAME) for s in collector.by_type[RecordType.SITE].values()} == {
            "west"
        }
        # a FLUSH: every live record again, in full (a second later: once a second each)
        CLOCK[0] += 2
        ref.tell(FlushRequested())
        gevent.sleep(0.5)
        again = Collector(now=NOW)
        read(ref, again)
        assert set(again.by_type[RecordType.LISTENER]) == {listener}
        assert again.by_type[RecordType.BIFLOW_TPORT][remote].attrs[Attr.SOURCE_PORT] == "6"
    finally:
        ref.stop()


def test_the_management_outbox_is_a_consumer_while_read_and_bounded() -> None:
    from skupper_actors.actors.vanflow_outbox import ManagementOutbox
    from skupper_actors.protocol.vanflow import heartbeat

    now = [0.0]
    outbox = ManagementOutbox("abcde:0", size=3, idle_after=30, clock=lambda: now[0])
    assert outbox.consumers() == frozenset()  # nobody has read: the node sends nothing
    assert outbox.drain() == ()
    assert "mc/sfe.abcde:0.flows" in outbox.consumers()
    outbox.send([heartbeat("abcde:0", n) for n in range(5)])
    assert len(outbox.drain()) == 3 and outbox.dropped == 2  # the newest three
    now[0] = 29.0
    outbox.send([heartbeat("abcde:0", 9)])
    assert outbox.consumers()
    now[0] = 59.0  # 30 s since the last read: the reader is gone
    assert outbox.consumers() == frozenset() and outbox.drain() == ()


def test_over_amqp_nothing_is_sent_until_a_receiver_exists_then_flush_and_corecords_in(
    no_leaked_greenlets: None,
) -> None:
    """The node's own MessageRouter: no receiver for the vanflow addresses anywhere, no
    delivery at all; a client's receivers (an internal one here, a real LocalEndpoint)
    get the beacon and the records; a FLUSH and another router's co-record sent to the
    actor's addresses through the router reach it."""
    from skupper_actors.protocol.messaging.local import LocalEndpoint
    from skupper_actors.protocol.vanflow import (
        BEACON_ADDRESS,
        Beacon,
        corecord_address,
        decode,
        direct_address,
        encode,
        flows_address,
        flush,
        records_address,
        records_message,
    )

    ctx, ref, collector = started()
    router = ctx.messages
    try:
        ref.tell(AdaptorStarted(kind="listener", name="web", routing_key="web", host="h", port=1))
        gevent.sleep(1.0)  # five ticks with no consumer anywhere
        assert not any(a.startswith("mc/sfe") for a in router.addresses())
        source = ctx.flow_ids.source_id
        # the actor receives on sfe.<id> and vfcr.<id>, as a client's receivers are
        assert router.has_destination(direct_address(source))
        assert router.has_destination(corecord_address(source))

        observer = LocalEndpoint(router)
        got: list[tuple[str, bytes]] = []
        for address in (BEACON_ADDRESS, records_address(source), flows_address(source)):
            observer.receive(address, lambda a, d: got.append((a, d)))
        gevent.sleep(0.5)
        beacons = [decode(d) for a, d in got if a == BEACON_ADDRESS]
        assert beacons and isinstance(beacons[0], Beacon) and beacons[0].source == source
        for _address, data in got:
            collector.receive_bytes(data, now=NOW, source=source)
        assert {s.get_str(Attr.NAME) for s in collector.by_type[RecordType.SITE].values()} == {
            "west"
        }
        assert router.addresses()[BEACON_ADDRESS]["out"] >= 1

        # a biflow of ours, its connector side's co-record from "another router"
        identity = ctx.flow_ids.next()
        ref.tell(
            BiflowOpened(
                identity=identity,
                listener="web",
                source_host="10.0.0.1",
                source_port=5,
                at=NOW,
                octets=lambda: (0, 0),
            )
        )
        part = Record(type=RecordType.BIFLOW_TPORT, identity=identity, attrs={Attr.TRACE: "0/x"})
        other = LocalEndpoint(router)
        assert other.send(
            corecord_address(source), encode(records_message(corecord_address(source), [part]))
        )
        # a FLUSH: every live record in full again (a second later: once a second each)
        CLOCK[0] += 2
        got.clear()
        assert other.send(direct_address(source), encode(flush(source)))
        gevent.sleep(0.6)
        again = Collector(now=NOW)
        for _address, data in got:
            again.receive_bytes(data, now=NOW, source=source)
        assert set(again.by_type[RecordType.LISTENER])
        assert again.by_type[RecordType.BIFLOW_TPORT][identity].attrs[Attr.TRACE] == "0/x"
        # garbage to its addresses: counted, never a crash
        assert other.send(direct_address(source), b"\x00not amqp")
        gevent.sleep(0.3)
        assert ref.alive and ctx.health.counters.get("vanflow_bad_input") == 1
        observer.close()
        gevent.sleep(0.5)
        sent = router.addresses()[BEACON_ADDRESS]["in"]
        gevent.sleep(0.6)
        assert router.addresses()[BEACON_ADDRESS]["in"] == sent  # no consumer: no more
    finally:
        ref.stop()
