"""Outcomes on their way back to ingress routers: batches and their wire shape.

An egress router tells a delivery's ingress router how it ended in a router message
``{"k": "mo", "a": [stream ids accepted], "r": [stream ids released], "b": [entries]}``:
plain accepted and released outcomes (nearly all of them) as lists of stream ids, the
others (rejected, modified) as entries ``{"s": stream id, "o": state, ...}`` with their
details (``Outcome.to_body``). A single entry as the whole body (``{"k": "mo", "s": ...}``,
the first shape) is still read. See docs/adr/0018.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..addresses import OUTCOME_KIND
from ..amqp.client_events import OUTCOME_ACCEPTED, OUTCOME_RELEASED, Outcome

#: stream ids (or entries) of one kind in one router message, at most
OUTCOME_BATCH = 200

_Batch = tuple[list[str], list[str], list[dict[str, Any]]]


def released_body(stream_id: str) -> dict[str, Any]:
    """The router message that releases one delivery at its ingress."""
    return {"k": OUTCOME_KIND, "r": [stream_id]}


def released_batches(streams: Iterable[tuple[str, str]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Router messages that release deliveries, given as (stream id, ingress router)
    pairs: one per ingress router and ``OUTCOME_BATCH`` stream ids (a connection lost
    while busy releases tens of thousands)."""
    batches = OutcomeBatches()
    for stream_id, router in streams:
        batches.add(router, stream_id, OUTCOME_RELEASED)
    return batches.take()


class OutcomeBatches:
    """Outcomes collected per ingress router until ``take`` sends them."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: dict[str, _Batch] = {}

    def add(self, router: str, stream_id: str, outcome: Outcome) -> bool:
        """Hold an outcome for ``router``; True if nothing was held before (time to
        arrange a ``take``)."""
        first = not self._pending
        batch = self._pending.get(router)
        if batch is None:
            batch = self._pending[router] = ([], [], [])
        if outcome is OUTCOME_ACCEPTED or outcome == OUTCOME_ACCEPTED:
            batch[0].append(stream_id)
        elif outcome is OUTCOME_RELEASED or outcome == OUTCOME_RELEASED:
            batch[1].append(stream_id)
        else:
            batch[2].append({"s": stream_id, **outcome.to_body()})
        return first

    def take(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Everything held, as (router, router message body): one message per router,
        more past ``OUTCOME_BATCH`` of a kind."""
        pending, self._pending = self._pending, {}
        for router, (accepted, released, others) in pending.items():
            while accepted or released or others:
                body: dict[str, Any] = {"k": OUTCOME_KIND}
                if accepted:
                    body["a"], accepted = accepted[:OUTCOME_BATCH], accepted[OUTCOME_BATCH:]
                if released:
                    body["r"], released = released[:OUTCOME_BATCH], released[OUTCOME_BATCH:]
                if others:
                    body["b"], others = others[:OUTCOME_BATCH], others[OUTCOME_BATCH:]
                yield router, body


def read_outcomes(body: dict[str, Any]) -> Iterator[tuple[str, Outcome]]:
    """The (stream id, outcome) pairs of an outcome message; malformed parts are skipped."""
    for key, outcome in (("a", OUTCOME_ACCEPTED), ("r", OUTCOME_RELEASED)):
        ids = body.get(key)
        if isinstance(ids, list):
            for stream_id in ids[:OUTCOME_BATCH]:
                if type(stream_id) is str:
                    yield stream_id, outcome
    entries = body.get("b")
    if not isinstance(entries, list):
        entries = [body] if "s" in body else []
    for entry in entries[:OUTCOME_BATCH]:
        if isinstance(entry, dict):
            stream_id = entry.get("s")
            found = Outcome.from_body(entry)
            if isinstance(stream_id, str) and found is not None:
                yield stream_id, found
