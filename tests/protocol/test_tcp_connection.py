"""The TCP connection machine (protocol.tcp.connection): every sequence of events ends
in a defined state, no byte is reported delivered twice, and a clean end is chosen only
when the far end ended cleanly with every byte delivered; a reset otherwise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from skupper_actors.protocol.tcp import (
    RECEIVE,
    SEND,
    Closing,
    Effect,
    Event,
    Half,
    TcpConnection,
    closing,
)

# A step: bytes written to the socket, or an event. FAR_END / FAR_SHORT are never fed
# directly: the far end's clean end carries an announced length the machine checks.
Written = tuple[str, int]
FarEnd = tuple[str, int | None]
Step = Written | FarEnd | Event

_FED = [e for e in Event if e not in (Event.FAR_END, Event.FAR_SHORT)]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("written"), st.integers(min_value=0, max_value=300_000)),
        st.tuples(st.just("far_end"), st.one_of(st.none(), st.integers(0, 2_000_000))),
        st.tuples(st.just("far_end_exact"), st.just(None)),
        st.sampled_from(_FED),
    ),
    max_size=30,
)


def run(sequence: list[object]) -> tuple[TcpConnection, list[Effect], list[int], dict[str, int]]:
    conn = TcpConnection(window=1 << 20, ack_every=256 << 10)
    effects: list[Effect] = []
    acks: list[int] = []
    facts = {"written": 0, "far_clean_whole": 0, "bad": 0, "local_end": 0}
    for step in sequence:
        if isinstance(step, Event):
            if step is Event.LOCAL_END and conn.send is Half.OPEN:
                facts["local_end"] = 1
            if step is not Event.LOCAL_END and conn.closed is None:
                facts["bad"] = 1  # any failure before the end: never clean after it
            effects += conn.handle(step)
            continue
        kind, value = step  # type: ignore[misc]
        if kind == "written":
            if conn.receive is not Half.OPEN:
                continue  # the actor writes nothing after the receive half is over
            facts["written"] += value
            offset = conn.acker.on_written(value)
            if offset is not None:
                acks.append(offset)
        else:
            length = facts["written"] if kind == "far_end_exact" else value
            if conn.closed is None and conn.receive is Half.OPEN:
                if length == facts["written"]:
                    facts["far_clean_whole"] = 1
                else:
                    facts["bad"] = 1
            effects += conn.far_ended(length)
    return conn, effects, acks, facts


@settings(max_examples=300, deadline=None)
@given(steps)
def test_every_sequence_ends_in_a_defined_state(sequence: list[object]) -> None:
    conn, effects, _, _ = run(sequence)
    assert conn.send in Half and conn.receive in Half
    assert conn.closed == closing(conn.send, conn.receive)
    if conn.closed is Closing.RESET:
        assert Half.OPEN not in (conn.send, conn.receive)
    # every event is defined in every state; once closed, nothing more happens
    was = conn.closed
    for event in Event:
        effects = conn.handle(event)
        if was is not None:
            assert effects == [] and conn.closed is was


@settings(max_examples=300, deadline=None)
@given(steps)
def test_no_byte_is_reported_delivered_twice(sequence: list[object]) -> None:
    conn, _, acks, facts = run(sequence)
    assert acks == sorted(set(acks)), "acknowledged offsets strictly increase"
    assert all(0 < offset <= facts["written"] for offset in acks)
    assert conn.acker.written == facts["written"]


@settings(max_examples=300, deadline=None)
@given(steps)
def test_clean_only_when_the_far_end_ended_whole_and_ours_ended(sequence: list[object]) -> None:
    conn, effects, _, facts = run(sequence)
    clean = Effect.CLOSE in effects
    assert clean == (conn.closed is Closing.CLEAN)
    if clean:
        assert facts["far_clean_whole"] and facts["local_end"] and not facts["bad"]
        assert Effect.RESET not in effects
        assert effects.count(Effect.END_STREAM) == 1
        assert effects.count(Effect.SHUTDOWN_WRITE) == 1
    if facts["bad"]:
        assert not clean
    if conn.closed is not None and not clean:
        assert effects[-1] is Effect.RESET and effects.count(Effect.RESET) == 1
    # the socket's write side sees an EOF only after a whole far stream
    if Effect.SHUTDOWN_WRITE in effects:
        assert facts["far_clean_whole"]


def test_a_short_far_end_resets_and_aborts_our_stream() -> None:
    conn = TcpConnection()
    conn.acker.on_written(999)
    assert conn.far_ended(1000) == [
        Effect.STOP_READING,
        Effect.ABORT_STREAM,
        Effect.RESET,
    ]
    assert conn.closed is Closing.RESET


def test_a_far_end_without_a_length_is_not_whole() -> None:
    conn = TcpConnection()
    conn.handle(Event.LOCAL_END)
    assert Effect.RESET in conn.far_ended(None)


def test_half_closes_each_way_end_cleanly() -> None:
    conn = TcpConnection()
    assert conn.handle(Event.LOCAL_END) == [Effect.STOP_READING, Effect.END_STREAM]
    conn.acker.on_written(5)
    assert conn.far_ended(5) == [Effect.SHUTDOWN_WRITE, Effect.CLOSE]
    assert conn.closed is Closing.CLEAN


def test_the_far_end_first_then_a_lost_path_resets() -> None:
    """The server's stream arrived whole (the client saw its EOF), then the path of the
    client's own stream was lost: the client gets a reset, never a clean close."""
    conn = TcpConnection()
    assert conn.far_ended(0) == [Effect.SHUTDOWN_WRITE]
    assert conn.handle(Event.PATH_LOST) == [Effect.STOP_READING, Effect.RESET]


def test_stop_while_open_stops_the_far_sender_and_aborts() -> None:
    conn = TcpConnection()
    effects = conn.handle(Event.STOP)
    assert effects == [
        Effect.STOP_READING,
        Effect.ABORT_STREAM,
        Effect.STOP_SENDER,
        Effect.RESET,
    ]


def test_tables_only_leave_open() -> None:
    """Ended and aborted are final: no row starts from them."""
    for table in (SEND, RECEIVE):
        assert {state for state, _ in table} == {Half.OPEN}
    assert (Half.OPEN, Event.FAR_END) not in SEND  # the far end's end does not end ours
