"""The observer's collector on a manual clock, fed by the real emitter's messages."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from vanflow_net import EAST_SITE, T0, WEST_SITE, TwoSites

from skupper_actors.observer.collector import Collector, SendFlush, Subscribe, Unsubscribe
from skupper_actors.protocol.vanflow import (
    Attr,
    Beacon,
    Heartbeat,
    Record,
    RecordBatch,
    RecordType,
    encode,
)


def feed(collector: Collector, sent: list, now: float) -> list:
    effects = []
    for source, message in sent:
        effects += collector.receive_bytes(encode(message), now=now, source=source)
    return effects


def test_beacon_subscribes_then_first_heartbeat_flushes() -> None:
    collector = Collector(now=T0)
    effects = collector.receive(
        Beacon(source="abcde:0", address="mc/sfe.abcde:0", direct="sfe.abcde:0"), now=T0
    )
    assert effects == [
        Subscribe(source="abcde:0", address="mc/sfe.abcde:0"),
        Subscribe(source="abcde:0", address="mc/sfe.abcde:0.flows"),
        Subscribe(source="abcde:0", address="mc/sfe.abcde:0.logs"),
    ]
    assert collector.receive(Beacon(source="abcde:0", address="x", direct="y"), now=T0 + 1) == []
    assert collector.receive(Heartbeat(source="abcde:0", now=1), now=T0 + 2) == [
        SendFlush(source="abcde:0", address="sfe.abcde:0")
    ]
    assert collector.receive(Heartbeat(source="abcde:0", now=2), now=T0 + 4) == []


def test_a_controller_source_is_heard_on_its_heartbeats_address() -> None:
    collector = Collector(now=T0)
    effects = collector.receive(
        Beacon(
            source="uuid-1", source_type="CONTROLLER", address="mc/sfe.uuid-1", direct="sfe.uuid-1"
        ),
        now=T0,
    )
    assert [e.address for e in effects] == ["mc/sfe.uuid-1", "mc/sfe.uuid-1.heartbeats"]


def test_flush_after_five_seconds_without_a_word_and_forget_after_thirty() -> None:
    collector = Collector(now=T0)
    collector.receive(Beacon(source="s:0", address="mc/sfe.s:0", direct="sfe.s:0"), now=T0)
    collector.apply(Record(type=RecordType.ROUTER, identity="s:0", attrs={}), now=T0, sender="s:0")
    assert collector.tick(T0 + 4.9) == []
    assert collector.tick(T0 + 5) == [SendFlush(source="s:0", address="sfe.s:0")]
    assert collector.tick(T0 + 29.9) == []
    effects = collector.tick(T0 + 30)
    assert all(isinstance(e, Unsubscribe) for e in effects) and len(effects) == 3
    assert collector.sources == {} and collector.records == {}
    assert collector.stats.sources_forgotten == 1
    # heard again: discovered anew, subscribed and flushed anew
    assert len(collector.receive(Beacon(source="s:0", address="a", direct="d"), now=T0 + 31)) == 3


def test_two_sites_from_the_real_emitter() -> None:
    net = TwoSites()
    collector = Collector(now=T0)
    flow = net.connect(T0, octets=100, reverse=2000, port=40000)
    feed(collector, net.tick(T0 + 0.1), T0 + 0.1)
    assert set(collector.by_type[RecordType.SITE]) == {WEST_SITE, EAST_SITE}
    assert set(collector.sources) == {"west0:0", "east0:0"}
    merged = collector.records[flow].attrs
    assert merged[Attr.OCTETS] == 100 and merged[Attr.OCTETS_REVERSE] == 2000
    assert merged[Attr.CONNECTOR] == net.connector and merged[Attr.PROCESS_LATENCY] == 400
    net.close(flow, T0 + 2)
    feed(collector, net.tick(T0 + 2), T0 + 2)
    assert collector.records[flow].end == int((T0 + 2) * 1e6)


def _parts() -> list[Record]:
    west = {Attr.PARENT: "west0:3", Attr.SOURCE_HOST: "127.0.0.1", Attr.START_TIME: 5}
    return [
        Record(type=RecordType.BIFLOW_TPORT, identity="west0:9", attrs=west),
        Record(
            type=RecordType.BIFLOW_TPORT,
            identity="west0:9",
            attrs={Attr.CONNECTOR: "east0:4", Attr.PROCESS_LATENCY: 40},
        ),
        Record(
            type=RecordType.BIFLOW_TPORT,
            identity="west0:9",
            attrs={Attr.OCTETS: 10, Attr.LATENCY: 90},
        ),
        Record(
            type=RecordType.BIFLOW_TPORT,
            identity="west0:9",
            attrs={Attr.ERROR_CONNECTOR_SIDE: "amqp:connection:forced reset"},
        ),
        Record(type=RecordType.BIFLOW_TPORT, identity="west0:9", attrs={Attr.END_TIME: 77}),
    ]


@settings(max_examples=50, deadline=None)
@given(st.permutations(range(5)))
def test_biflow_parts_merge_in_any_order(order: list[int]) -> None:
    parts = _parts()
    collector = Collector(now=T0)
    for index in order:
        collector.receive(RecordBatch(records=(parts[index],)), now=T0, source="east0:0")
    expected = {}
    for part in parts:
        expected.update(part.attrs)
    (stored,) = collector.by_type[RecordType.BIFLOW_TPORT].values()
    assert stored.attrs == expected and stored.owner == "west0:0"
    assert stored.ended_at == T0


def test_ended_flows_kept_their_time_and_within_the_bound() -> None:
    collector = Collector(now=T0, flow_ttl=60, max_ended_flows=3)
    for n in range(5):
        attrs = {Attr.START_TIME: 1, Attr.END_TIME: 2}
        collector.apply(
            Record(type=RecordType.BIFLOW_TPORT, identity=f"w:{n}", attrs=attrs), now=T0 + n
        )
    assert sorted(collector.by_type[RecordType.BIFLOW_TPORT]) == ["w:2", "w:3", "w:4"]
    assert collector.stats.ended_flows_evicted == 2
    collector.tick(T0 + 62.5)
    assert sorted(collector.by_type[RecordType.BIFLOW_TPORT]) == ["w:3", "w:4"]
    collector.tick(T0 + 64)
    assert collector.records == {}


def test_ended_log_records_are_kept_their_time_only() -> None:
    collector = Collector(now=T0, flow_ttl=10)
    attrs = {Attr.LOG_SEVERITY: 2, Attr.LOG_TEXT: "x", Attr.END_TIME: 1}
    collector.apply(Record(type=RecordType.LOG, identity="w:7", attrs=attrs), now=T0)
    collector.tick(T0 + 9)
    assert list(collector.by_type[RecordType.LOG]) == ["w:7"]
    collector.tick(T0 + 10)
    assert collector.records == {}


def test_ended_flows_outlive_a_forgotten_source_live_ones_do_not() -> None:
    collector = Collector(now=T0)
    collector.receive(Beacon(source="w:0", address="a", direct="d"), now=T0)
    ended = {Attr.END_TIME: 9}
    for identity, attrs in (("w:1", ended), ("w:2", {})):
        collector.apply(
            Record(type=RecordType.BIFLOW_TPORT, identity=identity, attrs=attrs), now=T0
        )
    collector.tick(T0 + 31)
    assert list(collector.records) == ["w:1"]


def test_malformed_and_unknown_input_is_counted_and_ignored() -> None:
    collector = Collector(now=T0)
    assert collector.receive_bytes(b"\x00garbage", now=T0) == []
    body = [{"x": 1}, {0: 200, 1: "a:1"}]
    from proton import Message, uint

    raw = Message(
        subject="RECORD", body=[*body, {uint(0): uint(4), uint(1): "a:2", uint(999): "?"}]
    )
    collector.receive_bytes(raw.encode(), now=T0)
    collector.apply(Record(type=RecordType.SITE, identity="a:2", attrs={}), now=T0)
    assert collector.stats.decode_errors == 1
    assert collector.stats.problems.counts == {
        "record_without_identity": 1,
        "unknown_record_type": 1,
        "unknown_attribute": 1,
        "record_type_changed": 1,
    }
    assert list(collector.records) == ["a:2"]
    assert collector.records["a:2"].type is RecordType.LISTENER


def test_memory_of_ended_connections_is_bounded() -> None:
    """The stated bound (docs/adr/0031): at most 2 KiB per kept connection, measured with
    tracemalloc over the collector alone; past ``max_ended_flows`` the oldest go."""
    import tracemalloc

    net = TwoSites()
    collector = Collector(now=T0, max_ended_flows=2000)
    feed(collector, net.tick(T0), T0)
    now, wire = T0, []
    for _ in range(6):
        for n in range(500):
            flow = net.connect(now, octets=1000 + n, reverse=5000 + n, port=10000 + n)
            net.close(flow, now)
        now += 1
        wire.append(([(s, encode(m)) for s, m in net.tick(now)], now))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for messages, at in wire:
        for source, data in messages:
            collector.receive_bytes(data, now=at, source=source)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    kept = len(collector.by_type[RecordType.BIFLOW_TPORT])
    assert kept == 2000 and collector.stats.ended_flows_evicted == 1000
    per_flow = held / kept
    print(f"ended connections kept: {kept}, {per_flow:.0f} bytes each")
    assert per_flow < 2048, per_flow
    assert next(iter(collector._ended)) == net.flows[1000]


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("update"),
            st.integers(0, 4),
            st.sampled_from([Attr.OCTETS, Attr.NAME]),
            st.integers(0, 3),
        ),
        st.tuples(st.just("tick"), st.floats(0.05, 1.5)),
        st.tuples(st.just("flush")),
        st.tuples(st.just("lose")),  # the collector misses the next message
    ),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(ops)
def test_delta_patching_converges_on_the_emitters_state(steps: list[tuple]) -> None:
    """Whatever the order of updates, ticks and flushes, once the emitter has sent what
    is due the collector's copy of each record equals the emitter's; a lost message is
    made good by the next flush."""
    from vanflow_net import consuming

    from skupper_actors.protocol.vanflow import Emitter

    emitter = consuming(Emitter("prop0", now=T0))
    collector = Collector(now=T0)
    idents = [emitter.add(RecordType.LISTENER, {Attr.NAME: "l"}, now=T0) for _ in range(5)]
    now, lose, lost = T0, False, False
    for step in steps:
        if step[0] == "update":
            _, index, code, value = step
            emitter.update(idents[index], {code: value if code == Attr.OCTETS else f"n{value}"})
        elif step[0] == "tick":
            now += step[1]
            for message in emitter.tick(now):
                if lose and message.subject == "RECORD":
                    lose, lost = False, True
                    continue
                collector.receive_bytes(encode(message), now=now, source="prop0:0")
        elif step[0] == "flush":
            emitter.flush()
        else:
            lose = True
    if lost:
        emitter.flush()  # a loss is repaired by a flush (deltas alone cannot)
    for _ in range(3):
        now += 1.0
        for message in emitter.tick(now):
            collector.receive_bytes(encode(message), now=now, source="prop0:0")
    for ident in idents:
        assert collector.records[ident].attrs == emitter.get(ident)
