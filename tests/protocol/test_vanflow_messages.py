"""Vanflow messages through proton's codec: Skupper's codes both ways, bad content counted."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from proton import Message, uint, ulong

from skupper_actors.protocol.vanflow import (
    INTEGER_ATTRS,
    Attr,
    Beacon,
    Flush,
    Heartbeat,
    Problems,
    Record,
    RecordBatch,
    RecordType,
    VanflowDecodeError,
    beacon,
    decode,
    encode,
    flush,
    heartbeat,
    records_message,
)


def test_skupper_codes() -> None:
    """A few codes checked against skupper-router's vanflow.h by value."""
    assert RecordType.SITE == 0 and RecordType.ROUTER_ACCESS == 15
    assert RecordType.BIFLOW_TPORT == 16 and RecordType.LOG == 14
    assert Attr.OCTETS == 23 and Attr.OCTETS_REVERSE == 58 and Attr.CONNECTOR == 60
    assert Attr.PROCESS_LATENCY == 61 and Attr.ERROR_LISTENER_SIDE == 64
    assert Attr.ERROR_CONNECTOR_SIDE == 65 and Attr.HTTP_PROXY == 67
    assert Attr.LINK_COST == 33 and Attr.OPER_STATUS == 53 and Attr.TRACE == 31


def test_beacon_on_the_wire() -> None:
    raw = encode(beacon("abcde:0"))
    amqp = Message()
    amqp.decode(raw)
    assert amqp.address == "mc/sfe.all" and amqp.subject == "BEACON"
    assert amqp.properties == {
        "v": 1,
        "sourceType": "ROUTER",
        "id": "abcde:0",
        "address": "mc/sfe.abcde:0",
        "direct": "sfe.abcde:0",
    }
    assert type(amqp.properties["v"]) is uint
    assert decode(raw) == Beacon(
        source="abcde:0", source_type="ROUTER", address="mc/sfe.abcde:0", direct="sfe.abcde:0"
    )


def test_heartbeat_and_flush_round_trip() -> None:
    raw = encode(heartbeat("abcde:0", 1_700_000_000_000_000))
    amqp = Message()
    amqp.decode(raw)
    assert type(amqp.properties["now"]) is ulong and amqp.address == "mc/sfe.abcde:0"
    assert decode(raw) == Heartbeat(source="abcde:0", now=1_700_000_000_000_000)
    out = flush("abcde:0")
    assert out.address == "sfe.abcde:0" and decode(encode(out)) == Flush()


def test_record_body_uses_uint_keys_and_ulong_counters() -> None:
    record = Record(
        type=RecordType.BIFLOW_TPORT,
        identity="abcde:7",
        attrs={Attr.OCTETS: 12, Attr.SOURCE_HOST: "127.0.0.1", Attr.PARENT: "abcde:3"},
    )
    amqp = Message()
    amqp.decode(encode(records_message("mc/sfe.abcde:0.flows", [record])))
    (entry,) = amqp.body
    assert all(type(key) is uint for key in entry)
    assert entry[0] == 16 and entry[1] == "abcde:7"
    assert type(entry[23]) is ulong and entry[23] == 12


attr_values = st.sampled_from(sorted(Attr)).flatmap(
    lambda code: st.tuples(
        st.just(int(code)),
        st.integers(0, 2**63) if code in INTEGER_ATTRS else st.text(max_size=20),
    )
)
records = st.builds(
    lambda kind, n, attrs: Record(
        type=kind,
        identity=f"qwert:{n}",
        attrs={k: v for k, v in attrs if k not in (Attr.RECORD_TYPE, Attr.IDENTITY)},
    ),
    st.sampled_from(sorted(RecordType)),
    st.integers(0, 10**6),
    st.lists(attr_values, max_size=12),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(records, min_size=1, max_size=8))
def test_records_round_trip(sent: list[Record]) -> None:
    problems = Problems()
    got = decode(encode(records_message("mc/sfe.qwert:0", sent)), problems)
    assert got == RecordBatch(records=tuple(sent))
    assert problems.counts == {}


def _raw(subject: str, properties: dict[str, Any] | None, body: Any) -> bytes:
    data: bytes = Message(subject=subject, properties=properties, body=body).encode()
    return data


def test_unknown_types_attributes_and_bad_values_are_counted_and_left_out() -> None:
    body = [
        {uint(0): uint(99), uint(1): "x:1"},  # unknown record type
        {uint(0): uint(16)},  # no identity
        "not a map",
        {uint(0): uint(16), uint(1): "x:2", uint(23): "many", uint(500): "?", uint(30): "n"},
        {uint(0): uint(4), uint(1): "x:3", "name": "strings are not codes", uint(18): 80},
    ]
    problems = Problems()
    got = decode(_raw("RECORD", None, body), problems)
    assert got == RecordBatch(
        records=(
            Record(type=RecordType.BIFLOW_TPORT, identity="x:2", attrs={Attr.NAME: "n"}),
            Record(type=RecordType.LISTENER, identity="x:3", attrs={}),
        )
    )
    assert problems.counts == {
        "unknown_record_type": 1,
        "record_without_identity": 1,
        "record_not_a_map": 1,
        "bad_attribute_value": 2,
        "unknown_attribute": 2,
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x00garbage", "unknown vanflow subject None"),  # proton reads it as empty
        (_raw("HELLO", None, None), "unknown vanflow subject"),
        (_raw("BEACON", {"v": uint(2), "id": "a:0"}, None), "version"),
        (_raw("BEACON", {"v": uint(1)}, None), "lacks 'id'"),
        (_raw("HEARTBEAT", {"v": uint(1), "id": "a:0"}, None), "'now'"),
        (_raw("RECORD", None, {"a": 1}), "not a list"),
    ],
)
def test_messages_that_are_not_vanflow_raise_one_error(raw: bytes, message: str) -> None:
    with pytest.raises(VanflowDecodeError, match=message):
        decode(raw)


def test_a_flows_trace_grows_by_transit_router_and_survives_the_header() -> None:
    from skupper_actors.protocol.tcp import forward_header, parse_header, through, trace_of
    from skupper_actors.protocol.tcp.mapping import MAX_TRACE, reverse_header

    header = forward_header("s1", "a", "d", "key", flow_id="abcde:7")
    for router in ("b", "c"):
        sent = through(header, router)
        header = parse_header(sent.routing_key, sent.reply_to, sent.to_properties())
    assert header.flow_id == "abcde:7" and header.trace == "0/b|0/c"
    assert trace_of(header, "d") == "0/a|0/b|0/c|0/d"
    assert through(reverse_header(header), "x") == reverse_header(header)  # forward only
    plain = forward_header("s2", "a", "b", "key")  # no flow: nothing added
    assert through(plain, "x") is plain and "x-skupper-trace" not in plain.to_properties()
    long = parse_header("key", None, {**header.to_properties(), "x-skupper-trace": "x" * 3000})
    assert long.trace is None and MAX_TRACE < 3000  # a hostile length is dropped
