"""Wire encoding of routing control messages: round trips and every kind of bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from skupper_actors.protocol.addresses import ROUTING_PROTOCOL_VERSION
from skupper_actors.protocol.routing import (
    ControlMessage,
    ControlMessageError,
    Hello,
    LinkStateRequest,
    LinkStateUpdate,
    MobileAddressRequest,
    MobileAddressUpdate,
    RouterAdvertisement,
    decode,
    encode,
    op_name,
)

pytestmark = pytest.mark.timeout(10)

MESSAGES: list[ControlMessage] = [
    Hello(id="site-a", instance=1700000000000, seen=("site-b", "site-c")),
    Hello(id="site-a", instance=1, seen=()),
    RouterAdvertisement(id="site-a", instance=7, ls_seq=3, mobile_seq=0, ra_seq=2**32 - 1),
    LinkStateUpdate(id="site-a", instance=7, ls_seq=4, ls={"site-b": 1, "site-c": 20}),
    LinkStateUpdate(id="site-a", instance=7, ls_seq=0, ls={}),
    LinkStateRequest(id="site-b", instance=9, origin="site-a"),
    MobileAddressUpdate(id="site-a", instance=7, mobile_seq=5, add=("db",), delete=("web",)),
    MobileAddressUpdate(id="site-a", instance=7, mobile_seq=6, exist=("db", "mc/flows")),
    MobileAddressUpdate(id="site-a", instance=7, mobile_seq=7, exist=()),
    MobileAddressRequest(id="site-b", instance=9, origin="site-a", have_seq=4),
]
OPS = {
    Hello: "HELLO",
    RouterAdvertisement: "RA",
    LinkStateUpdate: "LSU",
    LinkStateRequest: "LSR",
    MobileAddressUpdate: "MAU",
    MobileAddressRequest: "MAR",
}


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: op_name(m))
def test_round_trip_through_plain_json(message: ControlMessage) -> None:
    wire = encode(message)
    assert wire["op"] == OPS[type(message)]
    assert wire["pv"] == ROUTING_PROTOCOL_VERSION
    # Only plain JSON/AMQP-safe values travel.
    assert json.loads(json.dumps(wire)) == wire
    assert decode(json.loads(json.dumps(wire))) == message


def test_mobile_address_update_wire_keys() -> None:
    difference = encode(MESSAGES[6])
    assert difference["del"] == ["web"] and "exist" not in difference
    absolute = encode(MESSAGES[7])
    assert absolute["exist"] == ["db", "mc/flows"]
    assert "add" not in absolute and "del" not in absolute


def valid(op: str) -> dict[str, Any]:
    return next(encode(m) for m in MESSAGES if OPS[type(m)] == op)


def expect_error(obj: object, field: str | None, text: str) -> ControlMessageError:
    with pytest.raises(ControlMessageError) as caught:
        decode(obj)
    assert caught.value.field == field
    assert text in str(caught.value)
    assert isinstance(caught.value, ValueError)
    return caught.value


@pytest.mark.parametrize("op", sorted(set(OPS.values())))
def test_unknown_field_is_refused(op: str) -> None:
    expect_error({**valid(op), "colour": "blue"}, "colour", f"{op}.colour: Unknown field")


@pytest.mark.parametrize("op", sorted(set(OPS.values())))
def test_missing_field_is_refused(op: str) -> None:
    body = valid(op)
    del body["instance"]
    expect_error(body, "instance", f"{op}.instance: Missing data")


@pytest.mark.parametrize("op", sorted(set(OPS.values())))
@pytest.mark.parametrize("bad", ["7", 7.5, True, None, [7]])
def test_wrong_type_is_refused(op: str, bad: object) -> None:
    expect_error({**valid(op), "instance": bad}, "instance", f"{op}.instance")


@pytest.mark.parametrize("op", sorted(set(OPS.values())))
def test_higher_version_is_refused(op: str) -> None:
    # A newer version may add fields; the version is judged before anything else.
    body = {**valid(op), "pv": ROUTING_PROTOCOL_VERSION + 1, "future": True}
    expect_error(body, "pv", "newer than supported")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"op": "LSU", "ls": {"site-b": 0}}, "ls"),  # costs start at 1
        ({"op": "LSU", "ls": {"site-b": "1"}}, "ls"),
        ({"op": "LSU", "ls": ["site-b"]}, "ls"),
        ({"op": "LSU", "ls_seq": -1}, "ls_seq"),
        ({"op": "LSU", "ls_seq": 2**32}, "ls_seq"),
        ({"op": "HELLO", "seen": "site-b"}, "seen"),
        ({"op": "HELLO", "seen": [3]}, "seen"),
        ({"op": "HELLO", "id": ""}, "id"),
        ({"op": "HELLO", "pv": 0}, "pv"),
        ({"op": "HELLO", "pv": "1"}, "pv"),
        ({"op": "MAU", "exist": ["a"]}, "exist"),  # absolute and difference at once
        ({"op": "MAR", "origin": 5}, "origin"),
    ],
)
def test_bad_values_are_refused(patch: dict[str, Any], field: str) -> None:
    expect_error({**valid(patch["op"]), **patch}, field, field)


@pytest.mark.parametrize(
    ("obj", "field", "text"),
    [
        ([], None, "must be a map"),
        ("HELLO", None, "must be a map"),
        ({"pv": 1}, "op", "op: missing"),
        ({"op": "PING", "pv": 1}, "op", "unknown message type 'PING'"),
        ({"op": 3, "pv": 1}, "op", "unknown message type 3"),
    ],
)
def test_bad_envelope_is_refused(obj: object, field: str | None, text: str) -> None:
    expect_error(obj, field, text)
