"""The sans-IO vanflow emitter on a manual clock: gating, deltas, flush, rate, batches, cap."""

from __future__ import annotations

import itertools

from skupper_actors.protocol.vanflow import (
    BEACON_ADDRESS,
    Attr,
    Emitter,
    EmitterLimits,
    Outgoing,
    Record,
    RecordBatch,
    RecordType,
    decode,
    encode,
    flows_address,
    records_address,
)

T0 = 1_700_000_000.0
SOURCE = "abcde:0"


def sent_records(out: list[Outgoing]) -> list[Record]:
    got = []
    for message in out:
        decoded = decode(encode(message))
        if isinstance(decoded, RecordBatch):
            got.extend(decoded.records)
    return got


def consuming(emitter: Emitter) -> Emitter:
    for address in (BEACON_ADDRESS, records_address(SOURCE), flows_address(SOURCE)):
        emitter.set_consumer(address, True)
    return emitter


def test_nothing_goes_out_until_a_consumer_exists() -> None:
    emitter = Emitter("abcde", now=T0)
    emitter.add(RecordType.ROUTER, {Attr.NAME: "0/west"}, now=T0, identity=SOURCE)
    for step in range(30):
        assert emitter.tick(T0 + step) == []
    emitter.set_consumer(BEACON_ADDRESS, True)
    out = emitter.tick(T0 + 30)
    assert [m.subject for m in out] == ["BEACON"]
    emitter.set_consumer(records_address(SOURCE), True)
    out = emitter.tick(T0 + 31)
    (router,) = sent_records(out)
    assert router.identity == SOURCE and router.attrs[Attr.NAME] == "0/west"


def test_heartbeat_every_two_seconds_and_beacon_every_fifth() -> None:
    emitter = consuming(Emitter("abcde", now=T0))
    subjects = []
    for tenth in range(1, 201):  # 20 s at 10 ticks a second
        subjects += [m.subject for m in emitter.tick(T0 + tenth / 10)]
    assert subjects.count("HEARTBEAT") == 10
    assert subjects.count("BEACON") == 3  # the first at once, then at 10 s and 20 s


def test_deltas_after_the_first_emission_and_full_after_flush() -> None:
    emitter = consuming(Emitter("abcde", now=T0))
    ident = emitter.add(RecordType.LISTENER, {Attr.NAME: "web", Attr.DEST_PORT: "9090"}, now=T0)
    assert ident == "abcde:1"
    (first,) = sent_records(emitter.tick(T0))
    assert first.attrs == {Attr.NAME: "web", Attr.DEST_PORT: "9090", Attr.START_TIME: T0 * 10**6}
    emitter.update(ident, {Attr.NAME: "web", Attr.FLOW_COUNT_L4: 3})
    (delta,) = sent_records(emitter.tick(T0 + 1))
    assert delta.type is RecordType.LISTENER and delta.attrs == {Attr.FLOW_COUNT_L4: 3}
    emitter.update(ident, {Attr.FLOW_COUNT_L4: 3})  # unchanged: nothing to send
    assert sent_records(emitter.tick(T0 + 2)) == []
    emitter.flush()
    (full,) = sent_records(emitter.tick(T0 + 3))
    assert full.attrs == {**first.attrs, Attr.FLOW_COUNT_L4: 3}


def test_a_record_goes_out_at_most_once_a_second() -> None:
    emitter = consuming(Emitter("abcde", now=T0))
    ident = emitter.add(RecordType.LINK, {Attr.LINK_COST: 1}, now=T0)
    assert ident is not None
    times = []
    for step in range(1, 31):
        now = T0 + step / 10
        emitter.update(ident, {Attr.OCTETS: step})
        if sent_records(emitter.tick(now)):
            times.append(now)
    assert len(times) == 3
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    (last,) = sent_records(emitter.tick(T0 + 5))
    assert last.attrs == {Attr.OCTETS: 30}  # the latest value, not lost


def test_at_most_fifty_records_a_message() -> None:
    emitter = consuming(Emitter("abcde", now=T0))
    for n in range(120):
        emitter.add(RecordType.BIFLOW_TPORT, {Attr.SOURCE_PORT: str(n)}, now=T0)
    out = [m for m in emitter.tick(T0) if m.subject == "RECORD"]
    assert [len(m.body or []) for m in out] == [50, 50, 20]
    assert {m.address for m in out} == {flows_address(SOURCE)}


def test_flow_cap_stops_above_the_limit_and_resumes_below_the_low_mark() -> None:
    limits = EmitterLimits(max_flows=10, resume_flows=8)
    emitter = consuming(Emitter("abcde", now=T0, limits=limits))
    made = [emitter.add(RecordType.BIFLOW_TPORT, {}, now=T0) for _ in range(12)]
    assert made.count(None) == 2 and emitter.stats.flows_not_made == 2
    assert emitter.add(RecordType.ROUTER, {}, now=T0) is not None  # only flows are capped
    live = [ident for ident in made if ident is not None]
    emitter.end(live[0], now=T0)
    emitter.tick(T0 + 10)  # sent and past the 5 s keep: gone, 9 live
    assert emitter.live_flows == 9
    assert emitter.add(RecordType.BIFLOW_TPORT, {}, now=T0 + 10) is None  # not yet below 8
    for ident in live[1:3]:
        emitter.end(ident, now=T0 + 10)
    emitter.tick(T0 + 20)
    assert emitter.live_flows == 7
    assert emitter.add(RecordType.BIFLOW_TPORT, {}, now=T0 + 20) is not None
    assert emitter.stats.flows_not_made == 3


def test_ended_biflow_is_kept_five_seconds_for_late_corecord_updates() -> None:
    emitter = consuming(Emitter("abcde", now=T0))
    ident = emitter.add(RecordType.BIFLOW_TPORT, {Attr.OCTETS: 5}, now=T0)
    assert ident is not None
    emitter.tick(T0)
    emitter.end(ident, now=T0 + 1)
    (ended,) = sent_records(emitter.tick(T0 + 1))
    assert ended.attrs == {Attr.END_TIME: (T0 + 1) * 10**6}
    assert emitter.merge_corecord(ident, {Attr.PROCESS_LATENCY: 700, Attr.NAME: "ignored"})
    (late,) = sent_records(emitter.tick(T0 + 3))
    assert late.attrs == {Attr.PROCESS_LATENCY: 700}
    emitter.tick(T0 + 6.5)
    assert emitter.get(ident) is None
    assert not emitter.merge_corecord(ident, {Attr.PROCESS_LATENCY: 1})
    assert emitter.stats.corecords_unmatched == 1


def test_corecord_goes_to_the_base_routers_vfcr_address_with_corecord_attrs_only() -> None:
    emitter = Emitter("zzzzz", now=T0)  # no consumers: co-records go router to router
    assert emitter.add_corecord(
        "abcde:9", {Attr.CONNECTOR: "zzzzz:4", Attr.OCTETS: 10, Attr.PROXY_PORT: "5000"}, now=T0
    )
    (message,) = emitter.tick(T0)
    assert message.address == "vfcr.abcde:0"
    (part,) = sent_records([message])
    assert part.identity == "abcde:9"
    assert part.attrs == {Attr.CONNECTOR: "zzzzz:4", Attr.PROXY_PORT: "5000"}
    emitter.end("abcde:9", now=T0 + 2, attrs={Attr.ERROR_CONNECTOR_SIDE: "reset"})
    (last,) = sent_records(emitter.tick(T0 + 2))
    assert last.attrs == {Attr.ERROR_CONNECTOR_SIDE: "reset"}
    assert len(emitter) == 0
    emitter.flush()  # co-records are never flushed
    assert emitter.tick(T0 + 3) == []


def test_records_ended_without_a_consumer_are_dropped() -> None:
    emitter = Emitter("abcde", now=T0)
    ident = emitter.add(RecordType.LOG, {Attr.LOG_TEXT: "x"}, now=T0)
    assert ident is not None
    emitter.end(ident, now=T0)
    emitter.tick(T0)
    assert len(emitter) == 0


def test_a_new_consumer_gets_live_records_in_full() -> None:
    emitter = Emitter("abcde", now=T0)
    ident = emitter.add(RecordType.CONNECTOR, {Attr.NAME: "db"}, now=T0)
    emitter.tick(T0)
    assert ident is not None and emitter.update(ident, {Attr.FLOW_COUNT_L4: 2})
    emitter.tick(T0 + 1)
    emitter.set_consumer(records_address(SOURCE), True)
    (full,) = sent_records(emitter.tick(T0 + 2))
    assert full.attrs == {Attr.NAME: "db", Attr.FLOW_COUNT_L4: 2, Attr.START_TIME: T0 * 10**6}


def test_corecords_wait_while_nobody_consumes_the_listener_routers_flows() -> None:
    """Co-records cost a message router to router: none while nobody reads the
    listener router's flow records; once someone does, the next change sends them whole."""
    emitter = Emitter("zzzzz", now=T0)
    readers: set[str] = set()
    emitter.corecords_wanted = lambda source: source in readers
    emitter.add_corecord("abcde:9", {Attr.CONNECTOR: "zzzzz:4", Attr.OCTETS: 10}, now=T0)
    assert emitter.tick(T0) == []
    readers.add("abcde:0")
    emitter.end("abcde:9", now=T0 + 2, attrs={Attr.ERROR_CONNECTOR_SIDE: "reset"})
    (part,) = sent_records(emitter.tick(T0 + 2))
    assert part.attrs == {Attr.CONNECTOR: "zzzzz:4", Attr.ERROR_CONNECTOR_SIDE: "reset"}
