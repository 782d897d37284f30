"""Proton's collector events as typed ``AmqpEvent``s, for ``AmqpConnection``
(connection.py): ``events()`` drains the collector and hands each event to its handler
here, which answers the peer where the engine needs it (begin, attach, close) and says
what happened. Cut from connection.py, which keeps the commands (open, links, sending).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import cproton
from cproton import lib

from ._codec import get_map
from ._links import LinkTable, condition_of
from ._receive import READ_AHEAD, MessageTooLarge, Reader
from ._state import Link
from .errors import AmqpDecodeError
from .events import (
    AmqpEvent,
    AmqpValue,
    ConnectionClosed,
    ConnectionOpened,
    CreditAvailable,
    LinkOpened,
    LinkRole,
    TransportFailed,
)

_DELIVERY: Final[int] = lib.PN_DELIVERY
_LINK_FLOW: Final[int] = lib.PN_LINK_FLOW
#: the largest stream chunk ``Reader.chunk`` reads in one piece
_CHUNK_MAX: Final = READ_AHEAD

_Owner = TypeVar("_Owner")
_Event = TypeVar("_Event")


def drain(
    owner: _Owner,
    collector: Any,
    handlers: Mapping[int, Callable[[_Owner, Any, list[_Event]], None]],
    out: list[_Event],
) -> None:
    """Hand each event waiting in proton's ``collector`` to its handler (by event type;
    none: skipped), in order, until the collector is empty."""
    peek = lib.pn_collector_peek
    pop = lib.pn_collector_pop
    event_type = lib.pn_event_type
    while event := peek(collector):
        handler = handlers.get(event_type(event))
        if handler is not None:
            handler(owner, event, out)
        pop(collector)


class EngineEvents:
    """The event half of ``AmqpConnection``: its handlers of proton's events."""

    __slots__ = ("_failed", "_transport_failed")

    _collector: Any
    _connection: Any
    _transport: Any
    _links: LinkTable
    _reader: Reader
    _session_capacity: int
    _failed: bool
    _transport_failed: bool

    def events(self) -> list[AmqpEvent]:
        """Drain proton's collector into typed events, answering the peer where needed.

        Two events come once per transfer and are handled here, inline (``drain`` does
        the same for the others): a sending link's flow (proton reports one after every
        transfer it frames; an event only when the credit grew) and a delivery. The
        usual delivery is the next chunk of a running stream whose body has a sink
        (``set_chunk_sink``): one data section, small, more to come; its payload goes
        to the sink at once, no event made.
        """
        out: list[AmqpEvent] = []
        collector = self._collector
        link_of = self._links.by_ptr.get
        handler_of = _HANDLERS.get
        reader = self._reader
        buffer = reader.buffer(_CHUNK_MAX)
        peek = lib.pn_collector_peek
        pop = lib.pn_collector_pop
        event_type = lib.pn_event_type
        event_link = lib.pn_event_link
        while event := peek(collector):
            kind = event_type(event)
            if kind == _DELIVERY:
                link = link_of(event_link(event))
                if link is not None and not link.is_sender:
                    sink = link.chunk_sink
                    handled = False
                    if sink is not None:
                        try:
                            handled = reader.chunk(link, sink, buffer, out)
                        except AmqpDecodeError as exc:
                            self._links.fail(link, "amqp:decode-error", str(exc), out)
                            handled = True
                    if not handled:
                        self._link_deliveries(link, out)
            elif kind == _LINK_FLOW:
                link = link_of(event_link(event))
                if link is not None and link.is_sender:
                    credit: int = lib.pn_link_credit(link.ptr)
                    if credit > link.credit_seen:
                        out.append(CreditAvailable(link_id=link.link_id, credit=credit))
                    link.credit_seen = credit
            else:
                handler = handler_of(kind)
                if handler is not None:
                    handler(self, event, out)
            pop(collector)
        return out

    def _link_deliveries(self, link: Link, out: list[AmqpEvent]) -> None:
        """What arrived on a receiving link (pre-settled sends need no disposition
        handling, so a sending link's deliveries are never looked at)."""
        ptr = link.ptr
        current = lib.pn_link_current
        receive = self._reader.stream if link.streaming else self._reader.message
        # Deliveries on a link arrive one after another: the current one is the oldest.
        while delivery := current(ptr):
            try:
                if not receive(link, delivery, out):
                    return
            except MessageTooLarge as exc:
                self._links.fail(link, "amqp:link:message-size-exceeded", str(exc), out)
                return
            except AmqpDecodeError as exc:
                self._links.fail(link, "amqp:decode-error", str(exc), out)
                return
            lib.pn_link_advance(ptr)
            lib.pn_delivery_settle(delivery)

    def _on_link_remote_open(self, event: Any, out: list[AmqpEvent]) -> None:
        ptr = lib.pn_event_link(event)
        link = self._links.by_ptr.get(ptr)
        remote_initiated = link is None
        if link is None:
            if not lib.pn_link_state(ptr) & lib.PN_LOCAL_UNINIT:
                return  # the peer's answer to a link we closed already (still unfreed)
            link = self._links.accept(ptr)
        out.append(
            LinkOpened(
                link_id=link.link_id,
                name=link.name,
                role=LinkRole.SENDER if link.is_sender else LinkRole.RECEIVER,
                address=link.address,
                streaming=link.streaming,
                remote_initiated=remote_initiated,
            )
        )

    def _on_link_remote_close(self, event: Any, out: list[AmqpEvent]) -> None:
        ptr = lib.pn_event_link(event)
        link = self._links.by_ptr.get(ptr)
        if link is not None:
            name, description = condition_of(lib.pn_link_remote_condition(ptr))
            self._links.drop(link, out, name, description)
        else:
            session = lib.pn_link_session(ptr)
            if self._links.closed_by_peer(ptr):
                self._reopen_session_window(session)

    def _reopen_session_window(self, session: Any) -> None:
        """Send the peer a flow frame for ``session`` (see LinkTable.closed_by_peer): a
        credit change of one on a receiving link of that session (a message link if it
        has one), taken back after the frame is made. With no receiving link left on
        it, the credit of the next one to attach there carries the window."""
        chosen = None
        for link in self._links.by_id.values():
            if not link.is_sender and link.session == session:
                chosen = link.ptr
                if not link.streaming:
                    break
        if chosen is not None:
            lib.pn_link_flow(chosen, 1)
            lib.pn_transport_pending(self._transport)  # the flow frame is made now
            lib.pn_link_flow(chosen, -1)

    def _on_session_remote_open(self, event: Any, out: list[Any]) -> None:
        """Answer a peer's begin (both connection kinds: it reports nothing)."""
        session = lib.pn_event_session(event)
        if lib.pn_session_state(session) & lib.PN_LOCAL_UNINIT:
            lib.pn_session_set_incoming_capacity(session, self._session_capacity)
            lib.pn_session_open(session)

    def _on_session_remote_close(self, event: Any, out: list[AmqpEvent]) -> None:
        session = lib.pn_event_session(event)
        name, description = condition_of(lib.pn_session_remote_condition(session))
        self._links.drop_all(out, name, description, session=session)
        if not lib.pn_session_state(session) & lib.PN_LOCAL_CLOSED:
            lib.pn_session_close(session)

    def _on_connection_remote_open(self, event: Any, out: list[AmqpEvent]) -> None:
        connection = self._connection
        container: str | None = cproton.pn_connection_remote_container(connection)
        properties: dict[str, AmqpValue] = get_map(lib.pn_connection_remote_properties(connection))
        out.append(
            ConnectionOpened(remote_container_id=container or "", remote_properties=properties)
        )

    def _on_connection_remote_close(self, event: Any, out: list[AmqpEvent]) -> None:
        connection = self._connection
        name, description = condition_of(lib.pn_connection_remote_condition(connection))
        if name is not None:
            self._failed = True
        if not lib.pn_connection_state(connection) & lib.PN_LOCAL_CLOSED:
            lib.pn_connection_close(connection)
        self._links.drop_all(out, name, description)
        out.append(ConnectionClosed(condition=name, description=description))

    def _on_transport_error(self, event: Any, out: list[AmqpEvent]) -> None:
        if self._transport_failed:
            return  # proton repeats the error for input that arrives after it
        self._transport_failed = True
        name, description = condition_of(lib.pn_transport_condition(self._transport))
        self._failed = True
        condition = name or "amqp:internal-error"
        self._links.drop_all(out, condition, description)
        out.append(TransportFailed(condition=condition, description=description or ""))


_HANDLERS: Final = {
    lib.PN_LINK_REMOTE_OPEN: EngineEvents._on_link_remote_open,
    lib.PN_LINK_REMOTE_CLOSE: EngineEvents._on_link_remote_close,
    lib.PN_LINK_REMOTE_DETACH: EngineEvents._on_link_remote_close,
    lib.PN_SESSION_REMOTE_OPEN: EngineEvents._on_session_remote_open,
    lib.PN_SESSION_REMOTE_CLOSE: EngineEvents._on_session_remote_close,
    lib.PN_CONNECTION_REMOTE_OPEN: EngineEvents._on_connection_remote_open,
    lib.PN_CONNECTION_REMOTE_CLOSE: EngineEvents._on_connection_remote_close,
    lib.PN_TRANSPORT_ERROR: EngineEvents._on_transport_error,
}
