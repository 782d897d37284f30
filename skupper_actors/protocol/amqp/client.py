"""ClientConnection: an AMQP 1.0 client's connection to this router, sans-IO.

A sibling of ``AmqpConnection`` (it shares its byte pump, ticks and close) for the
connections of ordinary AMQP clients: SASL (ANONYMOUS, or EXTERNAL with the identity of
the TLS client certificate, see ``set_external_identity``), links the client attaches
(accepted or refused by the layer above, dynamic sources given an address), unsettled
deliveries both ways with their outcomes, and link credit. A delivery's bytes are handed
up as they arrive (``DeliveryChunk``), never collected whole: the layer above forwards
them cut-through, and stops reading (``read_paused``) when its outgoing side is full.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

import cproton
from cproton import ffi, lib

from ._events import drain
from ._external import external_unavailable, set_external_security
from ._links import condition_of, set_condition
from .client_events import (
    OUTCOMES,
    AuthenticationFailed,
    ClientAttach,
    ClientAuthenticated,
    ClientEvent,
    DeliveryChunk,
    DeliveryOutcome,
    Outcome,
    remote_outcome,
    set_outcome,
)
from .connection import AmqpConnection
from .errors import AmqpUsageError
from .events import (
    AmqpEvent,
    ConnectionClosed,
    ConnectionOpened,
    CreditAvailable,
    LinkClosed,
    TransportFailed,
)

_READ_CHUNK: Final = 256 << 10
#: the AMQP SASL protocol header's length (b"AMQP\x03\x01\x00\x00")
_SASL_HEADER: Final = 8
#: unframed bytes of one outgoing delivery proton may hold (see write_delivery)
DELIVERY_BACKLOG: Final = 240 << 10


class _ClientLink:
    __slots__ = ("current", "dynamic", "incoming", "link_id", "ptr", "reading")

    def __init__(self, link_id: int, ptr: Any, incoming: bool, dynamic: bool) -> None:
        self.link_id = link_id
        self.ptr = ptr
        self.incoming = incoming
        self.dynamic = dynamic
        self.current: int | None = None  # the incoming delivery being read
        self.reading = True


class ClientConnection(AmqpConnection):
    """A client's connection; the same pump as ``AmqpConnection`` (``receive_data``,
    ``peek_output``/``pop_output``, ``tick``, ``close``), with its own links and events."""

    __slots__ = (
        "_auth_decided",
        "_clinks",
        "_cptr",
        "_deliveries",
        "_external",
        "_finishing",
        "_header_left",
        "_held",
        "_mechanisms",
        "_next",
        "_out_ids",
        "_sasl",
        "held_bytes",
    )

    def __init__(
        self,
        container_id: str,
        *,
        max_frame_size: int = 256 << 10,
        session_capacity: int = 4 << 20,
        idle_timeout: float = 0.0,
        require_external: bool = False,
    ) -> None:
        """``require_external``: offer SASL EXTERNAL only, and refuse a client that skips
        SASL; call ``set_external_identity`` before the first ``receive_data``. Raises
        AmqpUsageError when this proton cannot do EXTERNAL (``external_unavailable``)."""
        if require_external:
            unavailable = external_unavailable()
            if unavailable is not None:
                raise AmqpUsageError(unavailable)
        super().__init__(
            container_id,
            server=True,
            max_frame_size=max_frame_size,
            session_capacity=session_capacity,
            idle_timeout=idle_timeout,
        )
        self._sasl = sasl = lib.pn_sasl(self._transport)
        self._mechanisms = "EXTERNAL" if require_external else "ANONYMOUS"
        cproton.pn_sasl_allowed_mechs(sasl, self._mechanisms)
        if require_external:
            lib.pn_transport_require_auth(self._transport, True)
        self._external: tuple[int, str] | None = None  # (ssf, authid) for EXTERNAL
        self._header_left = _SASL_HEADER
        self._auth_decided = False
        self._clinks: dict[int, _ClientLink] = {}
        self._cptr: dict[Any, _ClientLink] = {}
        # delivery id -> pn_delivery_t, for deliveries not yet settled on this side
        self._deliveries: dict[int, Any] = {}
        self._out_ids: dict[Any, int] = {}  # our deliveries to the client: pointer -> id
        self._held: dict[int, deque[bytes]] = {}  # bytes waiting for proton's backlog
        self._finishing: dict[int, bool] = {}  # held deliveries whose end came: settled?
        #: bytes of outgoing deliveries held here (counted against nothing yet)
        self.held_bytes = 0
        self._next = 0

    def _new(self) -> int:
        self._next += 1
        return self._next

    def open(self) -> None:
        """Send open; the client's sessions are answered as they begin."""
        lib.pn_connection_open(self._connection)

    # -- authentication ---------------------------------------------------------------
    def set_external_identity(self, user: str, ssf: int) -> None:
        """The TLS layer authenticated the client as ``user`` (its certificate's subject)
        with a cipher of ``ssf`` bits: SASL EXTERNAL may then succeed as ``user``."""
        self._external = (ssf, user)
        if self._header_left == 0:
            set_external_security(self._transport, ssf, user)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        left = self._header_left
        if left and self._external is not None and len(data) > 0:
            # Proton resets the external identity when it reads the SASL header (to its
            # own SSL layer's, here none): feed the header alone, then set it again.
            view = memoryview(data)
            super().receive_data(view[:left])
            self._header_left = max(0, left - len(view))
            if self._header_left == 0:
                ssf, user = self._external
                set_external_security(self._transport, ssf, user)
            if len(view) <= left:
                return
            data = view[left:]
        elif left:
            self._header_left = max(0, left - len(data))
        super().receive_data(data)

    @property
    def mechanisms(self) -> str:
        """The SASL mechanisms this connection offers (space separated)."""
        return self._mechanisms

    def _check_auth(self, out: list[ClientEvent]) -> None:
        if self._auth_decided:
            return
        sasl = self._sasl
        outcome = lib.pn_sasl_outcome(sasl)
        if outcome == lib.PN_SASL_NONE:
            if self._transport_failed and self._mechanisms == "EXTERNAL":
                self._auth_decided = True
                _, why = condition_of(lib.pn_transport_condition(self._transport))
                description = "the client left without authenticating: this endpoint offers"
                description += " SASL EXTERNAL only"
                out.append(
                    AuthenticationFailed(
                        mechanism=None, description=f"{description} ({why})" if why else description
                    )
                )
            return
        self._auth_decided = True
        mechanism: str | None = cproton.pn_sasl_get_mech(sasl)
        if outcome == lib.PN_SASL_OK:
            user: str | None = cproton.pn_sasl_get_user(sasl)
            out.append(ClientAuthenticated(mechanism=mechanism or "", user=user or ""))
            return
        if mechanism and mechanism in self._mechanisms.split():
            why = f"SASL {mechanism} failed"
        else:
            why = (
                f"SASL {mechanism or '(no mechanism)'} refused: "
                f"this endpoint accepts {self._mechanisms} only"
            )
        out.append(AuthenticationFailed(mechanism=mechanism, description=why))

    # -- links ------------------------------------------------------------------------
    def accept_link(self, link_id: int, address: str | None = None) -> None:
        """Open a link the client attached; ``address``: a dynamic source's address."""
        link = self._clinks.get(link_id)
        if link is None:
            return
        ptr = link.ptr
        lib.pn_terminus_copy(lib.pn_link_source(ptr), lib.pn_link_remote_source(ptr))
        lib.pn_terminus_copy(lib.pn_link_target(ptr), lib.pn_link_remote_target(ptr))
        if address is not None:
            cproton.pn_terminus_set_address(lib.pn_link_source(ptr), address)
        lib.pn_link_set_snd_settle_mode(ptr, lib.pn_link_remote_snd_settle_mode(ptr))
        lib.pn_link_set_rcv_settle_mode(ptr, lib.pn_link_remote_rcv_settle_mode(ptr))
        lib.pn_link_open(ptr)

    def refuse_link(self, link_id: int, condition: str, description: str) -> None:
        """Answer a client's attach with a detach carrying ``condition``."""
        link = self._clinks.pop(link_id, None)
        if link is None:
            return
        del self._cptr[link.ptr]
        ptr = link.ptr
        lib.pn_link_open(ptr)  # an attach with null termini, then the detach
        set_condition(lib.pn_link_condition(ptr), condition, description)
        lib.pn_link_close(ptr)

    def close_client_link(
        self, link_id: int, condition: str | None = None, description: str | None = None
    ) -> None:
        link = self._clinks.pop(link_id, None)
        if link is None:
            return
        del self._cptr[link.ptr]
        set_condition(lib.pn_link_condition(link.ptr), condition, description)
        lib.pn_link_close(link.ptr)

    def grant(self, link_id: int, credit: int) -> None:
        """Grant ``credit`` more deliveries on a link the client sends on."""
        link = self._clinks.get(link_id)
        if link is not None and link.incoming and credit:
            lib.pn_link_flow(link.ptr, credit)

    def link_credit(self, link_id: int) -> int:
        link = self._clinks.get(link_id)
        return int(lib.pn_link_credit(link.ptr)) if link is not None else 0

    def queued(self, link_id: int) -> int:
        """Deliveries to the client on a link not sent yet (waiting for its credit)."""
        link = self._clinks.get(link_id)
        return int(lib.pn_link_queued(link.ptr)) if link is not None else 0

    def link_granted(self, link_id: int) -> int:
        """Credit the client holds on a link it sends on (granted, not yet used)."""
        return self.link_credit(link_id)

    def pause_reading(self, link_id: int, paused: bool) -> None:
        """Stop (or resume) taking the bytes of a link's current delivery out of proton:
        the session window then closes and the client stops sending."""
        link = self._clinks.get(link_id)
        if link is not None:
            link.reading = not paused

    def read_more(self, link_id: int, out: list[ClientEvent]) -> None:
        """After ``pause_reading(False)``: read what proton already holds."""
        link = self._clinks.get(link_id)
        if link is not None and link.incoming:
            self._read(link, out)

    # -- incoming deliveries ------------------------------------------------------------
    def settle(self, delivery_id: int, outcome: Outcome) -> None:
        """Settle a delivery the client sent with ``outcome``."""
        delivery = self._deliveries.pop(delivery_id, None)
        if delivery is None:
            return
        set_outcome(delivery, outcome)
        lib.pn_delivery_settle(delivery)

    # -- outgoing deliveries ------------------------------------------------------------
    def start_delivery(self, link_id: int) -> int:
        """Begin a delivery to the client on one of its receiving links (0: link gone)."""
        link = self._clinks.get(link_id)
        if link is None or link.incoming:
            return 0
        delivery_id = self._new()
        delivery = lib.pn_delivery(link.ptr, (8, ffi.from_buffer(delivery_id.to_bytes(8, "big"))))
        self._deliveries[delivery_id] = delivery
        self._out_ids[delivery] = delivery_id
        return delivery_id

    def write_delivery(self, delivery_id: int, data: bytes) -> None:
        """Append bytes to a delivery; past ``DELIVERY_BACKLOG`` unframed bytes in proton
        they wait here (proton re-packs a partly sent delivery's buffer at a cost that
        grows with its size), and ``feed`` moves them on as output leaves."""
        delivery = self._deliveries.get(delivery_id)
        if delivery is None or not data:
            return
        held = self._held.get(delivery_id)
        link = lib.pn_delivery_link(delivery)
        if (
            held is None
            and lib.pn_link_current(link) == delivery  # proton sends on the current one
            and lib.pn_delivery_pending(delivery) < DELIVERY_BACKLOG
        ):
            lib.pn_link_send(link, data, len(data))
            return
        if held is None:
            held = self._held[delivery_id] = deque()
        held.append(data)
        self.held_bytes += len(data)

    def feed(self) -> bool:
        """Move held bytes into proton as its backlog allows; True if any moved."""
        moved = False
        for delivery_id, held in list(self._held.items()):
            delivery = self._deliveries.get(delivery_id)
            if delivery is None:
                self.held_bytes -= sum(map(len, held))
                del self._held[delivery_id]
                self._finishing.pop(delivery_id, None)
                continue
            link = lib.pn_delivery_link(delivery)
            if lib.pn_link_current(link) != delivery:
                continue  # the link's earlier delivery is still being written
            while held and lib.pn_delivery_pending(delivery) < DELIVERY_BACKLOG:
                data = held.popleft()
                self.held_bytes -= len(data)
                lib.pn_link_send(link, data, len(data))
                moved = True
            if not held:
                del self._held[delivery_id]
                settled = self._finishing.pop(delivery_id, None)
                if settled is not None:
                    self._finish(delivery_id, delivery, settled=settled)
                    moved = True
        return moved

    def held_for(self, delivery_id: int) -> int:
        """Bytes of an outgoing delivery waiting here for proton's backlog to shrink."""
        held = self._held.get(delivery_id)
        return sum(map(len, held)) if held else 0

    @property
    def has_held(self) -> bool:
        """Some outgoing delivery has bytes (or its end) waiting for ``feed``."""
        return bool(self._held)

    def delivery_backlog(self, delivery_id: int) -> int:
        delivery = self._deliveries.get(delivery_id)
        return int(lib.pn_delivery_pending(delivery)) if delivery is not None else 0

    def finish_delivery(self, delivery_id: int, *, settled: bool) -> None:
        """The delivery's last byte was written; ``settled``: sent pre-settled."""
        delivery = self._deliveries.get(delivery_id)
        if delivery is None:
            return
        if (
            delivery_id in self._held
            or lib.pn_link_current(lib.pn_delivery_link(delivery)) != delivery
        ):
            self._finishing[delivery_id] = settled
            self._held.setdefault(delivery_id, deque())
            return
        self._finish(delivery_id, delivery, settled=settled)

    def _finish(self, delivery_id: int, delivery: Any, *, settled: bool) -> None:
        lib.pn_link_advance(lib.pn_delivery_link(delivery))
        if settled:
            del self._deliveries[delivery_id]
            del self._out_ids[delivery]
            lib.pn_delivery_settle(delivery)

    def abort_delivery(self, delivery_id: int) -> None:
        delivery = self._deliveries.pop(delivery_id, None)
        held = self._held.pop(delivery_id, None)
        self._finishing.pop(delivery_id, None)
        if held:
            self.held_bytes -= sum(map(len, held))
        if delivery is not None:
            self._out_ids.pop(delivery, None)
            lib.pn_delivery_abort(delivery)

    # -- events -------------------------------------------------------------------------
    def events(self) -> list[AmqpEvent]:
        raise AmqpUsageError("a client connection's events come from client_events()")

    def client_events(self) -> list[ClientEvent]:
        """Drain proton's collector into typed events (answering sessions as they begin)."""
        out: list[ClientEvent] = []
        drain(self, self._collector, _CLIENT_HANDLERS, out)
        self._check_auth(out)
        return out

    def _c_on_link_remote_open(self, event: Any, out: list[ClientEvent]) -> None:
        ptr = lib.pn_event_link(event)
        if ptr in self._cptr or not lib.pn_link_state(ptr) & lib.PN_LOCAL_UNINIT:
            return
        incoming = bool(lib.pn_link_is_receiver(ptr))
        remote = lib.pn_link_remote_target(ptr) if incoming else lib.pn_link_remote_source(ptr)
        address: str | None = cproton.pn_terminus_get_address(remote)
        dynamic = not incoming and bool(lib.pn_terminus_is_dynamic(remote))
        link = _ClientLink(self._new(), ptr, incoming, dynamic)
        self._clinks[link.link_id] = link
        self._cptr[ptr] = link
        name: str = cproton.pn_link_name(ptr)
        out.append(
            ClientAttach(
                link_id=link.link_id, name=name, incoming=incoming, address=address, dynamic=dynamic
            )
        )

    def _c_on_link_remote_close(self, event: Any, out: list[ClientEvent]) -> None:
        ptr = lib.pn_event_link(event)
        link = self._cptr.pop(ptr, None)
        if not lib.pn_link_state(ptr) & lib.PN_LOCAL_CLOSED:
            lib.pn_link_close(ptr)
        if link is None:
            return
        del self._clinks[link.link_id]
        if link.current is not None:
            out.append(_aborted(link))
            link.current = None
        name, description = condition_of(lib.pn_link_remote_condition(ptr))
        out.append(LinkClosed(link_id=link.link_id, condition=name, description=description))

    def _c_on_link_flow(self, event: Any, out: list[ClientEvent]) -> None:
        link = self._cptr.get(lib.pn_event_link(event))
        if link is not None and not link.incoming:
            out.append(CreditAvailable(link_id=link.link_id, credit=lib.pn_link_credit(link.ptr)))

    def _c_on_delivery(self, event: Any, out: list[ClientEvent]) -> None:
        link = self._cptr.get(lib.pn_event_link(event))
        if link is None:
            return
        if link.incoming:
            self._read(link, out)
            return
        delivery = lib.pn_event_delivery(event)
        if not lib.pn_delivery_updated(delivery):
            return
        state = lib.pn_delivery_remote_state(delivery)
        settled = lib.pn_delivery_settled(delivery)
        if state not in OUTCOMES and not settled:
            return  # a non-terminal state (received): wait for the outcome
        delivery_id = self._out_ids.pop(delivery, None)
        if delivery_id is None or self._deliveries.pop(delivery_id, None) is None:
            return
        outcome = remote_outcome(delivery, state)
        lib.pn_delivery_settle(delivery)
        out.append(DeliveryOutcome(link_id=link.link_id, delivery_id=delivery_id, outcome=outcome))

    def _read(self, link: _ClientLink, out: list[ClientEvent]) -> None:
        ptr = link.ptr
        while link.reading and (delivery := lib.pn_link_current(ptr)):
            first = link.current is None
            if first:
                link.current = self._new()
            delivery_id = link.current
            assert delivery_id is not None
            if lib.pn_delivery_aborted(delivery):
                out.append(_aborted(link))
                link.current = None
                lib.pn_link_advance(ptr)
                lib.pn_delivery_settle(delivery)
                continue
            chunks: list[bytes] = []
            available = lib.pn_delivery_pending(delivery)
            buffer = self._reader.buffer(min(max(available, 1), _READ_CHUNK))
            while available > 0:
                count = lib.pn_link_recv(ptr, buffer, min(available, _READ_CHUNK))
                if count <= 0:
                    break
                chunks.append(ffi.buffer(buffer, count)[:])
                available -= count
            partial = bool(lib.pn_delivery_partial(delivery))
            if partial and not chunks:
                return
            settled = bool(lib.pn_delivery_settled(delivery))
            out.append(
                DeliveryChunk(
                    link_id=link.link_id,
                    delivery_id=delivery_id,
                    data=chunks[0] if len(chunks) == 1 else b"".join(chunks),
                    first=first,
                    last=not partial,
                    settled=settled,
                )
            )
            if partial:
                return
            link.current = None
            lib.pn_link_advance(ptr)
            if settled:
                lib.pn_delivery_settle(delivery)
            else:
                self._deliveries[delivery_id] = delivery

    def _on_client_connection_remote_open(self, event: Any, out: list[ClientEvent]) -> None:
        self._check_auth(out)  # SASL is over once the client's open is in
        self._auth_decided = True
        container: str | None = cproton.pn_connection_remote_container(self._connection)
        out.append(ConnectionOpened(remote_container_id=container or "", remote_properties={}))

    def _on_client_connection_remote_close(self, event: Any, out: list[ClientEvent]) -> None:
        connection = self._connection
        name, description = condition_of(lib.pn_connection_remote_condition(connection))
        if not lib.pn_connection_state(connection) & lib.PN_LOCAL_CLOSED:
            lib.pn_connection_close(connection)
        self._end_links(out, name, description)
        out.append(ConnectionClosed(condition=name, description=description))

    def _on_client_transport_error(self, event: Any, out: list[ClientEvent]) -> None:
        if self._transport_failed:
            return
        self._transport_failed = True
        self._failed = True
        name, description = condition_of(lib.pn_transport_condition(self._transport))
        condition = name or "amqp:internal-error"
        self._end_links(out, condition, description)
        out.append(TransportFailed(condition=condition, description=description or ""))

    def _end_links(
        self, out: list[ClientEvent], condition: str | None, description: str | None
    ) -> None:
        for link in list(self._clinks.values()):
            if link.current is not None:
                out.append(_aborted(link))
            out.append(
                LinkClosed(link_id=link.link_id, condition=condition, description=description)
            )
        self._clinks.clear()
        self._cptr.clear()
        self._deliveries.clear()
        self._out_ids.clear()
        self._held.clear()
        self._finishing.clear()
        self.held_bytes = 0

    @property
    def unsettled(self) -> int:
        """Deliveries either way not settled on this side yet (tests, diagnostics)."""
        return len(self._deliveries)


def _aborted(link: _ClientLink) -> DeliveryChunk:
    assert link.current is not None
    return DeliveryChunk(
        link_id=link.link_id,
        delivery_id=link.current,
        data=b"",
        first=False,
        last=True,
        aborted=True,
    )


_CLIENT_HANDLERS: Final = {
    lib.PN_DELIVERY: ClientConnection._c_on_delivery,
    lib.PN_LINK_FLOW: ClientConnection._c_on_link_flow,
    lib.PN_LINK_REMOTE_OPEN: ClientConnection._c_on_link_remote_open,
    lib.PN_LINK_REMOTE_CLOSE: ClientConnection._c_on_link_remote_close,
    lib.PN_LINK_REMOTE_DETACH: ClientConnection._c_on_link_remote_close,
    lib.PN_SESSION_REMOTE_OPEN: ClientConnection._on_session_remote_open,
    lib.PN_CONNECTION_REMOTE_OPEN: ClientConnection._on_client_connection_remote_open,
    lib.PN_CONNECTION_REMOTE_CLOSE: ClientConnection._on_client_connection_remote_close,
    lib.PN_TRANSPORT_ERROR: ClientConnection._on_client_transport_error,
}
