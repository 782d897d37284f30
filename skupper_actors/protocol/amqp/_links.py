"""The links and outgoing streams a connection tracks, and how links begin and end."""

from __future__ import annotations

from typing import Any, Final

import cproton
from cproton import lib

from ._codec import get_map, put_symbol_map
from ._state import Link, OutgoingStreamDelivery
from .errors import AmqpUsageError
from .events import AmqpEvent, LinkClosed, StreamEnded

# Link property by which the attaching side says deliveries on the link are streams.
STREAMING_PROPERTY: Final = "skupper-actors:streaming"


def condition_of(cond: Any) -> tuple[str | None, str | None]:
    """(name, description) of a pn_condition_t, or (None, None) when it is not set."""
    if not lib.pn_condition_is_set(cond):
        return None, None
    name: str | None = cproton.pn_condition_get_name(cond)
    description: str | None = cproton.pn_condition_get_description(cond)
    return name, description


def set_condition(cond: Any, name: str | None, description: str | None) -> None:
    if name is not None:
        cproton.pn_condition_set_name(cond, name)
        if description is not None:
            cproton.pn_condition_set_description(cond, description)


class LinkTable:
    """Maps our link and delivery ids to proton's objects, which never leave the package.

    Link and delivery ids come from one counter, so an id never means two things.
    """

    __slots__ = ("by_id", "by_ptr", "closing", "max_message_size", "next_id", "out_streams")

    def __init__(self, max_message_size: int) -> None:
        self.by_id: dict[int, Link] = {}
        # cffi pointers hash and compare by address, whatever their C type.
        self.by_ptr: dict[Any, Link] = {}
        # Links closed here whose peer has not detached yet: freed when it does. Freed
        # at once, a late attach answer from the peer would make proton create a new
        # link of that name, which would look like a link the peer opened. The value:
        # the peer may have sent transfers that crossed our detach (see closed_by_peer).
        self.closing: dict[Any, bool] = {}
        self.out_streams: dict[int, OutgoingStreamDelivery] = {}
        self.max_message_size = max_message_size
        self.next_id = 0

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def attach(
        self,
        ptr: Any,
        session: Any,
        name: str,
        address: str | None,
        *,
        is_sender: bool,
        streaming: bool,
    ) -> Link:
        """Open a link this side created."""
        # Pre-settled: the layers above acknowledge end to end.
        lib.pn_link_set_snd_settle_mode(ptr, lib.PN_SND_SETTLED)
        if streaming:
            put_symbol_map(lib.pn_link_properties(ptr), {STREAMING_PROPERTY: True})
        elif not is_sender:
            lib.pn_link_set_max_message_size(ptr, self.max_message_size)
        lib.pn_link_open(ptr)
        return self._track(ptr, session, name, address, is_sender, streaming)

    def accept(self, ptr: Any) -> Link:
        """Answer a link the peer attached, mirroring its termini and settlement modes."""
        is_sender = bool(lib.pn_link_is_sender(ptr))
        remote_source = lib.pn_link_remote_source(ptr)
        remote_target = lib.pn_link_remote_target(ptr)
        lib.pn_terminus_copy(lib.pn_link_source(ptr), remote_source)
        lib.pn_terminus_copy(lib.pn_link_target(ptr), remote_target)
        lib.pn_link_set_snd_settle_mode(ptr, lib.pn_link_remote_snd_settle_mode(ptr))
        lib.pn_link_set_rcv_settle_mode(ptr, lib.pn_link_remote_rcv_settle_mode(ptr))
        properties = get_map(lib.pn_link_remote_properties(ptr))
        streaming = properties.get(STREAMING_PROPERTY) is True
        if not is_sender and not streaming:
            lib.pn_link_set_max_message_size(ptr, self.max_message_size)
        address: str | None = cproton.pn_terminus_get_address(
            remote_source if is_sender else remote_target
        )
        lib.pn_link_open(ptr)
        name: str = cproton.pn_link_name(ptr)
        return self._track(ptr, lib.pn_link_session(ptr), name, address, is_sender, streaming)

    def _track(
        self,
        ptr: Any,
        session: Any,
        name: str,
        address: str | None,
        is_sender: bool,
        streaming: bool,
    ) -> Link:
        link = Link(
            self.new_id(),
            ptr,
            session,
            name=name,
            is_sender=is_sender,
            address=address,
            streaming=streaming,
        )
        self.by_id[link.link_id] = link
        self.by_ptr[ptr] = link
        return link

    def sending(self, link_id: int, streaming: bool) -> Link | None:
        """The sending link ``link_id`` if it is still there; raise if it is the wrong kind."""
        link = self.by_id.get(link_id)
        if link is None:
            return None
        if not link.is_sender:
            raise AmqpUsageError(f"link {link_id} is a receiving link")
        if link.streaming != streaming:
            kind = "a streaming" if link.streaming else "a message"
            raise AmqpUsageError(f"link {link_id} is {kind} link")
        return link

    def fail(self, link: Link, condition: str, description: str, out: list[AmqpEvent]) -> None:
        """Detach a link with an error condition because of what the peer sent on it."""
        set_condition(lib.pn_link_condition(link.ptr), condition, description)
        self.drop(link, out, condition, description)

    def drop(
        self,
        link: Link,
        out: list[AmqpEvent] | None,
        condition: str | None,
        description: str | None,
        *,
        detach: bool = True,
    ) -> None:
        """Forget a link; with ``out``, report its end (and its unfinished incoming stream's)."""
        in_stream = link.in_stream
        if out is not None and in_stream is not None and in_stream.started:
            out.append(
                StreamEnded(link_id=link.link_id, delivery_id=in_stream.delivery_id, aborted=True)
            )
        link.in_stream = None
        out_stream = link.out_stream
        if out_stream is not None:
            del self.out_streams[out_stream.delivery_id]
            link.out_stream = None
            if detach:
                # Else proton completes the delivery on detach, and the receiver would
                # take a truncated stream for a whole one.
                lib.pn_delivery_abort(out_stream.delivery)
        del self.by_id[link.link_id]
        del self.by_ptr[link.ptr]
        if detach:
            ptr = link.ptr
            if not lib.pn_link_state(ptr) & lib.PN_LOCAL_CLOSED:
                lib.pn_link_close(ptr)
            # Proton walks every link it still holds on each output pass: free them,
            # once both ends have detached.
            if lib.pn_link_state(ptr) & lib.PN_REMOTE_CLOSED:
                lib.pn_link_free(ptr)
            else:
                self.closing[ptr] = link.streaming and not link.is_sender and not link.finished
        if out is not None:
            out.append(
                LinkClosed(link_id=link.link_id, condition=condition, description=description)
            )

    def closed_by_peer(self, ptr: Any) -> bool:
        """The peer detached a link: free it if this side had closed it already.

        True when the link was an incoming stream closed before its end: what the peer
        sent until it saw our detach used up the session window as the peer counts it,
        and proton tells the peer the window is open again only with a flow frame,
        which it sends only when some link's credit changes.
        """
        crossed = self.closing.pop(ptr, None)
        if crossed is None:
            return False
        lib.pn_link_free(ptr)
        return crossed

    def drop_all(
        self,
        out: list[AmqpEvent],
        condition: str | None,
        description: str | None,
        *,
        session: Any = None,
    ) -> None:
        """Report every link (of ``session``, if given) as ended."""
        for link in list(self.by_id.values()):
            if session is None:
                # The connection is gone: proton releases its links along with it.
                self.drop(link, out, condition, description, detach=False)
            elif link.session == session:
                self.drop(link, out, condition, description)
        if session is None:
            self.closing.clear()

    def incoming_streams(self) -> int:
        return sum(1 for link in self.by_id.values() if link.in_stream is not None)
