"""SASL on a client's connection: ANONYMOUS by default, EXTERNAL when required.

The client is proton's own engine (what its client APIs run on), in memory. Without
proton's SSL layer the client's transport is told its own external identity the same
way the router's is, so that it picks EXTERNAL as it would over proton's TLS.
"""

from __future__ import annotations

import pytest
from proton import Connection, Transport

from skupper_actors.protocol.amqp import AmqpUsageError, ConnectionOpened, TransportFailed
from skupper_actors.protocol.amqp import client as client_module
from skupper_actors.protocol.amqp._external import set_external_security
from skupper_actors.protocol.amqp.client import ClientConnection
from skupper_actors.protocol.amqp.client_events import (
    AuthenticationFailed,
    ClientAuthenticated,
    ClientEvent,
)

pytestmark = pytest.mark.timeout(30)


class Pair:
    """A proton client transport and a router-side ClientConnection, bytes between them."""

    def __init__(self, conn: ClientConnection, mechanisms: str, *, chunk: int = 0) -> None:
        self.conn = conn
        self.chunk = chunk  # >0: hand the router the client's bytes this many at a time
        self.events: list[ClientEvent] = []
        self.sent = b""  # every byte the client sent
        conn.open()
        self.transport = Transport()
        self.transport.sasl().allowed_mechs(mechanisms)
        if mechanisms == "EXTERNAL":
            set_external_security(self.transport._impl, 128, "client-side")
        self.client = Connection()
        self.transport.bind(self.client)
        self.client.open()

    def feed(self, data: bytes) -> None:
        self.sent += data
        step = self.chunk or len(data) or 1
        for start in range(0, max(len(data), 1), step):
            self.conn.receive_data(data[start : start + step])
        self.events += self.conn.client_events()

    def pump(self, rounds: int = 8) -> None:
        for _ in range(rounds):
            pending = self.transport.pending()
            if pending > 0:
                data = self.transport.peek(pending)
                self.transport.pop(pending)
                self.feed(data)
            elif pending < 0 and not self.conn._tail_closed:
                self.feed(b"")  # the client closed its side: EOF at the router
            out = self.conn.data_to_send()
            if out and self.transport.capacity() > 0:
                self.transport.push(out)

    def of(self, kind: type) -> list:
        return [event for event in self.events if isinstance(event, kind)]


def external(user: str = "alice") -> ClientConnection:
    conn = ClientConnection("router", require_external=True)
    conn.set_external_identity(user, 256)
    return conn


def test_anonymous_is_the_default_and_says_who_the_client_is() -> None:
    pair = Pair(ClientConnection("router"), "ANONYMOUS")
    pair.pump()
    assert pair.of(ClientAuthenticated) == [
        ClientAuthenticated(mechanism="ANONYMOUS", user="anonymous")
    ]
    assert pair.of(ConnectionOpened)
    assert pair.conn.mechanisms == "ANONYMOUS"


@pytest.mark.parametrize("chunk", [0, 1, 3, 9])
def test_external_authenticates_as_the_certificate_subject(chunk: int) -> None:
    """However the client's bytes are cut, the identity survives proton's reset of it at
    the SASL header."""
    pair = Pair(external("alice"), "EXTERNAL", chunk=chunk)
    pair.pump()
    assert pair.of(ClientAuthenticated) == [ClientAuthenticated(mechanism="EXTERNAL", user="alice")]
    assert pair.of(ConnectionOpened)
    assert not pair.of(AuthenticationFailed)


def test_external_pipelined_in_one_read_authenticates_too() -> None:
    """A client's header, sasl-init, AMQP header and open arriving in one read."""
    pair = Pair(external("alice"), "EXTERNAL")
    pair.pump()
    conn = external("bob")
    conn.open()
    conn.receive_data(pair.sent)
    events = conn.client_events()
    assert ClientAuthenticated(mechanism="EXTERNAL", user="bob") in events
    assert any(isinstance(event, ConnectionOpened) for event in events)


def test_a_client_that_will_only_do_anonymous_is_refused() -> None:
    pair = Pair(external(), "ANONYMOUS")
    pair.pump()
    assert not pair.of(ConnectionOpened)
    (failed,) = pair.of(AuthenticationFailed)
    assert failed.mechanism is None
    assert "offers SASL EXTERNAL only" in failed.description
    # the client was told why: proton's own condition for a failed authentication
    assert pair.transport.condition is not None
    assert pair.transport.condition.name == "amqp:unauthorized-access"


def test_a_client_sending_anonymous_anyway_gets_a_failed_outcome() -> None:
    """A client that does not wait for the mechanisms (pipelined SASL init), with or
    without its AMQP header right behind."""
    # the SASL header, then sasl-init(ANONYMOUS, "anonymous"), as proton sends them
    init = (
        b"AMQP\x03\x01\x00\x00"
        b"\x00\x00\x00\x24\x02\x01\x00\x00\x00SA\xc0\x17\x02\xa3\x09ANONYMOUS\xa0\x09anonymous"
    )
    for tail in (b"", b"AMQP\x00\x01\x00\x00"):
        conn = external()
        conn.open()
        conn.receive_data(init + tail)
        events = conn.client_events()
        failed = [event for event in events if isinstance(event, AuthenticationFailed)]
        assert [f.mechanism for f in failed] == ["ANONYMOUS"]
        assert failed[0].description == (
            "SASL ANONYMOUS refused: this endpoint accepts EXTERNAL only"
        )
        assert not [event for event in events if isinstance(event, ConnectionOpened)]
        if not tail:  # proton sends the failed sasl-outcome (with the AMQP header behind
            # it, proton closes the transport at once instead)
            assert b"\x00SD\xc0\x03\x01P\x01" in conn.data_to_send()


def test_a_client_skipping_sasl_is_refused() -> None:
    conn = external()
    conn.open()
    conn.receive_data(b"AMQP\x00\x01\x00\x00")
    events = conn.client_events()
    assert [type(event) for event in events if not isinstance(event, TransportFailed)] == [
        AuthenticationFailed
    ]
    assert any(isinstance(event, TransportFailed) for event in events)


def test_garbage_instead_of_a_header_is_a_failure_not_a_crash() -> None:
    conn = external()
    conn.open()
    conn.receive_data(b"GET / HTTP/1.1\r\n\r\n")
    events = conn.client_events()
    assert any(isinstance(event, AuthenticationFailed) for event in events)
    assert any(isinstance(event, TransportFailed) for event in events)


def test_external_where_proton_cannot_do_it_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(client_module, "external_unavailable", lambda: "no EXTERNAL here")
    with pytest.raises(AmqpUsageError, match="no EXTERNAL here"):
        ClientConnection("router", require_external=True)
    ClientConnection("router")  # ANONYMOUS needs nothing more
