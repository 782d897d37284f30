"""A vanflow source without I/O: records in, the messages to send out, on ``tick(now)``.

The owner adds, updates and ends records, says which addresses have a consumer, and
calls ``tick(now)`` (a few times a second); each tick returns the messages due, for a
transport to send. Times are seconds since the epoch (the owner's clock); records carry
µs. What it keeps to Skupper's router (skupper-router ``src/vanflow.c``):

- after a record's first emission only changed attributes go out, with identity and
  type; ``flush()`` makes the next emission of every live record a full one;
- a record goes out at most once per ``min_interval`` (1 s), at most ``batch`` (50)
  records per message;
- nothing goes out to an address without a consumer (not even a beacon);
- flow records (FLOW, BIFLOW_TPORT, BIFLOW_APP) stop being made at ``max_flows``
  live ones and are made again below ``resume_flows``; refusals are counted;
- an ended BIFLOW_TPORT is kept ``ended_keep`` (5 s) so that the connector side's late
  co-record updates still merge into it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from .codes import CO_RECORD_ATTRS, FLOW_TYPES, Attr, RecordType, Value
from .messages import (
    BEACON_ADDRESS,
    Outgoing,
    Record,
    beacon,
    corecord_address,
    flows_address,
    heartbeat,
    logs_address,
    records_address,
    records_message,
)

_MISSING: Final = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class EmitterLimits:
    min_interval: float = 1.0
    batch: int = 50
    max_flows: int = 5000
    resume_flows: int = 4990
    ended_keep: float = 5.0
    heartbeat_interval: float = 2.0
    beacons_per_heartbeat: int = 5


@dataclass(slots=True)
class _Held:
    type: RecordType
    identity: str
    attrs: dict[int, Value]
    address: str
    sent: dict[int, Value] = field(default_factory=dict)
    last_emit: float = float("-inf")
    ended_at: float | None = None
    co: bool = False  # the connector side's part of another router's biflow


@dataclass(slots=True)
class EmitterStats:
    flows_not_made: int = 0
    corecords_unmatched: int = 0
    records_sent: int = 0
    messages_sent: int = 0


class Identities:
    """Record identities ``<prefix>:<n>`` of one router run (``<prefix>:0`` is its ROUTER
    record and its source id); shared by the emitter and whoever names a record before
    the emitter hears of it (a TCP connection puts its biflow's identity in its stream)."""

    __slots__ = ("_next", "prefix")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._next = 1

    @property
    def source_id(self) -> str:
        return f"{self.prefix}:0"

    def next(self) -> str:
        identity = f"{self.prefix}:{self._next}"
        self._next += 1
        return identity


def micros(seconds: float) -> int:
    return int(seconds * 1_000_000)


def source_of(identity: str) -> str:
    """The source id (its ROUTER record's identity) of a record made by a router."""
    return identity.rsplit(":", 1)[0] + ":0"


class Emitter:
    """One router's vanflow source: identities ``<prefix>:<n>``, the source id ``<prefix>:0``."""

    def __init__(
        self, ids: str | Identities, *, now: float, limits: EmitterLimits | None = None
    ) -> None:
        self.ids = Identities(ids) if isinstance(ids, str) else ids
        self.prefix = self.ids.prefix
        self.source_id = self.ids.source_id
        self.limits = limits or EmitterLimits()
        self.stats = EmitterStats()
        self._held: dict[str, _Held] = {}
        self._dirty: dict[str, None] = {}  # insertion-ordered set of identities
        self._ended: dict[str, None] = {}  # ended, dropped once emitted
        #: ended biflows kept ``ended_keep`` after their end, in the order they ended:
        #: a tick looks at the oldest only (a scan of all was a cost per connection)
        self._aging: dict[str, None] = {}
        self._consumers: set[str] = set()
        self._flows = 0
        self._flows_paused = False
        self._next_heartbeat = now + self.limits.heartbeat_interval
        self._heartbeats = 0
        self._beacon_due = True
        #: whether the router that made a biflow (its source id) wants our co-record
        #: parts of it: only while someone consumes that router's flow records (the
        #: owner says; by default always)
        self.corecords_wanted: Callable[[str], bool] = lambda source: True

    # -- what the owner says ----------------------------------------------------------------
    def next_identity(self) -> str:
        return self.ids.next()

    def set_consumer(self, address: str, present: bool) -> None:
        """Whether ``address`` has a consumer (the router watches its addresses)."""
        if present and address not in self._consumers:
            self._consumers.add(address)
            if address == BEACON_ADDRESS:
                self._beacon_due = True
            for held in self._held.values():  # what it missed, in full
                if held.address == address and held.ended_at is None:
                    held.sent.clear()
                    self._dirty[held.identity] = None
        elif not present:
            self._consumers.discard(address)

    def add(
        self,
        record_type: RecordType,
        attrs: dict[int, Value],
        *,
        now: float,
        identity: str | None = None,
    ) -> str | None:
        """Make a record; its identity, or None when the flow-record cap refused it."""
        flow = record_type in FLOW_TYPES
        if flow and not self._may_make_flow():
            self.stats.flows_not_made += 1
            return None
        identity = identity or self.next_identity()
        values = dict(attrs)
        values.setdefault(Attr.START_TIME, micros(now))
        self._hold(_Held(record_type, identity, values, self._address_of(record_type)))
        return identity

    def add_corecord(self, identity: str, attrs: dict[int, Value], *, now: float) -> bool:
        """Open the connector side's part of the biflow ``identity`` (made by another
        router): only co-record attributes, sent to that router's ``vfcr.<id>``."""
        if not self._may_make_flow():
            self.stats.flows_not_made += 1
            return False
        values = {code: value for code, value in attrs.items() if code in CO_RECORD_ATTRS}
        if identity in self._held:  # another attempt of the same connection
            return self.update(identity, values)
        address = corecord_address(source_of(identity))
        self._hold(_Held(RecordType.BIFLOW_TPORT, identity, values, address, co=True))
        return True

    def update(self, identity: str, attrs: dict[int, Value]) -> bool:
        held = self._held.get(identity)
        if held is None:
            return False
        if held.co:
            attrs = {code: value for code, value in attrs.items() if code in CO_RECORD_ATTRS}
        changed = False
        for code, value in attrs.items():
            if held.attrs.get(code, _MISSING) != value:
                held.attrs[code] = value
                changed = True
        if changed:
            self._dirty[identity] = None
        return True

    def merge_corecord(self, identity: str, attrs: dict[int, Value]) -> bool:
        """The connector side's attributes of one of our biflows (live or ended lately)."""
        held = self._held.get(identity)
        if held is None or held.co or held.type is not RecordType.BIFLOW_TPORT:
            self.stats.corecords_unmatched += 1
            return False
        return self.update(
            identity, {code: value for code, value in attrs.items() if code in CO_RECORD_ATTRS}
        )

    def end(self, identity: str, *, now: float, attrs: dict[int, Value] | None = None) -> None:
        held = self._held.get(identity)
        if held is None or held.ended_at is not None:
            return
        held.ended_at = now
        if held.type is RecordType.BIFLOW_TPORT and not held.co:
            self._aging[identity] = None
        else:
            self._ended[identity] = None
        if not held.co:
            self.update(identity, {**(attrs or {}), Attr.END_TIME: micros(now)})
        elif attrs:
            self.update(identity, attrs)
        self._dirty[identity] = None

    def flush(self) -> None:
        """A collector asked for everything: the next emission of each record is full."""
        for held in self._held.values():
            if not held.co and held.ended_at is None:
                held.sent.clear()
                self._dirty[held.identity] = None

    def get(self, identity: str) -> dict[int, Value] | None:
        held = self._held.get(identity)
        return None if held is None else dict(held.attrs)

    @property
    def live_flows(self) -> int:
        return self._flows

    def __len__(self) -> int:
        return len(self._held)

    # -- what is due ---------------------------------------------------------------------------
    def tick(self, now: float) -> list[Outgoing]:
        out: list[Outgoing] = []
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.limits.heartbeat_interval
            self._heartbeats += 1
            if self._heartbeats % self.limits.beacons_per_heartbeat == 0:
                self._beacon_due = True
            if records_address(self.source_id) in self._consumers:
                out.append(heartbeat(self.source_id, micros(now)))
        if self._beacon_due and BEACON_ADDRESS in self._consumers:
            self._beacon_due = False
            out.append(beacon(self.source_id))
        batches: dict[str, list[Record]] = {}
        interval = self.limits.min_interval
        wanted: dict[str, bool] = {}  # per listener router, asked once a tick
        for identity in list(self._dirty):
            held = self._held.get(identity)
            if held is None:
                del self._dirty[identity]
                continue
            if held.co:
                source = source_of(identity)
                consumed = wanted.get(source)
                if consumed is None:
                    consumed = wanted[source] = self.corecords_wanted(source)
            else:
                consumed = held.address in self._consumers
            if consumed and now - held.last_emit >= interval:
                delta = {
                    code: value
                    for code, value in held.attrs.items()
                    if held.sent.get(code, _MISSING) != value
                }
                if delta or not held.sent:
                    batches.setdefault(held.address, []).append(
                        Record(type=held.type, identity=identity, attrs=delta)
                    )
                    held.sent.update(delta)
                    held.last_emit = now
                del self._dirty[identity]
            elif not consumed:
                del self._dirty[identity]  # sent in full when a consumer comes (flush)
                held.sent.clear()
        for address, records in batches.items():
            for start in range(0, len(records), self.limits.batch):
                out.append(records_message(address, records[start : start + self.limits.batch]))
                self.stats.messages_sent += 1
            self.stats.records_sent += len(records)
        self._drop_ended(now)
        return out

    # -- inside --------------------------------------------------------------------------------
    def _may_make_flow(self) -> bool:
        if self._flows_paused and self._flows < self.limits.resume_flows:
            self._flows_paused = False
        if not self._flows_paused and self._flows >= self.limits.max_flows:
            self._flows_paused = True
        return not self._flows_paused

    def _hold(self, held: _Held) -> None:
        if held.identity in self._held:
            raise ValueError(f"record {held.identity} exists already")
        self._held[held.identity] = held
        self._dirty[held.identity] = None
        if held.type in FLOW_TYPES:
            self._flows += 1

    def _address_of(self, record_type: RecordType) -> str:
        if record_type in FLOW_TYPES:
            return flows_address(self.source_id)
        if record_type is RecordType.LOG:
            return logs_address(self.source_id)
        return records_address(self.source_id)

    def _drop_ended(self, now: float) -> None:
        dirty = self._dirty
        gone = [identity for identity in self._ended if identity not in dirty]
        for identity in gone:
            del self._ended[identity]
            self._drop(identity)
        # kept biflows: oldest first, until one is too young (those after it ended later)
        keep = self.limits.ended_keep
        aging = self._aging
        held_of = self._held
        gone.clear()
        for identity in aging:
            ended_at = held_of[identity].ended_at
            assert ended_at is not None
            if now < ended_at + keep:
                break
            if identity not in dirty:
                gone.append(identity)
        for identity in gone:
            del aging[identity]
            self._drop(identity)

    def _drop(self, identity: str) -> None:
        held = self._held.pop(identity)
        if held.type in FLOW_TYPES:
            self._flows -= 1
