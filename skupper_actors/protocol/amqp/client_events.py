"""What a client connection reports (``ClientEvent``) and the outcomes deliveries end
with (``Outcome``, to and from proton's dispositions), for ``ClientConnection``
(client.py) and the messaging router. ``DeliveryChunk`` and ``DeliveryOutcome``, built
per delivery, are read-only by convention rather than frozen (see events.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from cproton import lib

from ._links import condition_of, set_condition
from .events import AmqpEvent

#: The outcomes a delivery can end with (AMQP 1.0 part 3.4), by proton's state codes.
ACCEPTED: Final = int(lib.PN_ACCEPTED)
REJECTED: Final = int(lib.PN_REJECTED)
RELEASED: Final = int(lib.PN_RELEASED)
MODIFIED: Final = int(lib.PN_MODIFIED)
OUTCOMES: Final = frozenset({ACCEPTED, REJECTED, RELEASED, MODIFIED})


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """A delivery's terminal state, as a receiver said it."""

    state: int
    delivery_failed: bool = False
    undeliverable: bool = False
    condition: str | None = None
    description: str | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"o": self.state}
        if self.delivery_failed:
            body["f"] = True
        if self.undeliverable:
            body["u"] = True
        if self.condition is not None:
            body["c"] = self.condition
            body["e"] = self.description or ""
        return body

    @staticmethod
    def from_body(body: Any) -> Outcome | None:
        if not isinstance(body, dict):
            return None
        state = body.get("o")
        if state not in OUTCOMES:
            return None
        condition = body.get("c")
        description = body.get("e")
        return Outcome(
            state=state,
            delivery_failed=body.get("f") is True,
            undeliverable=body.get("u") is True,
            condition=condition if isinstance(condition, str) else None,
            description=description if isinstance(description, str) else None,
        )


OUTCOME_ACCEPTED: Final = Outcome(state=ACCEPTED)
OUTCOME_RELEASED: Final = Outcome(state=RELEASED)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientAttach:
    """The client attached a link: answer with ``accept_link`` or ``refuse_link``.

    ``incoming``: the client sends on it (its target is ``address``); else the client
    receives (its source is ``address``, or a dynamic one to assign).
    """

    link_id: int
    name: str
    incoming: bool
    address: str | None
    dynamic: bool


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class DeliveryChunk:
    """Bytes of a delivery the client is sending; ``first``/``last`` bracket it."""

    link_id: int
    delivery_id: int
    data: bytes
    first: bool
    last: bool
    aborted: bool = False
    settled: bool = False  # the client sent it pre-settled: no outcome goes back


@dataclass(slots=True, kw_only=True)  # read-only by convention: see the module doc
class DeliveryOutcome:
    """The client settled (or updated) a delivery this side sent it."""

    link_id: int
    delivery_id: int
    outcome: Outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientAuthenticated:
    """SASL succeeded: ``user`` is who the client is (``anonymous`` for ANONYMOUS)."""

    mechanism: str
    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthenticationFailed:
    """SASL failed, or the connection ended before it succeeded where it is required;
    ``description`` says why in one line. The connection is over."""

    mechanism: str | None
    description: str


ClientEvent: TypeAlias = (
    AmqpEvent
    | ClientAttach
    | DeliveryChunk
    | DeliveryOutcome
    | ClientAuthenticated
    | AuthenticationFailed
)


def set_outcome(delivery: Any, outcome: Outcome) -> None:
    """Put ``outcome`` on proton's delivery as this side's disposition."""
    local = lib.pn_delivery_local(delivery)
    if outcome.state == MODIFIED:
        lib.pn_disposition_set_failed(local, outcome.delivery_failed)
        lib.pn_disposition_set_undeliverable(local, outcome.undeliverable)
    elif outcome.state == REJECTED and outcome.condition is not None:
        set_condition(lib.pn_disposition_condition(local), outcome.condition, outcome.description)
    lib.pn_delivery_update(delivery, outcome.state)


def remote_outcome(delivery: Any, state: int) -> Outcome:
    """The outcome the peer put on proton's delivery (its remote ``state``)."""
    if state not in OUTCOMES:
        # settled with no outcome: the receiver's default outcome, accepted (AMQP 3.4)
        return OUTCOME_ACCEPTED
    remote = lib.pn_delivery_remote(delivery)
    if state == MODIFIED:
        return Outcome(
            state=state,
            delivery_failed=bool(lib.pn_disposition_is_failed(remote)),
            undeliverable=bool(lib.pn_disposition_is_undeliverable(remote)),
        )
    if state == REJECTED:
        name, description = condition_of(lib.pn_disposition_condition(remote))
        return Outcome(state=state, condition=name, description=description)
    return OUTCOME_RELEASED if state == RELEASED else OUTCOME_ACCEPTED
